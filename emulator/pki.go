package emulator

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
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names of the CA inside Config.CertsDir.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
)

// authority is the CA that signs the serving certificate.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// loadOrCreateCA reuses dir/ca.pem + dir/ca-key.pem when both exist,
// otherwise generates a CA and, when dir is set, writes it there.
func loadOrCreateCA(dir string) (*authority, error) {
	if dir != "" {
		certPEM, errCert := os.ReadFile(filepath.Join(dir, caCertFile))
		keyPEM, errKey := os.ReadFile(filepath.Join(dir, caKeyFile))
		switch {
		case errCert == nil && errKey == nil:
			return parseCA(certPEM, keyPEM)
		case errors.Is(errCert, fs.ErrNotExist) && errors.Is(errKey, fs.ErrNotExist):
			// Generate below.
		case errCert != nil && !errors.Is(errCert, fs.ErrNotExist):
			return nil, fmt.Errorf("emulator: read CA: %w", errCert)
		case errKey != nil && !errors.Is(errKey, fs.ErrNotExist):
			return nil, fmt.Errorf("emulator: read CA key: %w", errKey)
		default:
			return nil, fmt.Errorf("emulator: %s has only one of %s and %s", dir, caCertFile, caKeyFile)
		}
	}
	ca, keyPEM, err := newCA()
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("emulator: create certs dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, caKeyFile), keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("emulator: write CA key: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, caCertFile), ca.certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("emulator: write CA: %w", err)
		}
	}
	return ca, nil
}

func newCA() (*authority, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Embedgate Emulator CA", Organization: []string{"Embedgate (local emulator)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: CA key: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &authority{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}
	return ca, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func parseCA(certPEM, keyPEM []byte) (*authority, error) {
	cert, err := parseCertPEM(string(certPEM))
	if err != nil {
		return nil, fmt.Errorf("emulator: parse %s: %w", caCertFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("emulator: %s is not a CA certificate", caCertFile)
	}
	tlsPair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("emulator: %s does not match %s: %w", caKeyFile, caCertFile, err)
	}
	signer, ok := tlsPair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("emulator: %s: unsupported key type", caKeyFile)
	}
	return &authority{cert: cert, certPEM: certPEM, key: signer}, nil
}

// serving issues a TLS certificate for 127.0.0.1, ::1, localhost and the
// listen host.
func (ca *authority) serving(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("emulator: serving key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		} else if !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("emulator: serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n.Add(n, big.NewInt(1))
}
