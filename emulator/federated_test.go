package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/embedgate/embedgate/internal/testkit"
)

const (
	fedTenant = "50000000-0000-4000-8000-000000000001"
	fedClient = "5a000000-0000-4000-8000-000000000001"
	k8sIssuer = "https://kubernetes.default.svc.cluster.local"
	k8sSub    = "system:serviceaccount:embedgate:embedgate"
	ghIssuer  = "https://token.actions.githubusercontent.com"
	ghSub     = "repo:acme/embedgate:ref:refs/heads/main"
)

// fedSetup is a server whose app trusts a Kubernetes issuer (ES256,
// default audience) and GitHub (RS256, its own audience), with the keys
// that sign for them.
type fedSetup struct {
	srv    *Server
	ecKey  *ecdsa.PrivateKey
	rsaKey *rsa.PrivateKey
}

func newFedSetup(t *testing.T) fedSetup {
	t.Helper()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	gh := testCerts(t)[1] // its certificate carries the key, as a JWKS x5c would
	f := DemoFixture()
	f.Tenants = append(f.Tenants, Tenant{ID: fedTenant, Apps: []App{{
		ClientID: fedClient, ObjectID: "5b000000-0000-4000-8000-000000000001", Name: "federated",
		FederatedCredentials: []FederatedCredential{
			{Name: "aks", Issuer: k8sIssuer, Subject: k8sSub, SigningKey: ecPEM},
			{Name: "github", Issuer: ghIssuer, Subject: ghSub, Audiences: []string{"api://custom"}, SigningKey: gh.pem},
		},
	}}})
	f.Workspaces[0].Access = append(f.Workspaces[0].Access, Access{Principal: fedClient, Role: RoleMember})
	return fedSetup{srv: startServer(t, Config{Fixture: f}), ecKey: ecKey, rsaKey: gh.key}
}

func fedClaims(iss, sub, aud string, mut func(map[string]any)) map[string]any {
	now := time.Now()
	m := map[string]any{"iss": iss, "sub": sub, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mut != nil {
		mut(m)
	}
	return m
}

func TestFederatedCredentials(t *testing.T) {
	t.Parallel()
	fs := newFedSetup(t)
	hc := httpClient(t, fs.srv)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const def = defaultFederatedAudience
	tests := []struct {
		name       string
		assertion  string
		wantStatus int
		wantCode   int
		wantMsg    string // the error_description before "\r\nTrace ID"
	}{
		{"Kubernetes token, default audience", testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer, k8sSub, def, nil)), 200, 0, ""},
		{"GitHub token, its own audience", testkit.SignJWT(t, fs.rsaKey, fedClaims(ghIssuer, ghSub, "api://custom", nil)), 200, 0, ""},
		{"audience as an array", testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer, k8sSub, "", func(m map[string]any) { m["aud"] = []string{"x", def} })), 200, 0, ""},
		{"GitHub token, default audience the credential does not list", testkit.SignJWT(t, fs.rsaKey, fedClaims(ghIssuer, ghSub, def, nil)), 400, 70021,
			"AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '" + ghIssuer +
				"'. Assertion Subject: '" + ghSub + "'. Assertion Audience: '" + def +
				"'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation"},
		{"subject in another case", testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer, strings.ToUpper(k8sSub), def, nil)), 400, 70021, ""},
		{"unknown issuer", testkit.SignJWT(t, fs.ecKey, fedClaims("https://evil.example", k8sSub, def, nil)), 400, 70021, ""},
		{"issuer with a trailing slash", testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer+"/", k8sSub, def, nil)), 400, 70021, ""},
		{"signed by another key", testkit.SignJWT(t, other, fedClaims(k8sIssuer, k8sSub, def, nil)), 401, 700027, ""},
		{"RS256 claimed for the EC key", testkit.SignJWT(t, fs.rsaKey, fedClaims(k8sIssuer, k8sSub, def, nil)), 401, 700027, ""},
		{"expired", testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer, k8sSub, def, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() })), 401, 700027, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", fs.srv.URL()+"/"+fedTenant+"/oauth2/v2.0/token", "", url.Values{
				"grant_type": {"client_credentials"}, "client_id": {fedClient}, "scope": {pbiScope},
				"client_assertion_type": {jwtBearerAssertion}, "client_assertion": {tc.assertion}})
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantStatus == 200 {
				tok, _ := parseJWT(r.body["access_token"].(string))
				if tok == nil || tok.claimString("appid") != fedClient || tok.claimString("appidacr") != "2" {
					t.Errorf("token claims: %+v", tok)
				}
				return
			}
			codes, _ := r.body["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != float64(tc.wantCode) {
				t.Errorf("error_codes %v, want %d", r.body["error_codes"], tc.wantCode)
			}
			desc, _ := r.body["error_description"].(string)
			if msg, _, _ := strings.Cut(desc, "\r\nTrace ID"); tc.wantMsg != "" && msg != tc.wantMsg {
				t.Errorf("error_description\n%q\nwant\n%q", msg, tc.wantMsg)
			}
			if tc.wantCode == 70021 && r.body["error"] != "invalid_request" {
				t.Errorf("error %v", r.body["error"])
			}
		})
	}
}

// TestFederatedWithMSAL: MSAL's assertion callback, as a workload identity
// uses it, signs in and calls Power BI.
func TestFederatedWithMSAL(t *testing.T) {
	t.Parallel()
	fs := newFedSetup(t)
	cred := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		return testkit.SignJWT(t, fs.ecKey, fedClaims(k8sIssuer, k8sSub, defaultFederatedAudience, nil)), nil
	})
	hc := httpClient(t, fs.srv)
	app, err := confidential.New(fs.srv.URL()+"/"+fedTenant, fedClient, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ar, err := app.AcquireTokenByCredential(context.Background(), []string{pbiScope})
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, hc, "GET", fs.srv.URL()+"/v1.0/myorg/groups/"+wsAcme, ar.AccessToken, nil); r.status != 200 {
		t.Errorf("Power BI with the federated token: %d %s", r.status, r.raw)
	}
}

// TestExpiredSecret: an expired secret answers AADSTS7000222, with the
// real message, from the moment it expires.
func TestExpiredSecret(t *testing.T) {
	t.Parallel()
	clk := newClock()
	f := DemoFixture()
	f.Tenants[0].Apps[0].Secrets = append(f.Tenants[0].Apps[0].Secrets, Secret{Value: "soon", Expires: clk.Now().Add(time.Hour)})
	srv := startServer(t, Config{Fixture: f, Now: clk.Now})
	hc := httpClient(t, srv)
	token := func(secret string) response {
		return call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {demoClient}, "client_secret": {secret}, "scope": {pbiScope}})
	}
	if r := token("soon"); r.status != 200 {
		t.Fatalf("before expiry: %d %s", r.status, r.raw)
	}
	clk.Advance(time.Hour)
	want := "AADSTS7000222: The provided client secret keys for app '" + demoClient + "' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
	for _, secret := range []string{"soon", expiredSec} {
		r := token(secret)
		desc, _ := r.body["error_description"].(string)
		if msg, _, _ := strings.Cut(desc, "\r\nTrace ID"); r.status != 401 || r.body["error"] != "invalid_client" || msg != want {
			t.Errorf("%s: %d %s", secret, r.status, r.raw)
		}
	}
	if r := token(demoSecret); r.status != 200 {
		t.Errorf("the secret without expiry: %d", r.status)
	}
}
