package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
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
	log                       *slog.Logger

	mu    sync.Mutex
	stamp string // size and mtime of the three files when last loaded, good or bad
	cfg   *tls.Config
}

func newTLSFiles(c TLSConfig, log *slog.Logger) (*tlsFiles, error) {
	f := &tlsFiles{certFile: c.CertFile, keyFile: c.KeyFile, caFile: c.ClientCAFile, log: log}
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

// config returns the config built from the files as they are now. The
// files are read only when their stamp changes. A change that does not load
// (say, a half-written rotation) is logged once and keeps the previous
// config in service until the files change again.
func (f *tlsFiles) config() (*tls.Config, error) {
	stamp := fileStamp(f.certFile, f.keyFile, f.caFile)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg != nil && stamp == f.stamp {
		return f.cfg, nil
	}
	cfg, err := loadServerTLS(f.certFile, f.keyFile, f.caFile)
	if err != nil {
		if f.cfg == nil {
			return nil, err
		}
		f.stamp = stamp
		f.log.Error("rotated TLS files do not load; keeping the previous certificate and client CAs", "error", err)
		return f.cfg, nil
	}
	if f.cfg != nil {
		f.log.Info("TLS files reloaded", "cert_file", f.certFile, "client_ca_file", f.caFile)
	}
	f.cfg, f.stamp = cfg, stamp
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
