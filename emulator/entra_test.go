package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// assertion builds a client_assertion JWT signed with c.
func assertion(t *testing.T, c testCert, alg string, claims map[string]any) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if alg == "PS256" {
		sum := sha256.Sum256(c.cert.Raw)
		header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	} else {
		sum := sha1.Sum(c.cert.Raw)
		header["x5t"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	h, _ := json.Marshal(header)
	cl, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(cl)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, c.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDCAndDiscovery(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tests := []struct {
		name, path string
		wantStatus int
		want       map[string]string
	}{
		{"by guid", "/" + demoTenant + "/v2.0/.well-known/openid-configuration", 200, map[string]string{
			"issuer":                 srv.URL() + "/" + demoTenant + "/v2.0",
			"token_endpoint":         srv.URL() + "/" + demoTenant + "/oauth2/v2.0/token",
			"authorization_endpoint": srv.URL() + "/" + demoTenant + "/oauth2/v2.0/authorize",
			"jwks_uri":               srv.URL() + "/" + demoTenant + "/discovery/v2.0/keys",
		}},
		{"by domain", "/" + demoDomain + "/v2.0/.well-known/openid-configuration", 200, map[string]string{
			"issuer": srv.URL() + "/" + demoTenant + "/v2.0",
		}},
		{"unknown tenant", "/00000000-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration", 400, map[string]string{
			"error": "invalid_tenant",
		}},
		{"instance discovery", "/common/discovery/instance?api-version=1.1&authorization_endpoint=" +
			url.QueryEscape(srv.URL()+"/"+demoTenant+"/oauth2/v2.0/authorize"), 200, map[string]string{
			"tenant_discovery_endpoint": srv.URL() + "/" + demoTenant + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "GET", srv.URL()+tc.path, "", nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if r.header.Get("x-ms-request-id") == "" {
				t.Error("no x-ms-request-id")
			}
			for k, v := range tc.want {
				if got := r.body[k]; got != v {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
		})
	}
}

func TestEntraTokenEndpoint(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	c := testCerts(t)
	certEndpoint := srv.URL() + "/" + certTenant + "/oauth2/v2.0/token"
	now := time.Now()
	goodClaims := func(mut func(map[string]any)) map[string]any {
		m := map[string]any{"aud": certEndpoint, "iss": certClient, "sub": certClient,
			"exp": now.Add(10 * time.Minute).Unix(), "nbf": now.Unix(), "jti": newUUID()}
		if mut != nil {
			mut(m)
		}
		return m
	}
	secretForm := func(mut func(url.Values)) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {demoClient},
			"client_secret": {demoSecret}, "scope": {pbiScope + " openid offline_access profile"}}
		if mut != nil {
			mut(v)
		}
		return v
	}
	certForm := func(jwt string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {certClient},
			"client_assertion_type": {jwtBearerAssertion}, "client_assertion": {jwt},
			"client_info": {"1"}, "scope": {pbiScope}}
	}
	tests := []struct {
		name       string
		tenant     string
		form       url.Values
		basic      [2]string
		wantStatus int
		wantError  string
		wantCode   int
	}{
		{"secret", demoTenant, secretForm(nil), [2]string{}, 200, "", 0},
		{"secret, tenant by domain", demoDomain, secretForm(nil), [2]string{}, 200, "", 0},
		{"secret in HTTP Basic", demoTenant, secretForm(func(v url.Values) { v.Del("client_secret"); v.Del("client_id") }),
			[2]string{demoClient, demoSecret}, 200, "", 0},
		{"certificate PS256 x5t#S256", certTenant, certForm(assertion(t, c[0], "PS256", goodClaims(nil))), [2]string{}, 200, "", 0},
		{"certificate RS256 x5t", certTenant, certForm(assertion(t, c[0], "RS256", goodClaims(nil))), [2]string{}, 200, "", 0},
		{"unknown tenant", "00000000-0000-4000-8000-000000000000", secretForm(nil), [2]string{}, 400, "invalid_request", 90002},
		{"unknown app", demoTenant, secretForm(func(v url.Values) { v.Set("client_id", certClient) }), [2]string{}, 400, "unauthorized_client", 700016},
		{"bad secret", demoTenant, secretForm(func(v url.Values) { v.Set("client_secret", "secret-id-not-value") }), [2]string{}, 401, "invalid_client", 7000215},
		{"no credential", demoTenant, secretForm(func(v url.Values) { v.Del("client_secret") }), [2]string{}, 401, "invalid_client", 7000218},
		{"scope without /.default", demoTenant, secretForm(func(v url.Values) { v.Set("scope", "https://analysis.windows.net/powerbi/api/Report.Read.All") }), [2]string{}, 400, "invalid_scope", 1002012},
		{"two resources", demoTenant, secretForm(func(v url.Values) { v.Set("scope", pbiScope+" https://graph.microsoft.com/.default") }), [2]string{}, 400, "invalid_scope", 70011},
		{"only oidc scopes", demoTenant, secretForm(func(v url.Values) { v.Set("scope", "openid profile offline_access") }), [2]string{}, 400, "invalid_scope", 70011},
		{"authorization code grant", demoTenant, secretForm(func(v url.Values) { v.Set("grant_type", "authorization_code") }), [2]string{}, 400, "unsupported_grant_type", 70003},
		{"assertion from unregistered cert", certTenant, certForm(assertion(t, c[1], "PS256", goodClaims(nil))), [2]string{}, 401, "invalid_client", 700027},
		{"assertion wrong audience", certTenant, certForm(assertion(t, c[0], "PS256", goodClaims(func(m map[string]any) { m["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" }))), [2]string{}, 401, "invalid_client", 700027},
		{"assertion expired", certTenant, certForm(assertion(t, c[0], "PS256", goodClaims(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() }))), [2]string{}, 401, "invalid_client", 700027},
		{"assertion iss not client", certTenant, certForm(assertion(t, c[0], "PS256", goodClaims(func(m map[string]any) { m["iss"] = demoClient }))), [2]string{}, 401, "invalid_client", 700027},
		{"assertion bad signature", certTenant, certForm(assertion(t, c[0], "PS256", goodClaims(nil))[:300] + "AAAA.AAAA"), [2]string{}, 401, "invalid_client", 700027},
		{"assertion tampered claims", certTenant, certForm(tamper(assertion(t, c[0], "RS256", goodClaims(nil)))), [2]string{}, 401, "invalid_client", 700027},
	}
	descRE := regexp.MustCompile(`^AADSTS(\d+): .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hdr := []string{"client-request-id", "11111111-2222-4333-8444-555555555555"}
			if tc.basic[0] != "" {
				hdr = append(hdr, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(tc.basic[0])+":"+url.QueryEscape(tc.basic[1]))))
			}
			r := call(t, hc, "POST", srv.URL()+"/"+tc.tenant+"/oauth2/v2.0/token", "", tc.form, hdr...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			reqID := r.header.Get("x-ms-request-id")
			if reqID == "" {
				t.Error("no x-ms-request-id")
			}
			if tc.wantStatus == 200 {
				checkAccessToken(t, r)
				return
			}
			if r.body["error"] != tc.wantError {
				t.Errorf("error = %v, want %s", r.body["error"], tc.wantError)
			}
			desc, _ := r.body["error_description"].(string)
			m := descRE.FindStringSubmatch(desc)
			if m == nil || m[1] != itoa(tc.wantCode) {
				t.Errorf("error_description = %q, want AADSTS%d in the real layout", desc, tc.wantCode)
			}
			codes, _ := r.body["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != float64(tc.wantCode) {
				t.Errorf("error_codes = %v", r.body["error_codes"])
			}
			if r.body["trace_id"] != reqID || r.body["correlation_id"] != "11111111-2222-4333-8444-555555555555" {
				t.Errorf("trace_id %v / correlation_id %v", r.body["trace_id"], r.body["correlation_id"])
			}
			if r.body["timestamp"] == "" || !strings.HasSuffix(r.body["error_uri"].(string), "code="+itoa(tc.wantCode)) {
				t.Errorf("timestamp %v error_uri %v", r.body["timestamp"], r.body["error_uri"])
			}
		})
	}
}

// tamper swaps the claims of a JWT so its signature no longer matches.
func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims = []byte(strings.Replace(string(claims), `"jti":"`, `"jti":"x`, 1))
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + parts[2]
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// checkAccessToken checks the success shape and the token's claims.
func checkAccessToken(t *testing.T, r response) {
	t.Helper()
	if r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(3599) || r.body["ext_expires_in"] != float64(3599) {
		t.Errorf("body = %s", r.raw)
	}
	tok, err := parseJWT(r.body["access_token"].(string))
	if err != nil {
		t.Fatalf("access_token: %v", err)
	}
	if tok.headerString("alg") != "RS256" {
		t.Errorf("alg %q", tok.headerString("alg"))
	}
	tid := tok.claimString("tid")
	want := map[string]string{"aud": "https://analysis.windows.net/powerbi/api", "iss": "https://sts.windows.net/" + tid + "/"}
	for k, v := range want {
		if got := tok.claimString(k); got != v {
			t.Errorf("claim %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"appid", "oid", "jti", "tid"} {
		if tok.claimString(k) == "" {
			t.Errorf("claim %s missing", k)
		}
	}
	iat, _ := tok.claimUnix("iat")
	nbf, _ := tok.claimUnix("nbf")
	exp, _ := tok.claimUnix("exp")
	if iat == 0 || nbf != iat || exp != iat+3599 {
		t.Errorf("iat %d nbf %d exp %d", iat, nbf, exp)
	}
}
