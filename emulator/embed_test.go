package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEmbedPagesAtEmbedURLs: the embed URL Get Report and Get Dashboard
// return, with Power BI's origin replaced by the emulator's, opens the
// emulator's page of that kind.
func TestEmbedPagesAtEmbedURLs(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/" + wsAcme
	tests := []struct{ name, item, wantKind, wantRoute string }{
		{"report", g + "/reports/" + repSales, pageReport, RouteReportEmbed},
		{"paginated report", g + "/reports/" + repInvoices, pagePaginated, RouteRDLEmbed},
		{"dashboard", g + "/dashboards/" + dashAcme, pageDashboard, RouteDashboardEmbed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			embedURL, _ := call(t, hc, "GET", tc.item, tok, nil).body["embedUrl"].(string)
			page, ok := strings.CutPrefix(embedURL, appBaseURL)
			if !ok {
				t.Fatalf("embedUrl %q is not on %s", embedURL, appBaseURL)
			}
			before := srv.Counters()[tc.wantRoute]
			r := call(t, hc, "GET", srv.URL()+page, "", nil)
			if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET %s: %d %s", page, r.status, r.header.Get("Content-Type"))
			}
			if !strings.Contains(string(r.raw), `<body data-kind="`+tc.wantKind+`">`) {
				t.Errorf("GET %s is not the %s page", page, tc.wantKind)
			}
			if r.header.Get("X-Frame-Options") != "" || r.header.Get("RequestId") == "" || r.header.Get("X-Ms-Request-Id") != "" {
				t.Errorf("headers %v: want framable, with Power BI's RequestId", r.header)
			}
			if after := srv.Counters()[tc.wantRoute]; after != before+1 {
				t.Errorf("route %s counted %d calls, want %d", tc.wantRoute, after, before+1)
			}
		})
	}
}

// TestExplore: what an embed page learns with an embed token is what the
// token grants, looked up in the token store; other tokens are refused as
// the page reports them (TokenExpired once expired).
func TestExplore(t *testing.T) {
	clock := newClock()
	srv := startServer(t, Config{Now: clock.Now})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/" + wsAcme
	mint := func(url string, body map[string]any) (token, id string) {
		t.Helper()
		r := call(t, hc, "POST", url, tok, body)
		if r.status != http.StatusOK {
			t.Fatalf("POST %s: %d %s", url, r.status, r.raw)
		}
		return r.body["token"].(string), r.body["tokenId"].(string)
	}
	alice := map[string]any{"username": "alice@acme.example", "roles": []string{"Customer"}, "customData": "acme", "datasets": []string{dsSales}}
	v2, v2ID := mint(srv.URL()+"/v1.0/myorg/GenerateToken", map[string]any{
		"reports": []any{map[string]any{"id": repSales}}, "datasets": []any{map[string]any{"id": dsSales}},
		"identities": []any{alice}, "lifetimeInMinutes": 10})
	inventory, _ := mint(g+"/reports/"+repInventory+"/GenerateToken", map[string]any{"accessLevel": "View"})
	invoices, _ := mint(g+"/reports/"+repInvoices+"/GenerateToken", map[string]any{"accessLevel": "View"})
	dashboard, _ := mint(g+"/dashboards/"+dashAcme+"/GenerateToken", map[string]any{"accessLevel": "View", "identities": []any{alice}})

	aliceSeen := []exploreIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "acme"}}
	reports, dashboards := srv.URL()+"/explore/reports/", srv.URL()+"/explore/dashboards/"
	tests := []struct {
		name, url, auth string
		wantStatus      int
		wantCode        string
		want            exploreAnswer // ID, Name, Type, WorkspaceName, Identities
	}{
		{"a V2 token opens its report, seen as its identity", reports + repSales, "EmbedToken " + v2, 200, "",
			exploreAnswer{ID: repSales, Name: "Sales", Type: "PowerBIReport", WorkspaceName: "Acme Analytics", Identities: aliceSeen}},
		{"in its workspace", reports + repSales + "?groupId=" + wsAcme, "EmbedToken " + v2, 200, "",
			exploreAnswer{ID: repSales, Name: "Sales", Type: "PowerBIReport", WorkspaceName: "Acme Analytics", Identities: aliceSeen}},
		{"a V1 report token, no RLS", reports + repInventory, "EmbedToken " + inventory, 200, "",
			exploreAnswer{ID: repInventory, Name: "Inventory", Type: "PowerBIReport", WorkspaceName: "Acme Analytics", Identities: []exploreIdentity{}}},
		{"a paginated report", reports + repInvoices, "embedtoken " + invoices, 200, "",
			exploreAnswer{ID: repInvoices, Name: "Invoices", Type: "PaginatedReport", WorkspaceName: "Acme Analytics", Identities: []exploreIdentity{}}},
		{"a dashboard token", dashboards + dashAcme, "EmbedToken " + dashboard, 200, "",
			exploreAnswer{ID: dashAcme, Name: "Acme Overview", Type: "Dashboard", WorkspaceName: "Acme Analytics", Identities: aliceSeen}},
		{"another workspace", reports + repSales + "?groupId=" + wsGlobex, "EmbedToken " + v2, 404, "PowerBIEntityNotFound", exploreAnswer{}},
		{"a token for another report", reports + repInventory, "EmbedToken " + v2, 403, "PowerBINotAuthorizedException", exploreAnswer{}},
		{"a report token on a dashboard", dashboards + dashAcme, "EmbedToken " + v2, 403, "PowerBINotAuthorizedException", exploreAnswer{}},
		{"a dashboard token on a report", reports + repSales, "EmbedToken " + dashboard, 403, "PowerBINotAuthorizedException", exploreAnswer{}},
		{"an Entra token (tokenType Aad)", reports + repSales, "Bearer " + tok, 403, "PowerBINotAuthorizedException", exploreAnswer{}},
		{"a token this Power BI never issued", reports + repSales, "EmbedToken H4sIAAAAAAAA", 403, "PowerBINotAuthorizedException", exploreAnswer{}},
		{"no token", reports + repSales, "", 403, "PowerBINotAuthorizedException", exploreAnswer{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, hc, "GET", tc.url, "", nil, "Authorization", tc.auth)
			if r.status != tc.wantStatus || errorCode(r) != tc.wantCode {
				t.Fatalf("GET %s: %d %s, want %d %s", tc.url, r.status, r.raw, tc.wantStatus, tc.wantCode)
			}
			if tc.wantStatus != http.StatusOK {
				return
			}
			var got exploreAnswer
			if err := json.Unmarshal(r.raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.TokenID == "" || got.Expiration.IsZero() || got.WorkspaceID != wsAcme {
				t.Errorf("answer %s lacks the token or workspace", r.raw)
			}
			got.TokenID, got.Expiration, got.ExpiresInMs, got.WorkspaceID = "", time.Time{}, 0, ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", tc.url, diff)
			}
		})
	}

	// The token's time left, on the emulator's clock; then expiry.
	r := call(t, hc, "GET", reports+repSales, "", nil, "Authorization", "EmbedToken "+v2)
	var a exploreAnswer
	if err := json.Unmarshal(r.raw, &a); err != nil {
		t.Fatal(err)
	}
	if a.TokenID != v2ID || a.ExpiresInMs != (10*time.Minute).Milliseconds() {
		t.Errorf("token %s with %d ms left, want %s with 10 minutes", a.TokenID, a.ExpiresInMs, v2ID)
	}
	clock.Advance(10 * time.Minute)
	r = call(t, hc, "GET", reports+repSales, "", nil, "Authorization", "EmbedToken "+v2)
	if r.status != http.StatusForbidden || errorCode(r) != "TokenExpired" || errorMessage(r) != "Access token has expired, resubmit with a new access token" {
		t.Errorf("an expired token: %d %s", r.status, r.raw)
	}

	// What the route recorded: the scheme, never the token.
	for _, rec := range srv.Requests(RouteExploreReport) {
		if auth := rec.Header.Get("Authorization"); auth != "" && strings.ToLower(auth) != "embedtoken" && auth != "Bearer" {
			t.Errorf("recorded Authorization %q", auth)
		}
	}
}
