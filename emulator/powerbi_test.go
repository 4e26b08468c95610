package emulator

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPowerBIGetRoutes(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/"
	tests := []struct {
		name       string
		url        string
		headers    []string
		wantStatus int
		wantCode   string
		want       map[string]any
	}{
		{"report", g + wsAcme + "/reports/" + repSales, nil, 200, "", map[string]any{
			"id": repSales, "name": "Sales", "datasetId": dsSales, "reportType": "PowerBIReport",
			"datasetWorkspaceId": wsAcme, "isFromPbix": true,
			"webUrl": "https://app.powerbi.com/groups/" + wsAcme + "/reports/" + repSales}},
		{"paginated report has no dataset", g + wsAcme + "/reports/" + repInvoices, nil, 200, "", map[string]any{
			"id": repInvoices, "reportType": "PaginatedReport", "datasetId": nil}},
		{"dataset", g + wsAcme + "/datasets/" + dsSales, nil, 200, "", map[string]any{
			"id": dsSales, "name": "Sales Model", "isEffectiveIdentityRequired": true,
			"isEffectiveIdentityRolesRequired": true, "isOnPremGatewayRequired": false, "targetStorageMode": "Abf"}},
		{"dataset without RLS", g + wsAcme + "/datasets/" + dsInventory, nil, 200, "", map[string]any{
			"isEffectiveIdentityRequired": false, "isEffectiveIdentityRolesRequired": false}},
		{"dashboard", g + wsAcme + "/dashboards/" + dashAcme, nil, 200, "", map[string]any{
			"id": dashAcme, "displayName": "Acme Overview", "isReadOnly": false}},
		{"tile", g + wsAcme + "/dashboards/" + dashAcme + "/tiles/" + tileRevenue, nil, 200, "", map[string]any{
			"id": tileRevenue, "title": "Revenue", "reportId": repSales, "datasetId": dsSales}},
		{"profile workspace with its profile", g + wsGlobex + "/reports/" + repGlobex, []string{"X-PowerBI-Profile-Id", globexProf}, 200, "", map[string]any{"id": repGlobex}},
		{"profile workspace without header", g + wsGlobex + "/reports/" + repGlobex, nil, 401, "PowerBINotAuthorizedException", nil},
		{"profile workspace, other profile", g + wsGlobex + "/reports/" + repGlobex, []string{"X-PowerBI-Profile-Id", "f0000000-0000-4000-8000-000000000999"}, 401, "PowerBINotAuthorizedException", nil},
		{"a profile acts as itself: its parent's workspace is not its own", g + wsAcme + "/reports/" + repSales, []string{"X-PowerBI-Profile-Id", globexProf}, 401, "PowerBINotAuthorizedException", nil},
		{"not a member", g + wsFinance + "/reports/" + repLedger, nil, 401, "PowerBINotAuthorizedException", nil},
		{"unknown group", g + "00000000-0000-4000-8000-000000000000/reports/" + repSales, nil, 401, "PowerBINotAuthorizedException", nil},
		{"report of another group", g + wsPortal + "/reports/" + repSales, nil, 404, "PowerBIEntityNotFound", nil},
		{"unknown report", g + wsAcme + "/reports/a1000000-0000-4000-8000-0000000000ff", nil, 404, "PowerBIEntityNotFound", nil},
		{"unknown dataset", g + wsAcme + "/datasets/nope", nil, 404, "PowerBIEntityNotFound", nil},
		{"unknown tile", g + wsAcme + "/dashboards/" + dashAcme + "/tiles/" + dashAcme, nil, 404, "PowerBIEntityNotFound", nil},
		{"no Authorization", g + wsAcme + "/reports/" + repSales, []string{"Authorization", ""}, 403, "", nil},
		{"garbage token", g + wsAcme + "/reports/" + repSales, []string{"Authorization", "Bearer abc.def.ghi"}, 403, "", nil},
		{"basic scheme", g + wsAcme + "/reports/" + repSales, []string{"Authorization", "Basic Zm9vOmJhcg=="}, 403, "", nil},
		{"trial usage", srv.URL() + "/v1.0/myorg/availableFeatures(featureName='embedTrial')", nil, 200, "", map[string]any{
			"name": "embedTrial", "state": "Enabled", "extendedState": "Enabled"}},
		{"unknown feature", srv.URL() + "/v1.0/myorg/availableFeatures(featureName='nope')", nil, 404, "PowerBIEntityNotFound", nil},
		{"unknown route", srv.URL() + "/v1.0/myorg/nothing", nil, 404, "PowerBIEntityNotFound", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "GET", tc.url, tok, nil, tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if !isUUID(r.header.Get("RequestId")) {
				t.Errorf("RequestId header = %q", r.header.Get("RequestId"))
			}
			if tc.wantCode != "" && errorCode(r) != tc.wantCode {
				t.Errorf("error code %q, want %q (%s)", errorCode(r), tc.wantCode, r.raw)
			}
			if tc.wantCode == "PowerBINotAuthorizedException" || tc.wantCode == "PowerBIEntityNotFound" {
				if got, want := strings.TrimSpace(string(r.raw)), pbiErrorBody(tc.wantCode); got != want {
					t.Errorf("body %s\nwant %s", got, want)
				}
			}
			for k, v := range tc.want {
				if got := r.body[k]; got != v {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
		})
	}
}

// TestListDashboardsAndTiles: Get Dashboards In Group and Get Tiles In
// Group, with the auth, membership, profile and 404 rules of the other GETs.
func TestListDashboardsAndTiles(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/"
	tiles := g + wsAcme + "/dashboards/" + dashAcme + "/tiles"
	tests := []struct {
		name       string
		url        string
		headers    []string
		wantStatus int
		wantCode   string
		wantIDs    []string
		wantRoute  string
	}{
		{"dashboards", g + wsAcme + "/dashboards", nil, 200, "", []string{dashAcme}, RouteGetDashboards},
		{"no dashboards", g + wsAcmeFin + "/dashboards", nil, 200, "", []string{}, RouteGetDashboards},
		{"dashboards, profile workspace", g + wsGlobex + "/dashboards", []string{"X-PowerBI-Profile-Id", globexProf}, 200, "", []string{}, RouteGetDashboards},
		{"dashboards, profile workspace without header", g + wsGlobex + "/dashboards", nil, 401, "PowerBINotAuthorizedException", nil, RouteGetDashboards},
		{"dashboards, not a member", g + wsFinance + "/dashboards", nil, 401, "PowerBINotAuthorizedException", nil, RouteGetDashboards},
		{"dashboards, unknown group", g + "00000000-0000-4000-8000-000000000000/dashboards", nil, 401, "PowerBINotAuthorizedException", nil, RouteGetDashboards},
		{"dashboards, no Authorization", g + wsAcme + "/dashboards", []string{"Authorization", ""}, 403, "", nil, RouteGetDashboards},
		{"tiles", tiles, nil, 200, "", []string{tileRevenue, tileStock}, RouteGetTiles},
		{"tiles, dashboard id in another case", g + wsAcme + "/dashboards/" + strings.ToUpper(dashAcme) + "/tiles", nil, 200, "", []string{tileRevenue, tileStock}, RouteGetTiles},
		{"tiles, unknown dashboard", g + wsAcme + "/dashboards/" + tileRevenue + "/tiles", nil, 404, "PowerBIEntityNotFound", nil, RouteGetTiles},
		{"tiles, dashboard of another group", g + wsPortal + "/dashboards/" + dashAcme + "/tiles", nil, 404, "PowerBIEntityNotFound", nil, RouteGetTiles},
		{"tiles, not a member", g + wsFinance + "/dashboards/" + dashAcme + "/tiles", nil, 401, "PowerBINotAuthorizedException", nil, RouteGetTiles},
		{"tiles, garbage token", tiles, []string{"Authorization", "Bearer abc.def.ghi"}, 403, "", nil, RouteGetTiles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, hc, "GET", tc.url, tok, nil, tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if !isUUID(r.header.Get("RequestId")) {
				t.Errorf("RequestId header = %q", r.header.Get("RequestId"))
			}
			if tc.wantCode != "" && errorCode(r) != tc.wantCode {
				t.Errorf("error code %q, want %q (%s)", errorCode(r), tc.wantCode, r.raw)
			}
			if tc.wantIDs == nil {
				return
			}
			if ctx, _ := r.body["@odata.context"].(string); !strings.HasPrefix(ctx, "http://wabi-") {
				t.Errorf("@odata.context = %q", ctx)
			}
			value, ok := r.body["value"].([]any)
			if !ok || len(value) != len(tc.wantIDs) {
				t.Fatalf("value: %s", r.raw)
			}
			for i, v := range value {
				if id := v.(map[string]any)["id"]; id != tc.wantIDs[i] {
					t.Errorf("value[%d].id = %v, want %s", i, id, tc.wantIDs[i])
				}
			}
		})
	}
	// Every call is counted, refused ones included.
	for _, route := range []string{RouteGetDashboards, RouteGetTiles} {
		want := 0
		for _, tc := range tests {
			if tc.wantRoute == route {
				want++
			}
		}
		if got := srv.Counters()[route]; got != int64(want) {
			t.Errorf("Counters()[%s] = %d, want %d", route, got, want)
		}
	}
}

// TestListItemShapes: list entries are the objects the single GETs return.
func TestListItemShapes(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/" + wsAcme
	tests := []struct {
		name, list, item string
		index            int
		want             map[string]any
	}{
		{"dashboard", g + "/dashboards", g + "/dashboards/" + dashAcme, 0, map[string]any{
			"id": dashAcme, "displayName": "Acme Overview", "isReadOnly": false,
			"webUrl": "https://app.powerbi.com/groups/" + wsAcme + "/dashboards/" + dashAcme}},
		{"tile", g + "/dashboards/" + dashAcme + "/tiles", g + "/dashboards/" + dashAcme + "/tiles/" + tileStock, 1, map[string]any{
			"id": tileStock, "title": "Stock", "reportId": repInventory, "datasetId": dsInventory,
			"embedData": "{}", "rowSpan": 0.0, "colSpan": 0.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			list := call(t, hc, "GET", tc.list, tok, nil)
			single := call(t, hc, "GET", tc.item, tok, nil)
			value, _ := list.body["value"].([]any)
			if list.status != 200 || single.status != 200 || len(value) <= tc.index {
				t.Fatalf("list %d %s; item %d %s", list.status, list.raw, single.status, single.raw)
			}
			entry := value[tc.index].(map[string]any)
			for k, v := range tc.want {
				if entry[k] != v {
					t.Errorf("list %s = %v, want %v", k, entry[k], v)
				}
			}
			delete(single.body, "@odata.context")
			if diff := cmp.Diff(single.body, entry); diff != "" {
				t.Errorf("list entry differs from the single GET (-single +list):\n%s", diff)
			}
		})
	}
}

func TestEmbedURLs(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/" + wsAcme
	tests := []struct{ name, url, wantPrefix string }{
		{"report", g + "/reports/" + repSales, "https://app.powerbi.com/reportEmbed?reportId=" + repSales + "&groupId=" + wsAcme + "&w=2&config="},
		{"paginated", g + "/reports/" + repInvoices, "https://app.powerbi.com/rdlEmbed?reportId=" + repInvoices + "&groupId=" + wsAcme + "&w=2&config="},
		{"dashboard", g + "/dashboards/" + dashAcme, "https://app.powerbi.com/dashboardEmbed?dashboardId=" + dashAcme + "&groupId=" + wsAcme + "&w=2&config="},
		{"tile", g + "/dashboards/" + dashAcme + "/tiles/" + tileRevenue, "https://app.powerbi.com/embed?dashboardId=" + dashAcme + "&tileId=" + tileRevenue + "&groupId=" + wsAcme + "&w=2&config="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "GET", tc.url, tok, nil)
			u, _ := r.body["embedUrl"].(string)
			if !strings.HasPrefix(u, tc.wantPrefix) {
				t.Fatalf("embedUrl %q, want prefix %q", u, tc.wantPrefix)
			}
			parsed, _ := url.Parse(u)
			cfg, err := base64.StdEncoding.DecodeString(parsed.Query().Get("config"))
			if err != nil || !strings.Contains(string(cfg), `"clusterUrl":"https://WABI-`) || !strings.Contains(string(cfg), `"modernEmbed":true`) {
				t.Errorf("config %q (%v)", cfg, err)
			}
		})
	}
	r := call(t, hc, "GET", g+"/reports", tok, nil)
	if v, _ := r.body["value"].([]any); len(v) != 3 {
		t.Errorf("reports list: %s", r.raw)
	}
}

func TestExpiredAndForeignTokens(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	u := srv.URL() + "/v1.0/myorg/groups/" + wsAcme + "/reports/" + repSales
	if r := call(t, hc, "GET", u, tok, nil); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.raw)
	}
	// A token for another resource is refused by Power BI.
	graph := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {demoClient},
		"client_secret": {demoSecret}, "scope": {"https://graph.microsoft.com/.default"}})
	if r := call(t, hc, "GET", u, graph.body["access_token"].(string), nil); r.status != 403 {
		t.Errorf("graph token: %d %s", r.status, r.raw)
	}
	// A token signed by another emulator is refused.
	other := shared(t)
	if r := call(t, hc, "GET", u, entraToken(t, other, httpClient(t, other)), nil); r.status != 403 {
		t.Errorf("foreign token: %d %s", r.status, r.raw)
	}
	clk.Advance(3599 * time.Second)
	r := call(t, hc, "GET", u, tok, nil)
	want := `{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}`
	if r.status != 403 || strings.TrimSpace(string(r.raw)) != want {
		t.Errorf("expired: %d %s", r.status, r.raw)
	}
	if !isUUID(r.header.Get("RequestId")) {
		t.Error("no RequestId on the error")
	}
}

// TestPlainHTTPRefused: there is no plain-HTTP listener; the TLS port
// answers a plain request with Go's 400.
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /v1.0/myorg/availableFeatures HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // the connection was closed: refused too
	}
	if resp.StatusCode != 400 {
		t.Errorf("plain HTTP got %d", resp.StatusCode)
	}
}

// TestServingCertificate: the CA trusts the serving cert for all loopback
// names.
func TestServingCertificate(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	port := srv.URL()[strings.LastIndex(srv.URL(), ":")+1:]
	for _, host := range []string{"localhost", "127.0.0.1"} {
		r := call(t, hc, "GET", "https://"+host+":"+port+"/"+demoTenant+"/v2.0/.well-known/openid-configuration", "", nil)
		if r.status != 200 || r.body["issuer"] != "https://"+host+":"+port+"/"+demoTenant+"/v2.0" {
			t.Errorf("%s: %d issuer %v", host, r.status, r.body["issuer"])
		}
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL(), "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname("::1"); err != nil {
		t.Errorf("::1: %v", err)
	}
}
