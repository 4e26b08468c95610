package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/embedgate/embedgate/authz"
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
	// AdminReady, if set, is called with the admin listener's address
	// (when admin_listen is configured), before Ready.
	AdminReady func(addr net.Addr)
	// PowerBIOptions are passed to powerbi.New (tests inject clocks).
	PowerBIOptions []powerbi.Option
	// TracerProvider, if set, traces calls (tests pass one with an
	// in-memory exporter); nil: from the OTEL_* variables (tracing.go).
	TracerProvider trace.TracerProvider
}

// Run is the whole service: it loads the policy and watches it, builds the
// Power BI gateway and the gRPC server from cfg, listens, warms the Entra
// credential, and serves until ctx is done; then it drains (Server.Serve),
// stops the admin listener, flushes the spans and closes the audit file.
func Run(ctx context.Context, cfg *Config, opts RunOptions) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, w := range cfg.Warnings() {
		logger.Warn("config: "+w.String(), "key", w.Key)
	}
	var metrics *Metrics
	var adminLis net.Listener
	if cfg.AdminListen != "" {
		if adminLis, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return fmt.Errorf("admin_listen: %w", err)
		}
		defer func() {
			if adminLis != nil { // never served: Run failed first
				adminLis.Close()
			}
		}()
		metrics = NewMetrics()
	}
	tp := opts.TracerProvider
	if tp == nil {
		t, err := tracingFromEnv(os.LookupEnv)
		if err != nil {
			return err
		}
		if t.on {
			sdk, err := newTracerProvider(ctx, t)
			if err != nil {
				return err
			}
			defer func() {
				flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := sdk.Shutdown(flush); err != nil {
					logger.Warn("tracing: spans not flushed", "error", err)
				}
			}()
			tp = sdk
			logger.Info("tracing on", "exporter", t.String())
		}
	}
	store, err := authz.NewStore(cfg.PolicyFile, logger)
	if err != nil {
		return err
	}
	metrics.policyVersion(store.Current().Version())
	store.OnReload(metrics.policyReload)
	pbiOpts := []powerbi.Option{powerbi.WithLogger(logger)}
	shared, err := openSharedState(ctx, cfg, logger, metrics)
	if err != nil {
		return err
	}
	var sharedRates SharedRates // nil, not a nil *Store, when off
	if shared != nil {
		defer shared.Close()
		sharedRates = shared
		pbiOpts = append(pbiOpts, powerbi.WithSharedTokens(shared))
	}
	if metrics != nil {
		pbiOpts = append(pbiOpts, powerbi.WithUpstreamObserver(metrics.upstream))
	}
	var serverOpts []grpc.ServerOption
	if tp != nil {
		pbiOpts = append(pbiOpts, powerbi.WithTracerProvider(tp))
		serverOpts = append(serverOpts, grpcTracing(tp))
	}
	gateway, err := powerbi.New(cfg.PowerBI, append(pbiOpts, opts.PowerBIOptions...)...)
	if err != nil {
		return err
	}
	defer gateway.Close()
	metrics.tokenCache(gateway.TokenCacheSize)
	auditLog := opts.Audit
	if auditLog == nil && cfg.AuditFile != "" {
		f, err := os.OpenFile(cfg.AuditFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("audit_file: %w", err)
		}
		// Batched, and flushed when Run returns (after the drain): every
		// record of every call reaches the file, in order, and is synced.
		w := logwriter.New(f)
		defer func() {
			if werr := w.Close(); werr != nil {
				logger.Error("audit_file: records not written", "error", werr)
			}
			if serr := f.Sync(); serr != nil {
				logger.Warn("audit_file: sync failed", "error", serr)
			}
			f.Close()
		}()
		auditLog = slog.New(jsonlog.New(w, nil))
	}
	srv, err := New(cfg, Options{Policy: store, Gateway: gateway, Logger: logger, Audit: auditLog, Metrics: metrics, ServerOptions: serverOpts, SharedRates: sharedRates})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ready := newReadiness(srv.Health(), store, srv)
	// The admin listener outlives the gRPC server's drain (readiness says
	// why it is not ready, metrics keep counting) and stops after it.
	if adminLis != nil {
		adminCtx, stopAdmin := context.WithCancel(context.Background())
		adminDone := make(chan struct{})
		go func(lis net.Listener) {
			defer close(adminDone)
			serveAdmin(adminCtx, lis, adminHandler(metrics, ready, cfg.Pprof, logger), logger)
		}(adminLis)
		defer func() { stopAdmin(); <-adminDone }()
		if opts.AdminReady != nil {
			opts.AdminReady(adminLis.Addr())
		}
		adminLis = nil // serveAdmin closes it
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := store.Watch(bg); err != nil && bg.Err() == nil {
			logger.Error("policy watch stopped; edits are no longer picked up", "error", err)
		}
	}()
	go watchCredential(bg, gateway, srv.upstream, ready, metrics, logger)
	go func() {
		if err := gateway.Watch(bg); err != nil && bg.Err() == nil {
			logger.Error("the credential file is not watched: a rotated secret or certificate needs a restart", "error", err)
		}
	}()
	if cfg.preflight() {
		go watchPreflight(bg, store, gateway, metrics, logger)
	}
	logger.Info("embedgate serving", "addr", lis.Addr().String(), "admin_addr", cfg.AdminListen, "policy_version", store.Current().Version(),
		"shutdown_delay", cfg.ShutdownDelay.String(), "shutdown_grace", cfg.ShutdownGrace.String())
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
	// credentialNudgeGap spaces the checks calls ask for.
	credentialNudgeGap = time.Second
)

// credentialChecker is what watchCredential checks: the Entra sign-in and
// Power BI's acceptance of its token (powerbi.Client).
type credentialChecker interface {
	CheckCredential(context.Context) error
	CheckAccess(context.Context) error
}

// watchCredential keeps the Entra sign-in warm, so the first caller does
// not pay for it, and makes a broken credential loud: an error in the log,
// /readyz and EmbedTokenService's health NOT_SERVING (readiness) until a
// check succeeds again. Broken means Entra rejects the service principal,
// or Power BI refuses the token Entra gave (401, even freshly renewed):
// no tenant can be served. It checks every credentialCheck, every
// credentialRetry while failing, and at once (at most every
// credentialNudgeGap) when a call meets a refusal, or succeeds while the
// check is failing (recheck). The overall ("") status stays SERVING: the
// process is alive and a restart would not help.
func watchCredential(ctx context.Context, gw credentialChecker, up *upstreamHealth, ready *readiness, m *Metrics, logger *slog.Logger) {
	failing := false
	var last time.Time
	for {
		last = time.Now()
		err := gw.CheckCredential(ctx)
		if err == nil {
			err = gw.CheckAccess(ctx)
			if !refusesToken(err) {
				err = nil // unreachable or slow: not a readiness problem (see readiness)
			}
		}
		if ctx.Err() != nil {
			return
		}
		next := credentialCheck
		m.credentialOK(err == nil)
		up.failing.Store(err != nil)
		ready.credential(err)
		switch {
		case err != nil:
			logger.Error("the service principal cannot mint: tokens cannot be minted until it works", "error", err)
			failing, next = true, credentialRetry
		case failing:
			logger.Info("the service principal works again")
			failing = false
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-up.recheck:
			timer.Stop()
			if wait := credentialNudgeGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

// refusesToken reports whether Power BI refused Embedgate's token itself,
// not one item or workspace.
func refusesToken(err error) bool {
	return errors.Is(err, powerbi.ErrNotAuthorized) || errors.Is(err, powerbi.ErrPrincipalNotAllowed)
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
