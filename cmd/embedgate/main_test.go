package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestDevMode runs `embedgate serve --dev` as `make run` does and follows
// the printed instructions with a real gRPC client and the written files.
func TestDevMode(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	dir, banner, conn := dev.dir, dev.banner, dev.conn
	addrRE := regexp.MustCompile(`-d '(\{.*\})' (127\.0\.0\.1:\d+) embedgate\.v1\.EmbedTokenService/GenerateEmbedToken`)
	for _, f := range []string{"ca.pem", "caller.pem", "caller-key.pem"} {
		if !strings.Contains(banner, filepath.Join(dir, f)) {
			t.Errorf("the command does not name %s", f)
		}
	}
	if !strings.Contains(banner, "/opt/grpcurl -cacert") {
		t.Errorf("the command does not start with the given grpcurl")
	}
	// Every printed token request works: acme's, and acme-models' live
	// connection to Azure Analysis Services, whose token carries the demo
	// app's object id as the username and the end user in customData.
	var printed []*embedgatev1.GenerateEmbedTokenRequest
	for _, m := range addrRE.FindAllStringSubmatch(banner, -1) {
		req := &embedgatev1.GenerateEmbedTokenRequest{}
		if err := protojson.Unmarshal([]byte(m[1]), req); err != nil {
			t.Fatalf("the printed request is not valid JSON for the API: %v", err)
		}
		printed = append(printed, req)
	}
	if len(printed) != 2 || printed[1].GetTenant() != "acme-models" {
		t.Fatalf("printed token requests = %v, want acme's and acme-models'", printed)
	}
	emu := devEmulator(t, dir)
	for _, req := range printed {
		resp, err := embedgatev1.NewEmbedTokenServiceClient(conn).GenerateEmbedToken(context.Background(), req)
		if err != nil {
			t.Fatalf("the printed request %v fails: %v", req, err)
		}
		if resp.GetToken() == "" || len(resp.GetReports()) != 1 {
			t.Errorf("response = %v", resp)
		}
		if req.GetTenant() != "acme-models" {
			continue
		}
		var grant struct {
			Identities []struct {
				Username, CustomData string
			}
		}
		emu.get(t, "/_emulator/tokens/"+resp.GetTokenId(), &grant)
		if len(grant.Identities) != 1 || grant.Identities[0].Username != "c0ffee00-0000-4000-8000-0000000000b1" || grant.Identities[0].CustomData != "alice@acme.example" {
			t.Errorf("the Azure Analysis Services token grants %+v, want the app's object id and the end user in customData", grant.Identities)
		}
	}

	explainRE := regexp.MustCompile(`-d '(\{.*\})' 127\.0\.0\.1:\d+ embedgate\.v1\.EmbedTokenService/ExplainEmbedToken`)
	em := explainRE.FindStringSubmatch(banner)
	if em == nil {
		t.Fatalf("no ExplainEmbedToken command printed")
	}
	ereq := &embedgatev1.ExplainEmbedTokenRequest{}
	if err := protojson.Unmarshal([]byte(em[1]), ereq); err != nil {
		t.Fatalf("the printed explain request is not valid JSON for the API: %v", err)
	}
	eresp, err := embedgatev1.NewEmbedTokenServiceClient(conn).ExplainEmbedToken(context.Background(), ereq)
	if err != nil || !eresp.GetAllowed() || eresp.GetPowerbiRequest().GetBody() == "" {
		t.Errorf("explain = %v, %v", eresp, err)
	}

	// `check --online` against the dev emulator: the demo policy is servable.
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--online", "--config", filepath.Join(dir, "config.yaml")}, &stdout, &stderr); err != nil {
		t.Fatalf("check --online of the dev config: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "online: every tenant of the policy can be served") {
		t.Errorf("check --online output:\n%s", stdout.String())
	}
	// A policy whose tenant lives in a workspace the demo app has no role in:
	// one line naming it, and a non-zero exit.
	config, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "finance-policy.yaml"), "tenants:\n  finance:\n    workspace_id: a0000000-0000-4000-8000-000000000009\n    reports: [\"*\"]\n")
	writeTestFile(t, filepath.Join(dir, "finance.yaml"), strings.Replace(string(config), "policy_file: policy.yaml", "policy_file: finance-policy.yaml", 1))
	stdout.Reset()
	err = run(context.Background(), []string{"check", "--online", "--config", filepath.Join(dir, "finance.yaml")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "1 problem(s)") {
		t.Errorf("check --online of an unservable policy: %v, want 1 problem", err)
	}
	if !strings.Contains(stdout.String(), "tenant finance: workspace a0000000-0000-4000-8000-000000000009: Embedgate's service principal has no role in it") {
		t.Errorf("check --online output does not name the tenant and workspace:\n%s", stdout.String())
	}
}

// devEmu is the emulator of a dev server, reached as a reader would: its URL
// from endpoints.json, its CA from emulator-ca.pem.
type devEmu struct {
	url string
	hc  *http.Client
}

// dev is a running `serve --dev`: its folder, its address, what it
// printed, and a connection as the dev caller.
type dev struct {
	dir, addr, banner string
	conn              *grpc.ClientConn
}

// startDev runs `serve --dev` in a folder of its own until the test ends,
// and dials it as grpcurl would (the printed IP address, the dev caller's
// certificate).
func startDev(t *testing.T) dev { t.Helper(); return startDevIn(t, t.TempDir()) }

// startDevIn is startDev with the dev folder dir.
func startDevIn(t *testing.T, dir string) dev {
	t.Helper()
	out := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--dev-dir", dir, "--dev-listen", "127.0.0.1:0", "--grpcurl", "/opt/grpcurl"}, out, &testkit.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	addrRE := regexp.MustCompile(`-d '(\{.*\})' (127\.0\.0\.1:\d+) embedgate\.v1\.EmbedTokenService/GenerateEmbedToken`)
	var m []string
	if !testkit.Poll(func() bool { m = addrRE.FindStringSubmatch(out.String()); return m != nil }) {
		t.Fatalf("no grpcurl command printed; output:\n%s", out.String())
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "caller.pem"), filepath.Join(dir, "caller-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	// Like grpcurl, dial the printed IP address and verify the server's
	// certificate for it.
	conn, err := grpc.NewClient(m[2], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return dev{dir: dir, addr: m[2], banner: out.String(), conn: conn}
}

func devEmulator(t *testing.T, dir string) devEmu {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ep struct {
		Emulator string `json:"emulator"`
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "emulator-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return devEmu{url: ep.Emulator, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

// get decodes the emulator's answer to GET path into v.
func (e devEmu) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := e.hc.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheck: `embedgate check` accepts the dev config and lists every
// problem of a broken one.
func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: nowhere\npolicy_file: missing.yaml\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", bad}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("check of a config with an unknown key: %v", err)
	}
	if err := os.WriteFile(bad, []byte("listen: nowhere\npolicy_file: missing.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"check", "--config", bad}, &stdout, &stderr)
	for _, key := range []string{"listen", "tls", "tls.client_ca_file", "powerbi.tenant_id", "policy_file"} {
		if err == nil || !strings.Contains(err.Error(), "\n  "+key+":") {
			t.Errorf("check does not list %q:\n%v", key, err)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, &stdout, &stderr); err == nil {
		t.Error("an unknown command succeeded")
	}
	if err := run(context.Background(), []string{"version"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "embedgate ") {
		t.Errorf("version: %q, %v", stdout.String(), err)
	}
}

// TestPrintedCommandsWorkAsPasted runs every grpcurl command `make run`
// prints, through a shell, with the pinned grpcurl: the README's contract
// with a new user. `make test` provides grpcurl; plain `go test` skips.
func TestPrintedCommandsWorkAsPasted(t *testing.T) {
	t.Parallel()
	grpcurl := os.Getenv("EMBEDGATE_TEST_GRPCURL")
	if grpcurl == "" {
		if os.Getenv("EMBEDGATE_CI") == "1" {
			t.Fatal("EMBEDGATE_TEST_GRPCURL is not set, and CI (EMBEDGATE_CI=1) requires this test: run it with make test")
		}
		t.Skip("EMBEDGATE_TEST_GRPCURL is not set (make test sets it)")
	}
	dir := t.TempDir()
	out := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--dev-dir", dir, "--dev-listen", "127.0.0.1:0", "--grpcurl", grpcurl}, out, &testkit.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	if !testkit.Poll(func() bool { return strings.Contains(out.String(), "Ctrl-C to stop") }) {
		t.Fatalf("no banner; output:\n%s", out.String())
	}
	var commands []string
	for _, line := range strings.Split(out.String(), "\n") {
		if i := strings.Index(line, grpcurl+" "); i >= 0 {
			commands = append(commands, line[i:])
		}
	}
	if len(commands) != 4 {
		t.Fatalf("want 4 printed commands (token, a model of another kind, explain, list), got %d:\n%s", len(commands), out.String())
	}
	var outputs strings.Builder
	for _, c := range commands {
		got, err := exec.Command("sh", "-c", c).CombinedOutput()
		if err != nil {
			t.Fatalf("%s\nfailed: %v\n%s", c, err, got)
		}
		outputs.Write(got)
	}
	for _, want := range []string{`"tokenId"`, `"allowed": true`, "embedgate.v1.EmbedTokenService"} {
		if !strings.Contains(outputs.String(), want) {
			t.Errorf("no command printed %s", want)
		}
	}
	if n := strings.Count(outputs.String(), `"tokenId"`); n != 2 {
		t.Errorf("%d commands minted a token, want both token commands", n)
	}
}
