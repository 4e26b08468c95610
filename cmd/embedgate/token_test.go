package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// The demo world's ids (emulator/demo.yaml).
const (
	demoTenant      = "c0ffee00-0000-4000-8000-000000000001"
	demoCLI         = "c0ffee00-0000-4000-8000-0000000000c1" // a public client
	demoAlice       = "alice@embedgate-demo.onmicrosoft.com"
	acmeWS          = "a0000000-0000-4000-8000-000000000001"
	salesURL        = "https://app.powerbi.com/groups/" + acmeWS + "/reports/" + devSalesReport + "/ReportSection?ctid=" + demoTenant
	scratchURL      = "app.powerbi.com/groups/me/reports/a8000000-0000-4000-8000-000000000001/ReportSection" // alice's My workspace
	globexReport    = "a2000000-0000-4000-8000-000000000001"
	inventoryReport = "a1000000-0000-4000-8000-000000000002"
	inventoryURL    = "https://app.powerbi.com/groups/" + acmeWS + "/reports/" + inventoryReport
	modelsURL       = "https://app.powerbi.com/groups/a0000000-0000-4000-8000-000000000007/reports/" // Acme Models
)

var userCodeRE = regexp.MustCompile(`enter the code ([A-Z0-9]+)`)

// runToken runs `embedgate token args...` and returns its stdout, stderr
// and error. approve, if set, is called with the device code the command
// prints, while it polls.
func runToken(t *testing.T, approve func(code string), args ...string) (string, string, error) {
	t.Helper()
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), append([]string{"token"}, args...), stdout, stderr) }()
	if approve != nil {
		var m []string
		testkit.Eventually(t, "the device code on stderr", func() bool {
			m = userCodeRE.FindStringSubmatch(stderr.String())
			return m != nil
		})
		approve(m[1])
	}
	select {
	case err := <-done:
		return stdout.String(), stderr.String(), err
	case <-time.After(2 * time.Minute):
		t.Fatal("embedgate token did not end")
	}
	return "", "", nil
}

// tokenJSON is `embedgate token --json`'s output.
type tokenJSON struct {
	TokenType  string    `json:"tokenType"`
	Token      string    `json:"token"`
	TokenID    string    `json:"tokenId"`
	Expiration time.Time `json:"expiration"`
	Items      []struct {
		Type, ID, Name, EmbedURL, WorkspaceID, DatasetID string
	} `json:"items"`
	Request *struct {
		Method, URL, ProfileID, Body string
	} `json:"request"`
}

func parseTokenJSON(t *testing.T, out string) tokenJSON {
	t.Helper()
	var v tokenJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output is not JSON: %v", err)
	}
	return v
}

var embedConfigRE = regexp.MustCompile(`(?s)<script type="application/json" id="embed-config">(.*?)</script>`)

// pageConfig reads the embed configuration of an --html page.
func pageConfig(t *testing.T, path string) (cfg struct {
	TokenType, AccessToken string
	Items                  []struct{ Type, ID, Name, EmbedURL string }
}) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("the page holds a token and is mode %v, want 0600", fi.Mode().Perm())
	}
	m := embedConfigRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no embed-config", path)
	}
	if err := json.Unmarshal(m[1], &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<script src") {
		t.Errorf("the page loads a script from elsewhere")
	}
	return cfg
}

// TestTokenDeviceLogin: `embedgate token --device-login` against the
// emulator completes the device code flow (approved while the command
// polls) and mints as the user; the next run is silent, from the cache;
// the --html page embeds the report with that token; My workspace gets the
// user's own token, for tokenType Aad.
func TestTokenDeviceLogin(t *testing.T) {
	t.Parallel()
	emu, err := emulator.Start(context.Background(), emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	dir := t.TempDir()
	ca := filepath.Join(dir, "emulator-ca.pem")
	writeTestFile(t, ca, string(emu.CACertPEM()))
	signIn := []string{"--device-login", "--authority-host", emu.URL(), "--api-url", emu.URL(), "--ca-file", ca,
		"--tenant", demoTenant, "--client-id", demoCLI, "--cache-file", filepath.Join(dir, "cache", "msal.json")}
	page := filepath.Join(dir, "page.html")

	stdout, stderr, err := runToken(t, func(code string) {
		if err := emu.ApproveDeviceCode(code, demoAlice); err != nil {
			t.Error(err)
		}
	}, append(signIn, "--report-url", salesURL, "--report-url", inventoryURL, "--lifetime", "30m", "--json", "--html", page)...)
	if err != nil {
		t.Fatalf("embedgate token: %v\n%s", err, stderr)
	}
	if got := emu.Counters()[emulator.RouteDeviceCode]; got != 1 {
		t.Errorf("one run asked for %d device codes, want 1", got)
	}
	if !strings.Contains(stderr, "https://www.microsoft.com/link") {
		t.Errorf("stderr does not say where to enter the code:\n%s", stderr)
	}
	out := parseTokenJSON(t, stdout)
	grant, ok := emu.LookupToken(out.TokenID)
	if !ok || out.TokenType != "Embed" || grant.UserPrincipalName != demoAlice || len(grant.Reports) != 2 || grant.Reports[0].ID != devSalesReport {
		t.Fatalf("the emulator's record of token %s: %+v, %v; want alice's, for the Sales and Inventory reports", out.TokenID, grant, ok)
	}
	if out.Request == nil || out.Request.Method != "POST" || out.Request.URL != emu.URL()+"/v1.0/myorg/GenerateToken" ||
		out.Request.Body != `{"datasets":[{"id":"d1000000-0000-4000-8000-000000000001"},{"id":"d1000000-0000-4000-8000-000000000002"}],"reports":[{"id":"`+devSalesReport+`","allowEdit":false},{"id":"`+inventoryReport+`","allowEdit":false}],"lifetimeInMinutes":30}` {
		t.Errorf("request = %+v", out.Request)
	}
	if len(out.Items) != 2 || !strings.Contains(out.Items[0].EmbedURL, "reportId="+devSalesReport) || !out.Expiration.Equal(grant.Expiration) {
		t.Errorf("output = %+v", out)
	}
	cfg := pageConfig(t, page)
	if cfg.TokenType != "Embed" || cfg.AccessToken != out.Token || len(cfg.Items) != 2 || cfg.Items[0].ID != devSalesReport ||
		cfg.Items[0].EmbedURL != out.Items[0].EmbedURL || cfg.Items[0].Type != "report" {
		t.Errorf("the page's embed configuration = type %s, %d items %+v; want the token's, for the report", cfg.TokenType, len(cfg.Items), cfg.Items)
	}

	// The next run is silent: no device code asked for, nothing prompted.
	codes := emu.Counters()[emulator.RouteDeviceCode]
	stdout, stderr, err = runToken(t, nil, append(signIn, "--report-url", salesURL)...)
	if err != nil {
		t.Fatalf("the second run: %v\n%s", err, stderr)
	}
	if got := emu.Counters()[emulator.RouteDeviceCode]; got != codes || strings.Contains(stderr, "enter the code") {
		t.Errorf("the second run asked for a device code (%d more):\n%s", got-codes, stderr)
	}
	if !strings.Contains(stdout, "signed in as "+demoAlice) || !strings.Contains(stdout, "token id:") {
		t.Errorf("the second run's output:\n%s", stdout)
	}

	// My workspace: no embed token; alice's own token, for tokenType Aad.
	stdout, stderr, err = runToken(t, nil, append(signIn, "--report-url", scratchURL, "--json", "--html", page)...)
	if err != nil {
		t.Fatalf("My workspace: %v\n%s", err, stderr)
	}
	out = parseTokenJSON(t, stdout)
	if out.TokenType != "Aad" || out.Request != nil || len(out.Items) != 1 || out.Items[0].Name != "Alice Scratch" {
		t.Errorf("My workspace: %+v", out)
	}
	if cfg := pageConfig(t, page); cfg.TokenType != "Aad" || cfg.AccessToken != out.Token {
		t.Errorf("My workspace's page: token type %s", cfg.TokenType)
	}

	// The user assertion for Embedgate's API, silently.
	stdout, _, err = runToken(t, nil, append(signIn, "--print-assertion", "api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user")...)
	if err != nil || strings.Count(strings.TrimSpace(stdout), ".") != 2 || strings.Contains(strings.TrimSpace(stdout), "\n") {
		t.Errorf("--print-assertion: %v; want one JWT on stdout", err)
	}
}

// TestTokenConfigMatchesExplain: `embedgate token --config --tenant-key
// --user` sends Power BI exactly the request the server's Explain shows for
// the same tenant, user and report (profile header included).
func TestTokenConfigMatchesExplain(t *testing.T) {
	t.Parallel()
	server := startDev(t)
	dir, conn := server.dir, server.conn
	client := embedgatev1.NewEmbedTokenServiceClient(conn)

	for _, tc := range []struct {
		tenant, user, report, url string
		lifetime                  time.Duration
	}{
		{"acme", "alice@acme.example", devSalesReport, salesURL, 0},
		{"acme", "bob@acme.example", devSalesReport, "", 45 * time.Minute},                                                                  // by ids, a lifetime
		{"globex", "carol", globexReport, "https://app.powerbi.com/groups/a0000000-0000-4000-8000-000000000002/reports/" + globexReport, 0}, // a profile
		// Kinds of model: Azure Analysis Services (the principal's object
		// id), single sign-on (an identity blob, redacted in both), a
		// composite model (its upstream datasets).
		{"acme-models", "alice@acme.example", "a7000000-0000-4000-8000-000000000001", modelsURL + "a7000000-0000-4000-8000-000000000001", 0},
		{"acme-models", "alice@acme.example", "a7000000-0000-4000-8000-000000000003", modelsURL + "a7000000-0000-4000-8000-000000000003", 0},
		{"acme-models", "alice@acme.example", "a7000000-0000-4000-8000-000000000004", modelsURL + "a7000000-0000-4000-8000-000000000004", 0},
	} {
		req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: tc.tenant, User: tc.user, ReportIds: []string{tc.report}}
		args := []string{"--config", filepath.Join(dir, "config.yaml"), "--tenant-key", tc.tenant, "--user", tc.user, "--json"}
		if tc.url != "" {
			args = append(args, "--report-url", tc.url)
		} else {
			args = append(args, "--workspace-id", acmeWS, "--report-id", tc.report)
		}
		if tc.lifetime > 0 {
			args = append(args, "--lifetime", tc.lifetime.String())
			req.Lifetime = durationpbOf(tc.lifetime)
		}
		explained, err := client.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{
			Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: req}})
		if err != nil || !explained.GetAllowed() {
			t.Fatalf("%s: Explain: %v, %v", tc.tenant, explained, err)
		}
		stdout, stderr, err := runToken(t, nil, args...)
		if err != nil {
			t.Fatalf("%s: embedgate token: %v\n%s", tc.tenant, err, stderr)
		}
		sent := parseTokenJSON(t, stdout).Request
		want := explained.GetPowerbiRequest()
		if strings.Contains(want.GetBody(), "identityBlob") != strings.Contains(want.GetBody(), "[redacted]") {
			t.Fatalf("%s: Explain shows an identity blob", tc.tenant)
		}
		if tc.report == "a7000000-0000-4000-8000-000000000003" && (sent == nil || !strings.Contains(sent.Body, `"identityBlob":{"value":"[redacted]"}`)) {
			t.Errorf("the single sign-on model's request does not show its blob redacted: %+v", sent)
		}
		if sent == nil || sent.Body != want.GetBody() || !strings.HasSuffix(sent.URL, want.GetUrl()) || sent.Method != want.GetMethod() || sent.ProfileID != want.GetProfileId() {
			t.Errorf("%s: embedgate token sent %+v\nExplain shows %v", tc.tenant, sent, want)
		}
	}
}

// TestTokenRefuses: what cannot be done is refused before anything is
// sent, with the flag or the shape at fault.
func TestTokenRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--report-url", salesURL}, "sign in with --device-login"},
		{[]string{"--device-login", "--report-url", "https://app.powerbi.com/groups/sales/reports/x"}, "https://app.powerbi.com/groups/<workspace id>/reports/<report id>"},
		{[]string{"--device-login", "--report-url", "https://example.com/report"}, `"example.com" is not an address of the Power BI service`},
		{[]string{"--device-login"}, "name what to embed with --report-url"},
		{[]string{"--device-login", "--report-id", devSalesReport}, "--report-id and --dashboard-id need --workspace-id"},
		{[]string{"--device-login", "--tenant-key", "acme", "--user", "a", "--report-url", salesURL}, "leave out --device-login"},
		{[]string{"--config", "c.yaml", "--tenant-key", "acme", "--report-url", salesURL}, "--tenant-key needs --user"},
		{[]string{"--config", "c.yaml", "--tenant-key", "acme", "--user", "a", "--rls-username", "b", "--report-url", salesURL}, "the tenant's policy decides row-level security"},
		{[]string{"--config", "c.yaml", "--client-id", demoCLI, "--report-url", salesURL}, "--client-id is for --device-login"},
		{[]string{"--device-login", "--rls-roles", "Customer", "--report-url", salesURL}, "need --rls-username"},
		{[]string{"--device-login", "--report-url", salesURL, "--report-url", "https://app.powerbi.com/groups/" + acmeWS + "/dashboards/b1000000-0000-4000-8000-000000000001"}, "a token embeds reports, or one dashboard"},
		{[]string{"--device-login", "--report-url", salesURL, "--report-url", "https://app.powerbi.cn/groups/" + acmeWS + "/reports/" + devSalesReport}, "two clouds"},
		{[]string{"--device-login", "--cloud", "usgov", "--report-url", salesURL}, "the URL is in the public cloud, and the usgov cloud is configured"},
		{[]string{"--device-login", "--print-assertion", "api://x/.default", "--report-url", salesURL}, "--print-assertion prints a token for its scope only"},
		{[]string{"--device-login", "--lifetime", "30s", "--report-url", salesURL}, "--lifetime is at least 1m"},
	} {
		_, _, err := runToken(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("embedgate token %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func durationpbOf(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
