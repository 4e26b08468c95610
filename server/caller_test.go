package server

import (
	"crypto/x509"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/embedgate/embedgate/internal/devpki"
)

// TestCertIDs: a certificate's SPIFFE ID is read once and kept per
// certificate; a certificate without exactly one is refused every time;
// the kept IDs are bounded.
func TestCertIDs(t *testing.T) {
	t.Parallel()
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(uris ...string) *x509.Certificate {
		c := IssueClientCert(t, ca, uris...)
		l, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ids := newAuthenticator(spiffeid.TrustDomain{}, nil, 100).ids
	if ids == nil || ids.size != 200 {
		t.Fatalf("the authenticator keeps %+v, want the IDs of 200 certificates", ids)
	}
	frontend, batch := leaf(testCaller), leaf("spiffe://embedgate.test/ns/jobs/sa/batch")
	for range 2 {
		for cert, want := range map[*x509.Certificate]string{frontend: testCaller, batch: "spiffe://embedgate.test/ns/jobs/sa/batch"} {
			if id, err := ids.of(cert); err != nil || id.String() != want {
				t.Errorf("of = %v, %v, want %s", id, err, want)
			}
		}
	}
	if len(ids.m) != 2 {
		t.Errorf("%d IDs kept, want 2", len(ids.m))
	}
	two := leaf(testCaller, "spiffe://embedgate.test/ns/web/sa/other")
	for range 2 {
		if _, err := ids.of(two); err == nil {
			t.Error("a certificate with two SPIFFE IDs was accepted")
		}
	}
	if _, kept := ids.m[two]; kept {
		t.Error("a refused certificate was kept")
	}
	for range ids.size {
		_, _ = ids.of(&x509.Certificate{URIs: frontend.URIs})
	}
	if len(ids.m) > ids.size {
		t.Errorf("%d IDs kept, want at most %d", len(ids.m), ids.size)
	}
}
