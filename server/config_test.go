package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/internal/devpki"
)

// writeConfigDir writes a complete, valid config folder and returns the
// config's path; extra files overwrite the defaults.
func writeConfigDir(t *testing.T, config string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServer("localhost")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"ca.pem":         string(ca.CertPEM),
		"server.pem":     string(kp.CertPEM),
		"server-key.pem": string(kp.KeyPEM),
		"secret":         "s3cret\n",
		"policy.yaml":    "callers: []\ntenants: {}\n",
		"config.yaml":    config,
	}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.yaml")
}

const validConfig = `
listen: 127.0.0.1:9443
tls:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
  trust_domain: mesh.example
powerbi:
  tenant_id: 11111111-1111-4111-8111-111111111111
  client_id: 22222222-2222-4222-8222-222222222222
  client_secret_file: secret
policy_file: policy.yaml
`

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	path := writeConfigDir(t, validConfig, nil)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if cfg.TLS.CertFile != filepath.Join(dir, "server.pem") || cfg.PolicyFile != filepath.Join(dir, "policy.yaml") {
		t.Errorf("relative paths not resolved against the config's folder: %+v", cfg.TLS)
	}
	if cfg.ShutdownGrace != DefaultShutdownGrace || cfg.Log.Format != DefaultLogFormat {
		t.Errorf("defaults not applied: grace %v, log %+v", cfg.ShutdownGrace, cfg.Log)
	}
	if cfg.ShutdownGrace != 10*time.Second {
		t.Errorf("grace = %v", cfg.ShutdownGrace)
	}
}

// TestLoadConfigListsEveryProblem: one run names every problem with its key.
func TestLoadConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	path := writeConfigDir(t, `
listen: nonsense
tls:
  cert_file: missing.pem
  key_file: server-key.pem
  client_ca_file: secret
  trust_domain: "Not A Domain!"
powerbi:
  cloud: mars
  client_secret_file: secret
policy_file: policy.yaml
shutdown_grace: -1s
log:
  format: xml
  level: loud
`, map[string]string{"policy.yaml": "callers:\n  - id: not-a-spiffe-id\n    tenants: [ghost]\n"})
	_, err := LoadConfig(path)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	keys := map[string]bool{}
	for _, p := range ce.Problems {
		keys[p.Key] = true
	}
	for _, want := range []string{"listen", "tls.cert_file", "tls.client_ca_file", "tls.trust_domain", "powerbi.cloud", "powerbi.tenant_id", "powerbi.client_id", "shutdown_grace", "log.format", "log.level"} {
		if !keys[want] {
			t.Errorf("no problem reported under %q; got %v", want, ce.Problems)
		}
	}
	if !strings.Contains(err.Error(), "policy_file: callers[0]") {
		t.Errorf("policy problems not listed:\n%v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Error("a secret's content appears in the error")
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	// An unknown key does not hide the other problems.
	path := writeConfigDir(t, validConfig+"listen_port: 8443\nshutdown_grace: 0s\n", nil)
	_, err := LoadConfig(path)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 || ce.Problems[0].Key != "listen_port" || ce.Problems[1].Key != "shutdown_grace" {
		t.Fatalf("err = %v, want the unknown key and the bad grace", err)
	}
}

func TestLoadConfigEmptyFile(t *testing.T) {
	t.Parallel()
	path := writeConfigDir(t, "", nil)
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "tls.client_ca_file") || !strings.Contains(err.Error(), "powerbi.client_id") {
		t.Fatalf("err = %v, want the missing keys listed", err)
	}
}

// TestLoadConfigNamesKeyPathAndLine: a value of the wrong type is reported at
// its full key path with its line, in words (no Go type names), and the rest
// of the file is still checked.
func TestLoadConfigNamesKeyPathAndLine(t *testing.T) {
	t.Parallel()
	path := writeConfigDir(t, validConfig+"mesh:\n  enabled: sometimes\n  trusted_peers: 127.0.0.6\n", nil)
	_, err := LoadConfig(path)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	got := map[string]string{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Message
	}
	lines := strings.Count(validConfig, "\n")
	want := map[string]string{
		"mesh.enabled":       fmt.Sprintf(`want true or false, got "sometimes" (line %d)`, lines+2),
		"mesh.trusted_peers": fmt.Sprintf(`want a list, got "127.0.0.6" (line %d)`, lines+3),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for _, p := range ce.Problems {
		if strings.Contains(p.Message, "time.Duration") || strings.Contains(p.Message, "!!") || strings.Count(p.Key, "mesh") > 1 {
			t.Errorf("problem %q is not in words", p)
		}
	}
}
