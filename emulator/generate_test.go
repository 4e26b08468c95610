package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// v2 builds a V2 body from report and dataset ids.
func v2(reports, datasets []string, extra map[string]any) map[string]any {
	b := map[string]any{}
	if reports != nil {
		rs := []map[string]any{}
		for _, r := range reports {
			rs = append(rs, map[string]any{"id": r})
		}
		b["reports"] = rs
	}
	if datasets != nil {
		ds := []map[string]any{}
		for _, d := range datasets {
			ds = append(ds, map[string]any{"id": d})
		}
		b["datasets"] = ds
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func ident(username string, roles []string, datasets ...string) map[string]any {
	return map[string]any{"username": username, "roles": roles, "datasets": datasets}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, i)
	}
	return out
}

func TestGenerateTokenV2(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	sqlBlob := resourceToken(t, srv, hc, "https://database.windows.net//.default")
	sales := []any{ident("alice@acme.com", []string{"Customer"}, dsSales)}
	tests := []struct {
		name        string
		body        any
		headers     []string
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"sales with RLS identity", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": sales}), nil, 200, "", ""},
		{"inventory, no RLS, empty arrays", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"targetWorkspaces": []any{}, "identities": []any{}}), nil, 200, "", ""},
		{"target workspace and allowEdit", map[string]any{"reports": []any{map[string]any{"id": repInventory, "allowEdit": true}}, "datasets": []any{map[string]any{"id": dsInventory, "xmlaPermissions": "readonly"}}, "targetWorkspaces": []any{map[string]any{"id": wsAcme}}}, nil, 200, "", ""},
		{"paginated report alone", v2([]string{repInvoices}, nil, nil), nil, 200, "", ""},
		{"SSO identity with a blob, no username", v2([]string{repSSO}, []string{dsSSO}, map[string]any{"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": map[string]any{"value": sqlBlob}}}}), nil, 200, "", ""},
		{"paginated identity with a blob, the report without SSO sources", v2([]string{repInvoices}, nil, map[string]any{"identities": []any{map[string]any{"reports": []string{repInvoices}, "identityBlob": map[string]any{"value": sqlBlob}}}}), nil, 400, "InvalidRequest", "single sign-on"},
		{"profile workspace with profile", v2([]string{repGlobex}, []string{dsGlobex}, nil), []string{"X-PowerBI-Profile-Id", globexProf}, 200, "", ""},
		{"profile workspace without profile", v2([]string{repGlobex}, []string{dsGlobex}, nil), nil, 401, "PowerBINotAuthorizedException", ""},
		{"two workspaces, two identities", v2([]string{repSales, repPortal}, []string{dsSales, dsPortal}, map[string]any{"identities": []any{ident("a@x.com", []string{"Manager"}, dsSales), ident("a@x.com", []string{"Tenant"}, dsPortal)}}), nil, 200, "", ""},

		{"51 reports", v2(ids("a1000000", 51), nil, nil), nil, 400, "InvalidRequest", "reports"},
		{"51 datasets", v2(nil, ids("d1000000", 51), nil), nil, 400, "InvalidRequest", "datasets"},
		{"51 target workspaces", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"targetWorkspaces": func() []any {
			var out []any
			for _, id := range ids("a0000000", 51) {
				out = append(out, map[string]any{"id": id})
			}
			return out
		}()}), nil, 400, "InvalidRequest", "workspaces"},
		{"negative lifetime", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"lifetimeInMinutes": -1}), nil, 400, "InvalidRequest", "lifetimeInMinutes"},
		{"nothing requested", map[string]any{}, nil, 400, "InvalidRequest", ""},
		{"unknown report", v2([]string{"a1000000-0000-4000-8000-0000000000ff"}, []string{dsInventory}, nil), nil, 404, "PowerBIEntityNotFound", ""},
		{"unknown dataset", v2([]string{repInventory}, []string{dsInventory, "d1000000-0000-4000-8000-0000000000ff"}, nil), nil, 404, "PowerBIEntityNotFound", ""},
		{"report in a workspace without access", v2([]string{repLedger}, []string{dsLedger}, nil), nil, 401, "PowerBINotAuthorizedException", ""},
		{"target workspace without access", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"targetWorkspaces": []any{map[string]any{"id": wsFinance}}}), nil, 401, "PowerBINotAuthorizedException", ""},
		{"unknown target workspace", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"targetWorkspaces": []any{map[string]any{"id": "a0000000-0000-4000-8000-0000000000ff"}}}), nil, 401, "PowerBINotAuthorizedException", ""},
		{"report dataset missing from datasets", v2([]string{repInventory}, nil, nil), nil, 400, "InvalidRequest", dsInventory},
		{"bad xmlaPermissions", map[string]any{"datasets": []any{map[string]any{"id": dsInventory, "xmlaPermissions": "ReadWrite"}}}, nil, 400, "InvalidRequest", "xmlaPermissions"},
		{"RLS dataset without identity", v2([]string{repSales}, []string{dsSales}, nil), nil, 400, "InvalidRequest",
			"Creating embed token for accessing dataset " + dsSales + " requires effective identity to be provided"},
		{"identity on a dataset without RLS", v2([]string{repInventory}, []string{dsInventory}, map[string]any{"identities": []any{ident("a@x.com", nil, dsInventory)}}), nil, 400, "InvalidRequest",
			"Creating embed token for accessing dataset " + dsInventory + " shouldn't have effective identity"},
		{"identity without roles", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", nil, dsSales)}}), nil, 400, "InvalidRequest",
			"Creating embed token for accessing dataset " + dsSales + " requires roles to be included in provided effective identity"},
		{"role not defined on the model", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", []string{"Admin"}, dsSales)}}), nil, 400, "InvalidRequest", "'Admin'"},
		{"username missing", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{map[string]any{"roles": []string{"Customer"}, "datasets": []string{dsSales}}}}), nil, 400, "InvalidRequest", "username"},
		{"username with a space", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("John Smith", []string{"Customer"}, dsSales)}}), nil, 400, "InvalidRequest", "spaces"},
		{"username too long", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident(strings.Repeat("a", 257), []string{"Customer"}, dsSales)}}), nil, 400, "InvalidRequest", "256"},
		{"51 roles", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", make([]string, 51), dsSales)}}), nil, 400, "InvalidRequest", "50 roles"},
		{"role too long", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", []string{strings.Repeat("r", 51)}, dsSales)}}), nil, 400, "InvalidRequest", "role"},
		{"role with comma", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", []string{"Customer,Manager"}, dsSales)}}), nil, 400, "InvalidRequest", "role"},
		{"identity dataset not in request", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{ident("a@x.com", []string{"Customer"}, dsSales), ident("a@x.com", []string{"Tenant"}, dsPortal)}}), nil, 400, "InvalidRequest", dsPortal},
		{"identity naming a Power BI report", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Customer"}, "datasets": []string{dsSales}, "reports": []string{repSales}}}}), nil, 400, "InvalidRequest", "paginated"},
		{"identity without datasets", v2([]string{repSales}, []string{dsSales}, map[string]any{"identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Customer"}}}}), nil, 400, "InvalidRequest", "datasets"},
		{"no Content-Type", `{"datasets":[{"id":"` + dsInventory + `"}]}`, nil, 415, "UnsupportedMediaType", "no Content-Type header"},
		{"text/plain", `{"datasets":[{"id":"` + dsInventory + `"}]}`, []string{"Content-Type", "text/plain"}, 415, "UnsupportedMediaType", "'text/plain'"},
		{"malformed JSON", `{"datasets":`, []string{"Content-Type", "application/json"}, 400, "InvalidRequest", ""},
		{"no bearer", v2([]string{repInventory}, []string{dsInventory}, nil), []string{"Authorization", ""}, 403, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, tc.body, tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if !isUUID(r.header.Get("RequestId")) {
				t.Errorf("RequestId = %q", r.header.Get("RequestId"))
			}
			if tc.wantStatus == 200 {
				checkEmbedToken(t, srv, r, KindV2)
				return
			}
			if tc.wantCode != "" && errorCode(r) != tc.wantCode {
				t.Errorf("code %q, want %q: %s", errorCode(r), tc.wantCode, r.raw)
			}
			if tc.wantStatus == 404 && strings.TrimSpace(string(r.raw)) != pbiErrorBody("PowerBIEntityNotFound") {
				t.Errorf("404 body %s", r.raw)
			}
			if !strings.Contains(errorMessage(r), tc.wantMessage) {
				t.Errorf("message %q, want it to contain %q", errorMessage(r), tc.wantMessage)
			}
		})
	}
}

// checkEmbedToken checks the EmbedToken shape and that the token is
// recorded under both lookups.
func checkEmbedToken(t *testing.T, srv *Server, r response, kind TokenKind) TokenInfo {
	t.Helper()
	token, _ := r.body["token"].(string)
	id, _ := r.body["tokenId"].(string)
	exp, _ := r.body["expiration"].(string)
	if !strings.HasPrefix(token, "H4sI") || !isUUID(id) {
		t.Fatalf("token %.10q tokenId %q", token, id)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", exp); err != nil {
		t.Errorf("expiration %q: %v", exp, err)
	}
	info, ok := srv.LookupToken(id)
	if !ok {
		t.Fatalf("token %s not recorded", id)
	}
	if info.Kind != kind || info.AppID != demoClient || info.Expiration.Format("2006-01-02T15:04:05Z") != exp {
		t.Errorf("info = %+v", info)
	}
	hc := httpClient(t, srv)
	byID := call(t, hc, "GET", srv.URL()+"/_emulator/tokens/"+id, "", nil)
	byValue := call(t, hc, "POST", srv.URL()+"/_emulator/tokens/lookup", "", map[string]any{"token": token})
	if byID.status != 200 || byValue.status != 200 || byID.body["tokenId"] != id || byValue.body["tokenId"] != id {
		t.Errorf("lookups: %d %s / %d %s", byID.status, byID.raw, byValue.status, byValue.raw)
	}
	return info
}

func TestGenerateTokenV2Grant(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, map[string]any{
		"reports":          []any{map[string]any{"id": repSales, "allowEdit": "true"}},
		"datasets":         []any{map[string]any{"id": dsSales, "xmlaPermissions": "ReadOnly"}},
		"targetWorkspaces": []any{map[string]any{"id": wsAcme}},
		"identities": []any{map[string]any{"username": "alice@acme.com", "roles": []string{"Customer", "Manager"},
			"datasets": []string{dsSales}, "customData": "acme"}},
		"lifetimeInMinutes": 30,
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	info := checkEmbedToken(t, srv, r, KindV2)
	if len(info.Reports) != 1 || !info.Reports[0].AllowEdit || info.Datasets[0].XmlaPermissions != "ReadOnly" ||
		len(info.TargetWorkspaces) != 1 || info.LifetimeInMinutes != 30 || info.ObjectID != demoObject {
		t.Errorf("grant %+v", info)
	}
	id := info.Identities[0]
	if id.Username != "alice@acme.com" || id.CustomData != "acme" || len(id.Roles) != 2 || id.Datasets[0] != dsSales {
		t.Errorf("identity %+v", id)
	}
	if r := call(t, hc, "GET", srv.URL()+"/_emulator/tokens/"+newUUID(), "", nil); r.status != 404 {
		t.Errorf("unknown token id: %d", r.status)
	}
}

// TestEmbedTokenExpiration: expiration = min(now + lifetime, Entra exp).
func TestEmbedTokenExpiration(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	issued := clk.Now()
	tok := entraToken(t, srv, hc) // expires at issued + 3599s
	clk.Advance(30 * time.Minute)
	entraExp := issued.Add(3599 * time.Second)
	tests := []struct {
		name     string
		lifetime any
		want     time.Time
	}{
		{"absent: Entra expiry", nil, entraExp},
		{"zero: Entra expiry", 0, entraExp},
		{"shorter", 10, clk.Now().Add(10 * time.Minute)},
		{"longer is capped", 600, entraExp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := v2([]string{repInventory}, []string{dsInventory}, nil)
			if tc.lifetime != nil {
				body["lifetimeInMinutes"] = tc.lifetime
			}
			r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, body)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if got, want := r.body["expiration"], tc.want.UTC().Format("2006-01-02T15:04:05Z"); got != want {
				t.Errorf("expiration %v, want %v", got, want)
			}
		})
	}
}

func TestGenerateTokenV1(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	sales := ident("alice@acme.com", []string{"Customer"}, dsSales)
	tests := []v1Case{
		{"report view, lowercase, allowSaveAs string", wsAcme + "/reports/" + repSales + "/GenerateToken",
			map[string]any{"accessLevel": "view", "allowSaveAs": "true", "identities": []any{sales}}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				if info.AccessLevel != "View" || !info.AllowSaveAs || info.Reports[0].AllowEdit || info.Datasets[0].ID != dsSales {
					t.Errorf("%+v", info)
				}
			}},
		{"report edit", wsAcme + "/reports/" + repInventory + "/GenerateToken", map[string]any{"accessLevel": "Edit"}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				if !info.Reports[0].AllowEdit || info.GroupID != wsAcme {
					t.Errorf("%+v", info)
				}
			}},
		{"report identity without datasets applies to its dataset", wsAcme + "/reports/" + repSales + "/GenerateToken",
			map[string]any{"accessLevel": "View", "identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Manager"}}}}, 200, KindReport, "", nil},
		{"report, empty body", wsAcme + "/reports/" + repInventory + "/GenerateToken", "", 200, KindReport, "", nil},
		{"paginated report", wsAcme + "/reports/" + repInvoices + "/GenerateToken", map[string]any{"accessLevel": "View"}, 200, KindReport, "", nil},
		{"report, two identities", wsAcme + "/reports/" + repSales + "/GenerateToken",
			map[string]any{"identities": []any{sales, sales}}, 400, "", "Creating embed token with multiple identities is not supported", nil},
		{"report RLS without identity", wsAcme + "/reports/" + repSales + "/GenerateToken", map[string]any{"accessLevel": "View"}, 400, "", "requires effective identity", nil},
		{"report bad accessLevel", wsAcme + "/reports/" + repInventory + "/GenerateToken", map[string]any{"accessLevel": "Owner"}, 400, "", "accessLevel", nil},
		{"report negative lifetime", wsAcme + "/reports/" + repInventory + "/GenerateToken", map[string]any{"lifetimeInMinutes": -5}, 400, "", "lifetimeInMinutes", nil},
		{"report unknown", wsAcme + "/reports/a1000000-0000-4000-8000-0000000000ff/GenerateToken", map[string]any{}, 404, "", "", nil},
		{"report no access", wsFinance + "/reports/" + repLedger + "/GenerateToken", map[string]any{}, 401, "", "", nil},
		{"create", wsAcme + "/reports/GenerateToken", map[string]any{"accessLevel": "Create", "datasetId": dsInventory}, 200, KindCreate, "",
			func(t *testing.T, info TokenInfo) {
				if info.AccessLevel != "Create" || info.Datasets[0].ID != dsInventory || info.TargetWorkspaces[0] != wsAcme {
					t.Errorf("%+v", info)
				}
			}},
		{"create without datasetId", wsAcme + "/reports/GenerateToken", map[string]any{"accessLevel": "Create"}, 400, "", "datasetId", nil},
		{"create on a dataset without access", wsAcme + "/reports/GenerateToken", map[string]any{"accessLevel": "Create", "datasetId": dsLedger}, 401, "", "", nil},
		{"dashboard, several identities", wsAcme + "/dashboards/" + dashAcme + "/GenerateToken",
			map[string]any{"accessLevel": "View", "identities": []any{sales, ident("bob@acme.com", []string{"Manager"}, dsSales)}}, 200, KindDashboard, "",
			func(t *testing.T, info TokenInfo) {
				if info.DashboardID != dashAcme || len(info.Identities) != 2 {
					t.Errorf("%+v", info)
				}
			}},
		{"dashboard edit", wsAcme + "/dashboards/" + dashAcme + "/GenerateToken", map[string]any{"accessLevel": "Edit", "identities": []any{sales}}, 400, "", "only valid for reports", nil},
		{"tile", wsAcme + "/dashboards/" + dashAcme + "/tiles/" + tileRevenue + "/GenerateToken",
			map[string]any{"accessLevel": "View", "identities": []any{sales}}, 200, KindTile, "",
			func(t *testing.T, info TokenInfo) {
				if info.TileID != tileRevenue || info.DashboardID != dashAcme {
					t.Errorf("%+v", info)
				}
			}},
		{"tile, two identities", wsAcme + "/dashboards/" + dashAcme + "/tiles/" + tileRevenue + "/GenerateToken",
			map[string]any{"identities": []any{sales, sales}}, 400, "", "multiple identities", nil},
		{"dataset", wsAcme + "/datasets/" + dsInventory + "/GenerateToken", map[string]any{"accessLevel": "View"}, 200, KindDataset, "", nil},
		{"dataset identity forbidden", wsAcme + "/datasets/" + dsInventory + "/GenerateToken",
			map[string]any{"identities": []any{ident("a@x.com", nil, dsInventory)}}, 400, "", "shouldn't have effective identity", nil},
		{"dataset of another group", wsPortal + "/datasets/" + dsInventory + "/GenerateToken", map[string]any{}, 404, "", "", nil},
		{"report in a second workspace of the tenant", wsAcmeFin + "/reports/" + repBudget + "/GenerateToken",
			map[string]any{"accessLevel": "View", "identities": []any{ident("alice@acme.com", []string{"Region"}, dsBudget)}}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				if info.GroupID != wsAcmeFin || info.Datasets[0].ID != dsBudget || info.Identities[0].Roles[0] != "Region" {
					t.Errorf("%+v", info)
				}
			}},
		{"report in a second workspace, role of another model", wsAcmeFin + "/reports/" + repBudget + "/GenerateToken",
			map[string]any{"identities": []any{ident("alice@acme.com", []string{"Manager"}, dsBudget)}}, 400, "", "'Manager'", nil},
		{"report in a second workspace, from the first group", wsAcme + "/reports/" + repBudget + "/GenerateToken", map[string]any{}, 404, "", "", nil},
	}
	runV1(t, srv, hc, tok, tests)
}

// v1Case is one V1 GenerateTokenInGroup call and what it should give.
type v1Case struct {
	name        string
	path        string // under /v1.0/myorg/groups/
	body        any
	wantStatus  int
	wantKind    TokenKind
	wantMessage string
	check       func(t *testing.T, info TokenInfo)
}

func runV1(t *testing.T, srv *Server, hc *http.Client, tok string, tests []v1Case) {
	t.Helper()
	g := srv.URL() + "/v1.0/myorg/groups/"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", g+tc.path, tok, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if !isUUID(r.header.Get("RequestId")) {
				t.Error("no RequestId")
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(errorMessage(r), tc.wantMessage) {
					t.Errorf("message %q, want %q", errorMessage(r), tc.wantMessage)
				}
				return
			}
			info := checkEmbedToken(t, srv, r, tc.wantKind)
			if tc.check != nil {
				tc.check(t, info)
			}
		})
	}
}

// TestGenerateTokenV1RLS: the RLS matrix on the dashboard (over its tiles'
// datasets), tile and paginated-report routes, and which of them take
// several identities.
func TestGenerateTokenV1RLS(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	dash := wsAcme + "/dashboards/" + dashAcme + "/GenerateToken"
	revenue := wsAcme + "/dashboards/" + dashAcme + "/tiles/" + tileRevenue + "/GenerateToken"
	stock := wsAcme + "/dashboards/" + dashAcme + "/tiles/" + tileStock + "/GenerateToken"
	invoices := wsAcme + "/reports/" + repInvoices + "/GenerateToken"
	alice := ident("alice@acme.com", []string{"Customer"}, dsSales)
	bob := ident("bob@acme.com", []string{"Manager"}, dsSales)
	const (
		requires   = "Creating embed token for accessing dataset " + dsSales + " requires effective identity to be provided"
		shouldnt   = "Creating embed token for accessing dataset " + dsInventory + " shouldn't have effective identity"
		needsRoles = "Creating embed token for accessing dataset " + dsSales + " requires roles to be included in provided effective identity"
		multiple   = "Creating embed token with multiple identities is not supported"
	)
	tests := []v1Case{
		{"dashboard covers both tile datasets", dash, map[string]any{"accessLevel": "View", "identities": []any{alice}}, 200, KindDashboard, "",
			func(t *testing.T, info TokenInfo) {
				if len(info.Datasets) != 2 || info.Datasets[0].ID != dsSales || info.Datasets[1].ID != dsInventory || info.AccessLevel != "View" {
					t.Errorf("%+v", info)
				}
			}},
		{"dashboard, three identities", dash, map[string]any{"identities": []any{alice, bob, ident("carol@acme.com", []string{"Customer", "Manager"}, dsSales)}}, 200, KindDashboard, "",
			func(t *testing.T, info TokenInfo) {
				if len(info.Identities) != 3 || info.Identities[1].Username != "bob@acme.com" {
					t.Errorf("%+v", info.Identities)
				}
			}},
		{"dashboard without identity", dash, map[string]any{"accessLevel": "View"}, 400, "", requires, nil},
		{"dashboard identity on the non-RLS tile dataset", dash, map[string]any{"identities": []any{alice, ident("a@x.com", []string{"Customer"}, dsInventory)}}, 400, "", shouldnt, nil},
		{"dashboard identity without datasets covers every tile dataset", dash,
			map[string]any{"identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Customer"}}}}, 400, "", shouldnt, nil},
		{"dashboard identity without roles", dash, map[string]any{"identities": []any{alice, ident("a@x.com", nil, dsSales)}}, 400, "", needsRoles, nil},
		{"dashboard unknown role", dash, map[string]any{"identities": []any{ident("a@x.com", []string{"Tenant"}, dsSales)}}, 400, "", "'Tenant'", nil},
		{"dashboard identity on another workspace's dataset", dash, map[string]any{"identities": []any{alice, ident("a@x.com", []string{"Region"}, dsBudget)}}, 400, "", dsBudget, nil},

		{"RLS tile", revenue, map[string]any{"identities": []any{alice}}, 200, KindTile, "",
			func(t *testing.T, info TokenInfo) {
				if len(info.Datasets) != 1 || info.Datasets[0].ID != dsSales || info.Identities[0].Datasets[0] != dsSales {
					t.Errorf("%+v", info)
				}
			}},
		{"RLS tile without identity", revenue, map[string]any{}, 400, "", requires, nil},
		{"RLS tile without roles", revenue, map[string]any{"identities": []any{ident("a@x.com", nil, dsSales)}}, 400, "", needsRoles, nil},
		{"RLS tile unknown role", revenue, map[string]any{"identities": []any{ident("a@x.com", []string{"Region"}, dsSales)}}, 400, "", "'Region'", nil},
		{"RLS tile, two identities", revenue, map[string]any{"identities": []any{alice, bob}}, 400, "", multiple, nil},
		{"non-RLS tile", stock, map[string]any{"accessLevel": "view"}, 200, KindTile, "",
			func(t *testing.T, info TokenInfo) {
				if info.TileID != tileStock || info.Datasets[0].ID != dsInventory || len(info.Identities) != 0 {
					t.Errorf("%+v", info)
				}
			}},
		{"non-RLS tile with identity", stock, map[string]any{"identities": []any{map[string]any{"username": "a@x.com"}}}, 400, "", shouldnt, nil},
		{"non-RLS tile, two identities", stock, map[string]any{"identities": []any{alice, bob}}, 400, "", multiple, nil},

		{"paginated, view", invoices, map[string]any{"accessLevel": "View"}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				if info.Reports[0].ID != repInvoices || len(info.Datasets) != 0 || len(info.Identities) != 0 || info.AccessLevel != "View" {
					t.Errorf("%+v", info)
				}
			}},
		{"paginated, identity naming the report", invoices,
			map[string]any{"accessLevel": "View", "identities": []any{map[string]any{"username": "john@contoso.com", "reports": []string{repInvoices}}}}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				id := info.Identities[0]
				if len(info.Identities) != 1 || id.Username != "john@contoso.com" || len(id.Reports) != 1 || id.Reports[0] != repInvoices || len(id.Datasets) != 0 {
					t.Errorf("%+v", info.Identities)
				}
			}},
		{"paginated, identity without reports applies to the report", invoices,
			map[string]any{"accessLevel": "View", "identities": []any{map[string]any{"username": "john@contoso.com", "customData": "c"}}}, 200, KindReport, "",
			func(t *testing.T, info TokenInfo) {
				if id := info.Identities[0]; len(id.Reports) != 1 || id.Reports[0] != repInvoices || id.CustomData != "c" {
					t.Errorf("%+v", info.Identities)
				}
			}},
		{"paginated, identity naming another report", invoices,
			map[string]any{"identities": []any{map[string]any{"username": "john@contoso.com", "reports": []string{repSales}}}}, 400, "", repSales, nil},
		{"paginated, identity naming a dataset", invoices,
			map[string]any{"identities": []any{map[string]any{"username": "john@contoso.com", "datasets": []string{dsSales}}}}, 400, "", dsSales, nil},
		{"paginated, two identities", invoices,
			map[string]any{"identities": []any{map[string]any{"username": "a@x.com", "reports": []string{repInvoices}}, map[string]any{"username": "b@x.com", "reports": []string{repInvoices}}}}, 400, "", multiple, nil},
		{"Power BI report, identity naming the report", wsAcme + "/reports/" + repSales + "/GenerateToken",
			map[string]any{"identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Customer"}, "reports": []string{repSales}}}}, 400, "", "paginated", nil},
	}
	runV1(t, srv, hc, tok, tests)
}
