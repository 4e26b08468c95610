package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestTLSRotation: the server certificate and the client CA bundle are
// re-read when their files change, with no restart; connections made
// before keep working.
func TestTLSRotation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, minted, nil)
	before := ts.dialTLS(t, testCaller)
	call := func(c embedgatev1.EmbedTokenServiceClient) error {
		_, err := c.GenerateEmbedToken(context.Background(), acmeRequest)
		return err
	}
	if err := call(before); err != nil {
		t.Fatal(err)
	}

	// A caller of a second CA is refused until the bundle names that CA.
	ca2, err := devpki.NewCA("second")
	if err != nil {
		t.Fatal(err)
	}
	cert2 := IssueClientCert(t, ca2, testCaller)
	second := func() error {
		return call(ts.dial(t, credentials.NewTLS(&tls.Config{
			RootCAs: ts.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert2}, MinVersion: tls.VersionTLS12,
		})))
	}
	if err := second(); status.Code(err) != codes.Unavailable {
		t.Fatalf("a caller of an unknown CA: %v, want the handshake to fail", err)
	}
	bundle := append(append([]byte{}, ts.ca.CertPEM...), ca2.CertPEM...)
	writeReplacing(t, ts.cfg.TLS.ClientCAFile, bundle)
	testkit.Eventually(t, "a caller of the added CA is accepted", func() bool { return second() == nil })

	// A broken rotation is logged once and the current files keep serving.
	writeReplacing(t, ts.cfg.TLS.CertFile, []byte("half-written"))
	testkit.Eventually(t, "the broken rotation is noticed", func() bool {
		return strings.Contains(ts.logs.String(), "rotated TLS files do not load")
	})
	for range 3 {
		if err := call(ts.dialTLS(t, testCaller)); err != nil {
			t.Fatalf("during a broken rotation: %v", err)
		}
	}
	if n := strings.Count(ts.logs.String(), "rotated TLS files do not load"); n != 1 {
		t.Errorf("the broken rotation was logged %d times, want once", n)
	}

	// A new server certificate is served to new connections.
	newKP, err := ts.ca.IssueServer("localhost")
	if err != nil {
		t.Fatal(err)
	}
	writeReplacing(t, ts.cfg.TLS.KeyFile, newKP.KeyPEM)
	writeReplacing(t, ts.cfg.TLS.CertFile, newKP.CertPEM)
	want, err := newKP.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(want.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsed.SerialNumber
	cert1 := IssueClientCert(t, ts.ca, testCaller)
	// New connections get the rotated certificate once the watch has read it.
	testkit.Eventually(t, "new connections get the rotated certificate", func() bool {
		var mu sync.Mutex
		var seen *big.Int
		after := ts.dial(t, credentials.NewTLS(&tls.Config{
			RootCAs: ts.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert1}, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				mu.Lock()
				defer mu.Unlock()
				seen = cs.PeerCertificates[0].SerialNumber
				return nil
			},
		}))
		if err := call(after); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen != nil && seen.Cmp(leaf) == 0
	})
	if err := call(before); err != nil {
		t.Errorf("a connection made before the rotation broke: %v", err)
	}
}

// writeReplacing writes a file aside and renames it over, as a secret
// mount or a cert manager does.
func writeReplacing(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}
