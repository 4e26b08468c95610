package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/server"
)

// The demo fixture's ids (emulator/demo.yaml): the tests run against the
// emulator's built-in world.
const (
	entraTenant   = "c0ffee00-0000-4000-8000-000000000001"
	clientID      = "c0ffee00-0000-4000-8000-0000000000a1"
	clientSecret  = "embedgate-dev-secret"
	acmeWorkspace = "a0000000-0000-4000-8000-000000000001"
	salesReport   = "a1000000-0000-4000-8000-000000000001" // RLS dataset salesDataset
	salesDataset  = "d1000000-0000-4000-8000-000000000001"
	invReport     = "a1000000-0000-4000-8000-000000000002" // dataset without RLS
	invDataset    = "d1000000-0000-4000-8000-000000000002"
	globexReport  = "a2000000-0000-4000-8000-000000000001" // workspace behind profile globexProfile
	globexProfile = "f0000000-0000-4000-8000-000000000001"
	financeReport = "a9000000-0000-4000-8000-000000000001" // workspace the app is no member of
	frontend      = "spiffe://embedgate.test/ns/web/sa/frontend"
	stranger      = "spiffe://embedgate.test/ns/web/sa/stranger"
)

// testPolicy grants the frontend four tenants over the demo fixture.
const testPolicy = `
callers:
  - id: ` + frontend + `
    tenants: [acme, globex, finance]
tenants:
  acme:
    workspace_id: ` + acmeWorkspace + `
    reports: [` + salesReport + `, ` + invReport + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
    max_lifetime: 60m
  globex:
    workspace_id: a0000000-0000-4000-8000-000000000002
    profile_id: ` + globexProfile + `
    reports: ["*"]
    allow_edit: true
    max_lifetime: 30m
  finance:
    workspace_id: a0000000-0000-4000-8000-000000000009
    reports: ["*"]
  umbrella:
    workspace_id: a0000000-0000-4000-8000-000000000003
    reports: ["*"]
`

// stack is one running Embedgate (real server, real mTLS listener) against
// one running emulator, with the certificates to call it.
type stack struct {
	emu    *emulator.Server
	addr   string
	ca     *devpki.CA
	dir    string
	logs   *syncBuffer
	client embedgatev1.EmbedTokenServiceClient
	stop   func() error // shuts the server down (as SIGTERM does) and returns Run's error
}

type stackOptions struct {
	secret string // the client secret the server reads; "" = the right one
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := emulator.Start(context.Background(), emulator.Config{}) // outlives the server: shutdown is tested against it
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, err := devpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	must(t, ca.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")))
	srvPair, err := ca.IssueServer("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	must(t, srvPair.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")))
	secret := o.secret
	if secret == "" {
		secret = clientSecret
	}
	writeFile(t, dir, "client-secret", secret+"\n")
	writeFile(t, dir, "emulator-ca.pem", string(emu.CACertPEM()))
	writeFile(t, dir, "policy.yaml", testPolicy)
	writeFile(t, dir, "config.yaml", `
listen: 127.0.0.1:0
tls:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
powerbi:
  authority_host: `+emu.URL()+`
  api_url: `+emu.URL()+`
  ca_file: emulator-ca.pem
  tenant_id: `+entraTenant+`
  client_id: `+clientID+`
  client_secret_file: client-secret
policy_file: policy.yaml
shutdown_grace: 5s
`)
	cfg, err := server.LoadConfig(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.RunOptions{Logger: logger, Ready: func(a net.Addr) { ready <- a }})
	}()
	s := &stack{emu: emu, ca: ca, dir: dir, logs: logs}
	select {
	case a := <-ready:
		s.addr = a.String()
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("server.Run: %v", err)
		}
		emu.Close()
		scanForSecrets(t, logs.String(), secret)
	})
	s.client = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, frontend)))
	return s
}

// clientCert issues a caller certificate from the stack's CA with the given
// URI SANs.
func (s *stack) clientCert(t *testing.T, uris ...string) *tls.Certificate {
	t.Helper()
	kp, err := s.ca.IssueClient(uris...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kp.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// dial connects with mTLS, presenting cert (nil: no client certificate).
func (s *stack) dial(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// scanForSecrets fails the test if a secret or an embed token reached the
// logs.
func scanForSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && bytes.Contains([]byte(logs), []byte(s)) {
			t.Errorf("a secret or token appears in the logs")
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
