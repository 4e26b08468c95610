package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"

	"github.com/embedgate/embedgate/powerbi"
)

// Metrics are Embedgate's Prometheus metrics: the standard gRPC server
// series (grpc_server_handled_total, grpc_server_handling_seconds, ...),
// token decisions by outcome and code, tokens minted versus served from
// the cache, and whether the Entra credential works. Labels never carry a
// tenant, user or id: their cardinality is bounded.
type Metrics struct {
	registry   *prometheus.Registry
	grpc       *grpcprom.ServerMetrics
	decisions  *prometheus.CounterVec
	tokens     *prometheus.CounterVec
	shortfalls prometheus.Counter
	credential prometheus.Gauge
	preflights prometheus.Gauge
}

// NewMetrics registers the metrics in a registry of their own (plus the Go
// runtime and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}))),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_decisions_total",
			Help: "Token decisions by outcome (allowed, denied, failed) and gRPC code.",
		}, []string{"outcome", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_tokens_total",
			Help: "Embed tokens handed out, by source: minted by Power BI for this request, or cached from an identical earlier grant.",
		}, []string{"source"}),
		shortfalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedgate_token_lifetime_shortfalls_total",
			Help: "Embed tokens Power BI issued for less time than asked (capped by the remaining life of the Entra token used to mint them).",
		}),
		credential: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "embedgate_credential_ok",
			Help: "1 while the last Entra ID sign-in check succeeded, 0 while it fails.",
		}),
		preflights: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "embedgate_preflight_problems",
			Help: "Problems the last preflight found in the Power BI setup of the policy's tenants (run at start and on every policy reload; 0 = every tenant can be served).",
		}),
	}
	m.registry.MustRegister(m.grpc, m.decisions, m.tokens, m.shortfalls, m.credential, m.preflights,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) decision(outcome string, code codes.Code) {
	if m != nil {
		m.decisions.WithLabelValues(outcome, code.String()).Inc()
	}
}

func (m *Metrics) token(tok *powerbi.EmbedToken) {
	if m == nil {
		return
	}
	source := "minted"
	if tok.Cached {
		source = "cached"
	} else if tok.Shortfall() > 0 {
		m.shortfalls.Inc()
	}
	m.tokens.WithLabelValues(source).Inc()
}

func (m *Metrics) credentialOK(ok bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.credential.Set(v)
}

func (m *Metrics) preflight(problems int) {
	if m != nil {
		m.preflights.Set(float64(problems))
	}
}

// Serve exposes /metrics over plain HTTP on lis until ctx is done. It is
// meant for a port only the cluster's scraper reaches.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("metrics listener stopped", "error", err)
	}
}
