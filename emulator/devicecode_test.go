package emulator

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
)

// Users and apps of the demo fixture for the user flows.
const (
	cliClient = "c0ffee00-0000-4000-8000-0000000000c1" // public client
	aliceUPN  = "alice@embedgate-demo.onmicrosoft.com"
	aliceOID  = "c0ffee00-0000-4000-8000-0000000000e1"
	alicePass = "embedgate-alice-password"
	bobUPN    = "bob@embedgate-demo.onmicrosoft.com"
	bobPass   = "embedgate-bob-password"
	carolUPN  = "carol@embedgate-demo.onmicrosoft.com"
	carolPass = "embedgate-carol-password"
	caPolicy  = "ca000000-0000-4000-8000-000000000001"
	apiScope  = "api://" + demoClient + "/access_as_user"
	repAlice  = "a8000000-0000-4000-8000-000000000001"
	dsAlice   = "d8000000-0000-4000-8000-000000000001"
)

// deviceForm is the form of a device code request or poll.
func deviceForm(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// aadErr returns error and error_codes[0] of an Entra error body.
func aadErr(r response) (string, int) {
	code, _ := r.body["error"].(string)
	var n int
	if list, ok := r.body["error_codes"].([]any); ok && len(list) > 0 {
		f, _ := list[0].(float64)
		n = int(f)
	}
	return code, n
}

// TestMSALDeviceCode drives MSAL Go's public client through the device
// code flow: the code is issued, polled while pending, approved, and the
// tokens work against Power BI; the next sign-in is silent, from MSAL's
// cache, and a token for another resource comes from the refresh token.
func TestMSALDeviceCode(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	app, err := public.New(cliClient, public.WithAuthority(srv.URL()+"/"+demoTenant),
		public.WithInstanceDiscovery(false), public.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc, err := app.AcquireTokenByDeviceCode(ctx, []string{pbiScope})
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Result.UserCode) != 9 || !strings.Contains(dc.Result.Message, dc.Result.UserCode) || dc.Result.Interval != DefaultDeviceCodeInterval {
		t.Errorf("device code result %+v", dc.Result)
	}
	if p := srv.PendingDeviceCodes(); len(p) != 1 || p[0].UserCode != dc.Result.UserCode || p[0].ClientID != cliClient {
		t.Errorf("pending %+v", p)
	}
	type result struct {
		ar  public.AuthResult
		err error
	}
	// Hold MSAL's first poll, let it hear it must wait, hold a later
	// one, approve, and let that one through.
	first := srv.Gate(RouteEntraToken)
	done := make(chan result, 1)
	go func() {
		ar, err := dc.AuthenticationResult(ctx)
		done <- result{ar, err}
	}()
	if err := first.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	first.Open()
	later := srv.Gate(RouteEntraToken)
	if err := later.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.ApproveDeviceCode(dc.Result.UserCode, aliceUPN); err != nil {
		t.Fatal(err)
	}
	later.Open()
	res := <-done
	if n := len(srv.Requests(RouteEntraToken)); n < 2 {
		t.Errorf("%d polls, want a refused one before the tokens", n)
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.ar.Account.PreferredUsername != aliceUPN || res.ar.Account.HomeAccountID != aliceOID+"."+demoTenant {
		t.Errorf("account %+v", res.ar.Account)
	}
	tok, _ := parseJWT(res.ar.AccessToken)
	if tok.claimString("upn") != aliceUPN || tok.claimString("aud") != "https://analysis.windows.net/powerbi/api" || tok.claimString("appid") != cliClient {
		t.Errorf("claims %v", tok.claims)
	}
	if r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsAcme+"/reports/"+repSales, res.ar.AccessToken, nil); r.status != 200 {
		t.Errorf("Get Report as alice: %d %s", r.status, r.raw)
	}

	// A second sign-in: silent, from the cache; no new device code.
	accounts, err := app.Accounts(ctx)
	if err != nil || len(accounts) != 1 {
		t.Fatalf("accounts %v %v", accounts, err)
	}
	before := srv.Counters()
	silent, err := app.AcquireTokenSilent(ctx, []string{pbiScope}, public.WithSilentAccount(accounts[0]))
	if err != nil {
		t.Fatalf("silent: %v", err)
	}
	after := srv.Counters()
	if after[RouteDeviceCode] != before[RouteDeviceCode] || silent.AccessToken == "" {
		t.Errorf("silent sign-in asked for a device code: %d -> %d", before[RouteDeviceCode], after[RouteDeviceCode])
	}
	// Another resource for the same account: the refresh token, no user.
	api, err := app.AcquireTokenSilent(ctx, []string{apiScope}, public.WithSilentAccount(accounts[0]))
	if err != nil {
		t.Fatalf("silent for the API: %v", err)
	}
	if n := srv.Counters()[RouteEntraToken] - after[RouteEntraToken]; n != 1 {
		t.Errorf("token calls for the API = %d, want 1 (refresh)", n)
	}
	grants := srv.Requests(RouteEntraToken)
	if form, _ := url.ParseQuery(string(grants[len(grants)-1].Body)); form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != redacted {
		t.Errorf("last token request %s", grants[len(grants)-1].Body)
	}
	apiTok, _ := parseJWT(api.AccessToken)
	if apiTok.claimString("aud") != demoClient || apiTok.claimString("ver") != "2.0" || apiTok.claimString("scp") != "access_as_user" ||
		apiTok.claimString("preferred_username") != aliceUPN || !strings.HasSuffix(apiTok.claimString("iss"), "/"+demoTenant+"/v2.0") {
		t.Errorf("API token claims %v", apiTok.claims)
	}
}

// TestDeviceCodePolling walks one device code through every answer the
// token endpoint gives while polling, on the emulator's clock.
func TestDeviceCodePolling(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	base := srv.URL() + "/" + demoTenant + "/oauth2/v2.0/"
	start := func(client string) (deviceCode, userCode string) {
		t.Helper()
		r := call(t, hc, "POST", base+"devicecode", "", deviceForm("client_id", client, "scope", pbiScope+" openid offline_access profile"))
		if r.status != 200 {
			t.Fatalf("devicecode: %d %s", r.status, r.raw)
		}
		if r.body["verification_uri"] != "https://www.microsoft.com/link" || r.body["expires_in"] != float64(900) || r.body["interval"] != float64(5) {
			t.Errorf("devicecode body %s", r.raw)
		}
		return r.body["device_code"].(string), r.body["user_code"].(string)
	}
	poll := func(client, code string) response {
		return call(t, hc, "POST", base+"token", "", deviceForm("grant_type", grantDeviceCode, "client_id", client, "device_code", code, "client_info", "1"))
	}
	want := func(r response, status int, errCode string, aadsts int) {
		t.Helper()
		code, n := aadErr(r)
		if r.status != status || code != errCode || (aadsts != 0 && n != aadsts) {
			t.Errorf("got %d %s %d, want %d %s %d: %s", r.status, code, n, status, errCode, aadsts, r.raw)
		}
	}

	dev, user := start(cliClient)
	want(poll(cliClient, dev), 400, "slow_down", 70016) // at once: faster than the interval
	clk.Advance(6 * time.Second)
	want(poll(cliClient, dev), 400, "slow_down", 70016) // the interval grew to 10 s, now 15
	clk.Advance(16 * time.Second)
	want(poll(cliClient, dev), 400, "authorization_pending", 70016)
	want(poll(cliClient, "no-such-code"), 400, "bad_verification_code", 0)
	want(poll(demoClient, dev), 401, "invalid_client", 7000218) // a confidential app must authenticate
	if err := srv.ApproveDeviceCode(user, "nobody@example.com"); err == nil {
		t.Error("approved for an unknown user")
	}
	if err := srv.ApproveDeviceCode(strings.ToLower(user), bobUPN); err != nil {
		t.Fatal(err)
	}
	if err := srv.ApproveDeviceCode(user, bobUPN); !errors.Is(err, ErrNoDeviceCode) {
		t.Errorf("second approval: %v", err)
	}
	r := poll(cliClient, dev) // approved: the tokens, however fast the poll
	if r.status != 200 || r.body["refresh_token"] == nil || r.body["id_token"] == nil || r.body["client_info"] == nil {
		t.Fatalf("approved poll: %d %s", r.status, r.raw)
	}
	if sc := r.body["scope"].(string); !strings.Contains(sc, "https://analysis.windows.net/powerbi/api/Report.ReadWrite.All") {
		t.Errorf("scope %q", sc)
	}
	want(poll(cliClient, dev), 400, "invalid_grant", 70000) // redeemed

	dev, user = start(cliClient)
	if err := srv.DeclineDeviceCode(user); err != nil {
		t.Fatal(err)
	}
	want(poll(cliClient, dev), 400, "authorization_declined", 65004)

	dev, user = start(cliClient)
	clk.Advance(DeviceCodeLifetime)
	want(poll(cliClient, dev), 400, "expired_token", 70020)
	if err := srv.ApproveDeviceCode(user, aliceUPN); !errors.Is(err, ErrNoDeviceCode) {
		t.Errorf("approving an expired code: %v", err)
	}
	if len(srv.PendingDeviceCodes()) != 0 {
		t.Errorf("pending %+v", srv.PendingDeviceCodes())
	}

	for _, tc := range []struct {
		name, client, scope string
		status              int
		errCode             string
		aadsts              int
	}{
		{"unknown client", "c0ffee00-0000-4000-8000-0000000000ff", pbiScope, 400, "unauthorized_client", 700016},
		{"two resources", cliClient, pbiScope + " " + apiScope, 400, "invalid_scope", 28000},
		{"a Power BI scope that does not exist", cliClient, "https://analysis.windows.net/powerbi/api/Report.Delete.All", 400, "invalid_scope", 70011},
		{"a resource the tenant does not have", cliClient, "https://unknown.example/.default", 400, "invalid_resource", 500011},
	} {
		r := call(t, hc, "POST", base+"devicecode", "", deviceForm("client_id", tc.client, "scope", tc.scope))
		code, n := aadErr(r)
		if r.status != tc.status || code != tc.errCode || n != tc.aadsts {
			t.Errorf("%s: %d %s %d: %s", tc.name, r.status, code, n, r.raw)
		}
	}
}

// TestDeviceCodeAdminRoutes approves and declines through the admin
// routes, as a curl session or another process would.
func TestDeviceCodeAdminRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	base := srv.URL() + "/" + demoTenant + "/oauth2/v2.0/"
	r := call(t, hc, "POST", base+"devicecode", "", deviceForm("client_id", cliClient, "scope", apiScope))
	code := r.body["user_code"].(string)
	list := call(t, hc, "GET", srv.URL()+"/_emulator/devicecodes", "", nil)
	if v, _ := list.body["value"].([]any); len(v) != 1 || v[0].(map[string]any)["userCode"] != code {
		t.Errorf("pending list %s", list.raw)
	}
	if strings.Contains(string(list.raw), r.body["device_code"].(string)) {
		t.Error("the admin list shows the device code")
	}
	for _, tc := range []struct {
		name, path string
		body       any
		want       int
	}{
		{"unknown user", code + "/approve", map[string]any{"user": "nobody@example.com"}, 400},
		{"no user", code + "/approve", map[string]any{}, 400},
		{"unknown code", "XXXXXXXXX/approve", map[string]any{"user": aliceUPN}, 404},
		{"approve", code + "/approve", map[string]any{"user": aliceUPN}, 204},
		{"approve again", code + "/approve", map[string]any{"user": aliceUPN}, 404},
		{"decline an approved code", code + "/decline", nil, 404},
	} {
		if r := call(t, hc, "POST", srv.URL()+"/_emulator/devicecodes/"+tc.path, "", tc.body); r.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.raw, tc.want)
		}
	}
	tok := call(t, hc, "POST", base+"token", "", deviceForm("grant_type", grantDeviceCode, "client_id", cliClient, "device_code", r.body["device_code"].(string)))
	if tok.status != 200 {
		t.Fatalf("poll: %d %s", tok.status, tok.raw)
	}
}
