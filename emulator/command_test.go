package emulator

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// signalWriter closes ready once the banner has been written.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), "Admin:") {
		w.once.Do(func() { close(w.ready) })
	}
	return n, err
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &signalWriter{ready: make(chan struct{})}
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		done <- RunCommand(ctx, []string{"--addr", "127.0.0.1:0", "--certs", dir, "--throttle-every", "3", "--token-lifetime", "10m", "--cloud", "usgov"}, out)
	}()
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("RunCommand returned early: %v\n%s", err, out.buf.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	text := out.buf.String()
	for _, want := range []string{"https://127.0.0.1:", dir + "/ca.pem", "curl -s --cacert", "GenerateToken"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range [][]string{{"--nope"}, {"--cloud", "germany"}, {"--random-token-lifetime", "--token-lifetime", "1h"}} {
		if err := RunCommand(context.Background(), append(bad, "--addr", "127.0.0.1:0", "--certs", dir), &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
