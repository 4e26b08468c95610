package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/devconfig"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
	"github.com/embedgate/embedgate/server"
)

// The test world: the emulator's demo fixture, and a policy for one caller
// (the BFF) and one tenant.
const (
	caller     = "spiffe://embedgate.dev/ns/demo/sa/web-frontend"
	serverID   = "spiffe://embedgate.dev/ns/platform/sa/embedgate"
	tenantID   = "c0ffee00-0000-4000-8000-000000000001"
	clientID   = "c0ffee00-0000-4000-8000-0000000000a1"
	secret     = "embedgate-dev-secret"
	user       = "alice@acme.example"
	sales      = "a1000000-0000-4000-8000-000000000001" // RLS: the policy gives role Customer
	inventory  = "a1000000-0000-4000-8000-000000000002" // no RLS
	invoices   = "a1000000-0000-4000-8000-000000000003" // paginated
	salesModel = "d1000000-0000-4000-8000-000000000001"
	dashboard  = "b1000000-0000-4000-8000-000000000001" // Acme Overview
	workspace  = "a0000000-0000-4000-8000-000000000001" // Acme Analytics
	entraLife  = 30 * time.Second                       // see TestBrowserRefreshLoop
	powerBIApp = "app.powerbi.com"                      // the host of the emulator's embed URLs
)

const policy = `callers:
  - id: ` + caller + `
    tenants: [acme]
tenants:
  acme:
    workspace_id: ` + workspace + `
    reports: [` + sales + `, ` + inventory + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      without_rls: [` + inventory + `]
    max_lifetime: 60m
    default_lifetime: 30m
`

// world is everything the browser talks to, each on its own loopback port:
// the emulator (HTTPS), Embedgate (gRPC over mTLS) and the BFF (HTTP).
type world struct {
	emu *emulator.Server
	// bff is the BFF's base URL, http://127.0.0.1:PORT.
	bff string
	// spki is the base64 SHA-256 of the emulator's serving key, the one
	// certificate Chromium is told to accept.
	spki string
	// logs are Embedgate's and the BFF's, checked for tokens at the end.
	serverLog, bffLog *testkit.Buffer
}

// requirements returns the paths of chromium and node, or skips (fails
// under EMBEDGATE_CI=1) when one is missing or examples/web's packages are
// not installed.
func requirements(t *testing.T) (chromium, node string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("EMBEDGATE_CI") == "1" {
			t.Fatalf(format+" (EMBEDGATE_CI=1: required)", args...)
		}
		t.Skipf(format+": skipping (EMBEDGATE_CI=1 makes this a failure)", args...)
	}
	names := []string{"chromium", "chromium-browser"}
	if env := os.Getenv("EMBEDGATE_TEST_CHROMIUM"); env != "" {
		names = []string{env}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		missing("no %s (Debian: apt-get install chromium; make test installs it)", strings.Join(names, " or "))
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	for _, f := range []string{"node_modules/typescript/bin/tsc", "node_modules/@embedgate/client/dist/index.js", "node_modules/powerbi-client/dist/powerbi.min.js"} {
		if _, err := os.Stat(f); err != nil {
			missing("examples/web/%s is not installed (make test and make web install it)", f)
		}
	}
	return chromium, node
}

// buildBFF compiles the BFF and its page into build/.
func buildBFF(t *testing.T, node string) {
	t.Helper()
	for _, cfg := range []string{"tsconfig.json", "tsconfig.browser.json"} {
		if out, err := exec.Command(node, "node_modules/typescript/bin/tsc", "-p", cfg).CombinedOutput(); err != nil {
			t.Fatalf("tsc -p %s: %v\n%s", cfg, err, out)
		}
	}
}

// startWorld starts the emulator with Entra tokens that live entraLife, the
// server in front of it and the BFF in front of the server; all stop when
// the test ends.
func startWorld(t *testing.T, node string) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{serverLog: &testkit.Buffer{}, bffLog: &testkit.Buffer{}}

	emu, err := emulator.Start(ctx, emulator.Config{Faults: emulator.Faults{TokenLifetime: entraLife}})
	if err != nil {
		t.Fatal(err)
	}
	w.emu = emu
	if w.spki, err = servingKeyHash(emu); err != nil {
		t.Fatal(err)
	}

	// The dev folder as `make run` lays it out, which the BFF reads.
	dir := t.TempDir()
	ca, err := devpki.NewCA("Embedgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.IssueServerSVID(serverID, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	callerCert, err := ca.IssueClient(caller)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		devconfig.WriteCerts(dir, ca, srvCert),
		callerCert.WriteFiles(filepath.Join(dir, "caller.pem"), filepath.Join(dir, "caller-key.pem")),
		devconfig.Folder{Dir: dir, Listen: "127.0.0.1:0", EmulatorURL: emu.URL(), EmulatorCA: emu.CACertPEM(),
			TenantID: tenantID, ClientID: clientID, ClientSecret: secret, Policy: policy,
			Extra: "shutdown_delay: 0s\nlog:\n  format: text\n"}.Write(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := server.LoadConfig(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	stopped := make(chan error, 1)
	go func() {
		stopped <- server.Run(ctx, cfg, server.RunOptions{
			Logger: slog.New(slog.NewTextHandler(w.serverLog, nil)),
			Ready:  func(a net.Addr) { ready <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-stopped:
		t.Fatalf("embedgate stopped before serving: %v\n%s", err, w.serverLog)
	case <-time.After(testkit.Patience):
		t.Fatalf("embedgate did not serve within %v\n%s", testkit.Patience, w.serverLog)
	}
	endpoints, _ := json.Marshal(map[string]string{"grpc": addr.String(), "emulator": emu.URL(), "server_id": serverID})
	if err := os.WriteFile(filepath.Join(dir, "endpoints.json"), endpoints, 0o600); err != nil {
		t.Fatal(err)
	}

	w.bff = startBFF(t, node, dir, w.bffLog)
	return w
}

// startBFF runs `node build/server.js` on a free port and returns its URL.
func startBFF(t *testing.T, node, devDir string, log *testkit.Buffer) string {
	t.Helper()
	cmd := exec.Command(node, "build/server.js", "--dev-dir", devDir, "--listen", "127.0.0.1:0", "--user", user)
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				listening <- strings.TrimSuffix(u, "/")
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-listening:
		return u
	case <-time.After(testkit.Patience):
		t.Fatalf("the BFF did not listen within %v\n%s", testkit.Patience, log)
		return ""
	}
}

// servingKeyHash is the base64 SHA-256 of the emulator's serving key, as
// Chromium's --ignore-certificate-errors-spki-list takes it: the browser
// then accepts that one certificate for app.powerbi.com, and no other
// untrusted one.
func servingKeyHash(emu *emulator.Server) (string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(emu.CACertPEM())
	u, err := url.Parse(emu.URL())
	if err != nil {
		return "", err
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// embedConfig is what the BFF's GET /api/embed answers.
type embedConfig struct {
	ReportID    string    `json:"reportId"`
	ReportName  string    `json:"reportName"`
	EmbedURL    string    `json:"embedUrl"`
	Token       string    `json:"token"`
	TokenID     string    `json:"tokenId"`
	Expiration  time.Time `json:"expiration"`
	RefreshTime time.Time `json:"refreshTime"`
}

// embed asks the BFF for a report's embed config, as the page does.
func (w *world) embed(t *testing.T, report string) embedConfig {
	t.Helper()
	resp, err := http.Get(w.bff + "/api/embed?report=" + report)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /api/embed?report=%s: %s %s", report, resp.Status, b)
	}
	var c embedConfig
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// mint asks the emulator's Power BI, as the demo app, for an item's embed
// URL (GET item, under the workspace) and a V1 embed token for it (POST
// item/GenerateToken with body). It may run outside the test's goroutine.
func (w *world) mint(item string, body map[string]any) (embedURL, token string, err error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.emu.CACertPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	do := func(method, url, auth, contentType string, body io.Reader, into any) error {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s %s", method, req.URL.Path, resp.Status, b)
		}
		return json.Unmarshal(b, into)
	}
	var entra struct {
		AccessToken string `json:"access_token"`
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://analysis.windows.net/powerbi/api/.default"}}
	if err := do(http.MethodPost, w.emu.URL()+"/"+tenantID+"/oauth2/v2.0/token", "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &entra); err != nil {
		return "", "", err
	}
	base := w.emu.URL() + "/v1.0/myorg/groups/" + workspace + item
	var got struct {
		EmbedURL string `json:"embedUrl"`
	}
	if err := do(http.MethodGet, base, entra.AccessToken, "", nil, &got); err != nil {
		return "", "", err
	}
	var minted struct {
		Token string `json:"token"`
	}
	b, _ := json.Marshal(body)
	if err := do(http.MethodPost, base+"/GenerateToken", entra.AccessToken, "application/json", bytes.NewReader(b), &minted); err != nil {
		return "", "", err
	}
	return got.EmbedURL, minted.Token, nil
}

// checkNoSecrets fails the test if a log holds an embed token (the
// emulator's start with the base64 of gzip's magic number) or the client
// secret.
func (w *world) checkNoSecrets(t *testing.T) {
	t.Helper()
	for name, log := range map[string]string{"embedgate's log": w.serverLog.String(), "the BFF's output": w.bffLog.String()} {
		for _, s := range []string{"H4sI", secret} {
			if strings.Contains(log, s) {
				t.Errorf("%s holds a secret (%q...)", name, s[:4])
			}
		}
	}
}

// writeScreenshot writes png to the file EMBEDGATE_SCREENSHOT names, if any.
func writeScreenshot(t *testing.T, png []byte) {
	t.Helper()
	path := os.Getenv("EMBEDGATE_SCREENSHOT")
	if path == "" {
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", path)
}
