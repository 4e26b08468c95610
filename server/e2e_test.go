package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// grantedIdentity is what the emulator says a token grants, in the shape
// the tests compare.
type grantedIdentity struct {
	Username   string
	Roles      []string
	CustomData string
	Datasets   []string
}

type granted struct {
	Reports    []string
	Datasets   []string
	Identities []grantedIdentity
	ProfileID  string
}

func lookup(t *testing.T, emu *emulator.Server, tokenID string) granted {
	t.Helper()
	info, ok := emu.LookupToken(tokenID)
	if !ok {
		t.Fatalf("the emulator minted no token %s", tokenID)
	}
	var g granted
	for _, r := range info.Reports {
		g.Reports = append(g.Reports, r.ID)
	}
	for _, d := range info.Datasets {
		g.Datasets = append(g.Datasets, d.ID)
	}
	for _, id := range info.Identities {
		g.Identities = append(g.Identities, grantedIdentity{Username: id.Username, Roles: id.Roles, CustomData: id.CustomData, Datasets: id.Datasets})
	}
	g.ProfileID = info.ProfileID
	return g
}

// TestGenerateEmbedToken drives the real server over real mTLS against the
// emulator over HTTPS, and checks with the emulator what each token grants.
func TestGenerateEmbedToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	otherCA := startStack(t, stackOptions{}) // its CA is not the first stack's

	acme := func(reports ...string) *embedgatev1.GenerateEmbedTokenRequest {
		return &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: reports}
	}
	tests := []struct {
		name        string
		caller      []string // URI SANs of the client certificate; nil = frontend
		noCert      bool
		foreignCert bool
		req         *embedgatev1.GenerateEmbedTokenRequest
		wantCode    codes.Code
		wantReason  string
		wantField   string   // a BadRequest field violation that must be listed
		want        *granted // what the emulator says the token grants
	}{
		{
			name:     "RLS tenant gets its identity in the token",
			req:      acme(salesReport),
			wantCode: codes.OK,
			want: &granted{
				Reports:    []string{salesReport},
				Datasets:   []string{salesDataset},
				Identities: []grantedIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "acme", Datasets: []string{salesDataset}}},
			},
		},
		{
			name:     "dataset without RLS gets no identity; the profile is used",
			req:      &embedgatev1.GenerateEmbedTokenRequest{Tenant: "globex", User: "bob", ReportIds: []string{globexReport}},
			wantCode: codes.OK,
			want:     &granted{Reports: []string{globexReport}, Datasets: []string{"d2000000-0000-4000-8000-000000000001"}, ProfileID: globexProfile},
		},
		{
			name:     "several reports in one token, identity only for the RLS dataset",
			req:      acme(salesReport, invReport),
			wantCode: codes.OK,
			want: &granted{
				Reports:    []string{salesReport, invReport},
				Datasets:   []string{salesDataset, invDataset},
				Identities: []grantedIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "acme", Datasets: []string{salesDataset}}},
			},
		},
		{
			// RLS fails closed: the tenant has RLS, the model enforces
			// none, the policy does not say that is intended. Nothing is
			// minted (checked below at the emulator).
			name:       "RLS tenant on a dataset that enforces no RLS",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "leaky", User: "mallory", ReportIds: []string{invReport}},
			wantCode:   codes.FailedPrecondition,
			wantReason: "RLS_NOT_ENFORCED",
		},
		{
			name:     "no client certificate: the handshake fails",
			noCert:   true,
			req:      acme(salesReport),
			wantCode: codes.Unavailable,
		},
		{
			name:        "certificate from another CA: the handshake fails",
			foreignCert: true,
			req:         acme(salesReport),
			wantCode:    codes.Unavailable,
		},
		{
			name:       "certificate without a SPIFFE ID",
			caller:     []string{},
			req:        acme(salesReport),
			wantCode:   codes.Unauthenticated,
			wantReason: "NO_CALLER_IDENTITY",
		},
		{
			name:       "certificate with two URI SANs",
			caller:     []string{frontend, "spiffe://embedgate.test/ns/admin/sa/root"},
			req:        acme(salesReport),
			wantCode:   codes.Unauthenticated,
			wantReason: "NO_CALLER_IDENTITY",
		},
		{
			// Authenticated (the CA vouches for the certificate) but not
			// authorized (the policy does not know it): PERMISSION_DENIED.
			name:       "caller not in the policy",
			caller:     []string{stranger},
			req:        acme(salesReport),
			wantCode:   codes.PermissionDenied,
			wantReason: "CALLER_NOT_IN_POLICY",
		},
		{
			name:       "tenant the caller may not use",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "umbrella", User: "eve", ReportIds: []string{salesReport}},
			wantCode:   codes.PermissionDenied,
			wantReason: "TENANT_NOT_ALLOWED",
		},
		{
			name:       "tenant that does not exist looks the same",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "nosuch", User: "eve", ReportIds: []string{salesReport}},
			wantCode:   codes.PermissionDenied,
			wantReason: "TENANT_NOT_ALLOWED",
		},
		{
			name:       "another tenant's report",
			req:        acme(globexReport),
			wantCode:   codes.PermissionDenied,
			wantReason: "REPORT_NOT_ALLOWED",
		},
		{
			name:       "edit not granted",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}, AllowEdit: true},
			wantCode:   codes.PermissionDenied,
			wantReason: "EDIT_NOT_ALLOWED",
		},
		{
			name:       "malformed report id",
			req:        acme("not-a-uuid"),
			wantCode:   codes.InvalidArgument,
			wantReason: "INVALID_REQUEST",
			wantField:  "report_ids[0]",
		},
		{
			name:       "whitespace in user and a lifetime too long",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice smith", ReportIds: []string{salesReport}, Lifetime: durationpb.New(48 * time.Hour)},
			wantCode:   codes.InvalidArgument,
			wantReason: "INVALID_REQUEST",
			wantField:  "lifetime",
		},
		{
			name:       "Power BI 404: no such report in the workspace",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "globex", User: "bob", ReportIds: []string{"a2000000-0000-4000-8000-0000000000ff"}},
			wantCode:   codes.NotFound,
			wantReason: "POWERBI_ITEM_NOT_FOUND",
		},
		{
			name:       "Power BI 401: the service principal is no member of the workspace",
			req:        &embedgatev1.GenerateEmbedTokenRequest{Tenant: "finance", User: "carol", ReportIds: []string{financeReport}},
			wantCode:   codes.FailedPrecondition,
			wantReason: "POWERBI_NOT_AUTHORIZED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := s.client
			switch {
			case tt.noCert:
				client = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, nil))
			case tt.foreignCert:
				client = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, otherCA.clientCert(t, frontend)))
			case tt.caller != nil:
				client = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, tt.caller...)))
			}
			resp, err := client.GenerateEmbedToken(context.Background(), tt.req)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			checkDetails(t, err, tt.wantReason, tt.wantField)
			if tt.want == nil {
				return
			}
			if resp.GetToken() == "" || resp.GetTokenId() == "" {
				t.Fatalf("empty token or token id: %v", resp.GetTokenId())
			}
			if !resp.GetRefreshTime().AsTime().Before(resp.GetExpireTime().AsTime()) {
				t.Errorf("refresh_time %v is not before expire_time %v", resp.GetRefreshTime().AsTime(), resp.GetExpireTime().AsTime())
			}
			if len(resp.GetReports()) != len(tt.req.GetReportIds()) {
				t.Fatalf("got %d reports, want %d", len(resp.GetReports()), len(tt.req.GetReportIds()))
			}
			for i, r := range resp.GetReports() {
				if r.GetId() != tt.req.GetReportIds()[i] || r.GetName() == "" || !strings.Contains(r.GetEmbedUrl(), r.GetId()) || r.GetDatasetId() == "" {
					t.Errorf("report %d = %v", i, r)
				}
			}
			sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			if diff := cmp.Diff(*tt.want, lookup(t, s.emu, resp.GetTokenId()), sorted, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the token grants (-want +got):\n%s", diff)
			}
		})
	}
}

// checkDetails checks the ErrorInfo reason and a BadRequest field.
func checkDetails(t *testing.T, err error, wantReason, wantField string) {
	t.Helper()
	if wantReason == "" && wantField == "" {
		return
	}
	var reason string
	var fields []string
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
			if d.GetDomain() != "embedgate" {
				t.Errorf("ErrorInfo domain = %q", d.GetDomain())
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if reason != wantReason {
		t.Errorf("ErrorInfo reason = %q, want %q", reason, wantReason)
	}
	if wantField != "" && !contains(fields, wantField) {
		t.Errorf("BadRequest fields = %v, want %q among them", fields, wantField)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestEntraRejectsSecret: a wrong client secret is the operator's problem;
// the caller gets INTERNAL with a reason it can alert on.
func TestEntraRejectsSecret(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{secret: "not-the-secret"})
	_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}})
	if status.Code(err) != codes.Internal {
		t.Fatalf("code = %v (%v), want Internal", status.Code(err), err)
	}
	checkDetails(t, err, "CREDENTIAL_REJECTED", "")
	if !strings.Contains(s.logs.String(), "7000215") {
		t.Errorf("the logs do not name the AADSTS error 7000215")
	}
	// Loud in health too: readiness on the service fails, liveness does not.
	hc := healthpb.NewHealthClient(s.dial(t, s.clientCert(t)))
	var health *healthpb.HealthCheckResponse
	var healthErr error
	if !testkit.Poll(func() bool {
		health, healthErr = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: embedgatev1.EmbedTokenService_ServiceDesc.ServiceName})
		return healthErr == nil && health.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	}) {
		t.Fatalf("health of the service = %v, %v; want NOT_SERVING", health.GetStatus(), healthErr)
	}
	if resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("overall health = %v, %v; want SERVING", resp.GetStatus(), err)
	}
}

// TestNoEntraCallPerRequest: after the first sign-in, every request is
// served from MSAL's cache, and report metadata from the gateway's cache.
func TestNoEntraCallPerRequest(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
				Tenant: "acme", User: "user" + string(rune('a'+i)), ReportIds: []string{salesReport},
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c := s.emu.Counters()
	if c[emulator.RouteEntraToken] != 1 {
		t.Errorf("Entra token calls = %d for %d requests, want 1", c[emulator.RouteEntraToken], n)
	}
	if c[emulator.RouteGetReport] != 1 || c[emulator.RouteGetDataset] != 1 {
		t.Errorf("metadata calls: reports %d, datasets %d; want 1 each", c[emulator.RouteGetReport], c[emulator.RouteGetDataset])
	}
	if c[emulator.RouteGenerateToken] != n {
		t.Errorf("GenerateToken calls = %d, want %d (one per distinct grant)", c[emulator.RouteGenerateToken], n)
	}
}

// TestHealthAndReflectionWithoutIdentity: operators reach health and
// reflection with any certificate of the CA, SPIFFE ID or not.
func TestHealthAndReflectionWithoutIdentity(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	conn := s.dial(t, s.clientCert(t))
	// The service is SERVING once Entra ID has accepted the credential.
	testkit.Eventually(t, "the service SERVING", func() bool {
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: embedgatev1.EmbedTokenService_ServiceDesc.ServiceName})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	if services := listServices(t, conn); !contains(services, embedgatev1.EmbedTokenService_ServiceDesc.ServiceName) {
		t.Errorf("reflection lists %v", services)
	}
}

func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// TestGracefulShutdown: a call in flight when shutdown starts still
// completes; afterwards the listener refuses new calls.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.emu.SetFaults(emulator.Faults{PowerBILatency: 300 * time.Millisecond})
	result := make(chan error, 1)
	go func() {
		_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}})
		result <- err
	}()
	// Wait until the call has reached Power BI, then shut down.
	testkit.Eventually(t, "the call to reach the emulator", func() bool { return s.emu.Counters()[emulator.RouteGetReport] > 0 })
	if err := s.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if err := <-result; err != nil {
		t.Errorf("the in-flight call failed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.client.GenerateEmbedToken(ctx, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}); status.Code(err) != codes.Unavailable {
		t.Errorf("a call after shutdown: %v, want Unavailable", err)
	}
}

func durationpbHours(h int) *durationpb.Duration {
	return durationpb.New(time.Duration(h) * time.Hour)
}

// TestSameGrantReusesToken: one GenerateToken per distinct grant per
// refresh window; identical concurrent requests share one Power BI call.
func TestSameGrantReusesToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}
	const n = 6
	var wg sync.WaitGroup
	resps := make([]*embedgatev1.GenerateEmbedTokenResponse, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.client.GenerateEmbedToken(context.Background(), req)
			if err != nil {
				t.Error(err)
			}
			resps[i] = resp
		}()
	}
	wg.Wait()
	again, err := s.client.GenerateEmbedToken(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range append(resps, again) {
		if r.GetTokenId() != again.GetTokenId() || !r.GetRefreshTime().AsTime().Equal(again.GetRefreshTime().AsTime()) {
			t.Errorf("response %d: token %s refresh %v; want the one token %s", i, r.GetTokenId(), r.GetRefreshTime().AsTime(), again.GetTokenId())
		}
	}
	if got := s.emu.Counters()[emulator.RouteGenerateToken]; got != 1 {
		t.Errorf("GenerateToken calls = %d for %d identical requests, want 1", got, n+1)
	}
	if !strings.Contains(s.logs.String(), `"token_cached":true`) {
		t.Error("the audit does not say a token was served from the cache")
	}
	other, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "bob", ReportIds: []string{salesReport}})
	if err != nil || other.GetTokenId() == again.GetTokenId() {
		t.Errorf("another user got token %s (%v)", other.GetTokenId(), err)
	}
}

// TestUpstreamFaults: what callers see when Entra ID or Power BI misbehave,
// with the failures injected by the emulator from its start.
func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     emulator.Faults
		timeout    time.Duration
		wantCode   codes.Code
		wantReason string
		wantRetry  time.Duration
		// once answers the first call of each route with it (the faults'
		// every-Nth counts calls of all routes, which the readiness
		// check's own calls would shift).
		once *emulator.Answer
	}{
		{name: "Power BI throttles", faults: emulator.Faults{ThrottleEvery: 1, RetryAfterSeconds: 7}, wantCode: codes.ResourceExhausted, wantReason: "POWERBI_THROTTLED", wantRetry: 7 * time.Second},
		{name: "Power BI answers 503", faults: emulator.Faults{ServerErrorEvery: 1}, wantCode: codes.Unavailable, wantReason: "UPSTREAM_UNAVAILABLE"},
		{name: "Power BI drops connections", faults: emulator.Faults{DropEvery: 1}, wantCode: codes.Unavailable, wantReason: "UPSTREAM_UNAVAILABLE"},
		{name: "Entra ID answers 503", faults: emulator.Faults{EntraServerErrorEvery: 1}, wantCode: codes.Unavailable, wantReason: "UPSTREAM_UNAVAILABLE"},
		{name: "the embed-trial quota is used up", faults: emulator.Faults{TrialExhausted: true}, wantCode: codes.ResourceExhausted, wantReason: "POWERBI_QUOTA_EXCEEDED"},
		{name: "Power BI slower than the caller's deadline", faults: emulator.Faults{PowerBILatency: 1500 * time.Millisecond}, timeout: 300 * time.Millisecond, wantCode: codes.DeadlineExceeded},
		{name: "one 503 is retried away", once: &emulator.Answer{Status: 503, Times: 1}, wantCode: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, stackOptions{faults: tt.faults})
			if tt.once != nil {
				for _, route := range []string{emulator.RouteGetReport, emulator.RouteGetDataset, emulator.RouteGenerateToken} {
					s.emu.SetAnswer(route, *tt.once)
				}
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := s.client.GenerateEmbedToken(ctx, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			checkDetails(t, err, tt.wantReason, "")
			if tt.once != nil {
				if n := s.emu.Counters()[emulator.RouteGenerateToken]; n != 2 {
					t.Errorf("GenerateToken called %d times, want 2 (the 503, then the retry)", n)
				}
			}
			if tt.wantRetry > 0 {
				var retry *errdetails.RetryInfo
				for _, d := range status.Convert(err).Details() {
					if r, ok := d.(*errdetails.RetryInfo); ok {
						retry = r
					}
				}
				if retry.GetRetryDelay().AsDuration() != tt.wantRetry {
					t.Errorf("RetryInfo = %v, want %v", retry.GetRetryDelay().AsDuration(), tt.wantRetry)
				}
			}
		})
	}
}

// TestShortEntraToken: an embed token never outlives the Entra token that
// minted it, and expire_time is Power BI's.
func TestShortEntraToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{faults: emulator.Faults{TokenLifetime: 10 * time.Minute}})
	resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}, Lifetime: durationpbHours(1)})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.emu.LookupToken(resp.GetTokenId())
	if !resp.GetExpireTime().AsTime().Equal(info.Expiration) {
		t.Errorf("expire_time %v, Power BI said %v", resp.GetExpireTime().AsTime(), info.Expiration)
	}
	if left := time.Until(resp.GetExpireTime().AsTime()); left > 10*time.Minute {
		t.Errorf("the embed token lives %v, longer than its Entra token", left)
	}
	if r := resp.GetRefreshTime().AsTime(); !r.Before(resp.GetExpireTime().AsTime()) {
		t.Errorf("refresh_time %v is not before expire_time", r)
	}
}

// TestRLSFailsClosed: an RLS tenant is refused a report whose model enforces
// no RLS, and Power BI is never asked to mint (checked at the emulator); the
// same report is embedded without an identity for a tenant whose policy lists
// it under rls.without_rls.
func TestRLSFailsClosed(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "leaky", User: "mallory", ReportIds: []string{invReport}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), invDataset) {
		t.Fatalf("leaky: %v, want FAILED_PRECONDITION naming dataset %s", err, invDataset)
	}
	checkDetails(t, err, "RLS_NOT_ENFORCED", "")
	if n := s.emu.Counters()[emulator.RouteGenerateToken]; n != 0 {
		t.Errorf("GenerateToken calls = %d: something was minted", n)
	}
	resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{invReport}})
	if err != nil {
		t.Fatal(err)
	}
	if g := lookup(t, s.emu, resp.GetTokenId()); len(g.Identities) != 0 {
		t.Errorf("acme's token for a model without RLS carries identities %v", g.Identities)
	}
}
