package emulator

import (
	"net/url"
	"strings"
	"testing"
)

// TestPasswordGrant: the password grant through the public client, and
// what it cannot do (MFA, consent).
func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	f := testFixture(t)
	// A second public client nobody consented to.
	f.Tenants[0].Apps = append(f.Tenants[0].Apps, App{ClientID: "c0ffee00-0000-4000-8000-0000000000c2",
		ObjectID: "c0ffee00-0000-4000-8000-0000000000d2", Name: "unconsented-cli", PublicClient: true})
	srv := startServer(t, Config{Fixture: f})
	hc := httpClient(t, srv)
	form := func(client, user, password, scope string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {user}, "password": {password},
			"scope": {scope + " openid offline_access profile"}, "client_info": {"1"}}
	}
	tests := []struct {
		name     string
		form     url.Values
		status   int
		errCode  string
		aadsts   int
		suberror string
	}{
		{"alice for Power BI", form(cliClient, aliceUPN, alicePass, pbiScope), 200, "", 0, ""},
		{"alice by object id, any case", form(cliClient, strings.ToUpper(aliceOID), alicePass, apiScope), 200, "", 0, ""},
		{"carol for the API (no policy)", form(cliClient, carolUPN, carolPass, apiScope), 200, "", 0, ""},
		{"carol for Power BI: MFA", form(cliClient, carolUPN, carolPass, pbiScope), 400, "invalid_grant", 50076, "basic_action"},
		{"a wrong password", form(cliClient, aliceUPN, "nope", pbiScope), 400, "invalid_grant", 50126, ""},
		{"an unknown user", form(cliClient, "mallory@embedgate-demo.onmicrosoft.com", "x", pbiScope), 400, "invalid_grant", 50034, ""},
		{"no consent to the client", form("c0ffee00-0000-4000-8000-0000000000c2", aliceUPN, alicePass, pbiScope), 400, "invalid_grant", 65001, "consent_required"},
		{"a secret from a public client", func() url.Values {
			v := form(cliClient, aliceUPN, alicePass, pbiScope)
			v.Set("client_secret", "x")
			return v
		}(), 401, "invalid_client", 7000215, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", tc.form)
			code, n := aadErr(r)
			if r.status != tc.status || code != tc.errCode || n != tc.aadsts {
				t.Fatalf("got %d %s %d, want %d %s %d: %s", r.status, code, n, tc.status, tc.errCode, tc.aadsts, r.raw)
			}
			if sub, _ := r.body["suberror"].(string); sub != tc.suberror {
				t.Errorf("suberror %q", sub)
			}
			if tc.aadsts == 50076 && !strings.Contains(r.body["claims"].(string), caPolicy) {
				t.Errorf("claims %v", r.body["claims"])
			}
			if strings.Contains(string(r.raw), tc.form.Get("password")) && tc.form.Get("password") != "x" {
				t.Error("the answer echoes the password")
			}
			if tc.status == 200 && (r.body["id_token"] == nil || r.body["refresh_token"] == nil || r.body["client_info"] == nil) {
				t.Errorf("tokens %s", r.raw)
			}
		})
	}
	for _, rec := range srv.Requests(RouteEntraToken) {
		if strings.Contains(string(rec.Body), alicePass) {
			t.Error("a recorded request keeps the password")
		}
	}
}

// TestPowerBIAsUser: a delegated token acts as the user: their roles,
// their licence, their My workspace, the token's scopes, and what a user
// may mint.
func TestPowerBIAsUser(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	alice := passwordToken(t, srv, hc, aliceUPN, alicePass, pbiScope)
	bob := passwordToken(t, srv, hc, bobUPN, bobPass, pbiScope)
	narrow := passwordToken(t, srv, hc, aliceUPN, alicePass, "https://analysis.windows.net/powerbi/api/Report.Read.All")
	app := entraToken(t, srv, hc)
	g := "/v1.0/myorg/groups/"
	tests := []struct {
		name, token, method, path string
		body                      any
		headers                   []string
		status                    int
		want                      string // in the body
	}{
		{"alice's workspaces", alice, "GET", "/v1.0/myorg/groups", nil, nil, 200, `"id":"` + wsTrial},
		{"alice's report", alice, "GET", g + wsAcme + "/reports/" + repSales, nil, nil, 200, `"id":"` + repSales},
		{"bob reads in a dedicated workspace", bob, "GET", g + wsAcme + "/reports/" + repSales, nil, nil, 200, ""},
		{"bob, free, in a shared workspace", bob, "GET", g + wsTrial + "/reports/" + repTrial, nil, nil, 403, "PowerBINotLicensedException"},
		{"alice where she has no role", alice, "GET", g + wsModels + "/reports/" + repAAS, nil, nil, 401, "PowerBINotAuthorizedException"},
		{"alice's My workspace", alice, "GET", "/v1.0/myorg/reports", nil, nil, 200, `"webUrl":"https://app.powerbi.com/groups/me/reports/` + repAlice},
		{"alice's own report", alice, "GET", "/v1.0/myorg/reports/" + repAlice, nil, nil, 200, `"embedUrl":"https://app.powerbi.com/reportEmbed?reportId=` + repAlice + `&w=2`},
		{"alice's own dataset", alice, "GET", "/v1.0/myorg/datasets/" + dsAlice, nil, nil, 200, `"id":"` + dsAlice},
		{"a workspace report is not in My workspace", alice, "GET", "/v1.0/myorg/reports/" + repSales, nil, nil, 404, ""},
		{"bob's My workspace is empty", bob, "GET", "/v1.0/myorg/reports", nil, nil, 200, `"value":[]`},
		{"a service principal has no My workspace", app, "GET", "/v1.0/myorg/reports", nil, nil, 200, `"value":[]`},
		{"nor alice's report", app, "GET", "/v1.0/myorg/reports/" + repAlice, nil, nil, 404, ""},
		{"alice mints without an RLS identity", alice, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repSales}, []string{dsSales}, nil), nil, 200, ""},
		{"alice mints with an identity", alice, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repSales}, []string{dsSales}, map[string]any{
			"identities": []any{ident("someone@acme.com", []string{"Customer"}, dsSales)}}), nil, 200, ""},
		{"alice mints V1", alice, "POST", g + wsAcme + "/reports/" + repInventory + "/GenerateToken", map[string]any{"accessLevel": "View"}, nil, 200, ""},
		{"alice mints for My workspace", alice, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repAlice}, []string{dsAlice}, nil), nil, 400, "My workspace"},
		{"alice mints for a paginated report", alice, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repInvoices}, nil, nil), nil, 400, "RDL"},
		{"alice mints V1 for a paginated report", alice, "POST", g + wsAcme + "/reports/" + repInvoices + "/GenerateToken", map[string]any{}, nil, 400, "RDL"},
		{"bob, a Viewer, mints", bob, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repInventory}, []string{dsInventory}, nil), nil, 403, "InsufficientPermissions"},
		{"bob, free, mints on shared capacity", bob, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repTrial}, []string{dsTrial}, nil), nil, 403, "PowerBINotLicensedException"},
		{"a token without Workspace.Read.All", narrow, "GET", "/v1.0/myorg/groups", nil, nil, 401, "Workspace.Read.All"},
		{"a token without Dataset.Read.All mints", narrow, "POST", "/v1.0/myorg/GenerateToken", v2([]string{repInventory}, []string{dsInventory}, nil), nil, 401, "Dataset.Read.All"},
		{"the narrow token reads a report", narrow, "GET", g + wsAcme + "/reports/" + repInventory, nil, nil, 200, ""},
		{"a user with a profile header", alice, "GET", "/v1.0/myorg/groups", nil, []string{"X-PowerBI-Profile-Id", globexProf}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, tc.method, srv.URL()+tc.path, tc.token, tc.body, tc.headers...)
			if r.status != tc.status || !strings.Contains(string(r.raw), tc.want) {
				t.Fatalf("got %d %s, want %d with %q", r.status, r.raw, tc.status, tc.want)
			}
			if tc.status == 200 && tc.method == "POST" {
				info := checkEmbedTokenAs(t, srv, r, cliClient)
				if info.UserPrincipalName != aliceUPN || info.ObjectID != aliceOID {
					t.Errorf("grant %+v", info)
				}
			}
		})
	}
}

// TestRefreshGrant: a refresh token serves its client, its tenant and its
// sign-in's authentication methods, for 90 days.
func TestRefreshGrant(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	tokenURL := srv.URL() + "/" + demoTenant + "/oauth2/v2.0/token"
	signIn := func(user, password, scope string) string {
		t.Helper()
		r := call(t, hc, "POST", tokenURL, "", url.Values{"grant_type": {"password"}, "client_id": {cliClient},
			"username": {user}, "password": {password}, "scope": {scope + " offline_access"}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		return r.body["refresh_token"].(string)
	}
	alice := signIn(aliceUPN, alicePass, pbiScope)
	carol := signIn(carolUPN, carolPass, apiScope)
	refresh := func(client, rt, scope string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}, "scope": {scope}}
	}
	tests := []struct {
		name    string
		form    url.Values
		status  int
		errCode string
		aadsts  int
	}{
		{"alice, another resource", refresh(cliClient, alice, apiScope), 200, "", 0},
		{"carol, her API token's sign-in for Power BI: MFA", refresh(cliClient, carol, pbiScope), 400, "invalid_grant", 50076},
		{"not a refresh token", refresh(cliClient, "garbage", pbiScope), 400, "invalid_grant", 9002313},
		{"another client's refresh token", func() url.Values {
			v := refresh(demoClient, alice, pbiScope)
			v.Set("client_secret", demoSecret)
			return v
		}(), 400, "invalid_grant", 70000},
	}
	t.Run("now", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := call(t, hc, "POST", tokenURL, "", tc.form)
				if code, n := aadErr(r); r.status != tc.status || code != tc.errCode || n != tc.aadsts {
					t.Errorf("got %d %s %d: %s", r.status, code, n, r.raw)
				}
			})
		}
	})
	t.Run("after 90 days", func(t *testing.T) {
		clk.Advance(RefreshTokenLifetime)
		r := call(t, hc, "POST", tokenURL, "", refresh(cliClient, alice, pbiScope))
		if code, n := aadErr(r); r.status != 400 || code != "invalid_grant" || n != 700082 {
			t.Errorf("got %d %s %d: %s", r.status, code, n, r.raw)
		}
	})
}
