package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/embedgate/embedgate/internal/filewatch"
)

// tlsFiles serves the listener's TLS config from files and reloads them when
// they change (internal/filewatch), so that a rotated certificate, key or
// client CA bundle takes effect on the next handshake without a restart.
// Existing connections keep the config they were made with. A change that
// does not load (say, a rotation caught half-written) is logged and the
// previous config stays in service until the files change again.
type tlsFiles struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger
	cfg                       atomic.Pointer[tls.Config]
}

func newTLSFiles(c TLSConfig, log *slog.Logger) (*tlsFiles, error) {
	f := &tlsFiles{certFile: c.CertFile, keyFile: c.KeyFile, caFile: c.ClientCAFile, log: log}
	cfg, err := loadServerTLS(f.certFile, f.keyFile, f.caFile)
	if err != nil {
		return nil, err
	}
	f.cfg.Store(cfg)
	return f, nil
}

// serverConfig is the tls.Config handed to gRPC: every handshake takes the
// current one.
func (f *tlsFiles) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.cfg.Load(), nil
		},
	}
}

// watch reloads the files whenever they change, until ctx is done.
func (f *tlsFiles) watch(ctx context.Context) {
	err := filewatch.Watch(ctx, []string{f.certFile, f.keyFile, f.caFile}, f.reload, filewatch.Options{
		OnError: func(err error) { f.log.Warn("TLS file watch error; reading the files anyway", "error", err) },
	})
	if err != nil {
		f.log.Error("TLS files are not watched: a rotated certificate needs a restart", "error", err)
	}
}

// reload reads the files again and swaps the config in if they load.
func (f *tlsFiles) reload() {
	cfg, err := loadServerTLS(f.certFile, f.keyFile, f.caFile)
	if err != nil {
		f.log.Error("rotated TLS files do not load; keeping the previous certificate and client CAs", "error", err)
		return
	}
	old := f.cfg.Swap(cfg)
	if old != nil && !sameTLS(old, cfg) {
		f.log.Info("TLS files reloaded", "cert_file", f.certFile, "client_ca_file", f.caFile)
	}
}

// sameTLS reports whether two configs hold the same certificate and CAs, so
// that the reload the watch makes at start is not logged as a rotation.
func sameTLS(a, b *tls.Config) bool {
	if len(a.Certificates) != len(b.Certificates) || !a.ClientCAs.Equal(b.ClientCAs) {
		return false
	}
	for i := range a.Certificates {
		ca, cb := a.Certificates[i].Certificate, b.Certificates[i].Certificate
		if len(ca) != len(cb) {
			return false
		}
		for j := range ca {
			if string(ca[j]) != string(cb[j]) {
				return false
			}
		}
	}
	return true
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

// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold a
// connection slot.
const handshakeTimeout = 10 * time.Second
