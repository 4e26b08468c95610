// Package devconfig writes the folder a server needs to run in front of an
// emulator: the emulator's CA, the client secret, the policy and
// config.yaml, and the server's certificates. Dev mode (`embedgate serve
// --dev`), the tests that run a server (in process or as the real binary)
// and examples/web lay it out the same way, from here.
package devconfig

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/embedgate/embedgate/internal/devpki"
)

// Folder is a server's folder. Paths in config.yaml are relative to Dir.
type Folder struct {
	// Dir is the folder, which must exist.
	Dir string
	// Comment, if set, opens config.yaml (lines starting with "# ").
	Comment string
	// Listen is the gRPC listen address.
	Listen string
	// EmulatorURL is the emulator's base URL; EmulatorCA its CA (PEM),
	// written as emulator-ca.pem.
	EmulatorURL string
	EmulatorCA  []byte
	// TenantID, ClientID and ClientSecret are the service principal's.
	TenantID, ClientID, ClientSecret string
	// Policy is written as policy.yaml; with KeepPolicy, only if the
	// folder has none yet (a developer's edits survive a restart).
	Policy     string
	KeepPolicy bool
	// Extra is appended to config.yaml: more top-level keys.
	Extra string
}

// Write writes the folder's files (not its certificates: see WriteCerts).
func (f Folder) Write() error {
	config := f.Comment + `listen: ` + f.Listen + `
tls:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
powerbi:
  authority_host: ` + f.EmulatorURL + `
  api_url: ` + f.EmulatorURL + `
  ca_file: emulator-ca.pem
  tenant_id: ` + f.TenantID + `
  client_id: ` + f.ClientID + `
  client_secret_file: client-secret
policy_file: policy.yaml
` + f.Extra
	files := map[string]string{
		"emulator-ca.pem": string(f.EmulatorCA),
		"client-secret":   f.ClientSecret + "\n",
		"config.yaml":     config,
	}
	policy := filepath.Join(f.Dir, "policy.yaml")
	if _, err := os.Stat(policy); !f.KeepPolicy || errors.Is(err, fs.ErrNotExist) {
		files["policy.yaml"] = f.Policy
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// WriteCerts writes the CA (ca.pem, ca-key.pem) and the server's pair
// (server.pem, server-key.pem) into dir, as config.yaml names them.
func WriteCerts(dir string, ca *devpki.CA, server devpki.KeyPair) error {
	if err := ca.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")); err != nil {
		return err
	}
	return server.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
}
