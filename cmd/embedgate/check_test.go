package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedgate/embedgate/internal/devpki"
)

// TestHelp: every command answers --help with its description and flags,
// on stdout, with exit status 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--help"}, {"serve", "-h"}, {"check", "--help"}, {"token", "--help"}, {"version", "--help"}, {"emulator", "--help"}, {"explain", "--help"}, {"test", "--help"}, {"help"}, {"--help"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Errorf("embedgate %s: %v", strings.Join(args, " "), err)
		}
		if !strings.Contains(stdout.String(), "usage: embedgate") {
			t.Errorf("embedgate %s printed no usage:\n%s", strings.Join(args, " "), stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--help"}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "-online") {
		t.Errorf("check --help does not list its flags:\n%s", stdout.String())
	}
	if err := run(context.Background(), []string{"check", "--bogus"}, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "usage: embedgate check") {
		t.Errorf("a bad flag: %v, stderr:\n%s", err, stderr.String())
	}
}

// TestCheckSummary: a valid config is answered with what serve will use,
// including the values the AKS workload-identity variables supply; the
// former metrics_listen passes with a deprecation warning.
func TestCheckSummary(t *testing.T) {
	// Not parallel: it sets the workload-identity variables.
	dir := t.TempDir()
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServer("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "azure-identity-token")
	for name, content := range map[string]string{
		"ca.pem":               string(ca.CertPEM),
		"azure-identity-token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.\n",
		"policy.yaml":          "callers:\n  - id: spiffe://mesh.example/ns/web/sa/frontend\n    tenants: [\"*\"]\ntenants:\n  acme:\n    workspace_id: a0000000-0000-4000-8000-000000000001\n    reports: [\"*\"]\n",
		"config.yaml": `tls:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
powerbi:
  cloud: usgovhigh
policy_file: policy.yaml
metrics_listen: 0.0.0.0:9090
reflection: false
`,
	} {
		writeTestFile(t, filepath.Join(dir, name), content)
	}
	t.Setenv("AZURE_CLIENT_ID", "66666666-7777-4888-8999-000000000000")
	t.Setenv("AZURE_TENANT_ID", "11111111-2222-4333-8444-555555555555")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", token)
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.monitoring:4318")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", filepath.Join(dir, "config.yaml")}, &stdout, &stderr); err != nil {
		t.Fatalf("check: %v\n%s", err, stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"config.yaml: OK",
		"warning: metrics_listen: deprecated",
		"cloud:       usgovhigh",
		"authority:   https://login.microsoftonline.us/11111111-2222-4333-8444-555555555555 (instance discovery on)",
		"power bi:    https://api.high.powerbigov.us",
		"credential:  workload identity federation, " + token + "; client_id 66666666-7777-4888-8999-000000000000",
		"environment: powerbi.tenant_id from AZURE_TENANT_ID",
		"listen:      0.0.0.0:8443, mTLS",
		"reflection off",
		"admin:       0.0.0.0:9090 (plain HTTP: /healthz /readyz /metrics)",
		"policy:      " + filepath.Join(dir, "policy.yaml") + ", version sha256:",
		": 1 tenants, 1 callers",
		"preflight:   on",
		"shutdown:    NOT_SERVING, 5s delay, then 10s grace",
		"tracing:     OTLP over http/protobuf to http://otel-collector.monitoring:4318",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	stdout.Reset()
	if err := run(context.Background(), []string{"check", "--config", filepath.Join(dir, "config.yaml")}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Errorf("check with an unsupported exporter: %v", err)
	}
}
