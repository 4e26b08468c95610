package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// readiness is whether this process should get calls: what /readyz answers
// and what gRPC health says for embedgate.v1.EmbedTokenService, kept equal.
// Ready means the policy is loaded, Entra ID has accepted the credential
// (at least once, and does not reject it now), and the server is not
// shutting down.
//
// Entra ID being unreachable after a first sign-in does not make a process
// unready: every replica would go unready at once, and callers would get
// connection errors instead of UPSTREAM_UNAVAILABLE with a retry hint. A
// rejected credential does (the documented, loud failure): no replica can
// mint until an operator fixes it.
type readiness struct {
	health *health.Server
	policy PolicySource
	server *Server

	mu       sync.Mutex
	signedIn bool   // Entra accepted the credential at least once
	problem  string // why the credential keeps this process unready; "" = none
}

func newReadiness(hs *health.Server, policy PolicySource, srv *Server) *readiness {
	r := &readiness{health: hs, policy: policy, server: srv, problem: "waiting for the first Entra ID sign-in"}
	r.publish()
	return r
}

// upstreamHealth is what calls tell the credential watch (watchCredential):
// a refusal of Embedgate's token, or a mint while the check is failing,
// asks for a check now instead of at the next tick.
type upstreamHealth struct {
	recheck chan struct{}
	failing atomic.Bool // the last check failed
}

func newUpstreamHealth() *upstreamHealth {
	return &upstreamHealth{recheck: make(chan struct{}, 1)}
}

// nudge asks for a check, unless one is already asked for.
func (u *upstreamHealth) nudge() {
	select {
	case u.recheck <- struct{}{}:
	default:
	}
}

// credential records the outcome of a credential check.
func (r *readiness) credential(err error) {
	r.mu.Lock()
	switch {
	case err == nil:
		r.signedIn, r.problem = true, ""
	case errors.Is(err, powerbi.ErrCredential):
		r.problem = "Entra ID rejects the credential (CREDENTIAL_REJECTED; the log says why)"
	case errors.Is(err, powerbi.ErrPrincipalNotAllowed):
		r.problem = "Power BI refuses Embedgate's token: the tenant setting keeps its service principal out (POWERBI_PRINCIPAL_NOT_ALLOWED)"
	case errors.Is(err, powerbi.ErrNotAuthorized):
		r.problem = "Power BI refuses Embedgate's token, even freshly renewed (401; the log says why)"
	case !r.signedIn:
		r.problem = "Entra ID could not be reached for the first sign-in (the log says why)"
	}
	r.mu.Unlock()
	r.publish()
}

// status says whether the process is ready, and why or why not, in a line.
func (r *readiness) status() (bool, string) {
	var why []string
	if r.server.shuttingDown() {
		why = append(why, "shutting down")
	}
	var p *authz.Policy
	if r.policy != nil {
		p = r.policy.Current()
	}
	if p == nil {
		why = append(why, "no policy loaded")
	}
	r.mu.Lock()
	if r.problem != "" {
		why = append(why, r.problem)
	}
	r.mu.Unlock()
	if len(why) > 0 {
		return false, "not ready: " + strings.Join(why, "; ")
	}
	return true, "ready: policy " + p.Version() + ", Entra ID sign-in ok"
}

// publish sets the service's gRPC health to match. During shutdown the
// health server ignores it: Shutdown has set everything NOT_SERVING.
func (r *readiness) publish() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok, _ := r.status(); ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus(embedgatev1.EmbedTokenService_ServiceDesc.ServiceName, st)
}

// adminHandler is what the admin listener serves: /healthz (liveness: the
// process is up and answering), /readyz (readiness, 503 with the reasons
// when not ready), /metrics, and /debug/pprof/ when enabled. Bodies are one
// short plain-text line, for people and probes alike.
func adminHandler(m *Metrics, ready *readiness, withPprof bool, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	text := func(w http.ResponseWriter, code int, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body + "\n"))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready.status(); ok {
			text(w, http.StatusOK, why)
		} else {
			text(w, http.StatusServiceUnavailable, why)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serveAdmin serves h on lis until ctx is done, then shuts down: requests
// under way (a scrape) get up to 5 s. It is plain HTTP, meant for a port only
// the kubelet and the scraper reach. A CPU profile or trace may take its
// full duration: WriteTimeout is left to the profiler.
func serveAdmin(ctx context.Context, lis net.Listener, h http.Handler, logger *slog.Logger) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	select {
	case err := <-errc:
		logger.Error("admin listener stopped: no probes, no metrics", "error", err)
		return
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	<-errc // http.ErrServerClosed
}
