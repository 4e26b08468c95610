package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/jsonlog"
	"github.com/embedgate/embedgate/internal/logwriter"
	"github.com/embedgate/embedgate/powerbi"
)

// RunOptions tune Run for its callers (the serve command, dev mode, tests).
type RunOptions struct {
	// Logger receives operational logs; Audit the audit stream (nil:
	// Logger marked stream=audit).
	Logger, Audit *slog.Logger
	// Ready, if set, is called once the listener is open, with its address.
	Ready func(addr net.Addr)
	// MetricsReady, if set, is called with the metrics listener's address
	// (when metrics_listen is configured).
	MetricsReady func(addr net.Addr)
	// PowerBIOptions are passed to powerbi.New (tests inject clocks).
	PowerBIOptions []powerbi.Option
}

// Run is the whole service: it loads the policy and watches it, builds the
// Power BI gateway and the gRPC server from cfg, listens, warms the Entra
// credential, and serves until ctx is done.
func Run(ctx context.Context, cfg *Config, opts RunOptions) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	store, err := authz.NewStore(cfg.PolicyFile, logger)
	if err != nil {
		return err
	}
	gateway, err := powerbi.New(cfg.PowerBI, append([]powerbi.Option{powerbi.WithLogger(logger)}, opts.PowerBIOptions...)...)
	if err != nil {
		return err
	}
	auditLog := opts.Audit
	if auditLog == nil && cfg.AuditFile != "" {
		f, err := os.OpenFile(cfg.AuditFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("audit_file: %w", err)
		}
		defer f.Close()
		// Batched, and flushed when Run returns (after the drain): every
		// record of every call reaches the file, in order.
		w := logwriter.New(f)
		defer w.Close()
		auditLog = slog.New(jsonlog.New(w, nil))
	}
	var metrics *Metrics
	var metricsLis net.Listener
	if cfg.MetricsListen != "" {
		if metricsLis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		defer metricsLis.Close()
		metrics = NewMetrics()
	}
	srv, err := New(cfg, Options{Policy: store, Gateway: gateway, Logger: logger, Audit: auditLog, Metrics: metrics})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if metrics != nil {
		go metrics.Serve(ctx, metricsLis, logger)
		if opts.MetricsReady != nil {
			opts.MetricsReady(metricsLis.Addr())
		}
	}
	go func() {
		if err := store.Watch(ctx); err != nil && ctx.Err() == nil {
			logger.Error("policy watch stopped; edits are no longer picked up", "error", err)
		}
	}()
	go watchCredential(ctx, gateway, srv.Health(), metrics, logger)
	go func() {
		if err := gateway.Watch(ctx); err != nil && ctx.Err() == nil {
			logger.Error("the credential file is not watched: a rotated secret or certificate needs a restart", "error", err)
		}
	}()
	if cfg.preflight() {
		go watchPreflight(ctx, store, gateway, metrics, logger)
	}
	logger.Info("embedgate serving", "addr", lis.Addr().String(), "policy_version", store.Current().Version())
	if opts.Ready != nil {
		opts.Ready(lis.Addr())
	}
	return srv.Serve(ctx, lis)
}

// Credential checks: soon after a failure, at leisure while it works (a
// check served from MSAL's cache costs no network call).
const (
	credentialRetry = 15 * time.Second
	credentialCheck = time.Minute
)

// watchCredential keeps the Entra sign-in warm, so the first caller does
// not pay for it, and makes a rejected credential loud: an error in the log
// and EmbedTokenService NOT_SERVING in health (for readiness probes) until
// a check succeeds again. The overall ("") status stays SERVING: the
// process is alive and a restart would not help.
func watchCredential(ctx context.Context, gw interface{ CheckCredential(context.Context) error }, hs *health.Server, m *Metrics, logger *slog.Logger) {
	svc := embedgatev1.EmbedTokenService_ServiceDesc.ServiceName
	failing := false
	for {
		err := gw.CheckCredential(ctx)
		if ctx.Err() != nil {
			return
		}
		next := credentialCheck
		m.credentialOK(err == nil)
		switch {
		case err != nil:
			logger.Error("Entra ID sign-in failed: tokens cannot be minted until it works", "error", err)
			hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
			failing, next = true, credentialRetry
		case failing:
			logger.Info("Entra ID sign-in works again")
			hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// NewLogger builds the logger the config asks for.
func NewLogger(w io.Writer, c LogConfig) (*slog.Logger, error) {
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
	}
	// slog's JSON lines, written faster (see internal/jsonlog).
	return slog.New(jsonlog.New(w, level)), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}
