package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
	"github.com/embedgate/embedgate/powerbi"
)

const testCaller = "spiffe://embedgate.test/ns/web/sa/frontend"

// fixedPolicy is a PolicySource that never changes.
type fixedPolicy struct{ p *authz.Policy }

func (f fixedPolicy) Current() *authz.Policy { return f.p }

// issuerFunc is a Gateway whose tokens come from a function; it plans
// nothing, and its tokens open no dataset.
type issuerFunc func(context.Context, powerbi.TokenRequest) (*powerbi.EmbedToken, error)

func (f issuerFunc) Models(context.Context, powerbi.TokenRequest) ([]powerbi.Model, error) {
	return nil, nil
}

func (f issuerFunc) Issue(ctx context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error) {
	return f(ctx, r)
}

func (f issuerFunc) Plan(context.Context, powerbi.TokenRequest) (*powerbi.Plan, error) {
	return nil, powerbi.ErrUnsupported
}

// testServer is New's server on a real listener, with the CA that signs
// its certificates.
type testServer struct {
	addr string
	ca   *devpki.CA
	logs *testkit.Buffer
	cfg  *Config
	srv  *Server
	stop func() // shuts down as SIGTERM does; idempotent
}

// startServer runs New's server on a real mTLS listener with the given
// gateway, and returns a client for testCaller and the log output.
func startServer(t *testing.T, gateway Gateway) (embedgatev1.EmbedTokenServiceClient, *testkit.Buffer) {
	t.Helper()
	ts := newTestServer(t, gateway, nil)
	return ts.dialTLS(t, testCaller), ts.logs
}

// newTestServer starts a server on a real listener. Its config has mTLS
// with the test CA; tweak, if set, changes the config first (clearing TLS
// makes it plaintext, for mesh mode behind a plaintext sidecar hop).
func newTestServer(t *testing.T, gateway Gateway, tweak func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	srvKP, err := ca.IssueServer("localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		ShutdownGrace: DefaultShutdownGrace,
		TLS: TLSConfig{
			CertFile: filepath.Join(dir, "s.pem"), KeyFile: filepath.Join(dir, "s-key.pem"),
			ClientCAFile: filepath.Join(dir, "ca.pem"),
		},
	}
	if err := srvKP.WriteFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.TLS.ClientCAFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	policy := acmePolicy(t, "")
	logs := &testkit.Buffer{}
	srv, err := New(cfg, Options{
		Policy:  fixedPolicy{policy},
		Gateway: gateway,
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &testServer{addr: lis.Addr().String(), ca: ca, logs: logs, cfg: cfg, srv: srv, stop: stop}
}

// acmePolicy is a policy that lets testCaller embed any report of tenant
// acme's workspace; acme ends with the lines of more (indented under it).
func acmePolicy(t testing.TB, more string) *authz.Policy {
	t.Helper()
	p, err := authz.Parse([]byte(`
callers:
  - id: ` + testCaller + `
    tenants: [acme]
tenants:
  acme:
    workspace_id: a0000000-0000-4000-8000-000000000001
    reports: ["*"]
` + more))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// IssueClientCert issues a caller certificate from ca with the given URI
// SANs. Exported (test-only) so the package's external tests share it.
func IssueClientCert(t testing.TB, ca *devpki.CA, uris ...string) tls.Certificate {
	t.Helper()
	kp, err := ca.IssueClient(uris...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kp.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// dialTLS connects with a client certificate whose URI SANs are uris.
func (ts *testServer) dialTLS(t *testing.T, uris ...string) embedgatev1.EmbedTokenServiceClient {
	t.Helper()
	cert := IssueClientCert(t, ts.ca, uris...)
	return ts.dial(t, credentials.NewTLS(&tls.Config{
		RootCAs: ts.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}))
}

func (ts *testServer) dial(t *testing.T, creds credentials.TransportCredentials) embedgatev1.EmbedTokenServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return embedgatev1.NewEmbedTokenServiceClient(conn)
}

var acmeRequest = &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{"a1000000-0000-4000-8000-000000000001"}}

// TestPanicBecomesInternal: a panic never reaches the caller as a stack.
func TestPanicBecomesInternal(t *testing.T) {
	t.Parallel()
	client, logs := startServer(t, issuerFunc(func(context.Context, powerbi.TokenRequest) (*powerbi.EmbedToken, error) {
		panic("boom: secret internals")
	}))
	_, err := client.GenerateEmbedToken(context.Background(), acmeRequest)
	if status.Code(err) != codes.Internal {
		t.Fatalf("code = %v, want Internal", status.Code(err))
	}
	if msg := status.Convert(err).Message(); strings.Contains(msg, "boom") || strings.Contains(msg, "goroutine") {
		t.Errorf("the caller sees the panic: %q", msg)
	}
	if !strings.Contains(logs.String(), "panic recovered") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the log lacks the panic and its stack")
	}
}

// TestOneLogRecordPerCall: each call leaves exactly one "grpc call" record
// with the fields operators search by, and no token.
func TestOneLogRecordPerCall(t *testing.T) {
	t.Parallel()
	const token = "H4sI-the-embed-token-never-logged"
	client, logs := startServer(t, issuerFunc(func(_ context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error) {
		return &powerbi.EmbedToken{Token: token, TokenID: "tok-1", RequestID: "pbi-req-1",
			Items: []powerbi.Embedded{{Kind: powerbi.KindReport, ID: r.Items[0].ID, Name: "Sales", EmbedURL: "https://app.powerbi.com/reportEmbed", DatasetID: "d"}}}, nil
	}))
	if _, err := client.GenerateEmbedToken(context.Background(), acmeRequest); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{"bad"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "grpc call" {
			records = append(records, rec)
		}
	}
	if len(records) != 2 {
		t.Fatalf("got %d call records, want 2", len(records))
	}
	// A request that fails validation leaves its unvalidated fields out.
	if _, ok := records[1]["tenant"]; ok {
		t.Errorf("the invalid request's record holds its tenant: %v", records[1])
	}
	for i, want := range []map[string]any{
		{"caller": testCaller, "tenant": "acme", "code": "OK", "token_id": "tok-1", "pbi_request_id": "pbi-req-1", "method": "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"},
		{"caller": testCaller, "code": "InvalidArgument", "method": "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"},
	} {
		for k, v := range want {
			if records[i][k] != v {
				t.Errorf("record %d: %s = %v, want %v", i, k, records[i][k], v)
			}
		}
		if d, ok := records[i]["duration"].(string); !ok || !strings.HasSuffix(d, "s") {
			t.Errorf("record %d: duration = %v, want a duration with its unit", i, records[i]["duration"])
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the token reached the logs")
	}
}

// TestShutdownHealth: shutting down turns health NOT_SERVING, so load
// balancers stop sending before the listener closes.
func TestShutdownHealth(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, minted, nil)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := ts.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if got := check(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before shutdown: %v", got)
	}
	ts.stop()
	if got := check(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after shutdown: %v, want NOT_SERVING", got)
	}
}

// TestTrustDomain: with tls.trust_domain set, a certificate of the same CA
// but another trust domain has no identity here.
func TestTrustDomain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, minted, func(c *Config) { c.TLS.TrustDomain = "embedgate.test" })
	if _, err := ts.dialTLS(t, testCaller).GenerateEmbedToken(context.Background(), acmeRequest); err != nil {
		t.Errorf("a caller of the trust domain: %v", err)
	}
	_, err := ts.dialTLS(t, "spiffe://evil.test/ns/web/sa/frontend").GenerateEmbedToken(context.Background(), acmeRequest)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("a caller of another trust domain: %v, want Unauthenticated", err)
	}
}

// FuzzRequestValidation: whatever a caller sends, validation never panics,
// and a refusal is INVALID_ARGUMENT naming at least one violation.
func FuzzRequestValidation(f *testing.F) {
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("acme", "alice@acme.example", "a1000000-0000-4000-8000-000000000001", int64(3600))
	f.Add("", " ", "not-a-uuid", int64(-1))
	f.Add("ACME", "a\tb", "A1000000-0000-4000-8000-00000000000G", int64(1<<40))
	f.Fuzz(func(t *testing.T, tenant, user, report string, secs int64) {
		req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: tenant, User: user, ReportIds: []string{report}, Lifetime: durationpb.New(time.Duration(secs) * time.Second)}
		err := v.Validate(req)
		if err == nil {
			return
		}
		st := errorStatus(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("code %v for %v", st.Code(), err)
		}
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
				return
			}
		}
		t.Fatalf("no field violation listed for %v", err)
	})
}
