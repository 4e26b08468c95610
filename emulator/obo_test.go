package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// passwordToken signs a user in with the password grant through the
// demo's public client and returns the access token.
func passwordToken(t *testing.T, srv *Server, hc *http.Client, user, password, scope string) string {
	t.Helper()
	r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"password"}, "client_id": {cliClient}, "username": {user}, "password": {password}, "scope": {scope},
	})
	if r.status != 200 {
		t.Fatalf("password sign-in of %s for %s: %d %s", user, scope, r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

// deviceToken signs a user in with the device code flow (which satisfies
// MFA) and returns the access token.
func deviceToken(t *testing.T, srv *Server, hc *http.Client, user, scope string) string {
	t.Helper()
	base := srv.URL() + "/" + demoTenant + "/oauth2/v2.0/"
	r := call(t, hc, "POST", base+"devicecode", "", url.Values{"client_id": {cliClient}, "scope": {scope}})
	if r.status != 200 {
		t.Fatalf("devicecode: %d %s", r.status, r.raw)
	}
	if err := srv.ApproveDeviceCode(r.body["user_code"].(string), user); err != nil {
		t.Fatal(err)
	}
	tok := call(t, hc, "POST", base+"token", "", url.Values{"grant_type": {grantDeviceCode}, "client_id": {cliClient}, "device_code": {r.body["device_code"].(string)}})
	if tok.status != 200 {
		t.Fatalf("device token: %d %s", tok.status, tok.raw)
	}
	return tok.body["access_token"].(string)
}

// oboForm is an On-Behalf-Of request of the demo app (Embedgate's API).
func oboForm(assertion, scope string) url.Values {
	return url.Values{"grant_type": {grantJWTBearer}, "client_id": {demoClient}, "client_secret": {demoSecret},
		"assertion": {assertion}, "scope": {scope}, "requested_token_use": {"on_behalf_of"}}
}

// TestMSALOnBehalfOf: Embedgate's API, a confidential client, redeems an
// end user's token for its API for a Power BI token for that user, with
// MSAL Go; the Power BI token works as the user.
func TestMSALOnBehalfOf(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	userTok := passwordToken(t, srv, hc, aliceUPN, alicePass, apiScope)
	cred, err := confidential.NewCredFromSecret(demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	app, err := confidential.New(srv.URL()+"/"+demoTenant, demoClient, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var first string
	for i := range 2 {
		ar, err := app.AcquireTokenOnBehalfOf(ctx, userTok, []string{pbiScope})
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 0 {
			first = ar.AccessToken
		} else if ar.AccessToken != first {
			t.Error("the second call did not come from MSAL's cache")
		}
	}
	if n := srv.Counters()[RouteEntraToken]; n != 2 {
		t.Errorf("token calls = %d, want 2 (the sign-in, one exchange)", n)
	}
	tok, _ := parseJWT(first)
	if tok.claimString("upn") != aliceUPN || tok.claimString("appid") != demoClient || tok.claimString("aud") != "https://analysis.windows.net/powerbi/api" ||
		!strings.Contains(tok.claimString("scp"), "Report.ReadWrite.All") {
		t.Errorf("claims %v", tok.claims)
	}
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", first, v2([]string{repInventory}, []string{dsInventory}, nil))
	if r.status != 200 {
		t.Fatalf("GenerateToken as alice: %d %s", r.status, r.raw)
	}
	info := checkEmbedTokenAs(t, srv, r, demoClient)
	if info.UserPrincipalName != aliceUPN || info.ObjectID != aliceOID {
		t.Errorf("grant %+v", info)
	}
}

// TestOnBehalfOfRefusals: every assertion Entra refuses, with its code.
func TestOnBehalfOfRefusals(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	alice := passwordToken(t, srv, hc, aliceUPN, alicePass, apiScope)
	bob := passwordToken(t, srv, hc, bobUPN, bobPass, apiScope)
	carol := passwordToken(t, srv, hc, carolUPN, carolPass, apiScope)
	carolMFA := deviceToken(t, srv, hc, carolUPN, apiScope)
	alicePBI := passwordToken(t, srv, hc, aliceUPN, alicePass, pbiScope)
	appOnly := resourceToken(t, srv, hc, "api://"+demoClient+"/.default")
	other := otherTenantToken(t, srv)
	tests := []oboCase{
		{"alice", oboForm(alice, pbiScope), 200, "", 0, "", false},
		{"carol after MFA", oboForm(carolMFA, pbiScope), 200, "", 0, "", false},
		{"carol for a resource her policy does not cover", oboForm(carol, "https://database.windows.net//.default"), 200, "", 0, "", false},
		{"bob never consented to Embedgate", oboForm(bob, pbiScope), 400, "invalid_grant", 65001, "consent_required", false},
		{"carol without MFA", oboForm(carol, pbiScope), 400, "interaction_required", 50076, "", true},
		{"a token for Power BI, not for the API", oboForm(alicePBI, pbiScope), 400, "invalid_grant", 50013, "", false},
		{"an app-only token", oboForm(appOnly, pbiScope), 400, "invalid_grant", 50013, "", false},
		{"another tenant's token", oboForm(other, pbiScope), 400, "invalid_grant", 50013, "", false},
		{"a forged signature", oboForm(alice[:len(alice)-6]+"AAAAAA", pbiScope), 400, "invalid_grant", 50013, "", false},
		{"not a JWT", oboForm("opaque", pbiScope), 400, "invalid_grant", 50013, "", false},
		{"no requested_token_use", func() url.Values { f := oboForm(alice, pbiScope); f.Del("requested_token_use"); return f }(), 400, "invalid_request", 900144, "", false},
		{"the public client", func() url.Values {
			f := oboForm(alice, pbiScope)
			f.Set("client_id", cliClient)
			f.Del("client_secret")
			return f
		}(), 401, "invalid_client", 7000218, "", false},
		{"a wrong secret", func() url.Values { f := oboForm(alice, pbiScope); f.Set("client_secret", "nope"); return f }(), 401, "invalid_client", 7000215, "", false},
	}
	t.Run("now", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.check(t, srv, hc)
			})
		}
	})
	// An expired assertion, last: it moves the clock.
	t.Run("expired", func(t *testing.T) {
		clk.Advance(2 * time.Hour)
		r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", oboForm(alice, pbiScope))
		if code, n := aadErr(r); r.status != 400 || code != "invalid_grant" || n != 500133 ||
			!strings.Contains(r.body["error_description"].(string), "Assertion is not within its valid time range") {
			t.Errorf("%d %s", r.status, r.raw)
		}
	})
}

// oboCase is an On-Behalf-Of request and the answer it must get.
type oboCase struct {
	name      string
	form      url.Values
	status    int
	errCode   string
	aadsts    int
	suberror  string
	wantClaim bool // a claims challenge naming the demo's MFA policy
}

func (tc oboCase) check(t *testing.T, srv *Server, hc *http.Client) {
	t.Helper()
	r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", tc.form)
	code, n := aadErr(r)
	if r.status != tc.status || code != tc.errCode || n != tc.aadsts {
		t.Fatalf("got %d %s %d, want %d %s %d: %s", r.status, code, n, tc.status, tc.errCode, tc.aadsts, r.raw)
	}
	if sub, _ := r.body["suberror"].(string); sub != tc.suberror {
		t.Errorf("suberror %q, want %q", sub, tc.suberror)
	}
	claims, _ := r.body["claims"].(string)
	if tc.wantClaim {
		var c struct {
			AccessToken struct {
				Polids struct {
					Essential bool     `json:"essential"`
					Values    []string `json:"values"`
				} `json:"polids"`
			} `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(claims), &c); err != nil || !c.AccessToken.Polids.Essential || len(c.AccessToken.Polids.Values) != 1 || c.AccessToken.Polids.Values[0] != caPolicy {
			t.Errorf("claims %q: %v", claims, err)
		}
	} else if claims != "" {
		t.Errorf("claims %q", claims)
	}
	if a := tc.form.Get("assertion"); len(a) > 20 && strings.Contains(string(r.raw), a) {
		t.Error("the answer echoes the assertion")
	}
}

// otherTenantToken is a user token for Embedgate's API that another
// tenant signed (Entra's key, the locked tenant's issuer).
func otherTenantToken(t *testing.T, srv *Server) string {
	t.Helper()
	other := srv.world.tenant(lockedTenant)
	demo := srv.world.tenant(demoTenant)
	ss := session{t: other, client: demo.app(cliClient), user: demo.user(aliceUPN), amr: []string{"pwd"}}
	r, _ := http.NewRequest("GET", srv.URL(), nil)
	now := srv.now()
	tok, err := srv.issueUserAccessToken(r, ss, scopeGrant{resource: "api://" + demoClient, api: demo.app(demoClient), scopes: []string{"access_as_user"}}, "0", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkEmbedTokenAs checks an EmbedToken a user minted through app.
func checkEmbedTokenAs(t *testing.T, srv *Server, r response, app string) TokenInfo {
	t.Helper()
	id, _ := r.body["tokenId"].(string)
	info, ok := srv.LookupToken(id)
	if !ok || info.AppID != app {
		t.Fatalf("token %s: %+v", id, info)
	}
	return info
}
