package testkit

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server of a test's own: on a free loopback port, in a
// temporary folder, without persistence (no RDB, no AOF), stopped when the
// test ends. Tests that need one call StartRedis; where no redis-server is
// installed they skip, except under EMBEDGATE_CI=1 (CI), where they fail:
// `make test` installs Debian's redis-server.
type Redis struct {
	// Addr is 127.0.0.1:port, the same across Stop and Start.
	Addr string

	t    testing.TB
	bin  string
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisOptions configure StartRedis; the zero value is a plain server
// without a password.
type RedisOptions struct {
	// Password, if set, is required of clients (requirepass).
	Password string
	// TLSCertFile and TLSKeyFile, if set, make the server speak TLS only
	// on Addr; TLSCAFile then verifies the client certificates clients
	// present (optional for them).
	TLSCertFile, TLSKeyFile, TLSCAFile string
}

// StartRedis starts a redis-server for t, ready to answer when it returns.
func StartRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	bin := ""
	for _, name := range []string{"redis-server", "valkey-server"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("EMBEDGATE_CI") == "1" {
			t.Fatal("redis-server is not installed (EMBEDGATE_CI=1: required; make test installs Debian's redis-server)")
		}
		t.Skip("redis-server is not installed: skipping (make test installs it; EMBEDGATE_CI=1 makes this a failure)")
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(r.Stop)
	var err error
	for range 5 { // a free port may be taken before the server binds it
		l, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		r.Addr = l.Addr().String()
		l.Close()
		_, port, _ := net.SplitHostPort(r.Addr)
		r.args = []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir,
			"--logfile", filepath.Join(r.dir, "redis.log"), "--daemonize", "no"}
		if o.TLSCertFile != "" {
			r.args = append(r.args, "--port", "0", "--tls-port", port, "--tls-cert-file", o.TLSCertFile, "--tls-key-file", o.TLSKeyFile)
			if o.TLSCAFile != "" {
				r.args = append(r.args, "--tls-ca-cert-file", o.TLSCAFile, "--tls-auth-clients", "optional")
			} else {
				r.args = append(r.args, "--tls-auth-clients", "no")
			}
		} else {
			r.args = append(r.args, "--port", port)
		}
		if o.Password != "" {
			r.args = append(r.args, "--requirepass", o.Password)
		}
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("redis-server did not start: %v", err)
	return nil
}

// Start starts the server again on the same address after Stop (a Redis
// restarted empty).
func (r *Redis) Start() {
	r.t.Helper()
	var err error
	for range 50 { // the port may take a moment to be free again
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not restart on %s: %v", r.Addr, err)
}

// start runs the server and waits until its log says it accepts
// connections.
func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	logPath := filepath.Join(r.dir, "redis.log")
	before := 0
	if b, err := os.ReadFile(logPath); err == nil {
		before = len(b)
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Dir = r.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(Patience)
	for {
		b, _ := os.ReadFile(logPath)
		if len(b) > before && strings.Contains(string(b[before:]), "Ready to accept connections") {
			r.cmd, r.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return &redisExit{log: string(b[min(before, len(b)):])}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return &redisExit{log: "not ready within " + Patience.String()}
		}
	}
}

// Stop stops the server (SIGTERM; SIGKILL if it lingers) and waits for it
// to exit. Stopping a stopped server does nothing.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // if paused
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, as with a hung Redis or a network that drops packets. Resume
// undoes it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(s syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(s)
	}
}

// redisExit is a server that exited (or never got ready) during start,
// with the end of its log.
type redisExit struct{ log string }

func (e *redisExit) Error() string {
	if len(e.log) > 2000 {
		e.log = e.log[len(e.log)-2000:]
	}
	return "redis-server exited: " + e.log
}
