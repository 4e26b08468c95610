package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// The demo fixture's people and the CLI app they sign in with.
const (
	demoCLI  = "c0ffee00-0000-4000-8000-0000000000c1"
	alice    = "alice@embedgate-demo.onmicrosoft.com" // Pro, Member of Acme Analytics, consented
	bob      = "bob@embedgate-demo.onmicrosoft.com"   // never consented to Embedgate's app
	carol    = "carol@embedgate-demo.onmicrosoft.com" // MFA required for Power BI
	aliceOID = "c0ffee00-0000-4000-8000-0000000000e1"
	carolOID = "c0ffee00-0000-4000-8000-0000000000e3"
	apiScope = "api://" + clientID + "/access_as_user"
	pbiScope = "https://analysis.windows.net/powerbi/api/.default"
)

// emuHTTP is an HTTPS client that trusts the stack's emulator.
func (s *stack) emuHTTP() *http.Client {
	pool := s.ca.Pool() // the stack's CA does not sign the emulator's certificate
	pool.AppendCertsFromPEM(s.emu.CACertPEM())
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
}

// signIn signs user in with MSAL's device code flow as the demo CLI app
// (the emulator approves the code as the user would, with MFA) and returns
// the access token for scope.
func (s *stack) signIn(t *testing.T, user, scope string) string {
	t.Helper()
	pca, err := public.New(demoCLI, public.WithAuthority(s.emu.URL()+"/"+entraTenant),
		public.WithHTTPClient(s.emuHTTP()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := pca.AcquireTokenByDeviceCode(context.Background(), []string{scope})
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.emu.ApproveDeviceCode(dc.Result.UserCode, user))
	ar, err := dc.AuthenticationResult(context.Background())
	if err != nil {
		t.Fatalf("%s signs in: %v", user, err)
	}
	return ar.AccessToken
}

// passwordToken is user's token from a password sign-in (no MFA), from the
// emulator's token endpoint.
func (s *stack) passwordToken(t *testing.T, user, scope string) string {
	t.Helper()
	resp, err := s.emuHTTP().PostForm(s.emu.URL()+"/"+entraTenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"password"}, "client_id": {demoCLI}, "username": {user},
		"password": {"embedgate-" + strings.SplitN(user, "@", 2)[0] + "-password"}, "scope": {scope},
	})
	must(t, err)
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("%s's password sign-in: HTTP %d, %v", user, resp.StatusCode, err)
	}
	return body.AccessToken
}

// claimsOf decodes a JWT's claims without checking it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

// errorInfo is the ErrorInfo of a status error.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// TestGenerateUserEmbedConfig drives user owns data end to end: a real
// caller over mTLS, the real server, MSAL's On-Behalf-Of exchange and the
// reads as the user over HTTPS against the emulator. A user with access
// gets their token and the embed URLs; every refusal has its own code and
// reason.
func TestGenerateUserEmbedConfig(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{auditFile: true})
	portal := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, intranet)))
	aliceAPI := s.signIn(t, alice, apiScope)
	ask := func(assertion, ws string, reports ...string) *embedgatev1.GenerateUserEmbedConfigRequest {
		return &embedgatev1.GenerateUserEmbedConfigRequest{UserAssertion: assertion, WorkspaceId: ws, ReportIds: reports}
	}

	resp, err := portal.GenerateUserEmbedConfig(context.Background(), ask(aliceAPI, acmeWorkspace, salesReport, invReport))
	if err != nil {
		t.Fatalf("alice, reports of a workspace she is a Member of: %v", err)
	}
	if c := claimsOf(t, resp.GetAccessToken()); c["aud"] != "https://analysis.windows.net/powerbi/api" || c["oid"] != aliceOID {
		t.Errorf("the access token: aud %v, oid %v; want Power BI's, alice's", c["aud"], c["oid"])
	}
	if len(resp.GetReports()) != 2 || resp.GetReports()[0].GetId() != salesReport || !strings.Contains(resp.GetReports()[0].GetEmbedUrl(), "reportId="+salesReport) ||
		resp.GetReports()[1].GetName() != "Inventory" || resp.GetReports()[0].GetWorkspaceId() != acmeWorkspace {
		t.Errorf("reports = %v", resp.GetReports())
	}
	exp, refresh := resp.GetExpireTime().AsTime(), resp.GetRefreshTime().AsTime()
	if !exp.After(time.Now().Add(50*time.Minute)) || !refresh.Before(exp) || !refresh.After(time.Now()) {
		t.Errorf("expire_time %v, refresh_time %v", exp, refresh)
	}
	// The same user again: MSAL's cache, no second exchange.
	posts := s.emu.Counters()[emulator.RouteEntraToken]
	again, err := portal.GenerateUserEmbedConfig(context.Background(), ask(aliceAPI, acmeWorkspace, salesReport))
	if err != nil || again.GetAccessToken() != resp.GetAccessToken() {
		t.Errorf("alice again: %v, the same token %v; want MSAL's cached token", err, again.GetAccessToken() == resp.GetAccessToken())
	}
	if got := s.emu.Counters()[emulator.RouteEntraToken]; got != posts {
		t.Errorf("alice's second call made %d token requests, want 0", got-posts)
	}
	// Another user gets a token of her own, never alice's.
	carolMFA, err := portal.GenerateUserEmbedConfig(context.Background(), ask(s.signIn(t, carol, apiScope), acmeWorkspace, salesReport))
	if err != nil {
		t.Fatalf("carol, signed in with MFA: %v", err)
	}
	if carolMFA.GetAccessToken() == resp.GetAccessToken() || claimsOf(t, carolMFA.GetAccessToken())["oid"] != carolOID {
		t.Errorf("carol got alice's token, or not hers")
	}

	aliceClock := s.passwordToken(t, alice, pbiScope)
	tests := []struct {
		name       string
		client     embedgatev1.EmbedTokenServiceClient
		req        *embedgatev1.GenerateUserEmbedConfigRequest
		wantCode   codes.Code
		wantReason string
		wantMeta   string // an ErrorInfo metadata key that must be set
	}{
		{"a user without access to the report", portal, ask(aliceAPI, financeWS, budgetReport), codes.PermissionDenied, "USER_NOT_ALLOWED", "pbi_error_code"},
		{"no such report", portal, ask(aliceAPI, acmeWorkspace, "a1000000-0000-4000-8000-0000000000ff"), codes.NotFound, "POWERBI_ITEM_NOT_FOUND", "pbi_request_id"},
		{"a user who never consented", portal, ask(s.signIn(t, bob, apiScope), acmeWorkspace, salesReport), codes.FailedPrecondition, "USER_CONSENT_REQUIRED", "aadsts"},
		{"MFA required", portal, ask(s.passwordToken(t, carol, apiScope), acmeWorkspace, salesReport), codes.Unauthenticated, "USER_INTERACTION_REQUIRED", "claims"},
		{"a token for another API", portal, ask(aliceClock, acmeWorkspace, salesReport), codes.Unauthenticated, "USER_ASSERTION_INVALID", ""},
		{"a caller without user_owns_data", s.client, ask(aliceAPI, acmeWorkspace, salesReport), codes.PermissionDenied, "USER_EMBEDDING_NOT_ALLOWED", ""},
		{"a caller the policy does not list", embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, stranger))), ask(aliceAPI, acmeWorkspace, salesReport), codes.PermissionDenied, "CALLER_NOT_IN_POLICY", ""},
		{"a workspace the policy does not open", portal, ask(aliceAPI, "a0000000-0000-4000-8000-000000000002", globexReport), codes.PermissionDenied, "USER_EMBEDDING_NOT_ALLOWED", ""},
		{"not a JWT", portal, ask("not-a-token", acmeWorkspace, salesReport), codes.InvalidArgument, "INVALID_REQUEST", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.GenerateUserEmbedConfig(context.Background(), tc.req)
			info := errorInfo(err)
			if status.Code(err) != tc.wantCode || info.GetReason() != tc.wantReason {
				t.Fatalf("%v (reason %s), want %v %s", err, info.GetReason(), tc.wantCode, tc.wantReason)
			}
			if tc.wantMeta != "" && info.GetMetadata()[tc.wantMeta] == "" {
				t.Errorf("no %s in the ErrorInfo metadata: %v", tc.wantMeta, info.GetMetadata())
			}
			if strings.Contains(status.Convert(err).Message(), tc.req.GetUserAssertion()) {
				t.Errorf("the message holds the assertion")
			}
		})
	}
	// The claims challenge is Entra's, as MSAL's claims parameter takes it.
	_, err = portal.GenerateUserEmbedConfig(context.Background(), ask(s.passwordToken(t, carol, apiScope), acmeWorkspace, salesReport))
	challenge := errorInfo(err).GetMetadata()["claims"]
	var claims map[string]any
	if jerr := json.Unmarshal([]byte(challenge), &claims); jerr != nil || !strings.Contains(challenge, `"polids"`) {
		t.Errorf("claims = %q (%v), want Entra's challenge naming the policy", challenge, jerr)
	}

	// The audit: the user's object id and the token's expiry, never a token.
	must(t, s.stop())
	data, err := os.ReadFile(filepath.Join(s.dir, "audit.jsonl"))
	must(t, err)
	var first map[string]any
	must(t, json.Unmarshal([]byte(strings.SplitN(string(data), "\n", 2)[0]), &first))
	for k, want := range map[string]any{"mode": "user_owns_data", "outcome": "allowed", "code": "OK", "caller": intranet,
		"entra_tenant": entraTenant, "user_oid": aliceOID, "workspace_id": acmeWorkspace, "rule": "callers[" + intranet + "].user_owns_data"} {
		if first[k] != want {
			t.Errorf("audit record: %s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["expire_time"]; !ok {
		t.Errorf("the audit record lacks the token's expiry")
	}
	// A refused assertion's tenant is what it claims, and said so.
	foreign := false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec map[string]any
		must(t, json.Unmarshal([]byte(line), &rec))
		if rec["reason"] == "USER_ASSERTION_INVALID" {
			foreign = true
			if _, ok := rec["entra_tenant"]; ok || rec["claimed_entra_tenant"] != entraTenant || rec["user_oid"] != nil {
				t.Errorf("the record of a refused assertion: %v, want its claimed tenant and no user", rec)
			}
		}
	}
	if !foreign {
		t.Error("no audit record of the refused assertion")
	}
	doc, err := os.ReadFile("../docs/audit.md")
	must(t, err)
	undocumented := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec map[string]any
		must(t, json.Unmarshal([]byte(line), &rec))
		for k := range rec {
			if !strings.Contains(string(doc), "| `"+k+"` |") && !undocumented[k] {
				undocumented[k] = true
				t.Errorf("docs/audit.md does not document the field %q", k)
			}
		}
	}
	if !regexp.MustCompile(`"msg":"grpc call"[^\n]*"method":"/embedgate.v1.EmbedTokenService/GenerateUserEmbedConfig"[^\n]*"entra_tenant":"` + entraTenant + `","user_oid":"` + aliceOID + `"`).MatchString(s.logs.String()) {
		t.Errorf("no call record names alice's object id and tenant")
	}
	for _, secret := range []string{aliceAPI, resp.GetAccessToken(), carolMFA.GetAccessToken()} {
		if strings.Contains(string(data), secret) || strings.Contains(s.logs.String(), secret) {
			t.Errorf("a user's token is in the audit file or the log")
		}
	}
}

// TestGenerateUserEmbedConfigExpired: an assertion past its expiry (and
// the five minutes of skew) is refused before any exchange.
func TestGenerateUserEmbedConfigExpired(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	s := startStack(t, stackOptions{now: clock.Now})
	portal := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, intranet)))
	assertion := s.passwordToken(t, alice, apiScope)
	clock.Advance(2 * time.Hour)
	_, err := portal.GenerateUserEmbedConfig(context.Background(), &embedgatev1.GenerateUserEmbedConfigRequest{
		UserAssertion: assertion, WorkspaceId: acmeWorkspace, ReportIds: []string{salesReport}})
	if status.Code(err) != codes.Unauthenticated || errorInfo(err).GetReason() != "USER_ASSERTION_EXPIRED" {
		t.Fatalf("an expired assertion: %v, want UNAUTHENTICATED USER_ASSERTION_EXPIRED", err)
	}
	for _, r := range s.emu.Requests(emulator.RouteEntraToken) {
		if strings.Contains(string(r.Body), "on_behalf_of") {
			t.Errorf("the expired assertion was sent to Entra")
		}
	}
}
