package emulator

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// TestMSALConfidentialClient drives the real MSAL Go client against the
// emulator: OIDC discovery on the emulator host, the token POST, and
// MSAL's cache serving the second call.
func TestMSALConfidentialClient(t *testing.T) {
	t.Parallel()
	c := testCerts(t)
	secretCred, err := confidential.NewCredFromSecret(demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	certCred, err := confidential.NewCredFromCert([]*x509.Certificate{c[0].cert}, c[0].key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		tenant   string
		clientID string
		cred     confidential.Credential
		wantOID  string
	}{
		{"secret", demoTenant, demoClient, secretCred, demoObject},
		{"secret, tenant by domain", demoDomain, demoClient, secretCred, demoObject},
		{"certificate", certTenant, certClient, certCred, certObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Config{})
			app, err := confidential.New(srv.URL()+"/"+tc.tenant, tc.clientID, tc.cred,
				confidential.WithInstanceDiscovery(false),
				confidential.WithHTTPClient(httpClient(t, srv)))
			if err != nil {
				t.Fatal(err)
			}
			var first string
			for i := range 2 {
				ar, err := app.AcquireTokenByCredential(context.Background(), []string{pbiScope})
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if i == 0 {
					first = ar.AccessToken
				} else if ar.AccessToken != first {
					t.Error("second call did not come from MSAL's cache")
				}
			}
			if n := srv.Counters()[RouteEntraToken]; n != 1 {
				t.Errorf("token endpoint called %d times, want 1", n)
			}
			tok, err := parseJWT(first)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.claimString("oid"); got != tc.wantOID {
				t.Errorf("oid = %q, want %q", got, tc.wantOID)
			}
		})
	}
}
