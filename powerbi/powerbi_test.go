package powerbi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
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

func TestGenerateTokenSingleReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, err := e.c.Issue(context.Background(), req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	// Token, TokenID and Expiration are what Power BI minted and recorded.
	grant, ok := e.grant(t, tok.Token)
	if !ok {
		t.Fatal("Power BI minted no such token")
	}
	want := &EmbedToken{
		Token:      tok.Token,
		TokenID:    grant.TokenID,
		Expiration: grant.Expiration,
		RequestID:  tok.RequestID,
		Items:      []Embedded{{Kind: KindReport, ID: repPlain, Name: "Plain", EmbedURL: reportEmbedURL(testWS, repPlain), WorkspaceID: testWS, DatasetID: dsPlain}},
		Issued:     e.clock.Now(),
		RefreshAt:  RefreshAt(e.clock.Now(), grant.Expiration),
	}
	if diff := cmp.Diff(want, tok, ignoreEmbedConfig); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]emulator.TokenReport{{ID: repPlain}}, grant.Reports); diff != "" {
		t.Errorf("the token opens (-want +got):\n%s", diff)
	}
	// Power BI caps a token without a lifetime at the Entra token's expiry.
	if wantExp := testStart.Add(3599 * time.Second); !tok.Expiration.Equal(wantExp) {
		t.Errorf("Expiration = %v, want %v", tok.Expiration, wantExp)
	}
	testkit.Eventually(t, "the RequestId of the GenerateToken answer", func() bool {
		return tok.RequestID != "" && slices.Contains(e.requestIDs(emulator.RouteGenerateToken), tok.RequestID)
	})
	m := e.onlyMint(t, "/v1.0/myorg/GenerateToken")
	wantBody := `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}]}`
	if got := string(m.Body); got != wantBody {
		t.Errorf("body = %s\nwant   %s", got, wantBody)
	}
	if got := m.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := m.Header.Get("Authorization"); got != "Bearer" { // the emulator keeps the scheme only
		t.Errorf("Authorization scheme = %q", got)
	}
	if _, ok := m.Header[headerProfileID]; ok {
		t.Errorf("profile header sent without a profile")
	}
	// The token POST had the shape MSAL sends, with the public-cloud scope;
	// Entra checked the secret.
	form := e.tokenForms()[0]
	if form.Get("client_secret") == "" || form.Get("scope") != "https://analysis.windows.net/powerbi/api/.default openid offline_access profile" {
		t.Errorf("token form = %v", form)
	}
}

func TestEntraCalledOnceForManyRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	for range 5 {
		if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1", got)
	}
	if got := e.calls(emulator.RouteOIDC); got != 1 {
		t.Errorf("OIDC GETs = %d, want 1", got)
	}
	if got := e.generatePosts(); got != 5 {
		t.Errorf("GenerateToken POSTs = %d, want 5", got)
	}
}

func TestConcurrentColdRequestsMakeOneTokenPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := e.emu.Gate(emulator.RouteEntraToken)
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
	testkit.Eventually(t, "all callers waiting on one acquisition, held at Entra", func() bool {
		return e.c.cred.sf.waiting.Load() == n && gate.Waiting() > 0
	})
	gate.Open()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1", got)
	}
}

func TestMetadataCachedPerWorkspaceAndProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	ctx := context.Background()
	r := req(repSales, repMkt, repPlain)
	r.Identity = &Identity{Username: "alice@acme.com", Roles: []string{"Customer"}, WithoutRLS: []string{dsPlain}}
	for range 2 {
		if _, err := e.c.Issue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{repSales, repMkt, repPlain} {
		if got := e.gets(groupPath(testWS, "reports", id)); got != 1 {
			t.Errorf("GETs of report %s = %d, want 1", id, got)
		}
	}
	for _, id := range []string{dsRLS, dsPlain} {
		if got := e.gets(groupPath(testWS, "datasets", id)); got != 1 {
			t.Errorf("GETs of dataset %s = %d, want 1", id, got)
		}
	}
	// Another profile sees other content: its own cache entries.
	r.ProfileID = testProfile
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := e.gets(groupPath(testWS, "reports", repSales)); got != 2 {
		t.Errorf("GETs of report after profile change = %d, want 2", got)
	}
	// After the TTL everything is fetched again.
	e.clock.Advance(DefaultMetadataTTL)
	r.ProfileID = ""
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := e.gets(groupPath(testWS, "reports", repSales)); got != 3 {
		t.Errorf("GETs of report after TTL = %d, want 3", got)
	}
	if got := e.gets(groupPath(testWS, "datasets", dsRLS)); got != 3 {
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
	gate := e.emu.Gate(emulator.RouteGetReport)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.c.Issue(context.Background(), req(repPlain)) })
	}
	testkit.Eventually(t, "callers coalesced on one report GET, held at Power BI", func() bool {
		return e.c.metaSF.waiting.Load() == n && gate.Waiting() > 0
	})
	gate.Open()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.gets(groupPath(testWS, "reports", repPlain)); got != 1 {
		t.Errorf("report GETs = %d, want 1", got)
	}
	if got := e.gets(groupPath(testWS, "datasets", dsPlain)); got != 1 {
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
	calls := append(e.recorded(append(getRoutes, modelRoutes...)...), e.mints()...)
	if len(calls) != 4 { // report, dataset, its data sources, the mint
		t.Fatalf("calls = %d, want 4", len(calls))
	}
	for _, c := range calls {
		if got := c.Header.Get(headerProfileID); got != testProfile {
			t.Errorf("%s: X-PowerBI-Profile-Id = %q", c.Route, got)
		}
	}
}

func TestGenerateTokenBody(t *testing.T) {
	t.Parallel()
	// The policy says the Plain report's dataset carries no RLS.
	alice := &Identity{Username: "alice@acme.com", Roles: []string{"Customer"}, CustomData: "acme", WithoutRLS: []string{repPlain}}
	// An Analysis Services model's flags come with capital letters.
	aas := answer(http.StatusOK, `{"id":"`+dsNoRoles+`","name":"AAS","IsEffectiveIdentityRequired":true,"IsEffectiveIdentityRolesRequired":false,"IsOnPremGatewayRequired":false}`)
	tests := []struct {
		name    string
		r       TokenRequest
		dataset *emulator.Answer // what Get Dataset answers, if not the emulator's own
		want    string           // the exact JSON body
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
		name:    "customData omitted when empty; capital-I flags honoured; roles optional there",
		r:       TokenRequest{Items: reports(testWS, repNoRoles), Identity: &Identity{Username: "0b7c9f6e-sp-object-id"}, Lifetime: 90 * time.Second},
		dataset: &aas,
		want:    `{"datasets":[{"id":"` + dsNoRoles + `"}],"reports":[{"id":"` + repNoRoles + `","allowEdit":false}],"identities":[{"username":"0b7c9f6e-sp-object-id","datasets":["` + dsNoRoles + `"]}],"lifetimeInMinutes":1}`,
	}, {
		name: "sub-minute lifetime rounds up to one minute",
		r:    TokenRequest{Items: reports(testWS, repPlain), Lifetime: 10 * time.Second},
		want: `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}],"lifetimeInMinutes":1}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.dataset != nil {
				e.emu.SetAnswer(emulator.RouteGetDataset, *tt.dataset)
			}
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "body", string(e.onlyMint(t, "/v1.0/myorg/GenerateToken").Body), tt.want)
			if len(tok.Items) != len(tt.r.Items) {
				t.Fatalf("items = %d, want %d", len(tok.Items), len(tt.r.Items))
			}
			for i, rep := range tok.Items {
				if rep.ID != tt.r.Items[i].ID || withoutEmbedConfig(rep.EmbedURL) != reportEmbedURL(testWS, rep.ID) || rep.WorkspaceID != testWS {
					t.Errorf("item %d = %+v", i, rep)
				}
			}
			// Plan describes exactly the call that was made.
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if string(p.Body) != tt.want || p.URL != e.emu.URL()+"/v1.0/myorg/GenerateToken" || p.Method != http.MethodPost {
				t.Errorf("plan = %s %s %s", p.Method, p.URL, p.Body)
			}
			if got := e.generatePosts(); got != 1 {
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
		{"identity without username for a paginated report", TokenRequest{Items: reports(testWS, repRDL), Identity: &Identity{Roles: []string{"r"}}}, ErrIdentityRequired},
		{"report without any workspace", TokenRequest{Items: []Item{{Kind: KindReport, ID: repPlain}}}, ErrInvalidRequest},
		{"an RLS tenant on a dataset that enforces no RLS", TokenRequest{Items: reports(testWS, repPlain), Identity: &Identity{Username: "a", Roles: []string{"r"}}}, ErrRLSNotEnforced},
		{"exempting one of two reports on such a dataset", TokenRequest{Items: []Item{rep(testWS, repPlain), rep(testWS, repPlainCopy)},
			Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{repPlain}}}, ErrRLSNotEnforced},
		{"a dashboard with edit", TokenRequest{Items: dashItem(testWS, dashSales), AllowEdit: true}, ErrInvalidRequest},
		{"two dashboards", TokenRequest{Items: append(dashItem(testWS, dashSales), dashItem(testWS, dashSales)...)}, ErrInvalidRequest},
		{"a report and a dashboard", TokenRequest{Items: append(reports(testWS, repPlain), dashItem(testWS, dashSales)...)}, ErrInvalidRequest},
		{"empty target workspace", TokenRequest{Items: reports(testWS, repPlain), TargetWorkspaceIDs: []string{""}}, ErrInvalidRequest},
		{"too many target workspaces", TokenRequest{Items: reports(testWS, repPlain), TargetWorkspaceIDs: slices.Repeat([]string{testWS}, 51)}, ErrTokenLimit},
		{"no reports", TokenRequest{}, ErrInvalidRequest},
		{"too many reports", TokenRequest{Items: reports(testWS, make([]string, 51)...)}, ErrTokenLimit},
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
			if got := e.generatePosts(); got != 0 {
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
	tests := []struct {
		name        string
		route       string // the emulator route that answers
		answer      emulator.Answer
		r           TokenRequest
		wantIs      error
		notIs       []error
		wantAPI     *APIError // nil: no *APIError expected directly
		wantRID     string
		wantRetry   time.Duration
		wantCalls   int // calls of route; negative: at least that many
		wantGenPost int
	}{{
		name: "report not found", route: emulator.RouteGetReport,
		answer: times(1, answer(404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`, "RequestId", "rid-404")),
		r:      req(repPlain), wantIs: ErrNotFound, notIs: []error{ErrUnavailable, ErrNotAuthorized},
		wantAPI: &APIError{Op: "GetReport", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get report failed", RequestID: "rid-404"},
		wantRID: "rid-404", wantCalls: 1,
	}, {
		name: "workspace not authorized (pbi.error shape), again with a fresh Entra token", route: emulator.RouteGetReport,
		answer: times(2, answer(401, notAuthorizedBody, "RequestId", "rid-401")),
		r:      req(repPlain), wantIs: ErrNotAuthorized, notIs: []error{ErrPrincipalNotAllowed},
		wantAPI: &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: "rid-401"},
		wantRID: "rid-401", wantCalls: 2,
	}, {
		name: "service principals blocked by the tenant setting", route: emulator.RouteGetReport,
		answer: times(2, answer(401, notAuthorizedBody, "RequestId", "rid-401s", "X-PowerBI-Error-Info", "ServicePrincipalIsNotAllowedByTenantAdminSwitch")),
		r:      req(repPlain), wantIs: ErrPrincipalNotAllowed, notIs: []error{ErrNotAuthorized},
		wantAPI: &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: "rid-401s", ErrorInfo: "ServicePrincipalIsNotAllowedByTenantAdminSwitch"},
		wantRID: "rid-401s", wantCalls: 2,
	}, {
		name: "dataset not found", route: emulator.RouteGetDataset,
		answer: times(1, answer(404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get dataset failed"}}`, "RequestId", "rid-d404")),
		r:      req(repPlain), wantIs: ErrNotFound,
		wantAPI: &APIError{Op: "GetDataset", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get dataset failed", RequestID: "rid-d404"},
		wantRID: "rid-d404", wantCalls: 1,
	}, {
		name: "Power BI RLS rejection", route: emulator.RouteGenerateToken,
		answer: times(1, answer(400, `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset `+dsPlain+` shouldn't have effective identity"}}`, "RequestId", "rid-400")),
		r:      req(repPlain), wantIs: ErrBadRequest,
		wantAPI: &APIError{Op: "GenerateToken", Status: 400, Code: "InvalidRequest", Message: "Creating embed token for accessing dataset " + dsPlain + " shouldn't have effective identity", RequestID: "rid-400"},
		wantRID: "rid-400", wantCalls: 1, wantGenPost: 1,
	}, {
		name: "403 other than TokenExpired or the quota is forbidden", route: emulator.RouteGenerateToken,
		answer: times(2, answer(403, `{"error":{"code":"Forbidden"}}`, "RequestId", "rid-403")),
		r:      req(repPlain), wantIs: ErrForbidden, notIs: []error{ErrTokenExpired, ErrQuotaExceeded},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "Forbidden", RequestID: "rid-403"},
		wantRID: "rid-403", wantCalls: 2, wantGenPost: 2,
	}, {
		name: "403 of the trial quota", route: emulator.RouteGenerateToken,
		answer: times(2, answer(403, string(errorBody("Forbidden", quotaMessage)), "RequestId", "rid-q")),
		r:      req(repPlain), wantIs: ErrQuotaExceeded, notIs: []error{ErrTokenExpired, ErrForbidden},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "Forbidden", Message: quotaMessage, RequestID: "rid-q", Quota: true},
		wantRID: "rid-q", wantCalls: 2, wantGenPost: 2,
	}, {
		name: "429 seconds, never retried", route: emulator.RouteGenerateToken,
		answer: times(1, answer(429, ``, "RequestId", "rid-429", "Retry-After", "7")),
		r:      req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429", wantRetry: 7 * time.Second, wantCalls: 1, wantGenPost: 1,
	}, {
		name: "429 HTTP date", route: emulator.RouteGetReport,
		answer: times(1, answer(429, ``, "RequestId", "rid-429d", "Retry-After", testStart.Add(2*time.Minute).Format(http.TimeFormat))),
		r:      req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429d", wantRetry: 2 * time.Minute, wantCalls: 1,
	}, {
		name: "429 without Retry-After", route: emulator.RouteGetDataset,
		answer: times(1, answer(429, `{"error":{"code":"TooManyRequests"}}`, "RequestId", "rid-429n")),
		r:      req(repPlain), wantIs: ErrThrottled, wantRID: "rid-429n", wantRetry: 30 * time.Second, wantCalls: 1,
	}, {
		name: "500 is unavailable and not retried", route: emulator.RouteGenerateToken,
		answer: times(1, answer(500, `{"error":{"code":"InternalError","message":"boom"}}`, "RequestId", "rid-500")),
		r:      req(repPlain), wantIs: ErrUnavailable, notIs: []error{ErrBadRequest},
		wantAPI: &APIError{Op: "GenerateToken", Status: 500, Code: "InternalError", Message: "boom", RequestID: "rid-500"},
		wantRID: "rid-500", wantCalls: 1, wantGenPost: 1,
	}, {
		name: "GET 503 three times: two retries then unavailable", route: emulator.RouteGetReport,
		answer: times(3, answer(503, ``, "RequestId", "rid-c")),
		r:      req(repPlain), wantIs: ErrUnavailable, wantRID: "rid-c", wantCalls: 3,
	}, {
		name: "POST 504 twice: one retry then unavailable", route: emulator.RouteGenerateToken,
		answer: times(2, answer(504, ``, "RequestId", "rid-y")),
		r:      req(repPlain), wantIs: ErrUnavailable, wantRID: "rid-y", wantCalls: 2, wantGenPost: 2,
	}, {
		// net/http itself may retry a GET whose reused connection dropped,
		// so the count is at least our 3 attempts.
		name: "GET connection dropped every time", route: emulator.RouteGetReport,
		answer: emulator.Answer{Drop: true}, // every call
		r:      req(repPlain), wantIs: ErrUnavailable, wantCalls: -3,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.emu.SetAnswer(tt.route, tt.answer)
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
			if calls := e.calls(tt.route); calls != tt.wantCalls && (tt.wantCalls > 0 || calls < -tt.wantCalls) {
				t.Errorf("calls of %s = %d, want %d", tt.route, calls, tt.wantCalls)
			}
			if got := e.generatePosts(); got != tt.wantGenPost {
				t.Errorf("GenerateToken POSTs = %d, want %d", got, tt.wantGenPost)
			}
			if strings.Contains(err.Error(), "Bearer") || strings.Contains(err.Error(), "eyJ") {
				t.Errorf("error leaks a token: %v", err)
			}
		})
	}
}

// TestPowerBIRefusals: what Power BI's own rules refuse (roles, the tenant
// setting, profiles, unknown items) comes back typed, with Power BI's
// RequestId; refusals of the token are tried once more with a fresh one.
func TestPowerBIRefusals(t *testing.T) {
	t.Parallel()
	locked := withConfig(func(c *Config) {
		c.TenantID, c.ClientID, c.ClientSecretFile = lockedTenant, lockedClient, writeFile(t, "locked", lockedSecret)
	})
	const unknownWS = "00000000-0000-4000-8000-0000000000ee"
	const unknownReport = "00000000-0000-4000-8000-0000000000ff"
	tests := []struct {
		name      string
		opts      []envOption
		r         TokenRequest
		wantIs    error
		notIs     []error
		wantAPI   *APIError // RequestID aside
		wantCalls map[string]int
	}{{
		name:    "a workspace the service principal has no role in",
		r:       TokenRequest{Items: reports(unknownWS, repPlain)},
		wantIs:  ErrNotAuthorized,
		notIs:   []error{ErrPrincipalNotAllowed, ErrNotFound},
		wantAPI: &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException"},
		// Asked again with a fresh Entra token, which Entra issued.
		wantCalls: map[string]int{emulator.RouteGetReport: 2, emulator.RouteEntraToken: 2},
	}, {
		name:      "a profile without a role in the workspace",
		r:         TokenRequest{ProfileID: testProfile, Items: reports(trialWS, repTrial)},
		wantIs:    ErrNotAuthorized,
		wantAPI:   &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException"},
		wantCalls: map[string]int{emulator.RouteGetReport: 2},
	}, {
		name:      "service principals kept out by the tenant setting",
		opts:      []envOption{locked},
		r:         req(repPlain),
		wantIs:    ErrPrincipalNotAllowed,
		notIs:     []error{ErrNotAuthorized},
		wantAPI:   &APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", ErrorInfo: "ServicePrincipalIsNotAllowedByTenantAdminSwitch"},
		wantCalls: map[string]int{emulator.RouteGetReport: 2},
	}, {
		name:      "an unknown report",
		r:         req(unknownReport),
		wantIs:    ErrNotFound,
		notIs:     []error{ErrNotAuthorized},
		wantAPI:   &APIError{Op: "GetReport", Status: 404, Code: "PowerBIEntityNotFound"},
		wantCalls: map[string]int{emulator.RouteGetReport: 1, emulator.RouteEntraToken: 1},
	}, {
		name:    "a Viewer may read a workspace, not embed from it",
		r:       TokenRequest{Items: reports(viewWS, repView)},
		wantIs:  ErrForbidden,
		notIs:   []error{ErrQuotaExceeded, ErrTokenExpired},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "InsufficientPermissions"},
		// Refused twice, then the trial usage is asked, to tell the quota
		// from a missing permission.
		wantCalls: map[string]int{emulator.RouteGenerateToken: 2, emulator.RouteAvailableFeatures: 1},
	}, {
		name:    "a 403 that does not name the quota, with the trial tokens used up",
		opts:    []envOption{withFaults(emulator.Faults{TrialUsage: 100})},
		r:       TokenRequest{Items: reports(viewWS, repView)},
		wantIs:  ErrQuotaExceeded,
		notIs:   []error{ErrForbidden},
		wantAPI: &APIError{Op: "GenerateToken", Status: 403, Code: "InsufficientPermissions", Quota: true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts...)
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			for _, n := range tt.notIs {
				if errors.Is(err, n) {
					t.Errorf("err %v also matches %v", err, n)
				}
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %T is not an *APIError", err)
			}
			if ae.RequestID == "" {
				t.Errorf("no RequestId in %v", err)
			}
			if diff := cmp.Diff(tt.wantAPI, ae, cmpopts.IgnoreFields(APIError{}, "RequestID", "Message")); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			for route, want := range tt.wantCalls {
				if got := e.calls(route); got != want {
					t.Errorf("calls of %s = %d, want %d", route, got, want)
				}
			}
		})
	}
}

// TestTrialQuota: on shared capacity each token spends one of the
// principal's trial tokens; once they are used up, Power BI refuses to mint
// and the error says so.
func TestTrialQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // every request mints
	r := TokenRequest{Items: reports(trialWS, repTrial)}
	for i := range 2 { // the world's trial_token_limit
		if _, err := e.c.Issue(context.Background(), r); err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
	}
	_, err := e.c.Issue(context.Background(), r)
	var ae *APIError
	if !errors.Is(err, ErrQuotaExceeded) || errors.Is(err, ErrForbidden) || !errors.As(err, &ae) {
		t.Fatalf("err = %v, want ErrQuotaExceeded", err)
	}
	if ae.Status != http.StatusForbidden || !ae.Quota || !strings.Contains(ae.Message, "exceeded the amount of embed token") {
		t.Errorf("APIError = %+v", ae)
	}
	// The other workspaces, on dedicated capacity, are not limited.
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
		t.Errorf("a dedicated-capacity token after the quota: %v", err)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		route  string
		answer emulator.Answer
		want   int // calls of route
	}{
		{"GET 503 then OK", emulator.RouteGetReport, times(1, answer(503, "")), 2},
		{"GET 502 twice then OK", emulator.RouteGetDataset, times(2, answer(502, "")), 3},
		{"GET 504 then OK", emulator.RouteGetDataset, times(1, answer(504, "")), 2},
		{"POST 503 then OK", emulator.RouteGenerateToken, times(1, answer(503, "")), 2},
		{"POST connection reset then OK", emulator.RouteGenerateToken, dropped(1), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.emu.SetAnswer(tt.route, tt.answer)
			if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
				t.Fatal(err)
			}
			if got := e.calls(tt.route); got != tt.want {
				t.Errorf("calls = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestTokenExpiredRetriedOnceWithFreshToken: Power BI's clock says the Entra
// token has expired while the gateway's does not; one fresh token fixes it.
func TestTokenExpiredRetriedOnceWithFreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // the second request must reach Power BI
	ctx := context.Background()
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	e.upstreamAhead(2 * time.Hour)
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2 (one forced refresh)", got)
	}
	if got := e.calls(emulator.RouteGetReport); got != 2 {
		t.Errorf("report GETs = %d, want 2 (refused, then retried)", got)
	}
	// The fresh token then serves the next request.
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want still 2", got)
	}
}

func TestTokenExpiredSurfacesWhenEntraReturnsSameToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Fatal(err)
	}
	stale := e.emu.AccessTokens()[0]
	e.upstreamAhead(2 * time.Hour) // expired, for Power BI
	body, _ := json.Marshal(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": stale})
	e.emu.SetAnswer(emulator.RouteEntraToken, emulator.Answer{Body: body}) // every call
	_, err := e.c.Issue(context.Background(), req(repPlain))
	if !errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("err = %v, want ErrTokenExpired", err)
	}
	// The forced refresh brought the same token back: no point in retrying.
	if got, want := e.totalGets(), 1; got != want {
		t.Errorf("report GETs = %d, want %d", got, want)
	}
	if got := e.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2 (first + forced refresh)", got)
	}
}

func TestEntraErrors(t *testing.T) {
	t.Parallel()
	const wrongSecret = "secret-id-not-value"
	unavailable := `{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred."}`
	tests := []struct {
		name   string
		opts   []envOption
		entra  *emulator.Answer // what Entra answers, if not by its own rules
		wantIs error
		// wantCE is the error, but for its correlation id: the
		// client-request-id MSAL sent.
		wantCE *CredentialError
	}{{
		name:   "wrong secret",
		opts:   []envOption{withConfig(func(c *Config) { c.ClientSecretFile = writeFile(t, "bad", wrongSecret) })},
		wantIs: ErrCredential,
		wantCE: &CredentialError{Status: 401, Code: "invalid_client", ErrorCodes: []int{7000215},
			Description: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + testClientID + "'.",
			Hint:        "Entra refused the client secret: FILE must hold the secret's Value (shown once, when it is created), not its Secret ID"},
	}, {
		name:   "unknown app",
		opts:   []envOption{withConfig(func(c *Config) { c.ClientID = "00000000-0000-0000-0000-000000000001" })},
		wantIs: ErrCredential,
	}, {
		name:   "entra 503",
		entra:  new(times(2, answer(503, unavailable))), // MSAL does not retry: one per call below
		wantIs: ErrUnavailable,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts...)
			if tt.entra != nil {
				e.emu.SetAnswer(emulator.RouteEntraToken, *tt.entra)
			}
			err := e.c.CheckCredential(context.Background())
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if _, gerr := e.c.Issue(context.Background(), req(repPlain)); !errors.Is(gerr, tt.wantIs) {
				t.Errorf("GenerateToken err = %v, want %v", gerr, tt.wantIs)
			}
			if n := e.powerBICalls(); n != 0 {
				t.Errorf("Power BI called %d times without a token", n)
			}
			if tt.wantIs == ErrCredential && e.tokenPosts() != 1 {
				t.Errorf("token POSTs = %d, want 1 (a rejection is held for %s)", e.tokenPosts(), rejectionHold)
			}
			if tt.wantCE != nil {
				var ce *CredentialError
				if !errors.As(err, &ce) {
					t.Fatalf("err %T is not a *CredentialError", err)
				}
				want := *tt.wantCE
				want.CorrelationID = e.recorded(emulator.RouteEntraToken)[0].Header.Get("client-request-id")
				got := *ce
				got.Hint = strings.ReplaceAll(got.Hint, e.cfg.ClientSecretFile, "FILE")
				if diff := cmp.Diff(want, got); diff != "" || want.CorrelationID == "" {
					t.Errorf("CredentialError (-want +got):\n%s", diff)
				}
			}
			for _, leak := range []string{testSecret, wrongSecret} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("secret leaked in the error")
				}
			}
			e.checkNoSecretsLogged(t, wrongSecret)
		})
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	const rotated = "rotated-secret-value-2"
	// The app's old secret expires ten minutes in; the new one is already
	// registered, as an operator rotates.
	e := newEnv(t, withoutTokenCache, withWorld(func(f *emulator.Fixture) {
		f.Tenants[0].Apps[0].Secrets = []emulator.Secret{{Value: testSecret, Expires: testStart.Add(10 * time.Minute)}, {Value: rotated}}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- e.c.Watch(ctx) }()
	defer func() { cancel(); <-watched }()
	if _, err := e.c.Issue(ctx, req(repPlain)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute) // Entra refuses the old secret from now on
	if err := writeFileAt(e.cfg.ClientSecretFile, rotated+"\n"); err != nil {
		t.Fatal(err)
	}
	// The watch reloads the file; the next call signs in with the new
	// secret, the only one Entra still accepts.
	testkit.Eventually(t, "a sign-in with the rotated secret", func() bool {
		if err := e.c.CheckCredential(ctx); err != nil {
			t.Fatal(err)
		}
		return e.tokenPosts() == 2
	})
	if got := len(e.emu.AccessTokens()); got != 2 {
		t.Errorf("Entra issued %d tokens, want 2", got)
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
	if got := e.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2", got)
	}
	e.checkNoSecretsLogged(t, rotated)
}

func TestCertificateCredential(t *testing.T) {
	t.Parallel()
	certPEM := selfSignedPEM(t)
	cert, _, _ := strings.Cut(certPEM, "-----BEGIN PRIVATE KEY-----")
	e := newEnv(t,
		startingAt(time.Now()), // MSAL signs its assertion on the real clock
		withWorld(func(f *emulator.Fixture) { f.Tenants[0].Apps[0].Certificates = []string{cert} }),
		withConfig(func(c *Config) { c.ClientSecretFile, c.CertificateFile = "", writeFile(t, "cert.pem", certPEM) }))
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Fatal(err) // Entra checked the assertion's signature against the registered certificate
	}
	form := e.tokenForms()[0]
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_assertion") == "" || form.Has("client_secret") {
		t.Errorf("token form = %v", form)
	}
}

func TestFederatedTokenReadOnEachAssertion(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const issuer, subject = "https://oidc.cluster.test/embedgate", "system:serviceaccount:embedgate:embedgate"
	// The first token expires before the gateway needs a second Entra
	// token: reusing it would be refused.
	first := federatedToken(t, key, issuer, subject, testStart.Add(100*time.Second))
	second := federatedToken(t, key, issuer, subject, testStart.Add(time.Hour))
	path := writeFile(t, "azure-identity-token", first+"\n")
	e := newEnv(t,
		withFaults(emulator.Faults{TokenLifetime: 200 * time.Second}), // MSAL never caches tokens living <= 5 min; the gateway does
		withWorld(func(f *emulator.Fixture) {
			f.Tenants[0].Apps[0].FederatedCredentials = []emulator.FederatedCredential{{
				Name: "aks", Issuer: issuer, Subject: subject, SigningKey: publicKeyPEM(t, &key.PublicKey)}}
		}),
		withConfig(func(c *Config) { c.ClientSecretFile, c.FederatedTokenFile = "", path }))
	ctx := context.Background()
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAt(path, second); err != nil {
		t.Fatal(err)
	}
	// The token in use is reused while it lives (200 s, less a quarter of
	// its life); the next acquisition reads the rotated file.
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1 while the token lives", got)
	}
	e.clock.Advance(160 * time.Second)
	if err := e.c.CheckCredential(ctx); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	if got := e.tokenPosts(); got != 2 {
		t.Errorf("token POSTs = %d, want 2", got)
	}
}

func TestGenerateTokenRejectedForgetsMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.emu.SetAnswer(emulator.RouteGenerateToken, times(1, answer(400, `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset x requires effective identity to be provided"}}`)))
	if _, err := e.c.Issue(context.Background(), req(repPlain)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.gets(groupPath(testWS, "datasets", dsPlain)); got != 2 {
		t.Errorf("dataset GETs = %d, want 2 (refetched after the 400)", got)
	}
}

func TestNetworkErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	dead, err := emulator.Start(context.Background(), emulator.Config{Fixture: testWorld(t)})
	if err != nil {
		t.Fatal(err)
	}
	deadURL := dead.URL()
	dead.Close()
	e := newEnv(t, withConfig(func(c *Config) { c.APIURL = deadURL }))
	_, err = e.c.Issue(context.Background(), req(repPlain))
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
	e.emu.SetAnswer(emulator.RouteGetReport, times(1, answer(404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`, "RequestId", "rid-log")))
	_, _ = e.c.Issue(context.Background(), req(repPlain))
	tok, err := e.c.Issue(context.Background(), req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	e.checkNoSecretsLogged(t, tok.Token)
	logs := e.logs.String()
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
		t.Errorf("no log record with pbi_request_id rid-log, op GetReport and status 404")
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
	if n := e.gets(groupPath(testSharedWS, "datasets", dsShared)); n != 1 {
		t.Errorf("GETs of the dataset in its own workspace = %d, want 1", n)
	}
}

func TestCredentialRejectionHeldThenRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.ClientSecretFile = writeFile(t, "bad", "wrong") }))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := e.c.CheckCredential(ctx); !errors.Is(err, ErrCredential) {
			t.Fatalf("err = %v, want ErrCredential", err)
		}
	}
	if got := e.tokenPosts(); got != 1 {
		t.Errorf("token POSTs = %d, want 1 while the rejection is held", got)
	}
	e.clock.Advance(rejectionHold)
	if err := e.c.CheckCredential(ctx); !errors.Is(err, ErrCredential) {
		t.Fatalf("err = %v, want ErrCredential", err)
	}
	if got := e.tokenPosts(); got != 2 {
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
