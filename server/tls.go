package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// tlsFiles serves the listener's TLS config from files and re-reads them when
// they change, so that a rotated certificate, key or client CA bundle takes
// effect on the next handshake without a restart. Existing connections keep
// the config they were made with.
type tlsFiles struct {
	certFile, keyFile, caFile string

	mu      sync.Mutex
	stamp   string // size and mtime of the three files when cfg was built
	cfg     *tls.Config
	lastErr error
}

func newTLSFiles(c TLSConfig) (*tlsFiles, error) {
	f := &tlsFiles{certFile: c.CertFile, keyFile: c.KeyFile, caFile: c.ClientCAFile}
	if _, err := f.config(); err != nil {
		return nil, err
	}
	return f, nil
}

// serverConfig is the tls.Config handed to gRPC: every handshake asks
// config() for the current one.
func (f *tlsFiles) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.config()
		},
	}
}

// config returns the config built from the files as they are now. A file
// that changed but no longer loads (say, a half-written rotation) keeps the
// previous config in service; the error is remembered for logs.
func (f *tlsFiles) config() (*tls.Config, error) {
	stamp := fileStamp(f.certFile, f.keyFile, f.caFile)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg != nil && stamp == f.stamp {
		return f.cfg, nil
	}
	cfg, err := loadServerTLS(f.certFile, f.keyFile, f.caFile)
	if err != nil {
		f.lastErr = err
		if f.cfg != nil {
			return f.cfg, nil
		}
		return nil, err
	}
	f.cfg, f.stamp, f.lastErr = cfg, stamp, nil
	return cfg, nil
}

func loadServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2"},
	}, nil
}

func fileStamp(paths ...string) string {
	var s string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += "missing;"
		}
	}
	return s
}

// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold a
// connection slot.
const handshakeTimeout = 10 * time.Second
