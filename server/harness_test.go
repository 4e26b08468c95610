package server_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/devconfig"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/server"
)

// The demo fixture's ids (emulator/demo.yaml): the tests run against the
// emulator's built-in world.
const (
	entraTenant   = "c0ffee00-0000-4000-8000-000000000001"
	clientID      = "c0ffee00-0000-4000-8000-0000000000a1"
	clientSecret  = "embedgate-dev-secret"
	acmeWorkspace = "a0000000-0000-4000-8000-000000000001"
	salesReport   = "a1000000-0000-4000-8000-000000000001" // RLS dataset salesDataset
	salesDataset  = "d1000000-0000-4000-8000-000000000001"
	invReport     = "a1000000-0000-4000-8000-000000000002" // dataset without RLS
	invDataset    = "d1000000-0000-4000-8000-000000000002"
	globexReport  = "a2000000-0000-4000-8000-000000000001" // workspace behind profile globexProfile
	globexProfile = "f0000000-0000-4000-8000-000000000001"
	financeReport = "a9000000-0000-4000-8000-000000000001" // workspace the app is no member of
	invoices      = "a1000000-0000-4000-8000-000000000003" // paginated, no dataset
	dashboard     = "b1000000-0000-4000-8000-000000000001" // tiles on salesDataset and invDataset
	revenueTile   = "b1100000-0000-4000-8000-000000000001"
	financeWS     = "a0000000-0000-4000-8000-000000000004" // Acme's second workspace
	budgetReport  = "a4000000-0000-4000-8000-000000000001"
	budgetDataset = "d4000000-0000-4000-8000-000000000001" // RLS roles Customer, Region
	frontend      = "spiffe://embedgate.test/ns/web/sa/frontend"
	batch         = "spiffe://embedgate.test/ns/jobs/sa/batch" // rate limited
	stranger      = "spiffe://embedgate.test/ns/web/sa/stranger"
	console       = "spiffe://embedgate.test/ns/ops/sa/policy-console" // admin: Explain for others
	intranet      = "spiffe://embedgate.test/ns/intranet/sa/portal"    // user owns data
)

// testPolicy grants the frontend three tenants over the demo fixture, a
// batch job one tenant at a low rate, and an intranet portal user owns data.
const testPolicy = `
callers:
  - id: ` + frontend + `
    tenants: [acme, globex, finance, leaky]
  - id: ` + console + `
    admin: true
  - id: ` + batch + `
    tenants: [acme]
    rate_limit:
      per_second: 0.001
      burst: 2
  - id: ` + intranet + `          # user owns data only (user_e2e_test.go)
    user_owns_data:
      entra_tenants: [` + entraTenant + `]
      workspaces: [` + acmeWorkspace + `, ` + financeWS + `]
tenants:
  acme:
    workspace_id: ` + acmeWorkspace + `
    reports: [` + salesReport + `, ` + invReport + `, ` + invoices + `]
    dashboards: ["*"]
    workspaces:
      - id: ` + financeWS + `
        reports: [` + budgetReport + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      dataset_roles:
        ` + budgetDataset + `: [Region]
      without_rls: [` + invReport + `]   # Inventory's model has no RLS on purpose
    allow_create: true
    max_lifetime: 60m
  globex:
    workspace_id: a0000000-0000-4000-8000-000000000002
    profile_id: ` + globexProfile + `
    reports: ["*"]
    allow_edit: true
    max_lifetime: 30m
  finance:
    workspace_id: a0000000-0000-4000-8000-000000000009
    reports: ["*"]
  leaky:       # RLS, on a model republished without its roles
    workspace_id: ` + acmeWorkspace + `
    reports: [` + invReport + `]
    rls:
      roles: [Customer]
  umbrella:
    workspace_id: a0000000-0000-4000-8000-000000000003
    reports: ["*"]
    rls:
      roles: [Tenant]
`

// stack is one running Embedgate (real server, real mTLS listener) against
// one running emulator, with the certificates to call it.
type stack struct {
	emu    *emulator.Server
	emuCfg emulator.Config
	// emuTokens are the Entra tokens of emulators restarted since.
	emuTokens []string
	addr      string
	ca        *devpki.CA
	dir       string
	logs      *testkit.Buffer
	client    embedgatev1.EmbedTokenServiceClient
	stop      func() error // shuts the server down (as SIGTERM does) and returns Run's error
	// metricsURL is http://host:port/metrics and adminURL http://host:port
	// when stackOptions.metrics (the admin listener).
	metricsURL, adminURL string
}

type stackOptions struct {
	secret    string               // the client secret the server reads; "" = the right one
	auditFile bool                 // write the audit stream to audit.jsonl in the stack's folder
	metrics   bool                 // serve the admin listener on a loopback port (stack.adminURL, stack.metricsURL)
	config    string               // more config lines (shutdown_delay, ...)
	tracer    trace.TracerProvider // traces the server (nil: none)
	faults    emulator.Faults      // the emulator's faults from its start
	preflight bool                 // run the preflight at start and on reload (off by default: it calls Power BI)
	now       func() time.Time     // the clock of the emulator and of the gateway (nil: the real one)
	policy    string               // the policy file; "" = testPolicy
}

func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	// The emulator keeps its CA in the stack's folder, so that a restart
	// (restartEmulator) serves the same certificate chain.
	emuCfg := emulator.Config{Logger: logger.With("component", "emulator"), Faults: o.faults, Now: o.now, CertsDir: filepath.Join(dir, "emulator")}
	emu, err := emulator.Start(context.Background(), emuCfg) // outlives the server: shutdown is tested against it
	if err != nil {
		t.Fatal(err)
	}
	ca, err := devpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvPair, err := ca.IssueServer("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	must(t, devconfig.WriteCerts(dir, ca, srvPair))
	secret := o.secret
	if secret == "" {
		secret = clientSecret
	}
	f := folder(dir, emu.URL(), emu.CACertPEM(), secret, "shutdown_grace: 5s\n"+
		delayLine(o.config)+preflightLine(o.preflight)+auditLine(o.auditFile)+metricsLine(o.metrics)+o.config)
	f.Policy = cmp.Or(o.policy, testPolicy)
	must(t, f.Write())
	cfg, err := server.LoadConfig(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	watchForLeaks(logs, secret)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var adminAddr net.Addr
	go func() {
		var pbiOpts []powerbi.Option
		if o.now != nil {
			pbiOpts = append(pbiOpts, powerbi.WithClock(o.now))
		}
		done <- server.Run(ctx, cfg, server.RunOptions{
			Logger:         logger,
			PowerBIOptions: pbiOpts,
			Ready:          func(a net.Addr) { ready <- a },
			AdminReady:     func(a net.Addr) { adminAddr = a }, // called before Ready
			TracerProvider: o.tracer,
		})
	}()
	s := &stack{emu: emu, emuCfg: emuCfg, ca: ca, dir: dir, logs: logs}
	select {
	case a := <-ready:
		s.addr = a.String()
		if adminAddr != nil {
			s.adminURL = "http://" + adminAddr.String()
			s.metricsURL = s.adminURL + "/metrics"
		}
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("server.Run: %v", err)
		}
		s.emu.Close()
		// Every Entra access token the emulators handed out is a secret too.
		watchForLeaks(nil, s.emuTokens...)
		watchForLeaks(nil, s.emu.AccessTokens()...)
		if o.auditFile { // the audit file is scanned for leaks too
			data, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
			must(t, err)
			audit := &testkit.Buffer{}
			audit.Write(data)
			watchForLeaks(audit)
		}
	})
	s.client = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, frontend)))
	return s
}

// folder is the server folder of the tests' world (testPolicy, the demo
// fixture's service principal) in front of the emulator at emuURL.
func folder(dir, emuURL string, emuCA []byte, secret, extra string) devconfig.Folder {
	return devconfig.Folder{Dir: dir, Listen: "127.0.0.1:0", EmulatorURL: emuURL, EmulatorCA: emuCA,
		TenantID: entraTenant, ClientID: clientID, ClientSecret: secret, Policy: testPolicy, Extra: extra}
}

// restartEmulator stops the emulator and starts a new one on the same
// address with the same CA: Power BI restarted, forgetting every token it
// issued (a new signing key).
func (s *stack) restartEmulator(t testing.TB) {
	t.Helper()
	s.emuTokens = append(s.emuTokens, s.emu.AccessTokens()...)
	cfg := s.emuCfg
	cfg.Addr = strings.TrimPrefix(s.emu.URL(), "https://")
	must(t, s.emu.Close())
	var err error
	for range 50 { // the port may take a moment to be free again
		if s.emu, err = emulator.Start(context.Background(), cfg); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("restart the emulator on %s: %v", cfg.Addr, err)
}

// leaks collects every log written and every secret and token handed out
// by the stacks of this test binary (client secrets, embed tokens, the Entra
// access tokens the emulator issued), and what errors told callers;
// TestMain scans the first and the last for the second once all tests have
// run. A soak hands out millions of tokens, mostly the same ones, and
// millions of errors, mostly alike: both are kept once each.
var leaks struct {
	mu      sync.Mutex
	logs    []*testkit.Buffer
	told    map[string]struct{}
	secrets map[string]struct{}
}

func watchForLeaks(logs *testkit.Buffer, secrets ...string) {
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	if logs != nil {
		leaks.logs = append(leaks.logs, logs)
	}
	if leaks.secrets == nil {
		leaks.secrets = map[string]struct{}{}
	}
	for _, s := range secrets {
		if s != "" {
			leaks.secrets[s] = struct{}{}
		}
	}
}

// watchWhatWasTold adds what an error told a caller to the texts scanned.
func watchWhatWasTold(text string) {
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	if leaks.told == nil {
		leaks.told = map[string]struct{}{}
	}
	leaks.told[text] = struct{}{}
}

// leakIndexBytes is the length of the prefix secrets are indexed by: every
// token and secret handed out is longer.
const leakIndexBytes = 16

// leaked reports whether text holds one of the secrets, in time linear in
// its length: every window of leakIndexBytes is looked up among the
// secrets' prefixes; secrets shorter than that are looked for one by one.
func leaked(text string, byPrefix map[string][]string, short []string) bool {
	for i := 0; i+leakIndexBytes <= len(text); i++ {
		for _, s := range byPrefix[text[i:i+leakIndexBytes]] {
			if strings.HasPrefix(text[i:], s) {
				return true
			}
		}
	}
	for _, s := range short {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// captureTokens is a client interceptor that registers every embed token
// the server returns, every user's access token it hands back, and every
// user assertion sent to it; and what every error told the caller (its
// message and details), which the leak scan reads as it reads the logs.
func captureTokens(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(interface{ GetUserAssertion() string }); ok && r.GetUserAssertion() != "" {
		watchForLeaks(nil, r.GetUserAssertion())
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		var told strings.Builder
		st := status.Convert(err)
		fmt.Fprintln(&told, st.Message())
		for _, d := range st.Details() {
			fmt.Fprintln(&told, d)
		}
		watchWhatWasTold(told.String())
	}
	if r, ok := reply.(interface{ GetToken() string }); ok && r.GetToken() != "" {
		watchForLeaks(nil, r.GetToken())
	}
	if r, ok := reply.(interface{ GetAccessToken() string }); ok && r.GetAccessToken() != "" {
		watchForLeaks(nil, r.GetAccessToken())
	}
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	byPrefix := map[string][]string{}
	var short []string
	for s := range leaks.secrets {
		if len(s) < leakIndexBytes {
			short = append(short, s)
			continue
		}
		byPrefix[s[:leakIndexBytes]] = append(byPrefix[s[:leakIndexBytes]], s)
	}
	texts := make([]string, 0, len(leaks.logs)+len(leaks.told))
	for _, l := range leaks.logs {
		texts = append(texts, l.String())
	}
	for text := range leaks.told {
		texts = append(texts, text)
	}
	scanned := 0
	for _, text := range texts {
		scanned += strings.Count(text, "\n")
		if leaked(text, byPrefix, short) {
			fmt.Fprintln(os.Stderr, "FAIL: a token or secret appears in the service's logs or audit records, or in what an error told a caller")
			code = 1
		}
	}
	if code == 0 && len(leaks.logs) > 0 && (scanned == 0 || len(leaks.secrets) == 0) {
		fmt.Fprintln(os.Stderr, "FAIL: the leak scan saw no log lines or no secrets: it would prove nothing")
		code = 1
	}
	os.Exit(code)
}

func preflightLine(on bool) string {
	if on {
		return ""
	}
	return "preflight: false\n"
}

// scrape returns the stack's /metrics page.
func (s *stack) scrape(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(s.metricsURL)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return string(body)
}

func metricsLine(on bool) string {
	if on {
		return "admin_listen: 127.0.0.1:0\n"
	}
	return ""
}

// delayLine keeps stacks from waiting the default shutdown_delay on every
// stop, unless the test's own config lines set one.
func delayLine(config string) string {
	if strings.Contains(config, "shutdown_delay:") {
		return ""
	}
	return "shutdown_delay: 0s\n"
}

func auditLine(on bool) string {
	if on {
		return "audit_file: audit.jsonl\n"
	}
	return ""
}

// clientCert issues a caller certificate from the stack's CA with the given
// URI SANs.
func (s *stack) clientCert(t testing.TB, uris ...string) *tls.Certificate {
	t.Helper()
	c := server.IssueClientCert(t, s.ca, uris...)
	return &c
}

// dial connects with mTLS, presenting cert (nil: no client certificate).
func (s *stack) dial(t testing.TB, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)), grpc.WithUnaryInterceptor(captureTokens))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLeakScanFindsEverySecret: the scan finds a secret wherever it sits,
// long or short, and nothing else.
func TestLeakScanFindsEverySecret(t *testing.T) {
	t.Parallel()
	long, short := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature", "s3cr3t"
	byPrefix := map[string][]string{long[:leakIndexBytes]: {long}}
	for text, want := range map[string]bool{
		long:                                 true,
		`{"msg":"x","token":"` + long + `"}`: true,
		"ends with " + long:                  true,
		"a " + short + " b":                  true,
		long[:len(long)-1]:                   false,
		"nothing here, not even s3cr":        false,
		"":                                   false,
	} {
		if got := leaked(text, byPrefix, []string{short}); got != want {
			t.Errorf("leaked(%q) = %v, want %v", text, got, want)
		}
	}
}
