package sharedstate

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
)

// observed records what a store reports, for assertions.
type observed struct {
	mu        sync.Mutex
	up        []bool
	errors    map[string]int
	tokens    map[string]int
	waits     int
	fallbacks map[string]int
}

func newObserved() *observed {
	return &observed{errors: map[string]int{}, tokens: map[string]int{}, fallbacks: map[string]int{}}
}

func (o *observed) Up(up bool)          { o.mu.Lock(); o.up = append(o.up, up); o.mu.Unlock() }
func (o *observed) Error(op string)     { o.mu.Lock(); o.errors[op]++; o.mu.Unlock() }
func (o *observed) Token(result string) { o.mu.Lock(); o.tokens[result]++; o.mu.Unlock() }
func (o *observed) LeaseWait()          { o.mu.Lock(); o.waits++; o.mu.Unlock() }
func (o *observed) Fallback(op string)  { o.mu.Lock(); o.fallbacks[op]++; o.mu.Unlock() }

func (o *observed) token(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokens[result]
}
func (o *observed) leaseWaits() int        { o.mu.Lock(); defer o.mu.Unlock(); return o.waits }
func (o *observed) fallback(op string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.fallbacks[op] }
func (o *observed) ups() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]bool(nil), o.up...)
}

// keyFile writes a key file of the given keys and returns its path.
func keyFile(t *testing.T, keys ...[]byte) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openStore opens a store on r with a key file of keys (one fresh key if
// none), as tweak changes the config.
func openStore(t *testing.T, r *testkit.Redis, logs *testkit.Buffer, tweak func(*Config), keys ...[]byte) (*Store, *observed) {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{randomKey(t)}
	}
	cfg := Config{Address: r.Addr, EncryptionKeyFile: keyFile(t, keys...), KeyPrefix: "test:"}
	if tweak != nil {
		tweak(&cfg)
	}
	if logs == nil {
		logs = &testkit.Buffer{}
	}
	obs := newObserved()
	s, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), obs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, obs
}

// rawClient talks to r directly, to look at and tamper with what a store
// wrote.
func rawClient(t *testing.T, r *testkit.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestOutageOpensTheBreakerAndRecovers: with Redis gone, each operation
// fails with ErrUnavailable (the caller works per process); after a few
// failures no operation asks Redis at all (it answers at once even when
// Redis hangs); once Redis answers again the probe closes the breaker by
// itself, and each change is logged and observed once.
func TestOutageOpensTheBreakerAndRecovers(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	logs := &testkit.Buffer{}
	s, obs := openStore(t, r, logs, func(c *Config) { c.Timeout = 100 * time.Millisecond })
	ctx := context.Background()
	if _, err := s.Take(ctx, "caller", 10, 5); err != nil || !s.Up() {
		t.Fatalf("Take = %v, Up = %v; want an answer", err, s.Up())
	}

	r.Pause() // hung: connections open, nothing answers
	var slow int
	for i := 0; s.Up(); i++ {
		if i > breakerThreshold {
			t.Fatalf("still up after %d failures", i)
		}
		start := time.Now()
		if _, err := s.Take(ctx, "caller", 10, 5); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take with Redis hung = %v, want ErrUnavailable", err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("a failed Take took %v: the timeout (100ms) does not hold", time.Since(start))
		}
		slow++
	}
	start := time.Now()
	for range 1000 {
		if _, err := s.Take(ctx, "caller", 10, 5); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take with the breaker open = %v, want ErrUnavailable", err)
		}
		if _, _, err := s.Claim(ctx, [32]byte{1}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Claim with the breaker open = %v, want ErrUnavailable", err)
		}
	}
	if d := time.Since(start); d > time.Second { // through Redis, 2000 x 100ms
		t.Errorf("2000 operations with the breaker open took %v: they should not touch the network", d)
	}
	t.Logf("breaker open after %d slow failures; 2000 operations then took %v", slow, time.Since(start))
	if obs.fallback("rate_limit") < 1000 || obs.fallback("token") < 1000 {
		t.Errorf("fallbacks = %v, want each operation counted", obs.fallbacks)
	}
	if !strings.Contains(logs.String(), "Redis does not answer") {
		t.Error("no warning logged when Redis stopped answering")
	}

	r.Resume()
	testkit.Eventually(t, "the breaker to close once Redis answers", s.Up)
	if _, err := s.Take(ctx, "caller", 10, 5); err != nil {
		t.Fatalf("Take after recovery = %v", err)
	}
	if got := obs.ups(); len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Errorf("Up reported %v, want [true false true]", got)
	}
	if n := strings.Count(logs.String(), "Redis does not answer"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
}

// TestStartsWithoutRedis: a Redis that is not there at start is not an
// error; the store starts down and comes up when Redis does.
func TestStartsWithoutRedis(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	r.Stop()
	s, obs := openStore(t, r, nil, nil)
	if s.Up() {
		t.Fatal("up without Redis")
	}
	if _, err := s.Take(context.Background(), "caller", 1, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Take = %v, want ErrUnavailable", err)
	}
	r.Start()
	testkit.Eventually(t, "the store to come up with Redis", s.Up)
	if got := obs.ups(); len(got) != 2 || got[0] || !got[1] {
		t.Errorf("Up reported %v, want [false true]", got)
	}
}

// TestTLSAndPassword: TLS verified against the configured CA with a
// client certificate, and AUTH from the password file; a wrong password
// is an outage whose log line does not carry the password.
func TestTLSAndPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := devpki.NewCA("redis test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFiles(caFile, filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	srv, _ := ca.IssueServer("localhost", "127.0.0.1")
	cli, _ := ca.IssueClient("spiffe://embedgate.test/redis-client")
	if err := srv.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := cli.WriteFiles(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")); err != nil {
		t.Fatal(err)
	}
	const password = "redis-test-password-3f9a"
	r := testkit.StartRedis(t, testkit.RedisOptions{Password: password,
		TLSCertFile: filepath.Join(dir, "server.pem"), TLSKeyFile: filepath.Join(dir, "server-key.pem"), TLSCAFile: caFile})
	for _, c := range []struct {
		name, password string
		want           bool
	}{
		{"right password", password, true},
		{"wrong password", "not-the-password-77", false},
	} {
		pw := filepath.Join(dir, c.name)
		if err := os.WriteFile(pw, []byte(c.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		logs := &testkit.Buffer{}
		s, _ := openStore(t, r, logs, func(cfg *Config) {
			cfg.PasswordFile = pw
			cfg.TLS = TLSConfig{Enabled: true, CAFile: caFile, CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem"), ServerName: "localhost"}
		})
		if s.Up() != c.want {
			t.Errorf("%s: up = %v, want %v; log:\n%s", c.name, s.Up(), c.want, logs.String())
		}
		if c.want {
			if _, err := s.Take(context.Background(), "caller", 1, 1); err != nil {
				t.Errorf("%s: Take = %v", c.name, err)
			}
		}
		if strings.Contains(logs.String(), c.password) {
			t.Errorf("%s: the password appears in the log", c.name)
		}
	}
	// Without the CA, the server's certificate is not trusted.
	s, _ := openStore(t, r, nil, func(cfg *Config) { cfg.TLS = TLSConfig{Enabled: true} })
	if s.Up() {
		t.Error("up with a server certificate from an unknown CA")
	}
}

// TestDocumentedACL: the ACL the README gives an Embedgate user is enough
// for every operation, and Check passes with it.
func TestDocumentedACL(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	const password = "acl-test-password"
	// The README's line, with this test's prefix.
	acl := strings.Fields("on >" + password + " ~test:* +ping +eval +evalsha +get +set +del +pexpire +time")
	args := []any{"ACL", "SETUSER", "embedgate"}
	for _, a := range acl {
		args = append(args, a)
	}
	ctx := context.Background()
	if err := rawClient(t, r).Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	s, obs := openStore(t, r, nil, func(c *Config) {
		c.Username, c.PasswordFile = "embedgate", pw
		c.MintLease = 300 * time.Millisecond // renewed during the test
	})
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := s.Take(ctx, "caller", 1, 1); err != nil {
		t.Fatalf("Take: %v", err)
	}
	_, done, err := s.Claim(ctx, [32]byte{1})
	if err != nil || done == nil {
		t.Fatalf("Claim: %v", err)
	}
	// Past two leases, the lease is there only if the renewals worked.
	time.Sleep(600 * time.Millisecond)
	if _, leaseKey := s.names([32]byte{1}); rawClient(t, r).Exists(ctx, leaseKey).Val() != 1 {
		t.Fatal("the lease lapsed: the renewals failed")
	}
	done(secret, time.Now().Add(time.Minute))
	_, done, _ = s.Claim(ctx, [32]byte{2})
	done(nil, time.Time{})
	if v, _, err := s.Claim(ctx, [32]byte{1}); err != nil || string(v) != string(secret) {
		t.Fatalf("Claim after store: %q, %v", v, err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.errors) != 0 {
		t.Errorf("errors with the documented ACL: %v", obs.errors)
	}
}
