package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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

// TestLoadConfigDefaults: what a config that leaves everything optional out
// gets: a listener for a pod, a drain delay, reflection, no admin listener.
func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(writeConfigDir(t, strings.Replace(validConfig, "listen: 127.0.0.1:9443\n", "", 1), nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.ShutdownDelay != 5*time.Second || !cfg.reflection() || cfg.AdminListen != "" || cfg.Pprof {
		t.Errorf("defaults: listen %q, delay %v, reflection %v, admin %q, pprof %v", cfg.Listen, cfg.ShutdownDelay, cfg.reflection(), cfg.AdminListen, cfg.Pprof)
	}
	if len(cfg.Warnings()) != 0 || len(cfg.Sources()) != 0 {
		t.Errorf("warnings %v, sources %v; want none", cfg.Warnings(), cfg.Sources())
	}
}

// TestLoadConfigAdminKeys: metrics_listen still works, as admin_listen with
// a deprecation warning; the admin keys are checked together.
func TestLoadConfigAdminKeys(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(writeConfigDir(t, validConfig+"metrics_listen: 127.0.0.1:9090\nreflection: false\npprof: true\nshutdown_delay: 0s\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminListen != "127.0.0.1:9090" || cfg.reflection() || !cfg.Pprof || cfg.ShutdownDelay != 0 {
		t.Errorf("admin %q, reflection %v, pprof %v, delay %v", cfg.AdminListen, cfg.reflection(), cfg.Pprof, cfg.ShutdownDelay)
	}
	if w := cfg.Warnings(); len(w) != 1 || w[0].Key != "metrics_listen" || !strings.Contains(w[0].Message, "deprecated") {
		t.Errorf("warnings = %v, want metrics_listen deprecated", w)
	}

	for _, tt := range []struct{ config, key string }{
		{"admin_listen: 127.0.0.1:9090\nmetrics_listen: 127.0.0.1:9091\n", "metrics_listen"},
		{"admin_listen: nowhere\n", "admin_listen"},
		{"metrics_listen: nowhere\n", "metrics_listen"},
		{"admin_listen: 127.0.0.1:9443\n", "admin_listen"}, // the gRPC port
		{"pprof: true\n", "pprof"},
		{"shutdown_delay: -1s\n", "shutdown_delay"},
		{"reflection: maybe\n", "reflection"},
	} {
		_, err := LoadConfig(writeConfigDir(t, validConfig+tt.config, nil))
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != tt.key {
			t.Errorf("%q: %v, want one problem at %s", tt.config, err, tt.key)
		}
	}
}

// TestLoadConfigWorkloadIdentity: the variables the AKS webhook injects
// fill the powerbi keys the file leaves empty (the authority host's
// trailing slash dropped); keys the file sets win; the federated token is
// used only when the file names no credential.
func TestLoadConfigWorkloadIdentity(t *testing.T) {
	// Not parallel: it sets environment variables.
	dir := t.TempDir()
	token := filepath.Join(dir, "azure-identity-token")
	if err := os.WriteFile(token, []byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_CLIENT_ID", "66666666-7777-4888-8999-000000000000")
	t.Setenv("AZURE_TENANT_ID", "11111111-2222-4333-8444-555555555555")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", token)
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/")

	bare := strings.NewReplacer(
		"  tenant_id: 11111111-1111-4111-8111-111111111111\n", "",
		"  client_id: 22222222-2222-4222-8222-222222222222\n", "",
		"  client_secret_file: secret\n", "  cloud: public\n").Replace(validConfig)
	cfg, err := LoadConfig(writeConfigDir(t, bare, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.PowerBI
	if p.ClientID != "66666666-7777-4888-8999-000000000000" || p.TenantID != "11111111-2222-4333-8444-555555555555" ||
		p.FederatedTokenFile != token || p.AuthorityHost != "https://login.microsoftonline.com" {
		t.Errorf("powerbi = %+v", p)
	}
	got := map[string]string{}
	for _, s := range cfg.Sources() {
		got[s.Key] = s.Message
	}
	want := map[string]string{
		"powerbi.client_id": "from AZURE_CLIENT_ID", "powerbi.tenant_id": "from AZURE_TENANT_ID",
		"powerbi.federated_token_file": "from AZURE_FEDERATED_TOKEN_FILE", "powerbi.authority_host": "from AZURE_AUTHORITY_HOST",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}

	// The file's own keys win, and a secret keeps the token file out.
	cfg, err = LoadConfig(writeConfigDir(t, validConfig, nil))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.PowerBI; p.TenantID != "11111111-1111-4111-8111-111111111111" || p.FederatedTokenFile != "" || p.ClientSecretFile == "" {
		t.Errorf("the file's keys were overridden: %+v", p)
	}
}

// TestLoadConfigExpandsEnv: ${VAR} works in the config as in the policy,
// and an unset variable is a problem at its key.
func TestLoadConfigExpandsEnv(t *testing.T) {
	// Not parallel: it sets environment variables.
	t.Setenv("EMBEDGATE_TEST_ADMIN_PORT", "9191")
	t.Setenv("EMBEDGATE_TEST_TENANT", "acme")
	cfg, err := LoadConfig(writeConfigDir(t, validConfig+"admin_listen: 127.0.0.1:${EMBEDGATE_TEST_ADMIN_PORT}\n",
		map[string]string{"policy.yaml": "callers:\n  - id: spiffe://mesh.example/ns/${EMBEDGATE_TEST_TENANT}/sa/web\n    tenants: [\"*\"]\ntenants: {}\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminListen != "127.0.0.1:9191" {
		t.Errorf("admin_listen = %q", cfg.AdminListen)
	}
	_, err = LoadConfig(writeConfigDir(t, validConfig+"admin_listen: 127.0.0.1:${EMBEDGATE_TEST_UNSET}\n", nil))
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != "admin_listen" ||
		!strings.Contains(ce.Problems[0].Message, "EMBEDGATE_TEST_UNSET is not set") {
		t.Errorf("err = %v, want the unset variable at admin_listen", err)
	}
}

// TestConfigKeysInREADME: every key of the config file is in the README's
// config reference, so that operators find it there.
func TestConfigKeysInREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "### Config reference")
	end := strings.Index(text, "### Policy reference")
	if start < 0 || end < start {
		t.Fatal("the README has no config reference")
	}
	ref := text[start:end]
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			if !regexp.MustCompile(`(?m)^\s*(# )?`+regexp.QuoteMeta(key)+`:`).MatchString(ref) && !strings.Contains(ref, "`"+key+"`") {
				t.Errorf("the README's config reference lacks %s%s", prefix, key)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
				walk(prefix+key+".", ft)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
}

// TestLoadConfigWarnsOfLifetimesNeverHonoured: a tenant's max_lifetime
// beyond what an Entra token can back is a warning (the config still
// loads); one within it is not.
func TestLoadConfigWarnsOfLifetimesNeverHonoured(t *testing.T) {
	t.Parallel()
	policy := `callers: []
tenants:
  long:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
    max_lifetime: 2h
  fine:
    workspace_id: 11111111-1111-1111-1111-111111111112
    reports: ["*"]
    max_lifetime: 90m
`
	cfg, err := LoadConfig(writeConfigDir(t, validConfig, map[string]string{"policy.yaml": policy}))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Warnings()
	if len(w) != 1 || w[0].Key != "policy_file" || !strings.Contains(w[0].Message, "tenants.long.max_lifetime 2h0m0s cannot be honoured") {
		t.Errorf("warnings = %v, want one for tenants.long", w)
	}
}
