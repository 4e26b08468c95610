package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestTenantModel covers the shapes real tenants have: several workspaces,
// per-dataset roles, paginated reports, create rights, dashboards and
// tiles; each token checked with the emulator.
func TestTenantModel(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	customer := func(datasets ...string) grantedIdentity {
		return grantedIdentity{Username: "alice", Roles: []string{"Customer"}, CustomData: "acme", Datasets: datasets}
	}
	tests := []struct {
		name       string
		reports    *embedgatev1.GenerateEmbedTokenRequest
		dashboard  *embedgatev1.GenerateDashboardEmbedTokenRequest
		wantCode   codes.Code
		wantReason string
		want       *granted
		wantKind   emulator.TokenKind
		wantTarget []string
	}{
		{
			name:     "reports from two workspaces in one token, roles per dataset",
			reports:  &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport, budgetReport}},
			wantCode: codes.OK,
			wantKind: emulator.KindV2,
			want: &granted{
				Reports:  []string{salesReport, budgetReport},
				Datasets: []string{salesDataset, budgetDataset},
				Identities: []grantedIdentity{
					customer(salesDataset),
					{Username: "alice", Roles: []string{"Region"}, CustomData: "acme", Datasets: []string{budgetDataset}},
				},
			},
		},
		{
			name:       "create rights where granted: the tenant's workspace is the target",
			reports:    &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{invReport}, AllowCreate: true},
			wantCode:   codes.OK,
			wantKind:   emulator.KindV2,
			want:       &granted{Reports: []string{invReport}, Datasets: []string{invDataset}},
			wantTarget: []string{acmeWorkspace},
		},
		{
			name:       "create rights where not granted",
			reports:    &embedgatev1.GenerateEmbedTokenRequest{Tenant: "globex", User: "bob", ReportIds: []string{globexReport}, AllowCreate: true},
			wantCode:   codes.PermissionDenied,
			wantReason: "CREATE_NOT_ALLOWED",
		},
		{
			name:     "a paginated report alone goes by the V1 report route",
			reports:  &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{invoices}},
			wantCode: codes.OK,
			wantKind: emulator.KindReport,
			want:     &granted{Reports: []string{invoices}, Identities: []grantedIdentity{{Username: "alice", Roles: []string{"Customer"}, CustomData: "acme"}}},
		},
		{
			// As a report with a paginated visual needs its paginated report.
			name:     "a paginated report with others goes in their V2 token, its identity naming it",
			reports:  &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{invoices, salesReport}},
			wantCode: codes.OK,
			wantKind: emulator.KindV2,
			want: &granted{Reports: []string{invoices, salesReport}, Datasets: []string{salesDataset},
				Identities: []grantedIdentity{customer(), customer(salesDataset)}},
		},
		{
			name:      "a dashboard: identity only for the RLS dataset behind its tiles",
			dashboard: &embedgatev1.GenerateDashboardEmbedTokenRequest{Tenant: "acme", User: "alice", DashboardId: dashboard},
			wantCode:  codes.OK,
			wantKind:  emulator.KindDashboard,
			want:      &granted{Datasets: []string{salesDataset, invDataset}, Identities: []grantedIdentity{customer(salesDataset)}},
		},
		{
			name:      "a tile of the dashboard",
			dashboard: &embedgatev1.GenerateDashboardEmbedTokenRequest{Tenant: "acme", User: "alice", DashboardId: dashboard, TileId: revenueTile},
			wantCode:  codes.OK,
			wantKind:  emulator.KindTile,
			want:      &granted{Datasets: []string{salesDataset}, Identities: []grantedIdentity{customer(salesDataset)}},
		},
		{
			name:       "a dashboard the tenant is not granted",
			dashboard:  &embedgatev1.GenerateDashboardEmbedTokenRequest{Tenant: "globex", User: "bob", DashboardId: dashboard},
			wantCode:   codes.PermissionDenied,
			wantReason: "DASHBOARD_NOT_ALLOWED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tokenID string
			var err error
			if tt.reports != nil {
				var resp *embedgatev1.GenerateEmbedTokenResponse
				resp, err = s.client.GenerateEmbedToken(context.Background(), tt.reports)
				tokenID = resp.GetTokenId()
				for i, r := range resp.GetReports() {
					if r.GetEmbedUrl() == "" || r.GetWorkspaceId() == "" || r.GetId() != tt.reports.GetReportIds()[i] {
						t.Errorf("report %d = %v", i, r)
					}
				}
			} else {
				var resp *embedgatev1.GenerateDashboardEmbedTokenResponse
				resp, err = s.client.GenerateDashboardEmbedToken(context.Background(), tt.dashboard)
				tokenID = resp.GetTokenId()
				if err == nil && (resp.GetDashboard().GetId() != dashboard || (tt.dashboard.GetTileId() == "") != (resp.GetTile() == nil)) {
					t.Errorf("dashboard %v, tile %v", resp.GetDashboard(), resp.GetTile())
				}
				if tile := resp.GetTile(); tile != nil && (tile.GetId() != revenueTile || !strings.Contains(tile.GetEmbedUrl(), revenueTile)) {
					t.Errorf("tile = %v", tile)
				}
			}
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			checkDetails(t, err, tt.wantReason, "")
			if tt.want == nil {
				return
			}
			info, _ := s.emu.LookupToken(tokenID)
			if info.Kind != tt.wantKind {
				t.Errorf("minted by %q, want %q", info.Kind, tt.wantKind)
			}
			if diff := cmp.Diff(tt.wantTarget, info.TargetWorkspaces, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("targetWorkspaces (-want +got):\n%s", diff)
			}
			sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			byUser := cmpopts.SortSlices(func(a, b grantedIdentity) bool { return strings.Join(a.Datasets, ",") < strings.Join(b.Datasets, ",") })
			if diff := cmp.Diff(*tt.want, lookup(t, s.emu, tokenID), sorted, byUser, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the token grants (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExplainEmbedToken: the operator's view of a decision, with no token
// minted.
func TestExplainEmbedToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	explain := func(r *embedgatev1.GenerateEmbedTokenRequest) *embedgatev1.ExplainEmbedTokenResponse {
		t.Helper()
		resp, err := s.client.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{
			Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: r},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	allow := explain(&embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}, Lifetime: durationpbHours(3)})
	if !allow.GetAllowed() || allow.GetCode() != "OK" || allow.GetRule() != "tenants.acme" || allow.GetCaller() != frontend ||
		!strings.HasPrefix(allow.GetPolicyVersion(), "sha256:") || !allow.GetLifetimeClamped() || allow.GetLifetime().AsDuration() != time.Hour {
		t.Errorf("allow = %v", allow)
	}
	pr := allow.GetPowerbiRequest()
	// The path only: the host Embedgate reaches is not the caller's to know.
	if pr.GetMethod() != "POST" || pr.GetUrl() != "/v1.0/myorg/GenerateToken" {
		t.Errorf("powerbi request = %v %v", pr.GetMethod(), pr.GetUrl())
	}
	var body struct {
		Reports    []struct{ ID string }
		Identities []struct {
			Username   string
			Roles      []string
			CustomData string
		}
		LifetimeInMinutes int
	}
	if err := json.Unmarshal([]byte(pr.GetBody()), &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if len(body.Reports) != 1 || body.Reports[0].ID != salesReport || len(body.Identities) != 1 ||
		body.Identities[0].Username != "alice@acme.example" || body.Identities[0].CustomData != "acme" || body.LifetimeInMinutes != 60 {
		t.Errorf("body = %s", pr.GetBody())
	}

	deny := explain(&embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{globexReport}})
	if deny.GetAllowed() || deny.GetCode() != "PERMISSION_DENIED" || deny.GetReason() != "REPORT_NOT_ALLOWED" || deny.GetRule() == "" || deny.GetPowerbiRequest() != nil {
		t.Errorf("deny = %v", deny)
	}
	if n := s.emu.Counters()[emulator.RouteGenerateToken]; n != 0 {
		t.Errorf("Explain minted %d tokens", n)
	}
	// A caller the policy does not list gets the real call's answer and
	// nothing of the policy (no version, no rule).
	stranger := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, stranger)))
	resp, err := stranger.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{
		Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "x", ReportIds: []string{salesReport}}},
	})
	if status.Code(err) != codes.PermissionDenied || resp != nil {
		t.Errorf("stranger's explain = %v, %v", resp, err)
	}
	checkDetails(t, err, "CALLER_NOT_IN_POLICY", "")
	// A listed caller denied a tenant learns its own entry, not its index.
	other := explain(&embedgatev1.GenerateEmbedTokenRequest{Tenant: "umbrella", User: "x", ReportIds: []string{salesReport}})
	if other.GetReason() != "TENANT_NOT_ALLOWED" || other.GetRule() != "callers["+frontend+"].tenants" {
		t.Errorf("tenant denial = %v", other)
	}
	// The policy's identity, before Power BI's view of the models.
	if id := allow.GetIdentity(); id.GetUsername() != "alice@acme.example" || id.GetCustomData() != "acme" || len(id.GetRoles()) != 1 {
		t.Errorf("identity = %v", id)
	}
	// An admin asks as another caller and gets that caller's answer.
	consoleClient := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, console)))
	asFrontend := &embedgatev1.ExplainEmbedTokenRequest{AsCaller: frontend,
		Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}}}}
	if resp, err := consoleClient.ExplainEmbedToken(context.Background(), asFrontend); err != nil || !resp.GetAllowed() || resp.GetCaller() != frontend {
		t.Errorf("the admin's explain as frontend = %v, %v", resp, err)
	}
	// Itself, it is granted no tenant.
	asItself := proto.Clone(asFrontend).(*embedgatev1.ExplainEmbedTokenRequest)
	asItself.AsCaller = ""
	if resp, err := consoleClient.ExplainEmbedToken(context.Background(), asItself); err != nil || resp.GetAllowed() || resp.GetReason() != "TENANT_NOT_ALLOWED" {
		t.Errorf("the admin's explain as itself = %v, %v", resp, err)
	}
	// A caller that is not an admin may not ask as another.
	asConsole := proto.Clone(asFrontend).(*embedgatev1.ExplainEmbedTokenRequest)
	asConsole.AsCaller = console
	_, err = s.client.ExplainEmbedToken(context.Background(), asConsole)
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("frontend explaining as the console: %v, want PermissionDenied", err)
	}
	checkDetails(t, err, "EXPLAIN_NOT_ALLOWED", "")
	// A malformed request is INVALID_ARGUMENT, as for the real call.
	if _, err := s.client.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty explain: %v", err)
	}
}

// TestCallerRateLimit: a caller over its policy rate gets RESOURCE_EXHAUSTED
// with a RetryInfo; other callers are not affected.
func TestCallerRateLimit(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	client := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, batch)))
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "job", ReportIds: []string{invReport}}
	for i := range 2 { // the burst
		if _, err := client.GenerateEmbedToken(context.Background(), req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := client.GenerateEmbedToken(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want ResourceExhausted", err)
	}
	checkDetails(t, err, "CALLER_RATE_LIMITED", "")
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("RetryInfo = %v", retry)
	}
	if _, err := s.client.GenerateEmbedToken(context.Background(), req); err != nil {
		t.Errorf("another caller is limited too: %v", err)
	}
}

// TestPolicyHotReload: a valid edit is applied without dropping a call; an
// invalid edit is rejected while calls keep succeeding on the old policy.
func TestPolicyHotReload(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	umbrella := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "umbrella", User: "u", ReportIds: []string{"a3000000-0000-4000-8000-000000000001"}}

	// Calls run throughout; none may fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer halt() // before the stack's cleanup closes the connection
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{invReport}})
			calls.Add(1)
			if err != nil {
				failures.Add(1)
				t.Errorf("a call failed during reload: %v", err)
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.logs.String())
		}
	})
	if _, err := s.client.GenerateEmbedToken(context.Background(), umbrella); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("umbrella before the edit: %v", err)
	}
	policyFile := filepath.Join(s.dir, "policy.yaml")
	edited := strings.Replace(testPolicy, "tenants: [acme, globex, finance, leaky]", "tenants: [acme, globex, finance, leaky, umbrella]", 1)
	if edited == testPolicy {
		t.Fatal("the policy edit changed nothing")
	}
	writeAtomically(t, policyFile, edited)
	testkit.Eventually(t, "the valid edit to apply", func() bool {
		_, err := s.client.GenerateEmbedToken(context.Background(), umbrella)
		return err == nil
	})

	writeAtomically(t, policyFile, edited+"\n  broken:\n    workspace_id: not-a-uuid\n")
	testkit.Eventually(t, "the invalid edit to be rejected", func() bool { return strings.Contains(s.logs.String(), "policy rejected") })
	if _, err := s.client.GenerateEmbedToken(context.Background(), umbrella); err != nil {
		t.Errorf("after a rejected edit the old policy no longer serves: %v", err)
	}
	before := calls.Load()
	testkit.Eventually(t, "more calls after the rejected edit", func() bool { return calls.Load() > before+3 })
	halt()
	if failures.Load() != 0 || calls.Load() == 0 {
		t.Errorf("%d of %d calls failed", failures.Load(), calls.Load())
	}
}

// writeAtomically replaces a file the way editors and ConfigMaps do: write
// aside, rename over.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	must(t, os.WriteFile(tmp, []byte(content), 0o600))
	must(t, os.Rename(tmp, path))
}

// TestConcurrentAuditRecordsStayApart: the audit record's attributes are
// built in pooled lists; calls at once each get their own record, whole.
func TestConcurrentAuditRecordsStayApart(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{auditFile: true})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: fmt.Sprintf("user%02d", i), ReportIds: []string{salesReport}}
			if _, err := s.client.GenerateEmbedToken(context.Background(), req); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	must(t, s.stop()) // flush and close the audit file
	data, err := os.ReadFile(filepath.Join(s.dir, "audit.jsonl"))
	must(t, err)
	users := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			User        string `json:"user"`
			RLSUsername string `json:"rls_username"`
			Outcome     string `json:"outcome"`
		}
		must(t, json.Unmarshal([]byte(line), &rec))
		if rec.Outcome != "allowed" || rec.RLSUsername != rec.User || users[rec.User] {
			t.Errorf("record %s: another call's fields, or a repeated user", line)
		}
		users[rec.User] = true
	}
	if len(users) != n {
		t.Errorf("%d users audited, want %d:\n%s", len(users), n, data)
	}
}

// TestAuditFile: one record per decision, allowed or denied, on its own
// stream, with what security needs and never the token.
func TestAuditFile(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{auditFile: true})
	resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}, Lifetime: durationpbHours(2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "umbrella", User: "eve", ReportIds: []string{salesReport}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("umbrella: %v", err)
	}
	must(t, s.stop()) // flush and close the audit file
	data, err := os.ReadFile(filepath.Join(s.dir, "audit.jsonl"))
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d audit records, want 2:\n%s", len(lines), data)
	}
	var allowed, denied map[string]any
	must(t, json.Unmarshal([]byte(lines[0]), &allowed))
	must(t, json.Unmarshal([]byte(lines[1]), &denied))
	for k, want := range map[string]any{
		"outcome": "allowed", "code": "OK", "caller": frontend, "tenant": "acme", "user": "alice",
		"rls_username": "alice", "token_id": resp.GetTokenId(), "rule": "tenants.acme", "lifetime_clamped": true,
		"schema_version": float64(1), "lifetime": "1h0m0s", "lifetime_requested": "2h0m0s",
	} {
		if allowed[k] != want {
			t.Errorf("allowed record: %s = %v, want %v", k, allowed[k], want)
		}
	}
	for _, k := range []string{"time", "request_id", "report_ids", "roles", "pbi_request_id", "expire_time", "lifetime"} {
		if _, ok := allowed[k]; !ok {
			t.Errorf("allowed record lacks %s", k)
		}
	}
	for _, k := range []string{"reason", "message"} {
		if _, ok := allowed[k]; ok {
			t.Errorf("allowed record has %s", k)
		}
	}
	// docs/audit.md documents every field a record has.
	doc, err := os.ReadFile("../docs/audit.md")
	must(t, err)
	for _, rec := range []map[string]any{allowed, denied} {
		for k := range rec {
			if !strings.Contains(string(doc), "| `"+k+"` |") {
				t.Errorf("docs/audit.md does not document the field %q", k)
			}
		}
	}
	for k, want := range map[string]any{"outcome": "denied", "code": "PERMISSION_DENIED", "reason": "TENANT_NOT_ALLOWED",
		"message": `caller may not act for tenant "umbrella"`, "tenant": "umbrella", "user": "eve", "schema_version": float64(1)} {
		if denied[k] != want {
			t.Errorf("denied record: %s = %v, want %v", k, denied[k], want)
		}
	}
	if strings.Contains(string(data), resp.GetToken()) {
		t.Error("the token is in the audit file")
	}
	if strings.Contains(s.logs.String(), `"msg":"embed decision"`) {
		t.Error("audit records also went to the main log")
	}
}

// TestMetrics: /metrics counts calls, decisions and cached tokens, and says
// whether the credential works.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true})
	ok := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}
	for range 2 { // minted, then cached
		if _, err := s.client.GenerateEmbedToken(context.Background(), ok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "umbrella", User: "eve", ReportIds: []string{salesReport}}); status.Code(err) != codes.PermissionDenied {
		t.Fatal(err)
	}
	scrape := func() string { return s.scrape(t) }
	testkit.Eventually(t, "embedgate_credential_ok to become 1", func() bool { return strings.Contains(scrape(), "embedgate_credential_ok 1") })
	text := scrape()
	for _, want := range []string{
		`embedgate_decisions_total{code="OK",outcome="allowed"} 2`,
		`embedgate_decisions_total{code="PermissionDenied",outcome="denied"} 1`,
		`embedgate_tokens_total{source="minted"} 1`,
		`embedgate_tokens_total{source="cached"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GenerateEmbedToken",grpc_service="embedgate.v1.EmbedTokenService",grpc_type="unary"} 2`,
		`grpc_server_handling_seconds_bucket`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPreflightAtStartAndReload: the running server checks the policy's
// tenants against Power BI at start, logs what it finds and counts it; a
// reload that drops the unservable tenant clears the count.
func TestPreflightAtStartAndReload(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true, preflight: true})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.logs.String())
		}
	})
	// testPolicy's finance tenant lives in a workspace the demo app has no
	// role in; leaky's model enforces no RLS.
	testkit.Eventually(t, "the preflight to count two problems", func() bool { return strings.Contains(s.scrape(t), "embedgate_preflight_problems 2") })
	if !strings.Contains(s.logs.String(), "preflight: tenant finance: workspace a0000000-0000-4000-8000-000000000009") {
		t.Errorf("the finding is not logged")
	}
	// The calls keep working meanwhile: findings are warnings.
	if _, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}); err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(testPolicy, "tenants: [acme, globex, finance, leaky]", "tenants: [acme, globex, leaky]", 1)
	fixed = strings.Replace(fixed, "  finance:\n    workspace_id: a0000000-0000-4000-8000-000000000009\n    reports: [\"*\"]\n", "", 1)
	fixed = strings.Replace(fixed, "    rls:\n      roles: [Customer]\n  umbrella:", "    rls:\n      roles: [Customer]\n      without_rls: ["+invReport+"]\n  umbrella:", 1)
	if fixed == testPolicy {
		t.Fatal("the policy edit changed nothing")
	}
	writeFile(t, s.dir, "policy.yaml", fixed)
	testkit.Eventually(t, "the reload's preflight to clear the count", func() bool { return strings.Contains(s.scrape(t), "embedgate_preflight_problems 0") })
}
