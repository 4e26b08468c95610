package embedgateclient_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/clients/go/embedgateclient"
	"github.com/embedgate/embedgate/clients/internal/devserver"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

func TestMain(m *testing.M) { devserver.Main(m) }

// dial connects to s as the caller whose files are name.pem and
// name-key.pem in the dev folder ("caller" is the dev caller).
func dial(t *testing.T, s *devserver.Server, name string, opts ...grpc.DialOption) *embedgateclient.Client {
	t.Helper()
	creds, err := embedgateclient.FileCredentials(embedgateclient.Files{
		CA:         s.File("ca.pem"),
		Cert:       s.File(name + ".pem"),
		Key:        s.File(name + "-key.pem"),
		ServerName: devserver.ServerName,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := embedgateclient.Dial(s.Addr, creds, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func salesRequest() *embedgatev1.GenerateEmbedTokenRequest {
	return &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{devserver.SalesReport}}
}

// checkSalesToken checks a token for salesRequest, and asks the emulator
// what it grants: the report, with acme's RLS identity for alice.
func checkSalesToken(t *testing.T, s *devserver.Server, resp *embedgatev1.GenerateEmbedTokenResponse) {
	t.Helper()
	if resp.GetToken() == "" || resp.GetTokenId() == "" {
		t.Fatalf("token set %v, token_id %q: want both", resp.GetToken() != "", resp.GetTokenId())
	}
	if !resp.GetRefreshTime().AsTime().Before(resp.GetExpireTime().AsTime()) {
		t.Errorf("refresh_time %v is not before expire_time %v", resp.GetRefreshTime().AsTime(), resp.GetExpireTime().AsTime())
	}
	if r := resp.GetReports(); len(r) != 1 || r[0].GetId() != devserver.SalesReport || r[0].GetDatasetId() != devserver.SalesDataset || r[0].GetEmbedUrl() == "" {
		t.Errorf("reports = %v, want %s on %s with an embed URL", r, devserver.SalesReport, devserver.SalesDataset)
	}
	g, err := s.Lookup(ctx(t), resp.GetTokenId())
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Identities) != 1 || g.Identities[0].Username != "alice@acme.example" || !cmp.Equal(g.Identities[0].Roles, []string{"Customer"}) || g.Identities[0].CustomData != "acme" {
		t.Errorf("the token's identities = %+v, want alice@acme.example with role Customer and custom data acme", g.Identities)
	}
}

func TestGenerateEmbedToken(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	resp, err := dial(t, s, "caller").GenerateEmbedToken(ctx(t), salesRequest())
	if err != nil {
		t.Fatal(err)
	}
	checkSalesToken(t, s, resp)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	caller, stranger, limited := dial(t, s, "caller"), dial(t, s, "stranger"), dial(t, s, "limited")

	// The rate-limited caller's first call spends its only token.
	if _, err := limited.GenerateEmbedToken(ctx(t), salesRequest()); err != nil {
		t.Fatalf("the rate-limited caller's first call: %v", err)
	}

	tests := []struct {
		name       string
		client     *embedgateclient.Client
		req        *embedgatev1.GenerateEmbedTokenRequest
		wantCode   codes.Code
		wantReason embedgatev1.Reason
		wantAction embedgateclient.Action
		wantFields []string // FieldViolations' fields
		wantRetry  bool     // IsRetryable, and RetryAfter > 0
	}{
		{
			name:       "a report that is not the tenant's",
			client:     caller,
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{devserver.ForeignReport}},
			wantCode:   codes.PermissionDenied,
			wantReason: embedgatev1.Reason_REPORT_NOT_ALLOWED,
			wantAction: embedgateclient.ActionFixRequest,
		},
		{
			name:       "a malformed report id",
			client:     caller,
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{"nope"}},
			wantCode:   codes.InvalidArgument,
			wantReason: embedgatev1.Reason_INVALID_REQUEST,
			wantAction: embedgateclient.ActionFixRequest,
			wantFields: []string{"report_ids[0]"},
		},
		{
			name:       "a caller the policy does not name",
			client:     stranger,
			req:        salesRequest(),
			wantCode:   codes.PermissionDenied,
			wantReason: embedgatev1.Reason_CALLER_NOT_IN_POLICY,
			wantAction: embedgateclient.ActionReport,
		},
		{
			name:       "a caller over its rate limit",
			client:     limited,
			req:        salesRequest(),
			wantCode:   codes.ResourceExhausted,
			wantReason: embedgatev1.Reason_CALLER_RATE_LIMITED,
			wantAction: embedgateclient.ActionRetry,
			wantRetry:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.GenerateEmbedToken(ctx(t), tc.req)
			d := embedgateclient.DetailsOf(err)
			if d == nil {
				t.Fatalf("err = %v, want a gRPC status", err)
			}
			if d.Code != tc.wantCode || d.Reason != tc.wantReason || d.ErrorInfo.GetDomain() != embedgateclient.Domain || d.Message == "" {
				t.Errorf("code %v, reason %v, domain %q, message %q: want %v, %v, %q and a message", d.Code, d.Reason, d.ErrorInfo.GetDomain(), d.Message, tc.wantCode, tc.wantReason, embedgateclient.Domain)
			}
			if got := embedgateclient.ReasonOf(err); got != tc.wantReason {
				t.Errorf("ReasonOf = %v, want %v", got, tc.wantReason)
			}
			if got := embedgateclient.ActionOf(d.Reason); got != tc.wantAction {
				t.Errorf("ActionOf = %v, want %v", got, tc.wantAction)
			}
			var fields []string
			for _, v := range embedgateclient.FieldViolations(err) {
				fields = append(fields, v.GetField())
				if v.GetDescription() == "" {
					t.Errorf("field violation %q has no description", v.GetField())
				}
			}
			if !cmp.Equal(fields, tc.wantFields) {
				t.Errorf("FieldViolations fields = %q, want %q", fields, tc.wantFields)
			}
			delay, ok := embedgateclient.RetryAfter(err)
			if got := embedgateclient.IsRetryable(err); got != tc.wantRetry || ok != tc.wantRetry || (ok && delay <= 0) {
				t.Errorf("IsRetryable = %v, RetryAfter = %v, %v: want retryable %v with a positive delay", got, delay, ok, tc.wantRetry)
			}
		})
	}
}

// TestIsRetryableWithoutReason: a failed connection has no ErrorInfo and is
// worth retrying; a canceled call is not.
func TestIsRetryableWithoutReason(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	c := dial(t, s, "caller")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GenerateEmbedToken(canceled, salesRequest())
	if embedgateclient.IsRetryable(err) || embedgateclient.ReasonOf(err) != embedgatev1.Reason_REASON_UNSPECIFIED {
		t.Errorf("canceled call %v: IsRetryable %v, reason %v; want false, REASON_UNSPECIFIED", err, embedgateclient.IsRetryable(err), embedgateclient.ReasonOf(err))
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	creds, err := embedgateclient.FileCredentials(embedgateclient.Files{CA: s.File("ca.pem"), Cert: s.File("caller.pem"), Key: s.File("caller-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	down, err := embedgateclient.Dial(addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	_, err = down.GenerateEmbedToken(ctx(t), salesRequest())
	if d := embedgateclient.DetailsOf(err); d == nil || d.Code != codes.Unavailable || !embedgateclient.IsRetryable(err) {
		t.Errorf("call to a closed port: %v; want UNAVAILABLE and retryable", err)
	}
}

// TestEveryReasonHasAnAction: a reason added to the proto must be sorted
// into retry / fix the request / report here too.
func TestEveryReasonHasAnAction(t *testing.T) {
	t.Parallel()
	seen := map[embedgateclient.Action]bool{}
	for n, name := range embedgatev1.Reason_name {
		r := embedgatev1.Reason(n)
		if r == embedgatev1.Reason_REASON_UNSPECIFIED {
			continue
		}
		a := embedgateclient.ActionOf(r)
		seen[a] = true
		if a == embedgateclient.ActionReport && !reportReasons[r] {
			t.Errorf("%s has no action of its own (ActionReport by default): add it to reasons.go", name)
		}
	}
	if len(seen) != 3 {
		t.Errorf("actions in use: %v, want all three", seen)
	}
}

// reportReasons are the reasons whose action is ActionReport on purpose.
var reportReasons = map[embedgatev1.Reason]bool{
	embedgatev1.Reason_CALLER_NOT_IN_POLICY:          true,
	embedgatev1.Reason_TENANT_NOT_ALLOWED:            true,
	embedgatev1.Reason_RLS_IDENTITY_MISMATCH:         true,
	embedgatev1.Reason_POWERBI_REJECTED_REQUEST:      true,
	embedgatev1.Reason_POWERBI_NOT_AUTHORIZED:        true,
	embedgatev1.Reason_POWERBI_QUOTA_EXCEEDED:        true,
	embedgatev1.Reason_CREDENTIAL_REJECTED:           true,
	embedgatev1.Reason_INTERNAL:                      true,
	embedgatev1.Reason_RLS_NOT_ENFORCED:              true,
	embedgatev1.Reason_POWERBI_FORBIDDEN:             true,
	embedgatev1.Reason_POWERBI_PRINCIPAL_NOT_ALLOWED: true,
	embedgatev1.Reason_DATASET_NOT_ALLOWED:           true,
	embedgatev1.Reason_IDENTITY_KIND_MISMATCH:        true,
	embedgatev1.Reason_SSO_NOT_APPLICABLE:            true,
	embedgatev1.Reason_USER_EMBEDDING_NOT_ALLOWED:    true,
}

// gatedCounter counts GenerateEmbedToken calls, and holds each until open
// is closed.
type gatedCounter struct {
	calls atomic.Int32
	open  chan struct{}
}

func (g *gatedCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	g.calls.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func TestTokenSource(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	gate := &gatedCounter{open: make(chan struct{})}
	c := dial(t, s, "caller", grpc.WithUnaryInterceptor(gate.intercept))
	tokens := c.ReportTokens(salesRequest())
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	embedgateclient.SetClock(tokens, func() time.Time { return *clock.Load() })

	// N concurrent askers, one call: hold the call until all N wait for it.
	const n = 16
	waiting := make(chan struct{}, n)
	embedgateclient.OnWait(tokens, func() { waiting <- struct{}{} })
	got := make([]*embedgatev1.GenerateEmbedTokenResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = tokens.Token(ctx(t))
		}()
	}
	for range n {
		select {
		case <-waiting:
		case <-time.After(20 * time.Second):
			t.Fatal("the askers did not all wait for the call in flight")
		}
	}
	close(gate.open)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("asker %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("asker %d got token %s, asker 0 %s: want the same", i, got[i].GetTokenId(), got[0].GetTokenId())
		}
	}
	if calls := gate.calls.Load(); calls != 1 {
		t.Fatalf("%d concurrent askers made %d calls, want 1", n, calls)
	}
	checkSalesToken(t, s, got[0])

	// Until refresh_time the same token comes back without a call.
	refresh := got[0].GetRefreshTime().AsTime()
	before := refresh.Add(-time.Second)
	clock.Store(&before)
	if again, err := tokens.Token(ctx(t)); err != nil || again != got[0] || gate.calls.Load() != 1 {
		t.Fatalf("before refresh_time: %v, same token %v, %d calls; want the cached token and 1 call", err, again == got[0], gate.calls.Load())
	}
	// From refresh_time on, the next asker makes a new call.
	clock.Store(&refresh)
	fresh, err := tokens.Token(ctx(t))
	if err != nil || fresh == got[0] || gate.calls.Load() != 2 {
		t.Fatalf("at refresh_time: %v, new response %v, %d calls; want a new call (2 in all)", err, fresh != got[0], gate.calls.Load())
	}
}

// TestTokenSourceErrors: a failed call reaches its askers and is not cached;
// an asker that gives up does not fail the call for the others.
func TestTokenSourceErrors(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	gate := &gatedCounter{open: make(chan struct{})}
	c := dial(t, s, "caller", grpc.WithUnaryInterceptor(gate.intercept))
	close(gate.open)

	bad := c.ReportTokens(&embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{devserver.ForeignReport}})
	for i := 1; i <= 2; i++ {
		if _, err := bad.Token(ctx(t)); embedgateclient.ReasonOf(err) != embedgatev1.Reason_REPORT_NOT_ALLOWED {
			t.Fatalf("ask %d: %v, want REPORT_NOT_ALLOWED", i, err)
		}
		if int(gate.calls.Load()) != i {
			t.Fatalf("after %d asks: %d calls, want %d (errors are not cached)", i, gate.calls.Load(), i)
		}
	}

	held := &gatedCounter{open: make(chan struct{})}
	c2 := dial(t, s, "caller", grpc.WithUnaryInterceptor(held.intercept))
	tokens := c2.ReportTokens(salesRequest())
	waiting := make(chan struct{}, 2)
	embedgateclient.OnWait(tokens, func() { waiting <- struct{}{} })
	impatient, giveUp := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() { _, err := tokens.Token(impatient); firstErr <- err }()
	<-waiting
	second := make(chan error, 1)
	go func() { _, err := tokens.Token(ctx(t)); second <- err }()
	<-waiting
	giveUp()
	if err := <-firstErr; err != context.Canceled {
		t.Fatalf("the asker that gave up got %v, want context.Canceled", err)
	}
	close(held.open)
	if err := <-second; err != nil {
		t.Fatalf("the other asker got %v, want the token", err)
	}
}

// fakeWorkloadAPI serves one X.509-SVID and its bundle over the SPIFFE
// Workload API, as a SPIRE agent does, on a unix socket.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	svid *workload.X509SVID
}

func (f *fakeWorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream workload.SpiffeWorkloadAPI_FetchX509SVIDServer) error {
	if md, _ := metadata.FromIncomingContext(stream.Context()); len(md.Get("workload.spiffe.io")) != 1 {
		return status.Error(codes.InvalidArgument, "security header missing")
	}
	if err := stream.Send(&workload.X509SVIDResponse{Svids: []*workload.X509SVID{f.svid}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func TestSPIFFE(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	serverID := spiffeid.RequireFromString(s.ServerID) // dev mode's server certificate is an X.509-SVID

	td := spiffeid.RequireTrustDomainFromString("embedgate.dev")
	svid, err := x509svid.Load(s.File("caller.pem"), s.File("caller-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := x509bundle.Load(td, s.File("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("static sources", func(t *testing.T) {
		c, err := embedgateclient.Dial(s.Addr, embedgateclient.SPIFFECredentials(svid, bundle, tlsconfig.AuthorizeID(serverID)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := c.GenerateEmbedToken(ctx(t), salesRequest())
		if err != nil {
			t.Fatal(err)
		}
		checkSalesToken(t, s, resp)
	})

	t.Run("a server with another SPIFFE ID is refused", func(t *testing.T) {
		other := spiffeid.RequireFromString("spiffe://embedgate.dev/ns/other/sa/impostor")
		c, err := embedgateclient.Dial(s.Addr, embedgateclient.SPIFFECredentials(svid, bundle, tlsconfig.AuthorizeID(other)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.GenerateEmbedToken(ctx(t), salesRequest()); embedgateclient.DetailsOf(err).Code != codes.Unavailable {
			t.Fatalf("err = %v, want UNAVAILABLE (the handshake fails)", err)
		}
	})

	t.Run("Workload API", func(t *testing.T) {
		chain, keyDER, err := svid.MarshalRaw()
		if err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "agent.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		agent := grpc.NewServer()
		workload.RegisterSpiffeWorkloadAPIServer(agent, &fakeWorkloadAPI{svid: &workload.X509SVID{
			SpiffeId: svid.ID.String(), X509Svid: chain, X509SvidKey: keyDER, Bundle: bundle.X509Authorities()[0].Raw,
		}})
		go agent.Serve(l)
		defer agent.Stop()

		c, err := embedgateclient.DialWorkloadAPI(ctx(t), s.Addr, tlsconfig.AuthorizeID(serverID),
			workloadapi.WithClientOptions(workloadapi.WithAddr("unix://"+sock)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.GenerateEmbedToken(ctx(t), salesRequest())
		if err != nil {
			t.Fatal(err)
		}
		checkSalesToken(t, s, resp)
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("no Workload API", func(t *testing.T) {
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")
		if _, err := embedgateclient.DialWorkloadAPI(short, s.Addr, tlsconfig.AuthorizeID(serverID),
			workloadapi.WithClientOptions(workloadapi.WithAddr(missing))); err == nil {
			t.Fatal("DialWorkloadAPI without an agent succeeded")
		}
	})
}

// TestFileCredentialsRotation: a certificate rotated on disk is used from
// the next connection on, without new credentials.
func TestFileCredentialsRotation(t *testing.T) {
	t.Parallel()
	s := devserver.Start(t)
	dir := t.TempDir()
	install := func(name string) {
		for _, suffix := range []string{".pem", "-key.pem"} {
			b, err := os.ReadFile(s.File(name + suffix))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "svid"+suffix), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install("stranger")
	creds, err := embedgateclient.FileCredentials(embedgateclient.Files{
		CA: s.File("ca.pem"), Cert: filepath.Join(dir, "svid.pem"), Key: filepath.Join(dir, "svid-key.pem"), ServerName: devserver.ServerName,
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func() error {
		c, err := embedgateclient.Dial(s.Addr, creds)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.GenerateEmbedToken(ctx(t), salesRequest())
		return err
	}
	if err := call(); embedgateclient.ReasonOf(err) != embedgatev1.Reason_CALLER_NOT_IN_POLICY {
		t.Fatalf("as the stranger: %v, want CALLER_NOT_IN_POLICY", err)
	}
	install("caller")
	if err := call(); err != nil {
		t.Fatalf("after rotating to the dev caller's certificate: %v", err)
	}
}
