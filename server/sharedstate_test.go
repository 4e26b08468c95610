package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/testkit"
	"github.com/embedgate/embedgate/sharedstate"
)

func TestSharedStateConfig(t *testing.T) {
	t.Parallel()
	const keys = "XW5pbXBvcnRhbnQgdGVzdCBrZXkgb2YgMzIgYnl0ZXM=\n" // 32 bytes
	path := writeConfigDir(t, validConfig+`
shared_state:
  address: redis.platform.svc:6379
  password_file: redis-password
  encryption_key_file: token-keys
`, map[string]string{"token-keys": keys, "redis-password": "pw\n"})
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if cfg.SharedState.EncryptionKeyFile != filepath.Join(dir, "token-keys") || cfg.SharedState.PasswordFile != filepath.Join(dir, "redis-password") {
		t.Errorf("relative paths not resolved: %+v", cfg.SharedState)
	}
	summary, err := cfg.Summary()
	if err != nil || !strings.Contains(summary, "Redis at redis.platform.svc:6379 (plaintext, database 0, keys embedgate:*)") {
		t.Errorf("summary:\n%s", summary)
	}

	_, err = LoadConfig(writeConfigDir(t, validConfig+"shared_state:\n  address: redis:6379\n  timeout: -1s\n", nil))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a ConfigError", err)
	}
	var keysAt []string
	for _, p := range ce.Problems {
		keysAt = append(keysAt, p.Key)
	}
	if strings.Join(keysAt, " ") != "shared_state.encryption_key_file shared_state.timeout" {
		t.Errorf("problems at %v", keysAt)
	}
}

// fakeRates is a fleet bucket that answers wait, or fails with err.
type fakeRates struct {
	wait  time.Duration
	err   error
	calls int
}

func (f *fakeRates) Take(context.Context, string, float64, int) (time.Duration, error) {
	f.calls++
	return f.wait, f.err
}

// TestSharedRatesDecide: with a fleet bucket, it decides (its wait is the
// RetryInfo); when it cannot, this process's bucket does; callers without
// a rate_limit never ask it.
func TestSharedRatesDecide(t *testing.T) {
	t.Parallel()
	p, err := authz.Parse([]byte(`
callers:
  - id: spiffe://t/limited
    tenants: [acme]
    rate_limit: {per_second: 0.001, burst: 1}
  - id: spiffe://t/free
    tenants: [acme]
tenants:
  acme: {workspace_id: a0000000-0000-4000-8000-000000000001, reports: ["*"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	fleet := &fakeRates{}
	l := newCallerLimits(fixedPolicy{p}, nil, fleet)
	now := time.Now()
	ctx := context.Background()
	for range 3 { // the fleet admits: this process's burst of 1 is not spent
		if err := l.take(ctx, "spiffe://t/limited", now); err != nil {
			t.Fatalf("admitted by the fleet: %v", err)
		}
	}
	fleet.wait = 1500 * time.Millisecond
	var limited *rateLimitedError
	if err := l.take(ctx, "spiffe://t/limited", now); !errors.As(err, &limited) || limited.retryAfter != fleet.wait {
		t.Fatalf("refused by the fleet: %v, want a retry after %v", err, fleet.wait)
	}
	fleet.err = errors.New("Redis unavailable")
	if err := l.take(ctx, "spiffe://t/limited", now); err != nil {
		t.Fatalf("fleet unavailable, local burst left: %v", err)
	}
	if err := l.take(ctx, "spiffe://t/limited", now); !errors.As(err, &limited) {
		t.Fatalf("fleet unavailable, local burst spent: %v, want refused", err)
	}
	calls := fleet.calls
	if err := l.take(ctx, "spiffe://t/free", now); err != nil || fleet.calls != calls {
		t.Errorf("a caller without rate_limit: %v, %d fleet calls", err, fleet.calls-calls)
	}
}

// TestCheckSharedState: check --online says whether Redis can be used as
// the replicas will use it: reachable, and allowed to run the scripts.
func TestCheckSharedState(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := sharedstate.Config{Address: r.Addr, EncryptionKeyFile: write("keys", "XW5pbXBvcnRhbnQgdGVzdCBrZXkgb2YgMzIgYnl0ZXM=\n")}
	if f := checkSharedState(context.Background(), cfg); len(f) != 0 {
		t.Fatalf("a working Redis: %v", f)
	}
	// A user that may not run scripts.
	raw := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	defer raw.Close()
	const password = "limited-user-password"
	if err := raw.Do(context.Background(), "ACL", "SETUSER", "limited", "on", ">"+password, "~*", "+@all", "-@scripting").Err(); err != nil {
		t.Fatal(err)
	}
	limited := cfg
	limited.Username, limited.PasswordFile = "limited", write("password", password)
	f := checkSharedState(context.Background(), limited)
	if len(f) != 1 || !strings.Contains(f[0].String(), "cannot be used") || strings.Contains(f[0].String(), password) {
		t.Errorf("a user without scripting: %v", f)
	}
	r.Stop()
	if f := checkSharedState(context.Background(), cfg); len(f) != 1 || !strings.Contains(f[0].String(), r.Addr) {
		t.Errorf("Redis stopped: %v", f)
	}
}
