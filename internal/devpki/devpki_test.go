package devpki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"testing"
)

// TestReloadedCAIssuesVerifiableCertificates: a CA written and read back
// (dev mode keeps it across runs) still signs certificates its first
// incarnation's pool accepts, with the requested SANs.
func TestReloadedCAIssuesVerifiableCertificates(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := again.IssueClient("spiffe://example.test/ns/a/sa/b")
	if err != nil {
		t.Fatal(err)
	}
	server, err := again.IssueServer("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		pair  KeyPair
		usage x509.ExtKeyUsage
		check func(*x509.Certificate) bool
	}{
		{client, x509.ExtKeyUsageClientAuth, func(c *x509.Certificate) bool {
			return len(c.URIs) == 1 && c.URIs[0].String() == "spiffe://example.test/ns/a/sa/b"
		}},
		{server, x509.ExtKeyUsageServerAuth, func(c *x509.Certificate) bool {
			return len(c.DNSNames) == 1 && c.DNSNames[0] == "localhost" && len(c.IPAddresses) == 1
		}},
	} {
		block, _ := pem.Decode(tt.pair.CertPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
			t.Errorf("%v certificate does not verify against the original CA: %v", tt.usage, err)
		}
		if !tt.check(cert) {
			t.Errorf("%v certificate SANs: %v %v %v", tt.usage, cert.URIs, cert.DNSNames, cert.IPAddresses)
		}
		if _, err := tt.pair.TLSCertificate(); err != nil {
			t.Errorf("key pair: %v", err)
		}
	}
	if _, err := LoadCA(filepath.Join(dir, "missing.pem"), filepath.Join(dir, "ca-key.pem")); err == nil {
		t.Error("LoadCA of a missing file succeeded")
	}
}

// TestServerSVID: a server certificate that is also an X.509-SVID has the
// SPIFFE ID as its only URI SAN, and the host names and IPs as for
// IssueServer.
func TestServerSVID(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServerSVID("spiffe://example.test/ns/platform/sa/embedgate", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://example.test/ns/platform/sa/embedgate" ||
		len(cert.DNSNames) != 1 || cert.DNSNames[0] != "localhost" || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("URIs %v, DNS %v, IPs %v", cert.URIs, cert.DNSNames, cert.IPAddresses)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the CA's pool does not verify it for localhost: %v", err)
	}
}
