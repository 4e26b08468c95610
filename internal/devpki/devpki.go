// Package devpki issues a throwaway certificate authority and certificates
// signed by it: a server certificate for the loopback host and SPIFFE client
// certificates for callers. Dev mode (`make run`) and the tests use it so that
// they exercise the same mTLS path as production, with real X.509.
//
// It is never for production: keys are unencrypted and live as long as the
// folder they are written to.
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// validity is how long issued certificates live: long enough for a dev
// session or a test run, short enough that a leaked one soon dies.
const validity = 30 * 24 * time.Hour

// CA is a certificate authority that can issue leaf certificates.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	// CertPEM is the CA certificate, PEM-encoded: what peers trust.
	CertPEM []byte
	// KeyPEM is the CA's PKCS#8 private key, PEM-encoded.
	KeyPEM []byte
}

// KeyPair is a leaf certificate and its private key, PEM-encoded.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Embedgate dev"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("devpki: CA files are not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devpki: CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("devpki: CA key cannot sign")
	}
	return newCA(cb.Bytes, signer)
}

func newCA(der []byte, key crypto.Signer) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("devpki: not a CA certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{
		cert:    cert,
		key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssueServer issues a server certificate for the given host names and IP
// addresses.
func (ca *CA) IssueServer(hosts ...string) (KeyPair, error) {
	tmpl := leaf(x509.ExtKeyUsageServerAuth)
	tmpl.Subject.CommonName = "embedgate server"
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// IssueServerSVID issues a server certificate that is also an X.509-SVID:
// its one URI SAN is the SPIFFE ID id, so that SPIFFE clients (go-spiffe's
// tlsconfig) can authorize the server by ID; hosts are added as for
// IssueServer, for clients that check a name instead.
func (ca *CA) IssueServerSVID(id string, hosts ...string) (KeyPair, error) {
	u, err := url.Parse(id)
	if err != nil {
		return KeyPair{}, fmt.Errorf("devpki: URI SAN %q: %w", id, err)
	}
	tmpl := leaf(x509.ExtKeyUsageServerAuth)
	tmpl.Subject.CommonName = "embedgate server"
	tmpl.URIs = []*url.URL{u}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// IssueClient issues a client certificate whose URI SANs are the given
// identities (normally exactly one SPIFFE ID, as an X.509-SVID has).
func (ca *CA) IssueClient(uris ...string) (KeyPair, error) {
	tmpl := leaf(x509.ExtKeyUsageClientAuth)
	tmpl.Subject.CommonName = "embedgate caller"
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			return KeyPair{}, fmt.Errorf("devpki: URI SAN %q: %w", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	return ca.issue(tmpl)
}

func (ca *CA) issue(tmpl *x509.Certificate) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return KeyPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// TLSCertificate returns the pair as a tls.Certificate.
func (kp KeyPair) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
}

// WriteFiles writes the certificate and the key (mode 0600), creating their
// folders.
func (kp KeyPair) WriteFiles(certFile, keyFile string) error {
	return writePair(certFile, kp.CertPEM, keyFile, kp.KeyPEM)
}

// WriteFiles writes the CA certificate and its key (mode 0600).
func (ca *CA) WriteFiles(certFile, keyFile string) error {
	return writePair(certFile, ca.CertPEM, keyFile, ca.KeyPEM)
}

func writePair(certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{certFile, certPEM, 0o644}, {keyFile, keyPEM, 0o600}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func leaf(usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
