package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// start runs Watch on files until the test ends and returns the channel its
// reports arrive on, after the first report (the one made as the watch begins).
func start(t *testing.T, files []string, o Options) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, files, func() { reports <- struct{}{} }, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	select {
	case <-reports:
	case err := <-done:
		t.Fatalf("Watch returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no report when the watch began")
	}
	return reports
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBusyNeighbourCannotStallAReport writes a sibling file every 20ms: its
// events are not the watched file's, so an edit of the watched file is reported
// after the quiet period, well within a second.
func TestBusyNeighbourCannotStallAReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, audit := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.jsonl")
	write(t, policy, "v1")
	reports := start(t, []string{policy}, Options{})

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		f, err := os.OpenFile(audit, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		defer f.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = f.WriteString("{}\n")
			}
		}
	}()
	// The neighbour alone reports nothing.
	select {
	case <-reports:
		t.Fatal("a write to another file was reported")
	case <-time.After(300 * time.Millisecond):
	}
	edited := time.Now()
	write(t, policy, "v2")
	select {
	case <-reports:
		if d := time.Since(edited); d > time.Second {
			t.Errorf("the edit was reported after %v, want within 1s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the edit was never reported")
	}
}

// TestContinuousWritesAreReportedByMaxWait: a watched file written every 20ms
// never goes quiet; it is still reported, at most MaxWait after the burst
// began.
func TestContinuousWritesAreReportedByMaxWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tls.crt")
	write(t, file, "0")
	reports := start(t, []string{file}, Options{Quiet: 200 * time.Millisecond, MaxWait: 500 * time.Millisecond})
	stop := make(chan struct{})
	defer close(stop)
	began := make(chan time.Time, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		began <- time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				write(t, file, string(rune('a'+i%26)))
			}
		}
	}()
	first := <-began
	select {
	case <-reports:
		if d := time.Since(first); d > 2*time.Second {
			t.Errorf("reported after %v; MaxWait is 500ms", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a continuously written file was never reported")
	}
}

// TestKubernetesAtomicWriter: a Secret or ConfigMap volume changes by renaming a
// new `..data` symlink over the old one; the file names never see an event.
func TestKubernetesAtomicWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	publish := func(stamp string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, stamp), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, stamp, "tls.crt"), stamp)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(stamp, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("..2026_12_01_10_00_00.1")
	file := filepath.Join(dir, "tls.crt")
	if err := os.Symlink(filepath.Join("..data", "tls.crt"), file); err != nil {
		t.Fatal(err)
	}
	reports := start(t, []string{file}, Options{})
	publish("..2026_12_01_10_05_00.2")
	select {
	case <-reports:
	case <-time.After(10 * time.Second):
		t.Fatal("the ..data swap was not reported")
	}
}

func TestWatchFailsForAMissingDirectory(t *testing.T) {
	t.Parallel()
	err := Watch(context.Background(), []string{filepath.Join(t.TempDir(), "nope", "x")}, func() {}, Options{})
	if err == nil {
		t.Fatal("Watch of a missing directory succeeded")
	}
}
