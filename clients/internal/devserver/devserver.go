// Package devserver runs the real Embedgate binary for the clients' tests,
// the way a user would: `go build` it once, then `embedgate serve --dev` in a
// temporary dev folder, on a free loopback port. Dev mode is the production
// server (config loader, mTLS, interceptors, policy, MSAL, HTTPS client)
// pointed at the in-process Entra ID + Power BI emulator.
//
// Before the server starts, Start writes the dev CA and a policy of its own
// into the folder (dev mode keeps both): the dev caller for tenant acme, and
// a second caller whose rate limit is one call per long while, so that its
// second call is CALLER_RATE_LIMITED. It issues certificates for that caller
// and for a stranger the policy does not name.
package devserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
)

// The identities and ids of the test world (the emulator's demo fixture).
const (
	// Caller is the dev caller: `serve --dev` writes its certificate as
	// caller.pem and caller-key.pem.
	Caller = "spiffe://embedgate.dev/ns/demo/sa/web-frontend"
	// LimitedCaller may call once; its next call is CALLER_RATE_LIMITED.
	// Its certificate: limited.pem, limited-key.pem.
	LimitedCaller = "spiffe://embedgate.dev/ns/test/sa/rate-limited"
	// Stranger has a certificate of the dev CA but is not in the policy:
	// stranger.pem, stranger-key.pem.
	Stranger = "spiffe://embedgate.dev/ns/test/sa/stranger"
	// ServerName is the name the dev server certificate is issued for.
	ServerName = "localhost"
	// SalesReport is acme's report on an RLS dataset.
	SalesReport = "a1000000-0000-4000-8000-000000000001"
	// SalesDataset is the dataset of SalesReport.
	SalesDataset = "d1000000-0000-4000-8000-000000000001"
	// ForeignReport exists, but is not acme's: REPORT_NOT_ALLOWED.
	ForeignReport = "a2000000-0000-4000-8000-000000000001"
)

// Policy is the policy Start writes before the server starts.
const Policy = `callers:
  - id: ` + Caller + `
    tenants: [acme]
  - id: ` + LimitedCaller + `
    tenants: [acme]
    rate_limit:
      per_second: 0.001   # one token per ~17 minutes
      burst: 1
tenants:
  acme:
    workspace_id: a0000000-0000-4000-8000-000000000001
    reports: [` + SalesReport + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
    max_lifetime: 60m
    default_lifetime: 30m
`

// Server is a running `embedgate serve --dev`.
type Server struct {
	// Addr is the gRPC listener, host:port.
	Addr string
	// Dir is the dev folder: ca.pem, caller.pem, caller-key.pem,
	// limited.pem, limited-key.pem, stranger.pem, stranger-key.pem,
	// emulator-ca.pem, config.yaml, policy.yaml.
	Dir string
	// EmulatorURL is the emulator's base URL (its CA: Dir/emulator-ca.pem).
	EmulatorURL string
	// ServerID is the SPIFFE ID of the dev server's certificate.
	ServerID string

	log *testkit.Buffer
}

// File returns the path of a file in the dev folder.
func (s *Server) File(name string) string { return filepath.Join(s.Dir, name) }

// Env is the environment the TypeScript and Python test suites read.
func (s *Server) Env() []string {
	return []string{
		"EMBEDGATE_ADDR=" + s.Addr,
		"EMBEDGATE_DEV_DIR=" + s.Dir,
		"EMBEDGATE_SERVER_NAME=" + ServerName,
		"EMBEDGATE_EMULATOR_URL=" + s.EmulatorURL,
	}
}

// Log returns what the server has logged so far (it never logs tokens).
func (s *Server) Log() string { return s.log.String() }

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

// Main runs a test package's tests and removes the binary built for them.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary builds cmd/embedgate once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "embedgate-bin-"); buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "embedgate")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/embedgate/embedgate/cmd/embedgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/embedgate: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Start starts a server for this test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	ca, err := devpki.NewCA("Embedgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{"limited": LimitedCaller, "stranger": Stranger} {
		kp, err := ca.IssueClient(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.WriteFiles(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(Policy), 0o600); err != nil {
		t.Fatal(err)
	}

	s := &Server{Dir: dir, log: &testkit.Buffer{}}
	cmd := exec.Command(bin, "serve", "--dev", "--dev-dir", dir, "--dev-listen", "127.0.0.1:0")
	cmd.Stderr = s.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if err := CheckNoSecrets(s.Log()); err != nil {
			t.Errorf("embedgate's log: %v", err)
		} else if t.Failed() {
			t.Logf("embedgate's log:\n%s", s.Log())
		}
	})

	// Keep draining stdout so that the server never blocks on it; the
	// addresses come from the endpoints.json dev mode writes once serving.
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if b, err := os.ReadFile(s.File("endpoints.json")); err == nil {
			var e struct {
				GRPC     string `json:"grpc"`
				Emulator string `json:"emulator"`
				ServerID string `json:"server_id"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("endpoints.json: %v", err)
			}
			s.Addr, s.EmulatorURL, s.ServerID = e.GRPC, e.Emulator, e.ServerID
			return s
		}
		select {
		case err := <-exited:
			t.Fatalf("embedgate serve --dev exited before serving: %v\n%s", err, s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("embedgate serve --dev wrote no endpoints.json within 60s\n%s", s.Log())
		}
	}
}

// CheckNoSecrets fails when text (a log, a test's output) holds an embed
// token or the dev client secret. The emulator's tokens are base64 of gzip,
// so they all start with tokenPrefix.
func CheckNoSecrets(text string) error {
	for _, secret := range []string{tokenPrefix, "embedgate-dev-secret"} {
		if strings.Contains(text, secret) {
			return fmt.Errorf("it holds a secret (%q...)", secret[:4])
		}
	}
	return nil
}

const tokenPrefix = "H4sI" // base64 of gzip's magic number and method

// Grant is what the emulator says a token grants (its admin token lookup).
type Grant struct {
	Reports []struct {
		ID string `json:"id"`
	} `json:"reports"`
	Identities []struct {
		Username   string   `json:"username"`
		Roles      []string `json:"roles"`
		CustomData string   `json:"customData"`
		Datasets   []string `json:"datasets"`
	} `json:"identities"`
}

// Lookup asks the emulator what the token with this id grants.
func (s *Server) Lookup(ctx context.Context, tokenID string) (Grant, error) {
	pem, err := os.ReadFile(s.File("emulator-ca.pem"))
	if err != nil {
		return Grant{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return Grant{}, errors.New("emulator-ca.pem holds no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.EmulatorURL, "/")+"/_emulator/tokens/"+tokenID, nil)
	if err != nil {
		return Grant{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Grant{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Grant{}, fmt.Errorf("emulator token lookup: %s", resp.Status)
	}
	var g Grant
	return g, json.NewDecoder(resp.Body).Decode(&g)
}
