package powerbi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFileAt replaces path atomically, the way mounted secrets are rotated.
func writeFileAt(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// selfSignedPEM returns a CERTIFICATE and its PKCS#8 PRIVATE KEY.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "embedgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	secret := writeFile(t, "secret", "value\n")
	empty := writeFile(t, "empty", "\n")
	cert := writeFile(t, "cert.pem", selfSignedPEM(t))
	notPEM := writeFile(t, "junk.pem", "not a pem")
	missing := filepath.Join(t.TempDir(), "missing")
	const uuid = "00000000-0000-0000-0000-000000000000"
	ok := Config{TenantID: uuid, ClientID: uuid, ClientSecretFile: secret}

	tests := []struct {
		name string
		cfg  Config
		want []string // keys of the problems, in order
	}{
		{"minimal secret config", ok, nil},
		{"domain tenant, certificate, every override", Config{Cloud: "usgovhigh", AuthorityHost: "https://127.0.0.1:8444", APIURL: "https://127.0.0.1:8444/pbi/", CAFile: cert,
			TenantID: "contoso.onmicrosoft.com", ClientID: uuid, CertificateFile: cert, Timeout: time.Second, MetadataTTL: time.Minute}, nil},
		{"federated token", Config{TenantID: uuid, ClientID: uuid, FederatedTokenFile: secret}, nil},
		{"empty config", Config{}, []string{"tenant_id", "client_id", "client_secret_file"}},
		{"everything wrong", Config{
			Cloud: "mars", AuthorityHost: "http://login.example.com", APIURL: "https://api.example.com?x=1", CAFile: notPEM,
			TenantID: "common", ClientID: "my-app", ClientSecretFile: empty, CertificateFile: notPEM, FederatedTokenFile: missing,
			Timeout: -1, MetadataTTL: -1,
		}, []string{
			"cloud", "authority_host", "api_url", "ca_file", "tenant_id", "client_id",
			"client_secret_file", "client_secret_file", "certificate_file", "federated_token_file",
			"timeout", "metadata_ttl",
		}},
		{"authority host with a path", Config{AuthorityHost: "https://login.microsoftonline.com/" + uuid, TenantID: uuid, ClientID: uuid, ClientSecretFile: secret}, []string{"authority_host"}},
		{"missing secret file", Config{TenantID: uuid, ClientID: uuid, ClientSecretFile: missing}, []string{"client_secret_file"}},
		{"bad tenant", Config{TenantID: "not a tenant!", ClientID: uuid, ClientSecretFile: secret}, []string{"tenant_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range tt.cfg.Validate() {
				if p.Message == "" {
					t.Errorf("problem %s without a message", p.Key)
				}
				got = append(got, p.Key)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problem keys (-want +got):\n%s\n%v", diff, tt.cfg.Validate())
			}
			if _, err := New(tt.cfg); (err != nil) != (len(tt.want) > 0) {
				t.Errorf("New err = %v, want error iff problems", err)
			}
		})
	}
}
