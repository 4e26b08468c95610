package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// RunOptions tune Run for its callers (the serve command, dev mode, tests).
type RunOptions struct {
	// Logger receives operational logs; Audit the audit stream (nil:
	// Logger marked stream=audit).
	Logger, Audit *slog.Logger
	// Ready, if set, is called once the listener is open, with its address.
	Ready func(addr net.Addr)
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
		auditLog = slog.New(slog.NewJSONHandler(f, nil))
	}
	srv, err := New(cfg, Options{Policy: store, Gateway: gateway, Logger: logger, Audit: auditLog})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := store.Watch(ctx); err != nil && ctx.Err() == nil {
			logger.Error("policy watch stopped; edits are no longer picked up", "error", err)
		}
	}()
	go func() {
		// Warm MSAL's cache so the first caller does not pay for the Entra
		// sign-in, and say loudly if the credential is wrong.
		if err := gateway.CheckCredential(ctx); err != nil && ctx.Err() == nil {
			logger.Error("Entra ID sign-in failed: tokens cannot be minted until it works", "error", err)
		}
	}()
	logger.Info("embedgate serving", "addr", lis.Addr().String(), "policy_version", store.Current().Version())
	if opts.Ready != nil {
		opts.Ready(lis.Addr())
	}
	return srv.Serve(ctx, lis)
}

// NewLogger builds the logger the config asks for.
func NewLogger(w io.Writer, c LogConfig) (*slog.Logger, error) {
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return slog.New(slog.NewJSONHandler(w, ho)), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}
