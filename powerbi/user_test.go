package powerbi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

// The demo fixture's people and apps (emulator/demo.yaml), for the
// user-owns-data tests.
const (
	demoTenant   = "c0ffee00-0000-4000-8000-000000000001"
	demoAPI      = "c0ffee00-0000-4000-8000-0000000000a1" // Embedgate's app: its API, its secret
	demoSecret   = "embedgate-dev-secret"
	demoCLI      = "c0ffee00-0000-4000-8000-0000000000c1" // a public client
	demoWS       = "a0000000-0000-4000-8000-000000000001" // Acme Analytics: alice Member, bob and carol Viewers
	demoFinance  = "a0000000-0000-4000-8000-000000000004" // Acme Finance: no user has a role
	demoSales    = "a1000000-0000-4000-8000-000000000001" // on an RLS dataset
	demoSalesDS  = "d1000000-0000-4000-8000-000000000001"
	demoBudget   = "a4000000-0000-4000-8000-000000000001" // in Acme Finance
	demoScratch  = "a8000000-0000-4000-8000-000000000001" // alice's My workspace
	aliceUPN     = "alice@embedgate-demo.onmicrosoft.com"
	aliceOID     = "c0ffee00-0000-4000-8000-0000000000e1"
	apiScope     = "api://" + demoAPI + "/access_as_user"
	powerBIScope = "https://analysis.windows.net/powerbi/api/.default"
)

// withDemoWorld runs against the emulator's demo fixture, as Embedgate's
// demo app.
func withDemoWorld(s *envSetup) {
	s.emu.Fixture = emulator.DemoFixture()
	s.cfg.TenantID, s.cfg.ClientID = demoTenant, demoAPI
	s.cfg.ClientSecretFile = ""
}

// demoEnv is newEnv on the demo fixture, with the demo app's secret.
func demoEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	secret := writeFile(t, "demo-secret", demoSecret+"\n")
	return newEnv(t, append([]envOption{withDemoWorld, withConfig(func(c *Config) { c.ClientSecretFile = secret })}, opts...)...)
}

// signIn signs user in with the device code flow of MSAL's public client,
// as the demo CLI app, for scope, the emulator approving the code as the
// user would on the verification page (a sign-in with MFA).
func (e *testEnv) signIn(t *testing.T, user, scope string) public.AuthResult {
	t.Helper()
	pca, err := public.New(demoCLI, public.WithAuthority(e.emu.URL()+"/"+demoTenant),
		public.WithHTTPClient(e.c.hc), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := pca.AcquireTokenByDeviceCode(context.Background(), []string{scope})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.ApproveDeviceCode(dc.Result.UserCode, user); err != nil {
		t.Fatal(err)
	}
	ar, err := dc.AuthenticationResult(context.Background())
	if err != nil {
		t.Fatalf("%s signs in for %s: %v", user, scope, err)
	}
	return ar
}

// passwordToken is a user's token from a password sign-in (no MFA), asked
// of the emulator's token endpoint directly: MSAL's username/password flow
// first asks a user realm endpoint the emulator does not play.
func (e *testEnv) passwordToken(t *testing.T, user, scope string) string {
	t.Helper()
	password := "embedgate-" + strings.SplitN(user, "@", 2)[0] + "-password"
	resp, err := e.c.hc.PostForm(e.emu.URL()+"/"+demoTenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"password"}, "client_id": {demoCLI}, "username": {user}, "password": {password}, "scope": {scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("%s's password sign-in: HTTP %d, %v", user, resp.StatusCode, err)
	}
	return body.AccessToken
}

// asUser is a Client acting as the user who holds token.
func (e *testEnv) asUser(t *testing.T, token string) *Client {
	t.Helper()
	c, err := NewAsUser(e.cfg, func(context.Context) (UserToken, error) {
		return UserToken{Value: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}, WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssueAsUser: a signed-in user mints with the same planning as the
// service principal; without an identity Power BI applies the user's own
// (nothing is refused before the call), with one it is sent.
func TestIssueAsUser(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	alice := e.signIn(t, aliceUPN, powerBIScope)
	c := e.asUser(t, alice.AccessToken)
	if err := c.CheckCredential(context.Background()); err != nil {
		t.Errorf("CheckCredential as a user: %v", err)
	}
	r := TokenRequest{Items: []Item{rep(demoWS, demoSales)}, Lifetime: 30 * time.Minute}
	p, err := c.Plan(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"datasets":[{"id":"` + demoSalesDS + `"}],"reports":[{"id":"` + demoSales + `","allowEdit":false}],"lifetimeInMinutes":30}`; string(p.Body) != want {
		t.Errorf("plan body = %s\nwant %s", p.Body, want)
	}
	tok, err := c.Issue(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := e.emu.LookupToken(tok.TokenID)
	if !ok || info.UserPrincipalName != aliceUPN || info.ObjectID != aliceOID || len(info.Identities) != 0 {
		t.Errorf("the emulator's record of the token: %+v, %v; want alice's, without identities", info, ok)
	}
	r.Identity = &Identity{Username: "bob@acme.example", Roles: []string{"Customer"}}
	tok, err = c.Issue(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := e.emu.LookupToken(tok.TokenID); len(info.Identities) != 1 || info.Identities[0].Username != "bob@acme.example" {
		t.Errorf("identities = %+v, want bob's", info.Identities)
	}
	// A user's refusal is not retried with a new token: the user has none
	// better.
	r.Items = []Item{rep(demoFinance, demoBudget)}
	r.Identity = nil
	before := e.tokenPosts()
	if _, err := c.Issue(context.Background(), r); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("a workspace alice has no role in: %v, want ErrNotAuthorized", err)
	}
	if e.tokenPosts() != before {
		t.Errorf("a refusal made an Entra call")
	}
}

// TestVerifyAssertion: a user's token for Embedgate's API passes; every
// other kind of token is refused with why, before any exchange.
func TestVerifyAssertion(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	alice := e.signIn(t, aliceUPN, apiScope)
	a, err := e.c.VerifyAssertion(context.Background(), alice.AccessToken)
	if err != nil {
		t.Fatalf("alice's token for Embedgate's API: %v", err)
	}
	if a.TenantID != demoTenant || a.ObjectID != aliceOID || a.Audience != demoAPI || !a.Expires.After(e.clock.Now()) {
		t.Errorf("assertion = %+v", a)
	}
	keyCalls := e.calls(emulator.RouteOIDC, emulator.RouteJWKS)
	if _, err := e.c.VerifyAssertion(context.Background(), alice.AccessToken); err != nil {
		t.Fatal(err)
	}
	if got := e.calls(emulator.RouteOIDC, emulator.RouteJWKS); got != keyCalls {
		t.Errorf("a second check fetched the tenant's metadata or keys again (%d calls, then %d)", keyCalls, got)
	}

	powerBI := e.signIn(t, aliceUPN, powerBIScope)
	appToken, err := e.c.cred.app.Load().client.AcquireTokenByCredential(context.Background(), []string{"api://" + demoAPI + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	forged := resign(t, alice.AccessToken, nil)
	foreignTenant := resign(t, alice.AccessToken, map[string]any{"tid": "c0ffee00-0000-4000-8000-0000000000ff"})
	tests := []struct {
		name, token string
		want        error
		why         string
	}{
		{"another API's token", powerBI.AccessToken, ErrAssertionInvalid, `audience "https://analysis.windows.net/powerbi/api" is not Embedgate's API`},
		{"an application's token", appToken.AccessToken, ErrAssertionInvalid, "an application's token"},
		{"signed with another key", forged, ErrAssertionInvalid, "not signed by a key tenant " + demoTenant + " publishes"},
		{"an unknown tenant", foreignTenant, ErrAssertionInvalid, "Entra ID has no tenant c0ffee00-0000-4000-8000-0000000000ff"},
		{"not a JWT", "not-a-token", ErrAssertionInvalid, "not a JWT"},
	}
	for _, tc := range tests {
		_, err := e.c.VerifyAssertion(context.Background(), tc.token)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.want, tc.why)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: the error holds the token", tc.name)
		}
	}

	// Two hours on, alice's token has expired (beyond the five minutes of
	// skew allowed).
	e.clock.Advance(2 * time.Hour)
	if _, err := e.c.VerifyAssertion(context.Background(), alice.AccessToken); !errors.Is(err, ErrAssertionExpired) {
		t.Errorf("an expired assertion: %v, want ErrAssertionExpired", err)
	}
}

// TestOnBehalfOf: the exchange gives the user's Power BI token, from MSAL's
// cache for the same assertion; a user who never consented, and one whose
// Conditional Access policy wants MFA, are told apart, the latter with the
// claims challenge.
func TestOnBehalfOf(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	alice := e.signIn(t, aliceUPN, apiScope)
	posts := e.tokenPosts()
	tok, err := e.c.OnBehalfOf(context.Background(), alice.AccessToken, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	if claims := jwtPayload(t, tok.Value); claims["aud"] != "https://analysis.windows.net/powerbi/api" || claims["oid"] != aliceOID {
		t.Errorf("the exchanged token: aud %v, oid %v; want Power BI's, alice's", claims["aud"], claims["oid"])
	}
	if !tok.ExpiresOn.After(e.clock.Now().Add(50 * time.Minute)) {
		t.Errorf("ExpiresOn = %v", tok.ExpiresOn)
	}
	again, err := e.c.OnBehalfOf(context.Background(), alice.AccessToken, demoTenant)
	if err != nil || again.Value != tok.Value {
		t.Errorf("the same assertion again: a new token (%v), want the one kept for it", err)
	}
	if got := e.tokenPosts() - posts; got != 1 {
		t.Errorf("token POSTs = %d, want 1 (one exchange, then the one kept)", got)
	}

	bob := e.signIn(t, "bob@embedgate-demo.onmicrosoft.com", apiScope)
	_, err = e.c.OnBehalfOf(context.Background(), bob.AccessToken, demoTenant)
	var se *UserSignInError
	if !errors.Is(err, ErrConsentRequired) || !errors.As(err, &se) || !strings.Contains(err.Error(), "AADSTS65001") {
		t.Errorf("bob, who never consented: %v, want ErrConsentRequired with AADSTS65001", err)
	}
	carol := e.passwordToken(t, "carol@embedgate-demo.onmicrosoft.com", apiScope) // a password: no MFA
	_, err = e.c.OnBehalfOf(context.Background(), carol, demoTenant)
	if !errors.Is(err, ErrInteractionRequired) || !errors.As(err, &se) || !strings.Contains(se.Claims, `"polids"`) {
		t.Errorf("carol, who needs MFA for Power BI: %v (claims %q), want ErrInteractionRequired with the claims challenge", err, se.Claims)
	}
	// Entra's own clock says an assertion has expired.
	fresh := e.passwordToken(t, aliceUPN, apiScope)
	e.upstreamAhead(3 * time.Hour)
	if _, err := e.c.OnBehalfOf(context.Background(), fresh, demoTenant); !errors.Is(err, ErrAssertionExpired) {
		t.Errorf("an assertion Entra finds expired: %v, want ErrAssertionExpired", err)
	}
	e.upstreamAhead(0)
	// Entra refuses the exchange for a reason of its own (a bad request):
	// the user's side, not Embedgate's credential.
	other, another := e.passwordToken(t, aliceUPN, powerBIScope), e.passwordToken(t, aliceUPN, "openid")
	e.emu.SetAnswer(emulator.RouteEntraToken, emulator.Answer{Status: 400, Times: 1,
		Body: []byte(`{"error":"invalid_request","error_description":"AADSTS50027: JWT token is invalid or malformed.","error_codes":[50027]}`)})
	if _, err := e.c.OnBehalfOf(context.Background(), other, demoTenant); !errors.Is(err, ErrAssertionInvalid) || errors.Is(err, ErrCredential) {
		t.Errorf("an exchange Entra refuses as invalid_request: %v, want ErrAssertionInvalid, not the credential", err)
	}
	// Refusing Embedgate's own credential stays the credential's problem.
	e.emu.SetAnswer(emulator.RouteEntraToken, emulator.Answer{Status: 401, Times: 1,
		Body: []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`)})
	if _, err := e.c.OnBehalfOf(context.Background(), another, demoTenant); !errors.Is(err, ErrCredential) {
		t.Errorf("an exchange refused as invalid_client: %v, want ErrCredential", err)
	}
}

// TestReportsAsUser: the user's own rights decide, nothing is cached
// between users, and My workspace is read without a workspace id.
func TestReportsAsUser(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	alice := e.signIn(t, aliceUPN, powerBIScope)
	items, err := e.c.ReportsAsUser(context.Background(), alice.AccessToken, demoWS, []string{demoSales})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Name != "Sales" || !strings.Contains(items[0].EmbedURL, "reportId="+demoSales) || items[0].DatasetID != demoSalesDS {
		t.Errorf("items = %+v", items)
	}
	mine, err := e.c.ReportsAsUser(context.Background(), alice.AccessToken, "", []string{demoScratch})
	if err != nil || len(mine) != 1 || mine[0].Name != "Alice Scratch" || strings.Contains(mine[0].EmbedURL, "groupId") {
		t.Errorf("My workspace: %+v, %v", mine, err)
	}
	_, err = e.c.ReportsAsUser(context.Background(), alice.AccessToken, demoFinance, []string{demoBudget})
	var ue *UserAccessError
	if !errors.Is(err, ErrUserNotAllowed) || !errors.As(err, &ue) || errors.Is(err, ErrNotFound) {
		t.Errorf("a workspace alice has no role in: %v, want ErrUserNotAllowed", err)
	}
	if RequestIDOf(err) == "" {
		t.Errorf("the refusal lost Power BI's RequestId")
	}
	if _, err := e.c.ReportsAsUser(context.Background(), alice.AccessToken, demoWS, []string{"a1000000-0000-4000-8000-0000000000ff"}); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUserNotAllowed) {
		t.Errorf("no such report: %v, want ErrNotFound", err)
	}
	// Carol reads the same report with her own token: a call of her own.
	before := e.calls(emulator.RouteGetReport)
	carol := e.signIn(t, "carol@embedgate-demo.onmicrosoft.com", powerBIScope)
	if _, err := e.c.ReportsAsUser(context.Background(), carol.AccessToken, demoWS, []string{demoSales}); err != nil {
		t.Fatal(err)
	}
	if e.calls(emulator.RouteGetReport) != before+1 {
		t.Errorf("carol's read was served from alice's")
	}
}

// resign returns token with claims changed (nil: unchanged), signed with a
// key of the test's own.
func resign(t *testing.T, token string, change map[string]any) string {
	t.Helper()
	claims := jwtPayload(t, token)
	for k, v := range change {
		claims[k] = v
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.SignJWT(t, key, claims)
}

// jwtPayload decodes a JWT's claims without checking it.
func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestVerifyAssertionIssuer: a token for Embedgate's API with an issuer
// the tenant does not publish is refused. Here the API takes v1.0 tokens
// (issuer https://sts.windows.net/<tid>/), and Entra's v1.0 metadata, which
// would name that issuer, is not served.
func TestVerifyAssertionIssuer(t *testing.T) {
	t.Parallel()
	e := demoEnv(t, withWorld(func(f *emulator.Fixture) { f.Tenants[0].Apps[0].API.AccessTokenVersion = 1 }))
	alice := e.signIn(t, aliceUPN, apiScope)
	_, err := e.c.VerifyAssertion(context.Background(), alice.AccessToken)
	if !errors.Is(err, ErrAssertionInvalid) || !strings.Contains(err.Error(), `issuer "https://sts.windows.net/`+demoTenant+`/" is not tenant`) {
		t.Errorf("a token of an issuer the tenant does not publish: %v", err)
	}
}
