package server_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/devconfig"
	"github.com/embedgate/embedgate/internal/devpki"
)

// The tests and benchmarks that run the real binaries as processes (the
// soak, the fleet, the throughput benchmark, the large policy's reload)
// share these.

// buildCommand builds the main package pkg into dir and returns the
// executable's path.
func buildCommand(t testing.TB, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, path.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// writeProcessFolder writes into dir what `embedgate serve --config
// dir/config.yaml` needs against the emulator at emuURL: the certificates
// of a new CA, which it returns, the config with extra's lines (the audit
// stream goes to log/audit.jsonl, out of the watched folder; no preflight;
// no shutdown delay), and the policy (testPolicy when "").
func writeProcessFolder(t testing.TB, dir, emuURL string, emuCA []byte, policy, extra string) *devpki.CA {
	t.Helper()
	ca, err := devpki.NewCA("process CA")
	must(t, err)
	pair, err := ca.IssueServer("localhost", "127.0.0.1")
	must(t, err)
	must(t, devconfig.WriteCerts(dir, ca, pair))
	f := folder(dir, emuURL, emuCA, clientSecret, `audit_file: log/audit.jsonl
preflight: false
shutdown_delay: 0s
`+extra)
	if policy != "" {
		f.Policy = policy
	}
	must(t, f.Write())
	must(t, os.Mkdir(filepath.Join(dir, "log"), 0o700))
	return ca
}

// process is a child process of a test, stopped gracefully at its end.
type process struct{ cmd *exec.Cmd }

func startProcess(t *testing.T, dir, logName, bin string, args ...string) *process {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(dir, logName), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	must(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	must(t, cmd.Start())
	p := &process{cmd: cmd}
	t.Cleanup(func() { p.stop(t); log.Close() })
	return p
}

func (p *process) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop within 15s of SIGTERM", p.cmd.Path)
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servingAddr reads the address from the server's "embedgate serving" log
// record.
func servingAddr(logFile string) (string, bool) {
	f, err := os.Open(logFile)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "embedgate serving" && rec.Addr != "" {
			return rec.Addr, true
		}
	}
	return "", false
}
