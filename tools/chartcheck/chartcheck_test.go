package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidate: a rendered chart passes, and each kind of mistake the
// checker exists for is caught, named by the object it is in.
func TestValidate(t *testing.T) {
	t.Parallel()
	valid, err := os.ReadFile("testdata/spire.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string // a replacement applied once to the valid manifests
		want     string // "" for no problem, else a substring of one
	}{
		{"as rendered", "", "", ""},
		{"misspelt field", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSecond: 20", `unknown field "terminationGracePeriodSecond"`},
		{"wrong type", "failureThreshold: 1", "failureThreshold: once", "Deployment (document"},
		{"bad quantity", "memory: 256Mi", "memory: 256 MB", "quantities must match"},
		{"grace shorter than the drain", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds: 15", "does not exceed shutdown_delay + shutdown_grace"},
		{"probe on a port that does not exist", "path: /readyz\n              port: admin", "path: /readyz\n              port: metrics", "readiness probe port metrics"},
		{"writable root filesystem", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only root filesystem"},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", "no schema for policy/v1 PodDisruptionBudgett"},
		{"selector that selects nothing", "  selector:\n    app.kubernetes.io/name: embedgate", "  selector:\n    app.kubernetes.io/name: embedgat", "does not select the pods"},
		{"mount without a volume", "- name: spiffe-helper-config\n              mountPath", "- name: helper-config\n              mountPath", "mounts helper-config"},
		{"bad name", "name: embedgate-headless", "name: Embedgate_Headless", "name: a lowercase RFC 1123 subdomain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := string(valid)
			if tt.old != "" {
				if !strings.Contains(data, tt.old) {
					t.Fatalf("testdata has no %q", tt.old)
				}
				data = strings.Replace(data, tt.old, tt.new, 1)
			}
			_, problems := validate([]byte(data))
			joined := strings.Join(problems, "\n")
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("problems in valid manifests:\n%s", joined)
			case tt.want != "" && !strings.Contains(joined, tt.want):
				t.Errorf("want a problem containing %q, got:\n%s", tt.want, joined)
			}
		})
	}
}

// TestExtract: the config comes out re-rooted, with every file it names
// present.
func TestExtract(t *testing.T) {
	t.Parallel()
	valid, err := os.ReadFile("testdata/spire.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config, err := extract(valid, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), " /etc/embedgate/") {
		t.Errorf("config still names the pod's paths:\n%s", data)
	}
	for _, f := range []string{"etc/embedgate/tls/tls.crt", "etc/embedgate/tls/tls.key", "etc/embedgate/tls/ca.crt", "etc/embedgate/policy/policy.yaml", "etc/embedgate/powerbi/client-secret", "env"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	// Shared state's files: a key of 32 bytes in base64, a password, a CA.
	shared, err := os.ReadFile("testdata/shared-state.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if _, err := extract(shared, dir); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "etc/embedgate/shared-state/token-keys"))
	if k, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(key))); err != nil || derr != nil || len(k) != 32 {
		t.Errorf("token-keys: %v %v, %d bytes", err, derr, len(k))
	}
	for _, f := range []string{"etc/embedgate/shared-state/redis-password", "etc/embedgate/shared-state/redis-ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
