// Package server builds Embedgate's gRPC server: mTLS credentials, the
// interceptor chain, health and reflection, the EmbedTokenService handlers,
// and the one mapping from domain errors to gRPC statuses. It also loads the
// server's config file and runs the whole service from it (Run): the admin
// listener with the probes and metrics, tracing, and the drain on SIGTERM.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// Options are what New needs besides the config: the policy, the token
// issuer and where logs and audit records go.
type Options struct {
	// Policy is consulted on every call (authz.Store reloads it).
	Policy PolicySource
	// Gateway mints the tokens (powerbi.Client); when it is a UserGateway
	// too, as powerbi.Client is, GenerateUserEmbedConfig is served.
	Gateway Gateway
	// Logger receives one record per call and operational events.
	Logger *slog.Logger
	// Audit receives one record per decision. Nil: Logger, marked
	// stream=audit.
	Audit *slog.Logger
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
	// Metrics, if set, records gRPC and decision metrics.
	Metrics *Metrics
	// ServerOptions are added to the gRPC server's (Run adds the
	// OpenTelemetry stats handler when tracing is on).
	ServerOptions []grpc.ServerOption
	// SharedRates, if set, enforces the callers' rate limits across the
	// fleet (sharedstate.Store); nil: per process.
	SharedRates SharedRates
}

// Server is the gRPC server with its health service.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	delay  time.Duration // shutdown_delay
	grace  time.Duration // shutdown_grace
	log    *slog.Logger
	tls    *tlsFiles // nil in mesh mode behind a plaintext sidecar hop

	maxConns int // limits.max_connections
	metrics  *Metrics
	upstream *upstreamHealth // calls' news for the credential watch

	// stopping is set when shutdown starts; endStreams ends the long-lived
	// streams once the delay is over (endOnDrain).
	stopping   atomic.Bool
	endStreams context.CancelFunc
}

// streamWorkers is the least number of goroutines kept to run calls.
const streamWorkers = 64

// New builds the gRPC server from the config's TLS section and the options.
// The interceptor chain, outermost first (newChain):
//
//	request id -> the caller's x-request-id if sane, else a new one; sent back
//	metrics    -> grpc_server_* series (when Options.Metrics is set)
//	logging    -> one "grpc call" record per call (go-grpc-middleware logging)
//	recovery   -> a panic becomes INTERNAL, logged with its stack and request
//	              id; inside logging and metrics, so both record it
//	shed       -> beyond limits.max_in_flight calls: RESOURCE_EXHAUSTED, OVERLOADED
//	auth       -> the client certificate's SPIFFE ID, or in mesh mode the trusted
//	              sidecar's x-forwarded-client-cert, into the context once
//	              (go-grpc-middleware auth; selector skips health and reflection)
//	rate       -> the caller's token bucket from the policy: RESOURCE_EXHAUSTED + RetryInfo
//	validate   -> protovalidate rules from the .proto, as INVALID_ARGUMENT + BadRequest
//	handler
//
// Streams get the same chain, plus one innermost link: drain (drain.go)
// ends them (Health/Watch, reflection) once shutdown's delay is over.
// Around it all, when tracing is on, the OpenTelemetry stats handler
// (Options.ServerOptions) makes each call a span.
func New(cfg *Config, opts Options) (*Server, error) {
	if opts.Policy == nil || opts.Gateway == nil {
		return nil, errors.New("server: Policy and Gateway are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	auditLog := opts.Audit
	if auditLog == nil {
		auditLog = logger.With("stream", "audit")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var serverOpts []grpc.ServerOption
	var tlsFiles *tlsFiles
	if cfg.TLS != (TLSConfig{}) {
		var err error
		if tlsFiles, err = newTLSFiles(cfg.TLS, logger); err != nil {
			return nil, err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsFiles.serverConfig())))
	} // else mesh mode with a plaintext sidecar hop (validated by Config.Validate)
	mesh, err := newMeshAuth(cfg.Mesh, logger)
	if err != nil {
		return nil, err
	}
	var td spiffeid.TrustDomain
	if cfg.TLS.TrustDomain != "" {
		if td, err = spiffeid.TrustDomainFromString(cfg.TLS.TrustDomain); err != nil {
			return nil, fmt.Errorf("tls.trust_domain: %w", err)
		}
	}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	limits := cfg.Limits.withDefaults()
	shed := &inFlight{max: int64(limits.MaxInFlight), metrics: opts.Metrics}
	c := newChain(logger, opts.Metrics, shed, newAuthenticator(td, mesh, limits.MaxConnections), newCallerLimits(opts.Policy, opts.Metrics, opts.SharedRates), validator, now)
	streams, endStreams := context.WithCancel(context.Background())
	serverOpts = append(serverOpts, limits.serverOptions()...)
	gs := grpc.NewServer(append(append(serverOpts,
		grpc.ConnectionTimeout(handshakeTimeout),
		// Calls run on a pool of goroutines whose stacks have already grown,
		// instead of a new goroutine per call growing its stack each time.
		// A call beyond the pool gets a new goroutine, so the pool covers
		// the calls a busy replica has in flight, not just its CPUs: most
		// of a call's time is waiting (on the network, on Power BI).
		grpc.NumStreamWorkers(uint32(max(streamWorkers, 4*runtime.GOMAXPROCS(0)))),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: limits.IdleTimeout, MaxConnectionAge: 30 * time.Minute, MaxConnectionAgeGrace: cfg.ShutdownGrace}),
		grpc.ChainUnaryInterceptor(c.unary...),
		grpc.ChainStreamInterceptor(c.stream...),
		grpc.ChainStreamInterceptor(endOnDrain(streams)), // innermost: shutdown ends streams (drain.go)
	), opts.ServerOptions...)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	if cfg.reflection() {
		reflection.Register(gs)
	}
	up := newUpstreamHealth()
	users, _ := opts.Gateway.(UserGateway) // powerbi.Client serves users too
	embedgatev1.RegisterEmbedTokenServiceServer(gs, &embedService{
		policy:   opts.Policy,
		gateway:  opts.Gateway,
		users:    users,
		audit:    &auditor{log: auditLog},
		metrics:  opts.Metrics,
		log:      logger,
		upstream: up,
		decided:  newDecidedCache(opts.Policy, cmp.Or(cfg.PowerBI.MetadataTTL, powerbi.DefaultMetadataTTL), now),
	})
	hs.SetServingStatus(embedgatev1.EmbedTokenService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	if opts.Metrics != nil {
		opts.Metrics.grpc.InitializeMetrics(gs)
	}
	return &Server{upstream: up, grpc: gs, health: hs, delay: cfg.ShutdownDelay, grace: cfg.ShutdownGrace, log: logger, tls: tlsFiles, endStreams: endStreams,
		maxConns: limits.MaxConnections, metrics: opts.Metrics}, nil
}

// Health is the server's health service, for components that report their
// own state (the credential check, the policy).
func (s *Server) Health() *health.Server { return s.health }

// Serve answers calls on lis until ctx is done (SIGTERM), then shuts down
// in the order a load balancer needs:
//
//  1. health (and so /readyz) turns NOT_SERVING, while the listener keeps
//     accepting and serving calls for shutdown_delay: the endpoints
//     controller, kube-proxy and clients' resolvers stop sending here;
//  2. the listener closes (GOAWAY on open connections), long-lived streams
//     (Health/Watch, reflection) end at once, and the unary calls in flight
//     get up to shutdown_grace to finish; Serve returns as soon as they
//     have, and cuts whatever still runs when the grace is over.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	defer s.endStreams()
	if s.tls != nil {
		go s.tls.watch(ctx)
	}
	lis = &connLimit{Listener: lis, max: int64(s.maxConns), metrics: s.metrics}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	start := time.Now()
	s.stopping.Store(true)
	s.health.Shutdown()
	if s.delay > 0 {
		s.log.Info("shutting down: NOT_SERVING; still serving during the delay", "delay", s.delay.String(), "grace", s.grace.String())
		delay := time.NewTimer(s.delay)
		select {
		case <-delay.C:
		case err := <-errc:
			delay.Stop()
			return err
		}
	}
	s.log.Info("shutting down: listener closed; draining calls in flight", "grace", s.grace.String())
	s.endStreams()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	grace := time.NewTimer(s.grace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.log.Warn("grace period over; cutting remaining calls")
		s.grpc.Stop()
		<-done
	}
	s.log.Info("shut down", "took", time.Since(start).String())
	return <-errc
}

// shuttingDown reports whether shutdown has started (readiness).
func (s *Server) shuttingDown() bool { return s.stopping.Load() }
