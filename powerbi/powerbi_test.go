package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func req(ids ...string) TokenRequest { return TokenRequest{Items: reports(testWS, ids...)} }

// reports are report items of one workspace.
func reports(ws string, ids ...string) []Item {
	out := make([]Item, len(ids))
	for i, id := range ids {
		out[i] = rep(ws, id)
	}
	return out
}

// rep is a report item.
func rep(ws, id string) Item { return Item{Kind: KindReport, ID: id, WorkspaceID: ws} }

// dashItem is the item of a dashboard request.
func dashItem(ws, id string) []Item { return []Item{{Kind: KindDashboard, ID: id, WorkspaceID: ws}} }

// tileItem is the item of a tile request.
func tileItem(ws, dashboard, tile string) []Item {
	return []Item{{Kind: KindTile, ID: tile, WorkspaceID: ws, DashboardID: dashboard}}
}

// waitFor polls cond until it holds or a deadline passes (no fixed sleeps).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGenerateTokenSingleReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, err := e.c.Issue(context.Background(), req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	want := &EmbedToken{
		Token:      "H4sIAAAAAAAEAB2Wtw6EVhRE-1-AAA=",
		TokenID:    "49ae3742-54c0-4c29-af52-619ff93b5c81",
		Expiration: time.Date(2026, 7, 29, 17, 58, 19, 0, time.UTC),
		RequestID:  tok.RequestID,
		Items:      []Embedded{{Kind: KindReport, ID: repPlain, Name: "Plain", EmbedURL: embedURLFor(testWS, repPlain), WorkspaceID: testWS, DatasetID: dsPlain}},
		Issued:     e.clock.Now(),
		RefreshAt:  RefreshAt(e.clock.Now(), time.Date(2026, 7, 29, 17, 58, 19, 0, time.UTC)),
	}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(tok.RequestID, "rid-") {
		t.Errorf("RequestID = %q, want the GenerateToken RequestId header", tok.RequestID)
	}
	wantBody := `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}]}`
	if got := e.f.lastBody(); got != wantBody {
		t.Errorf("body = %s\nwant   %s", got, wantBody)
	}
	h := e.f.genHeaders[0]
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.Get("Authorization"); !strings.HasPrefix(got, "Bearer eyJ") {
		t.Errorf("Authorization = %q", got)
	}
	if _, ok := h["X-Powerbi-Profile-Id"]; ok {
		t.Errorf("profile header sent without a profile")
	}
	// The token POST had the shape MSAL sends, with the public-cloud scope.
	form := e.f.tokenForms[0]
	if form["client_secret"] != testSecret || form["scope"] != "https://analysis.windows.net/powerbi/api/.default openid offline_access profile" {
		t.Errorf("token form = %v", form)
	}
}

func TestEntraCalledOnceForManyRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	for i := 0; i < 5; i++ {
		if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.f.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1", got)
	}
	e.f.mu.Lock()
	oidcGets := e.f.oidcGets
	e.f.mu.Unlock()
	if got := oidcGets; got != 1 {
		t.Errorf("OIDC GETs = %d, want 1", got)
	}
	if got := e.f.generatePosts(); got != 5 {
		t.Errorf("GenerateToken POSTs = %d, want 5", got)
	}
}

func TestConcurrentColdRequestsMakeOneTokenPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := make(chan struct{})
	e.f.mu.Lock()
	e.f.tokenGate = gate
	e.f.mu.Unlock()
	// Distinct reports (their metadata GETs are not coalesced with each
	// other) plus readiness checks: every caller needs the Entra token.
	reports := []string{repPlain, repSales, repMkt, repNoRoles}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = e.c.CheckCredential(context.Background())
				return
			}
			r := req(reports[i/2])
			r.Identity = &Identity{Username: "alice", Roles: []string{"Customer"}, WithoutRLS: []string{dsPlain}}
			_, errs[i] = e.c.Issue(context.Background(), r)
		})
	}
	waitFor(t, "all callers waiting on one acquisition", func() bool { return e.c.cred.sf.waiting.Load() == n })
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.f.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1", got)
	}
}

func TestMetadataCachedPerWorkspaceAndProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	ctx := context.Background()
	r := req(repSales, repMkt, repPlain)
	r.Identity = &Identity{Username: "alice@acme.com", Roles: []string{"Customer"}, WithoutRLS: []string{dsPlain}}
	for i := 0; i < 2; i++ {
		if _, err := e.c.Issue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{repSales, repMkt, repPlain} {
		if got := e.f.getCount("reports", id); got != 1 {
			t.Errorf("GETs of report %s = %d, want 1", id, got)
		}
	}
	for _, id := range []string{dsRLS, dsPlain} {
		if got := e.f.getCount("datasets", id); got != 1 {
			t.Errorf("GETs of dataset %s = %d, want 1", id, got)
		}
	}
	// Another profile sees other content: its own cache entries.
	r.ProfileID = testProfile
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := e.f.getCount("reports", repSales); got != 2 {
		t.Errorf("GETs of report after profile change = %d, want 2", got)
	}
	// After the TTL everything is fetched again.
	e.clock.Advance(DefaultMetadataTTL)
	r.ProfileID = ""
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := e.f.getCount("reports", repSales); got != 3 {
		t.Errorf("GETs of report after TTL = %d, want 3", got)
	}
	if got := e.f.getCount("datasets", dsRLS); got != 3 {
		t.Errorf("GETs of dataset after TTL = %d, want 3", got)
	}
}

func TestMetadataMissesCoalesced(t *testing.T) {
	t.Parallel()
	// Repeated identical requests must reach upstream.
	e := newEnv(t, withoutTokenCache)
	if err := e.c.CheckCredential(context.Background()); err != nil { // warm Entra
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e.f.mu.Lock()
	e.f.reportGate = gate
	e.f.mu.Unlock()
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.c.Issue(context.Background(), req(repPlain)) })
	}
	waitFor(t, "callers coalesced on one report GET", func() bool { return e.c.metaSF.waiting.Load() == n })
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.f.getCount("reports", repPlain); got != 1 {
		t.Errorf("report GETs = %d, want 1", got)
	}
	if got := e.f.getCount("datasets", dsPlain); got != 1 {
		t.Errorf("dataset GETs = %d, want 1", got)
	}
}

func TestProfileHeaderOnEveryCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := req(repPlain)
	r.ProfileID = testProfile
	if _, err := e.c.Issue(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var hs []http.Header
	hs = append(hs, e.f.metaHeaders...)
	hs = append(hs, e.f.genHeaders...)
	if len(hs) != 3 {
		t.Fatalf("calls = %d, want 3", len(hs))
	}
	for i, h := range hs {
		if got := h.Get("X-PowerBI-Profile-Id"); got != testProfile {
			t.Errorf("call %d: X-PowerBI-Profile-Id = %q", i, got)
		}
	}
}

func TestGenerateTokenBody(t *testing.T) {
	t.Parallel()
	// The policy says the Plain report's dataset carries no RLS.
	alice := &Identity{Username: "alice@acme.com", Roles: []string{"Customer"}, CustomData: "acme", WithoutRLS: []string{repPlain}}
	tests := []struct {
		name string
		r    TokenRequest
		want string // the exact JSON body
	}{{
		name: "identity not sent for a dataset without RLS",
		r:    TokenRequest{Items: reports(testWS, repPlain), Identity: alice},
		want: `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}]}`,
	}, {
		name: "identity only for the RLS dataset, one token for several reports",
		r:    TokenRequest{Items: reports(testWS, repSales, repPlain, repMkt), Identity: alice, AllowEdit: true, Lifetime: 30 * time.Minute},
		want: `{"datasets":[{"id":"` + dsRLS + `"},{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repSales + `","allowEdit":true},{"id":"` + repPlain + `","allowEdit":true},{"id":"` + repMkt + `","allowEdit":true}],` +
			`"identities":[{"username":"alice@acme.com","roles":["Customer"],"customData":"acme","datasets":["` + dsRLS + `"]}],"lifetimeInMinutes":30}`,
	}, {
		name: "customData omitted when empty; capital-I flags honoured; roles optional there",
		r:    TokenRequest{Items: reports(testWS, repNoRoles), Identity: &Identity{Username: "0b7c9f6e-sp-object-id"}, Lifetime: 90 * time.Second},
		want: `{"datasets":[{"id":"` + dsNoRoles + `"}],"reports":[{"id":"` + repNoRoles + `","allowEdit":false}],"identities":[{"username":"0b7c9f6e-sp-object-id","datasets":["` + dsNoRoles + `"]}],"lifetimeInMinutes":1}`,
	}, {
		name: "sub-minute lifetime rounds up to one minute",
		r:    TokenRequest{Items: reports(testWS, repPlain), Lifetime: 10 * time.Second},
		want: `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}],"lifetimeInMinutes":1}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.f.generatePosts(); got != 1 {
				t.Errorf("GenerateToken POSTs = %d, want 1", got)
			}
			if got := e.f.lastBody(); got != tt.want {
				t.Errorf("body\n got %s\nwant %s", got, tt.want)
			}
			if len(tok.Items) != len(tt.r.Items) {
				t.Fatalf("items = %d, want %d", len(tok.Items), len(tt.r.Items))
			}
			for i, rep := range tok.Items {
				if rep.ID != tt.r.Items[i].ID || rep.EmbedURL != embedURLFor(testWS, rep.ID) || rep.WorkspaceID != testWS {
					t.Errorf("item %d = %+v", i, rep)
				}
			}
			// Plan describes exactly the call that was made.
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if string(p.Body) != tt.want || p.URL != e.f.srv.URL+"/v1.0/myorg/GenerateToken" || p.Method != http.MethodPost {
				t.Errorf("plan = %s %s %s", p.Method, p.URL, p.Body)
			}
			if got := e.f.generatePosts(); got != 1 {
				t.Errorf("Plan minted a token")
			}
		})
	}
}

func TestPreconditionsFailBeforeMinting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		r       TokenRequest
		wantErr error
	}{
		{"RLS dataset without identity", TokenRequest{Items: reports(testWS, repPlain, repSales)}, ErrIdentityRequired},
		{"identity without username", TokenRequest{Items: reports(testWS, repNoRoles), Identity: &Identity{Roles: []string{"r"}}}, ErrIdentityRequired},
		{"roles required, none given", TokenRequest{Items: reports(testWS, repSales), Identity: &Identity{Username: "alice"}}, ErrRolesRequired},
		{"paginated report mixed with another", TokenRequest{Items: reports(testWS, repPlain, repRDL)}, ErrUnsupported},
		{"paginated report mixed, other workspace", TokenRequest{Items: []Item{rep(testWS2, repWS2RDL), rep(testWS, repSales)}}, ErrUnsupported},
		{"identity without username for a paginated report", TokenRequest{Items: reports(testWS, repRDL), Identity: &Identity{Roles: []string{"r"}}}, ErrIdentityRequired},
		{"report without any workspace", TokenRequest{Items: []Item{{Kind: KindReport, ID: repPlain}}}, ErrInvalidRequest},
		{"an RLS tenant on a dataset that enforces no RLS", TokenRequest{Items: reports(testWS, repPlain), Identity: &Identity{Username: "a", Roles: []string{"r"}}}, ErrRLSNotEnforced},
		{"exempting one of two reports on such a dataset", TokenRequest{Items: []Item{rep(testWS, repPlain), rep(testWS, repShared)},
			Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{repPlain}}}, ErrRLSNotEnforced},
		{"a dashboard with edit", TokenRequest{Items: dashItem(testWS, dashSales), AllowEdit: true}, ErrInvalidRequest},
		{"two dashboards", TokenRequest{Items: append(dashItem(testWS, dashSales), dashItem(testWS, dashSales)...)}, ErrInvalidRequest},
		{"a report and a dashboard", TokenRequest{Items: append(reports(testWS, repPlain), dashItem(testWS, dashSales)...)}, ErrInvalidRequest},
		{"empty target workspace", TokenRequest{Items: reports(testWS, repPlain), TargetWorkspaceIDs: []string{""}}, ErrInvalidRequest},
		{"too many target workspaces", TokenRequest{Items: reports(testWS, repPlain), TargetWorkspaceIDs: slices.Repeat([]string{testWS}, 51)}, ErrInvalidRequest},
		{"no reports", TokenRequest{}, ErrInvalidRequest},
		{"too many reports", TokenRequest{Items: reports(testWS, make([]string, 51)...)}, ErrInvalidRequest},
		{"negative lifetime", TokenRequest{Items: reports(testWS, repPlain), Lifetime: -time.Minute}, ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := e.f.generatePosts(); got != 0 {
				t.Errorf("GenerateToken POSTs = %d, want 0", got)
			}
			if _, err := e.c.Plan(context.Background(), tt.r); !errors.Is(err, tt.wantErr) {
				t.Errorf("Plan err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	e := newEnv(t)
	_, err := e.c.Issue(context.Background(), TokenRequest{Items: reports(testWS, repSales)})
	var pe *PreconditionError
	if !errors.As(err, &pe) || pe.DatasetID != dsRLS || pe.ReportID != repSales {
		t.Errorf("err = %#v, want PreconditionError naming %s/%s", err, repSales, dsRLS)
	}
}

func TestUpstreamErrorsAreTyped(t *testing.T) {
	t.Parallel()
	hdr := func(rid string) map[string]string { return map[string]string{"RequestId": rid} }
	tests := []struct {
		name        string
		route       string
		answers     []canned
		r           TokenRequest
		wantIs      error
		notIs       []error
		wantAPI     *APIError // nil: no *APIError expected directly
		wantRID     string
		wantRetry   time.Duration
		wantCalls   int // calls of route
		wantGenPost int
	}{{
		name: "report not found", route: "report",
		answers: []canned{{404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`, hdr("rid-404"), false}},
		r:       req(repPlain), wantIs: ErrNotFound, notIs: []error{ErrUnavailable, ErrNotAuthorized},
		wantAPI: &APIError{Op: "GetReport", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get report failed", RequestID: "rid-404"},
		wantRID: "rid-404", wantCalls: 1,
	}, {
		name: "workspace not authorized (pbi.error shape), again with a fresh Entra token", route: "report",
		answers: []canned{{401, notAuthorizedBody, hdr("rid-401a"), false}, {401, notAuthorizedBody, hdr("rid-401"), false}},
		r:       req(repPlain), wantIs: ErrNotAuthorized, notIs: []error{ErrPrincipalNotAllowed},
		wantAPI: &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: "rid-401"},
		wantRID: "rid-401", wantCalls: 2,
	}, {
		name: "service principals blocked by the tenant setting", route: "report",
		answers: slices.Repeat([]canned{{401, notAuthorizedBody, map[string]string{"RequestId": "rid-401s", "X-PowerBI-Error-Info": "ServicePrincipalIsNotAllowedByTenantAdminSwitch"}, false}}, 2),
		r:       req(repPlain), wantIs: ErrPrincipalNotAllowed, notIs: []error{ErrNotAuthorized},
		wantAPI: &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: "rid-401s", ErrorInfo: "ServicePrincipalIsNotAllowedByTenantAdminSwitch"},
		wantRID: "rid-401s", wantCalls: 2,
	}, {
		name: "dataset not found", route: "dataset",
		answers: []canned{{404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get dataset failed"}}`, hdr("rid-d404"), false}},
		r:       req(repPlain), wantIs: ErrNotFound,
		wantAPI: &APIError{Op: "GetDataset", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get dataset failed", RequestID: "rid-d404"},
		wantRID: "rid-d404", wantCalls: 1,
	}, {
		name: "Power BI RLS rejection", route: "generate",
		answers: []canned{{400, `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset ` + dsPlain + ` shouldn't have effective identity"}}`, hdr("rid-400"), false}},
		r:       req(repPlain), wantIs: ErrBadRequest,
		wantAPI: &APIError{Op: "GenerateToken", Status: 400, Code: "InvalidRequest", Message: "Creating embed token for accessing dataset " + dsPlain + " shouldn't have effective identity", RequestID: "rid-400"},
		wantRID: "rid-400", wantCalls: 1, wantGenPost: 1,
	}, {
		name: "403 other than TokenExpired or the quota is forbidden", route: "generate",
		answers: []canned{{403, ``, hdr("rid-403a"), false}, {403, `{"error":{"code":"Forbidden"}}`, hdr("rid-403"), false}},
		r:       req(repPlain), wantIs: ErrForbidden, notIs: []error{ErrTokenExpired, ErrQuotaExceeded},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "Forbidden", RequestID: "rid-403"},
		wantRID: "rid-403", wantCalls: 2, wantGenPost: 2,
	}, {
		name: "403 of the trial quota", route: "generate",
		answers: []canned{quota403, {403, quota403.body, hdr("rid-q"), false}},
		r:       req(repPlain), wantIs: ErrQuotaExceeded, notIs: []error{ErrTokenExpired, ErrForbidden},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "Forbidden", Message: "The user has exceeded the amount of embed token that can be generated on a shared capacity.", RequestID: "rid-q", Quota: true},
		wantRID: "rid-q", wantCalls: 2, wantGenPost: 2,
	}, {
		name: "429 seconds, never retried", route: "generate",
		answers: []canned{{429, ``, map[string]string{"RequestId": "rid-429", "Retry-After": "7"}, false}},
		r:       req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429", wantRetry: 7 * time.Second, wantCalls: 1, wantGenPost: 1,
	}, {
		name: "429 HTTP date", route: "report",
		answers: []canned{{429, ``, map[string]string{"RequestId": "rid-429d", "Retry-After": "Wed, 29 Jul 2026 12:02:00 GMT"}, false}},
		r:       req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429d", wantRetry: 2 * time.Minute, wantCalls: 1,
	}, {
		name: "429 without Retry-After", route: "dataset",
		answers: []canned{{429, `{"error":{"code":"TooManyRequests"}}`, hdr("rid-429n"), false}},
		r:       req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429n", wantRetry: 30 * time.Second, wantCalls: 1,
	}, {
		name: "500 is unavailable and not retried", route: "generate",
		answers: []canned{{500, `{"error":{"code":"InternalError","message":"boom"}}`, hdr("rid-500"), false}},
		r:       req(repPlain), wantIs: ErrUnavailable, notIs: []error{ErrBadRequest},
		wantAPI: &APIError{Op: "GenerateToken", Status: 500, Code: "InternalError", Message: "boom", RequestID: "rid-500"},
		wantRID: "rid-500", wantCalls: 1, wantGenPost: 1,
	}, {
		name: "GET 503 three times: two retries then unavailable", route: "report",
		answers: []canned{{503, ``, hdr("rid-a"), false}, {503, ``, hdr("rid-b"), false}, {503, ``, hdr("rid-c"), false}},
		r:       req(repPlain), wantIs: ErrUnavailable, wantRID: "rid-c", wantCalls: 3,
	}, {
		name: "POST 504 twice: one retry then unavailable", route: "generate",
		answers: []canned{{504, ``, hdr("rid-x"), false}, {504, ``, hdr("rid-y"), false}},
		r:       req(repPlain), wantIs: ErrUnavailable, wantRID: "rid-y", wantCalls: 2, wantGenPost: 2,
	}, {
		// net/http itself may retry a GET whose reused connection dropped,
		// so the count is at least our 3 attempts.
		name: "GET connection dropped every time", route: "report",
		answers: slices.Repeat([]canned{{hang: true}}, 12),
		r:       req(repPlain), wantIs: ErrUnavailable, wantCalls: -3,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.f.push(tt.route, tt.answers...)
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			for _, n := range tt.notIs {
				if errors.Is(err, n) {
					t.Errorf("err %v also matches %v", err, n)
				}
			}
			if tt.wantAPI != nil {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err %T is not an *APIError", err)
				}
				if diff := cmp.Diff(tt.wantAPI, ae); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
			}
			if got := RequestIDOf(err); got != tt.wantRID {
				t.Errorf("RequestIDOf = %q, want %q", got, tt.wantRID)
			}
			if tt.wantRetry != 0 {
				var te *ThrottledError
				if !errors.As(err, &te) || te.RetryAfter != tt.wantRetry {
					t.Errorf("err = %#v, want RetryAfter %s", err, tt.wantRetry)
				}
			}
			calls := map[string]func() int{
				"report":   func() int { return e.f.getCount("reports", repPlain) },
				"dataset":  func() int { return e.f.getCount("datasets", dsPlain) },
				"generate": e.f.generatePosts,
			}[tt.route]()
			if calls != tt.wantCalls && (tt.wantCalls > 0 || calls < -tt.wantCalls) {
				t.Errorf("calls of %s = %d, want %d", tt.route, calls, tt.wantCalls)
			}
			if got := e.f.generatePosts(); got != tt.wantGenPost {
				t.Errorf("GenerateToken POSTs = %d, want %d", got, tt.wantGenPost)
			}
			if strings.Contains(err.Error(), "Bearer") || strings.Contains(err.Error(), "eyJ") {
				t.Errorf("error leaks a token: %v", err)
			}
		})
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		route   string
		answers []canned
		calls   func(*fake) int
		want    int
	}{
		{"GET 503 then OK", "report", []canned{{status: 503}}, func(f *fake) int { return f.getCount("reports", repPlain) }, 2},
		{"GET 502, 504 then OK", "dataset", []canned{{status: 502}, {status: 504}}, func(f *fake) int { return f.getCount("datasets", dsPlain) }, 3},
		{"POST 503 then OK", "generate", []canned{{status: 503}}, (*fake).generatePosts, 2},
		{"POST connection reset then OK", "generate", []canned{{hang: true}}, (*fake).generatePosts, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.f.push(tt.route, tt.answers...)
			if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
				t.Fatal(err)
			}
			if got := tt.calls(e.f); got != tt.want {
				t.Errorf("calls = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTokenExpiredRetriedOnceWithFreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	e.f.mu.Lock()
	e.f.expired[e.f.issued[0]] = true
	e.f.mu.Unlock()
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.f.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2 (one forced refresh)", got)
	}
	// The fresh token is then served from the (new) cache.
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.f.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want still 2", got)
	}
}

func TestTokenExpiredSurfacesWhenEntraReturnsSameToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.f.sameToken = true
	e.f.expired["eyJ0eXAiOiJKV1QifQ.access-same.sig"] = true
	_, err := e.c.Issue(context.Background(), req(repPlain))
	if !errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("err = %v, want ErrTokenExpired", err)
	}
	// The forced refresh brought the same token back: no point in retrying.
	if got, want := e.f.totalGets(), 1; got != want {
		t.Errorf("report GETs = %d, want %d", got, want)
	}
	if got := e.f.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2 (first + forced refresh)", got)
	}
}

func TestEntraErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*Config)
		answers []canned
		wantIs  error
		wantCE  *CredentialError
	}{{
		name:   "wrong secret",
		mutate: func(c *Config) { c.ClientSecretFile = writeFile(t, "bad", "secret-id-not-value") },
		wantIs: ErrCredential,
		wantCE: &CredentialError{Status: 401, Code: "invalid_client", ErrorCodes: []int{7000215},
			Description:   "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + testClientID + "'.",
			CorrelationID: "99999999-8888-7777-6666-555555555555",
			Hint:          "Entra refused the client secret: FILE must hold the secret's Value (shown once, when it is created), not its Secret ID"},
	}, {
		name:   "unknown app",
		mutate: func(c *Config) { c.ClientID = "00000000-0000-0000-0000-000000000001" },
		wantIs: ErrCredential,
	}, {
		name: "entra 503",
		answers: []canned{ // MSAL does not retry: one per call below
			{status: 503, body: `{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred."}`},
			{status: 503, body: `{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred."}`},
		},
		wantIs: ErrUnavailable,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e *testEnv
			if tt.mutate != nil {
				e = newEnv(t, tt.mutate)
			} else {
				e = newEnv(t)
			}
			e.f.push("token", tt.answers...)
			err := e.c.CheckCredential(context.Background())
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if _, gerr := e.c.Issue(context.Background(), req(repPlain)); !errors.Is(gerr, tt.wantIs) {
				t.Errorf("GenerateToken err = %v, want %v", gerr, tt.wantIs)
			}
			if e.f.totalGets()+e.f.generatePosts() != 0 {
				t.Errorf("Power BI called without a token")
			}
			if tt.wantIs == ErrCredential && e.f.tokenPosts() != 1 {
				t.Errorf("token POSTs = %d, want 1 (a rejection is held for %s)", e.f.tokenPosts(), rejectionHold)
			}
			if tt.wantCE != nil {
				var ce *CredentialError
				if !errors.As(err, &ce) {
					t.Fatalf("err %T is not a *CredentialError", err)
				}
				ce.Hint = strings.ReplaceAll(ce.Hint, e.cfg.ClientSecretFile, "FILE")
				if diff := cmp.Diff(tt.wantCE, ce); diff != "" {
					t.Errorf("CredentialError (-want +got):\n%s", diff)
				}
			}
			for _, leak := range []string{testSecret, "secret-id-not-value"} {
				if strings.Contains(err.Error(), leak) || strings.Contains(e.logs.String(), leak) {
					t.Errorf("secret leaked in error or logs")
				}
			}
		})
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- e.c.Watch(ctx) }()
	defer func() { cancel(); <-watched }()
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	const rotated = "rotated-secret-value-2"
	e.f.mu.Lock()
	e.f.secret = rotated
	e.f.mu.Unlock()
	if err := writeFileAt(e.cfg.ClientSecretFile, rotated+"\n"); err != nil {
		t.Fatal(err)
	}
	// The watch reloads the file; the next call signs in with the new secret.
	waitFor(t, "a sign-in with the rotated secret", func() bool {
		if err := e.c.CheckCredential(ctx); err != nil {
			t.Fatal(err)
		}
		return e.f.tokenPosts() == 2
	})
	if got := e.f.tokenForms[1]["client_secret"]; got != rotated {
		t.Errorf("second token POST used the old secret")
	}
	// An emptied (half-written) file keeps the working credential.
	if err := writeFileAt(e.cfg.ClientSecretFile, ""); err != nil {
		t.Fatal(err)
	}
	e.c.cred.reload() // what the watch does on the event
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatalf("after an empty rotation: %v", err)
	}
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.f.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2", got)
	}
	if strings.Contains(e.logs.String(), rotated) {
		t.Errorf("secret in logs")
	}
}

func TestCertificateCredential(t *testing.T) {
	t.Parallel()
	certPEM := selfSignedPEM(t)
	e := newEnv(t, func(c *Config) {
		c.ClientSecretFile = ""
		c.CertificateFile = writeFile(t, "cert.pem", certPEM)
	})
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Fatal(err)
	}
	form := e.f.tokenForms[0]
	if form["client_assertion_type"] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || strings.Count(form["client_assertion"], ".") != 2 || form["client_secret"] != "" {
		t.Errorf("token form = %v", form)
	}
}

func TestFederatedTokenReadOnEachAssertion(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.expiresIn = 200 // MSAL never caches tokens living <= 5 min; the gateway does
	path := writeFile(t, "azure-identity-token", "eyJhbGciOiJSUzI1NiJ9.first.sig\n")
	e := newEnvWith(t, f, Config{
		AuthorityHost: f.srv.URL, APIURL: f.srv.URL, CAFile: f.caFile(),
		TenantID: testTenant, ClientID: testClientID, FederatedTokenFile: path,
	})
	ctx := context.Background()
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAt(path, "eyJhbGciOiJSUzI1NiJ9.second.sig"); err != nil {
		t.Fatal(err)
	}
	// The token in use is reused while it lives (200 s, minus a minute of
	// safety); the next acquisition reads the rotated file.
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(150 * time.Second)
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, form := range f.tokenForms {
		got = append(got, form["client_assertion"])
	}
	want := []string{"eyJhbGciOiJSUzI1NiJ9.first.sig", "eyJhbGciOiJSUzI1NiJ9.second.sig"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assertions (-want +got):\n%s", diff)
	}
}

func TestGenerateTokenRejectedForgetsMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.f.push("generate", canned{status: 400, body: `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset x requires effective identity to be provided"}}`})
	if _, err := e.c.Issue(context.Background(), req(repPlain)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.f.getCount("datasets", dsPlain); got != 2 {
		t.Errorf("dataset GETs = %d, want 2 (refetched after the 400)", got)
	}
}

func TestNetworkErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	dead := newFake(t)
	deadURL := dead.srv.URL
	dead.srv.Close()
	e := newEnvWith(t, f, Config{
		AuthorityHost: f.srv.URL, APIURL: deadURL, CAFile: f.caFile(),
		TenantID: testTenant, ClientID: testClientID, ClientSecretFile: writeFile(t, "s", testSecret),
	})
	_, err := e.c.Issue(context.Background(), req(repPlain))
	var ue *UnavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) || ue.Op != "GetReport" {
		t.Fatalf("err = %v, want UnavailableError for GetReport", err)
	}
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.c.Issue(ctx, req(repPlain))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLogsNeverHoldTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.f.push("report", canned{status: 404, body: `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`, header: map[string]string{"RequestId": "rid-log"}})
	_, _ = e.c.Issue(context.Background(), req(repPlain))
	tok, err := e.c.Issue(context.Background(), req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, secret := range []string{tok.Token, "eyJ0eXAiOiJKV1QifQ", testSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	var sawRID bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["pbi_request_id"] == "rid-log" && rec["op"] == "GetReport" && rec["status"] == float64(404) {
			sawRID = true
		}
	}
	if !sawRID {
		t.Errorf("no log record with pbi_request_id, op and status:\n%s", logs)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 30 * time.Second},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"-3", 30 * time.Second},
		{"soon", 30 * time.Second},
		{"Wed, 29 Jul 2026 12:00:45 GMT", 45 * time.Second},
		{"Wed, 29 Jul 2026 11:00:00 GMT", time.Second},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestResolveClouds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg                   Config
		authority, api, scope string
		discovery             bool
	}{
		{Config{}, "https://login.microsoftonline.com", "https://api.powerbi.com", "https://analysis.windows.net/powerbi/api/.default", true},
		{Config{Cloud: "usgov"}, "https://login.microsoftonline.com", "https://api.powerbigov.us", "https://analysis.usgovcloudapi.net/powerbi/api/.default", true},
		{Config{Cloud: "usgovhigh"}, "https://login.microsoftonline.us", "https://api.high.powerbigov.us", "https://high.analysis.usgovcloudapi.net/powerbi/api/.default", true},
		{Config{Cloud: "usgovdod"}, "https://login.microsoftonline.us", "https://api.mil.powerbigov.us", "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default", true},
		{Config{Cloud: "china"}, "https://login.chinacloudapi.cn", "https://api.powerbi.cn", "https://analysis.chinacloudapi.cn/powerbi/api/.default", true},
		{Config{AuthorityHost: "https://127.0.0.1:8444/", APIURL: "https://127.0.0.1:8444/"}, "https://127.0.0.1:8444", "https://127.0.0.1:8444", "https://analysis.windows.net/powerbi/api/.default", false},
		{Config{AuthorityHost: "https://login.microsoftonline.com"}, "https://login.microsoftonline.com", "https://api.powerbi.com", "https://analysis.windows.net/powerbi/api/.default", true},
	}
	for _, tt := range tests {
		r := tt.cfg.resolve()
		got := fmt.Sprint(r.authorityHost, " ", r.apiURL, " ", r.scope, " ", r.discovery)
		want := fmt.Sprint(tt.authority, " ", tt.api, " ", tt.scope, " ", tt.discovery)
		if got != want {
			t.Errorf("resolve(%+v) = %s, want %s", tt.cfg, got, want)
		}
	}
}

func TestDatasetInAnotherWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.c.Issue(context.Background(), req(repShared)); err != nil {
		t.Fatal(err)
	}
	e.f.mu.Lock()
	n := e.f.gets["/v1.0/myorg/groups/"+testSharedWS+"/datasets/"+dsPlain]
	e.f.mu.Unlock()
	if n != 1 {
		t.Errorf("GETs of the dataset in its own workspace = %d, want 1", n)
	}
}

func TestCredentialRejectionHeldThenRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ClientSecretFile = writeFile(t, "bad", "wrong") })
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := e.c.CheckCredential(ctx); !errors.Is(err, ErrCredential) {
			t.Fatalf("err = %v, want ErrCredential", err)
		}
	}
	if got := e.f.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1 while the rejection is held", got)
	}
	e.clock.Advance(rejectionHold)
	if err := e.c.CheckCredential(ctx); !errors.Is(err, ErrCredential) {
		t.Fatalf("err = %v, want ErrCredential", err)
	}
	if got := e.f.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2 after the hold", got)
	}
	// The operator fixes the mounted secret: the watch reloads it, and the new
	// client is not held by the old one's rejection.
	if err := writeFileAt(e.cfg.ClientSecretFile, testSecret); err != nil {
		t.Fatal(err)
	}
	e.c.cred.reload()
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatalf("after fixing the secret: %v", err)
	}
}
