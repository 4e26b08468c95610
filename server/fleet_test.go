package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/devconfig"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
)

// fleet is two Embedgate processes (the real binary) sharing one
// redis-server and one emulator, as two replicas behind a load balancer.
type fleet struct {
	emu      *emulator.Server
	redis    *testkit.Redis
	password string        // Redis'
	raw      *redis.Client // to ask Redis itself
	replicas [2]*replica
}

// replica is one Embedgate process of the fleet, with clients of the two
// callers the tests use.
type replica struct {
	name     string
	admin    string // http://host:port
	frontend embedgatev1.EmbedTokenServiceClient
	batch    embedgatev1.EmbedTokenServiceClient // the policy's rate-limited caller
}

// startFleet builds the binary and starts Redis (with a password), the
// emulator (in-process, for its gates and counters) and two replicas with
// the same shared_state block. Everything the replicas log or audit is
// scanned for tokens and secrets (TestMain), the Redis password and the
// encryption key included.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	dir := t.TempDir()
	bin := buildCommand(t, dir, "github.com/embedgate/embedgate/cmd/embedgate")
	password := "redis-" + rand.Text()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	encryptionKey := base64.StdEncoding.EncodeToString(key)
	f := &fleet{redis: testkit.StartRedis(t, testkit.RedisOptions{Password: password}), password: password}

	emu, err := emulator.Start(context.Background(), emulator.Config{Logger: slog.New(slog.NewJSONHandler(&testkit.Buffer{}, nil))})
	must(t, err)
	f.emu = emu
	t.Cleanup(func() {
		watchForLeaks(nil, emu.AccessTokens()...)
		emu.Close()
	})
	ca, err := devpki.NewCA("fleet CA")
	must(t, err)
	pair, err := ca.IssueServer("localhost", "127.0.0.1")
	must(t, err)
	writeFile(t, dir, "redis-password", password+"\n")
	writeFile(t, dir, "token-keys", encryptionKey+"\n")

	for i := range f.replicas {
		name := fmt.Sprintf("replica%d", i)
		rdir := filepath.Join(dir, name)
		must(t, os.Mkdir(rdir, 0o700))
		must(t, devconfig.WriteCerts(rdir, ca, pair))
		admin := freeAddr(t)
		must(t, folder(rdir, emu.URL(), emu.CACertPEM(), clientSecret, `admin_listen: `+admin+`
audit_file: audit.jsonl
shutdown_delay: 0s
preflight: false
shared_state:
  address: `+f.redis.Addr+`
  password_file: ../redis-password
  encryption_key_file: ../token-keys
  key_prefix: "fleet-test:"
`).Write())
		// Registered before the process starts, so that it runs after the
		// process has stopped and written its last line.
		t.Cleanup(func() {
			for _, file := range []string{"embedgate.log", "audit.jsonl"} {
				b, err := os.ReadFile(filepath.Join(rdir, file))
				must(t, err)
				buf := &testkit.Buffer{}
				buf.Write(b)
				watchForLeaks(buf)
			}
		})
		startProcess(t, rdir, "embedgate.log", bin, "serve", "--config", filepath.Join(rdir, "config.yaml"))
		var addr string
		waitFor(t, name, func() bool { a, ok := servingAddr(filepath.Join(rdir, "embedgate.log")); addr = a; return ok })
		s := &stack{ca: ca, addr: addr}
		f.replicas[i] = &replica{
			name:     name,
			admin:    "http://" + admin,
			frontend: embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, frontend))),
			batch:    embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, batch))),
		}
	}
	watchForLeaks(nil, clientSecret, password, encryptionKey)
	return f
}

// metric reads one unlabelled series of the replica's /metrics.
func (r *replica) metric(t *testing.T, name string) float64 {
	t.Helper()
	return scrapeAdmin(t, r.admin+"/metrics")[name]
}

// mintsFor is how many tokens Power BI minted for user (among the
// emulator's recent requests; calls that other tests' callers left may
// still be minting for other users).
func (f *fleet) mintsFor(user string) int {
	n := 0
	for _, r := range f.emu.Requests(emulator.RouteGenerateToken) {
		if strings.Contains(string(r.Body), `"username":"`+user+`"`) {
			n++
		}
	}
	return n
}

// redisCommands is how many commands Redis has processed (INFO stats),
// this INFO included.
func (f *fleet) redisCommands(t *testing.T) int64 {
	t.Helper()
	if f.raw == nil {
		f.raw = redis.NewClient(&redis.Options{Addr: f.redis.Addr, Password: f.password, Protocol: 2, DisableIdentity: true})
		t.Cleanup(func() { f.raw.Close() })
		must(t, f.raw.Ping(context.Background()).Err()) // connected before counting
	}
	info, err := f.raw.Info(context.Background(), "stats").Result()
	must(t, err)
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			must(t, err)
			return n
		}
	}
	t.Fatal("INFO stats has no total_commands_processed")
	return 0
}

func grant(user string) *embedgatev1.GenerateEmbedTokenRequest {
	return &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: user, ReportIds: []string{salesReport}}
}

// TestFleet: two replicas sharing Redis behave as one. Each part would
// fail with per-process state: both replicas would mint the grant (the
// gate would hold two mints), the rate-limited caller would get its burst
// from each replica, and a dead Redis would fail calls or never recover.
func TestFleet(t *testing.T) {
	t.Parallel()
	f := startFleet(t)
	a, b := f.replicas[0], f.replicas[1]
	for _, r := range f.replicas {
		if up := r.metric(t, "embedgate_shared_state_up"); up != 1 {
			t.Fatalf("%s: embedgate_shared_state_up = %v at start, want 1", r.name, up)
		}
	}

	t.Run("one mint for one grant", func(t *testing.T) {
		ctx := context.Background()
		// A's mint is held at Power BI; B asks for the same grant meanwhile.
		gate := f.emu.Gate(emulator.RouteGenerateToken)
		type answer struct {
			res *embedgatev1.GenerateEmbedTokenResponse
			err error
		}
		fromA, fromB := make(chan answer, 1), make(chan answer, 1)
		go func() {
			res, err := a.frontend.GenerateEmbedToken(ctx, grant("one-mint@acme.example"))
			fromA <- answer{res, err}
		}()
		testkit.Eventually(t, "A's mint to reach Power BI", func() bool { return gate.Waiting() == 1 })
		waitsBefore := b.metric(t, "embedgate_shared_state_lease_waits_total")
		go func() {
			res, err := b.frontend.GenerateEmbedToken(ctx, grant("one-mint@acme.example"))
			fromB <- answer{res, err}
		}()
		testkit.Eventually(t, "B to wait for A's lease, or to mint too", func() bool {
			return gate.Waiting() > 1 || b.metric(t, "embedgate_shared_state_lease_waits_total") > waitsBefore
		})
		if n := gate.Waiting(); n != 1 {
			t.Errorf("%d mints of one grant reached Power BI at once, want 1", n)
		}
		gate.Open()
		ra, rb := <-fromA, <-fromB
		if ra.err != nil || rb.err != nil {
			t.Fatalf("A: %v; B: %v", ra.err, rb.err)
		}
		if ra.res.GetTokenId() != rb.res.GetTokenId() || ra.res.GetToken() != rb.res.GetToken() {
			t.Errorf("A got token %s, B token %s: want the same", ra.res.GetTokenId(), rb.res.GetTokenId())
		}
		// Later asks, on either replica, are served from their own caches,
		// without a Redis command (the only one is the count's own INFO).
		before := f.redisCommands(t)
		for _, r := range []*replica{a, b, a, b} {
			res, err := r.frontend.GenerateEmbedToken(ctx, grant("one-mint@acme.example"))
			if err != nil || res.GetTokenId() != ra.res.GetTokenId() {
				t.Errorf("%s again: token %s, %v; want %s", r.name, res.GetTokenId(), err, ra.res.GetTokenId())
			}
		}
		if n := f.redisCommands(t) - before; n != 1 {
			t.Errorf("4 calls served from the replicas' caches sent %d commands to Redis, want none", n-1)
		}
		if got := f.mintsFor("one-mint@acme.example"); got != 1 {
			t.Errorf("Power BI minted %d tokens for one grant across two replicas, want 1", got)
		}
	})

	t.Run("one rate for the fleet", func(t *testing.T) {
		// The batch caller's rate_limit: burst 2, then one per 1000 s.
		ctx := context.Background()
		admitted := 0
		for i, r := range []*replica{a, b, a, b, a, b} {
			_, err := r.batch.GenerateEmbedToken(ctx, grant(fmt.Sprintf("batch%d@acme.example", i)))
			switch status.Code(err) {
			case codes.OK:
				admitted++
			case codes.ResourceExhausted:
				checkDetails(t, err, "CALLER_RATE_LIMITED", "")
				var retry *errdetails.RetryInfo
				for _, d := range status.Convert(err).Details() {
					if ri, ok := d.(*errdetails.RetryInfo); ok {
						retry = ri
					}
				}
				if d := retry.GetRetryDelay().AsDuration(); d < 900*time.Second || d > 1000*time.Second {
					t.Errorf("call %d on %s: RetryInfo %v, want about 1000s", i, r.name, d)
				}
			default:
				t.Fatalf("call %d on %s: %v", i, r.name, err)
			}
			if i >= 2 && status.Code(err) != codes.ResourceExhausted {
				t.Errorf("call %d on %s admitted: the burst of 2 is the fleet's, not each replica's", i, r.name)
			}
		}
		if admitted != 2 {
			t.Errorf("admitted %d calls across the fleet, want the burst, 2", admitted)
		}
	})

	t.Run("Redis stopped and restarted fails no call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls, failed atomic.Int64
		var wg sync.WaitGroup
		var users atomic.Int64
		for _, r := range f.replicas {
			for _, fresh := range []bool{false, true} { // a cached grant, and new grants
				wg.Go(func() {
					for ctx.Err() == nil {
						req := grant("steady@acme.example")
						if fresh {
							req = grant(fmt.Sprintf("outage%d@acme.example", users.Add(1)))
						}
						cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
						_, err := r.frontend.GenerateEmbedToken(cctx, req)
						ccancel()
						if ctx.Err() != nil {
							return
						}
						calls.Add(1)
						if err != nil {
							failed.Add(1)
							t.Errorf("%s during the outage test: %v", r.name, err)
						}
					}
				})
			}
		}
		callsNow := func() int64 { return calls.Load() }
		atLeast := func(n int64) func() bool { return func() bool { return callsNow() >= n } }
		testkit.Eventually(t, "calls to flow", atLeast(50))

		f.redis.Stop()
		for _, r := range f.replicas {
			testkit.Eventually(t, r.name+" to report Redis down", func() bool { return r.metric(t, "embedgate_shared_state_up") == 0 })
		}
		down := callsNow()
		testkit.Eventually(t, "calls to go on without Redis", atLeast(down+200))

		f.redis.Start()
		for _, r := range f.replicas {
			testkit.Eventually(t, r.name+" to report Redis up again", func() bool { return r.metric(t, "embedgate_shared_state_up") == 1 })
		}
		up := callsNow()
		testkit.Eventually(t, "calls to go on with Redis back", atLeast(up+50))
		cancel()
		wg.Wait()
		t.Logf("%d calls, %d failed; %d while Redis was down", calls.Load(), failed.Load(), up-down)

		// Shared again: a new grant is minted once across the replicas.
		ra, err := a.frontend.GenerateEmbedToken(context.Background(), grant("after@acme.example"))
		must(t, err)
		rb, err := b.frontend.GenerateEmbedToken(context.Background(), grant("after@acme.example"))
		must(t, err)
		if n := f.mintsFor("after@acme.example"); ra.GetTokenId() != rb.GetTokenId() || n != 1 {
			t.Errorf("after recovery: tokens %s and %s, %d mints; want one token", ra.GetTokenId(), rb.GetTokenId(), n)
		}
	})
}
