package sharedstate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := keyFile(t, randomKey(t))
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{Address: "redis:6379", EncryptionKeyFile: keys}
	for _, c := range []struct {
		name     string
		cfg      Config
		wantKeys []string
	}{
		{"off", Config{}, nil},
		{"minimal", ok, nil},
		{"every key", Config{Address: "10.0.0.1:6380", Username: "embedgate", PasswordFile: keys, Database: 2,
			KeyPrefix: "eg-prod:", EncryptionKeyFile: keys, Timeout: 100 * time.Millisecond, MintLease: 2 * time.Second}, nil},
		{"no address", Config{EncryptionKeyFile: keys}, []string{"address"}},
		{"address without port", Config{Address: "redis", EncryptionKeyFile: keys}, []string{"address"}},
		{"no key", Config{Address: "redis:6379"}, []string{"encryption_key_file"}},
		{"empty key file", Config{Address: "redis:6379", EncryptionKeyFile: empty}, []string{"encryption_key_file"}},
		{"empty password", Config{Address: "redis:6379", EncryptionKeyFile: keys, PasswordFile: empty}, []string{"password_file"}},
		{"negatives", Config{Address: "redis:6379", EncryptionKeyFile: keys, Database: -1, Timeout: -1, MintLease: time.Millisecond},
			[]string{"database", "timeout", "mint_lease"}},
		{"prefix with a space", Config{Address: "redis:6379", EncryptionKeyFile: keys, KeyPrefix: "a b"}, []string{"key_prefix"}},
		{"tls keys without enabled", Config{Address: "redis:6379", EncryptionKeyFile: keys, TLS: TLSConfig{CAFile: keys}}, []string{"tls.enabled"}},
		{"tls bad files", Config{Address: "redis:6379", EncryptionKeyFile: keys, TLS: TLSConfig{Enabled: true, CAFile: keys, CertFile: keys}},
			[]string{"tls.ca_file", "tls.cert_file"}},
	} {
		var got []string
		for _, p := range c.cfg.Validate() {
			got = append(got, p.Key)
		}
		if !slices.Equal(got, c.wantKeys) {
			t.Errorf("%s: problems at %v, want %v", c.name, got, c.wantKeys)
		}
	}
}
