package powerbi

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// federatedToken is a JWT of another identity provider (a Kubernetes
// service account token, say) for Entra's workload identity federation.
func federatedToken(t *testing.T, key *rsa.PrivateKey, issuer, subject string, exp time.Time) string {
	t.Helper()
	return testkit.SignJWT(t, key, map[string]any{
		"iss": issuer, "sub": subject, "aud": []string{"api://AzureADTokenExchange"},
		"iat": exp.Add(-time.Hour).Unix(), "nbf": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(),
	})
}

// publicKeyPEM is key as a PEM PUBLIC KEY.
func publicKeyPEM(t *testing.T, key *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestUsable is the renewal rule of the Entra token in use, case by case.
func TestUsable(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tok := func(life time.Duration) *entraToken {
		return &entraToken{acquired: t0, expires: t0.Add(life)}
	}
	tests := []struct {
		name string
		tok  *entraToken
		age  time.Duration
		need time.Duration
		want bool
	}{
		{"metadata calls need nothing", tok(time.Hour), 50 * time.Minute, 0, true},
		{"a token about to expire is never used", tok(time.Hour), 59*time.Minute + 30*time.Second, 0, false},
		{"outlives a 30-minute embed token", tok(time.Hour), 28 * time.Minute, 31 * time.Minute, true},
		{"too old for a 30-minute embed token: renewed", tok(time.Hour), 30 * time.Minute, 31 * time.Minute, false},
		{"a 60-minute embed token from a 75-minute Entra token: used for its first quarter", tok(75 * time.Minute), 18 * time.Minute, 61 * time.Minute, true},
		{"... renewed after it", tok(75 * time.Minute), 19 * time.Minute, 61 * time.Minute, false},
		{"Entra issues 4-minute tokens: each is used to its last minute", tok(4 * time.Minute), 2*time.Minute + 59*time.Second, 31 * time.Minute, true},
		{"... and replaced in it", tok(4 * time.Minute), 3*time.Minute + time.Second, 31 * time.Minute, false},
		{"90-second tokens keep a quarter of their life as safety", tok(90 * time.Second), 67 * time.Second, 0, true},
		{"... and are replaced in their last quarter", tok(90 * time.Second), 68 * time.Second, 0, false},
	}
	for _, tt := range tests {
		if got := usable(tt.tok, t0.Add(tt.age), tt.need); got != tt.want {
			t.Errorf("%s: usable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
