package server

import (
	"context"
	"errors"
	"strconv"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/embedgate/embedgate/internal/buildinfo"
	"github.com/embedgate/embedgate/powerbi"
)

// Metrics are Embedgate's Prometheus metrics: the standard gRPC server
// series (grpc_server_handled_total, grpc_server_handling_seconds, ...),
// token decisions by outcome and code, tokens minted versus served from
// the cache (the hit ratio) and the cache's size, whether the Entra
// credential works, upstream calls by operation and status class with their
// latency, policy reloads and the version in force, rate-limit decisions,
// and the build. Labels never carry a tenant, user, item id or anything
// secret; their values are bounded: code and operation names, status
// classes, and (rate limits only) the callers the policy gives a rate.
type Metrics struct {
	registry        *prometheus.Registry
	grpc            *grpcprom.ServerMetrics
	decisions       *prometheus.CounterVec
	tokens          *prometheus.CounterVec
	shortfalls      prometheus.Counter
	credential      prometheus.Gauge
	preflights      prometheus.Gauge
	upstreamCalls   *prometheus.CounterVec
	upstreamSeconds *prometheus.HistogramVec
	policyReloads   *prometheus.CounterVec
	policyInfo      *prometheus.GaugeVec
	rateLimits      *prometheus.CounterVec
	shedCalls       *prometheus.CounterVec
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
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_upstream_requests_total",
			Help: "HTTP requests to Entra ID and Power BI, by upstream (entra, powerbi), operation (GenerateToken, GetReport, token, ...) and status (2xx, 4xx, 429, 5xx; error when no response came, canceled when the caller gave up).",
		}, []string{"upstream", "op", "status"}),
		upstreamSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "embedgate_upstream_request_duration_seconds",
			Help:    "Latency of HTTP requests to Entra ID and Power BI, by upstream and operation (each attempt; retries count apart).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"upstream", "op"}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_policy_reloads_total",
			Help: "Policy file reloads by result: success (swapped in) or failure (unreadable or invalid; the previous policy keeps serving).",
		}, []string{"result"}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "embedgate_policy_info",
			Help: "The policy in force: 1, with its version (sha256 of the file) as a label.",
		}, []string{"version"}),
		rateLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_rate_limit_total",
			Help: "Calls checked against a caller's rate_limit, by caller (only callers the policy gives a rate_limit) and outcome (admitted, rejected).",
		}, []string{"caller", "outcome"}),
		shedCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_shed_total",
			Help: "Work refused at a limit before it started, by limit: in_flight (calls, max_in_flight), connections (max_connections), upstream (requests in flight to Power BI or Entra, powerbi.max_concurrency).",
		}, []string{"limit"}),
	}
	for _, limit := range []string{"in_flight", "connections", "upstream"} {
		m.shedCalls.WithLabelValues(limit)
	}
	for _, result := range []string{"success", "failure"} {
		m.policyReloads.WithLabelValues(result)
	}
	bi := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "embedgate_build_info",
		Help:        "The running build: 1, with its version, commit, commit date and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "date": bi.Date, "go_version": bi.GoVersion},
	})
	build.Set(1)
	m.registry.MustRegister(m.grpc, m.decisions, m.tokens, m.shortfalls, m.credential, m.preflights,
		m.upstreamCalls, m.upstreamSeconds, m.policyReloads, m.policyInfo, m.rateLimits, m.shedCalls, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// shed counts work refused at a limit.
func (m *Metrics) shed(limit string) {
	if m != nil {
		m.shedCalls.WithLabelValues(limit).Inc()
	}
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

// upstream records one HTTP request to Entra ID or Power BI (the gateway's
// observer).
func (m *Metrics) upstream(c powerbi.UpstreamCall) {
	if m == nil {
		return
	}
	var class string
	switch {
	case c.Status == 0 && errors.Is(c.Err, context.Canceled):
		class = "canceled"
	case c.Status == 0:
		class = "error"
	case c.Status == 429:
		class = "429"
	default:
		class = strconv.Itoa(c.Status/100) + "xx"
	}
	m.upstreamCalls.WithLabelValues(c.Upstream, c.Op, class).Inc()
	m.upstreamSeconds.WithLabelValues(c.Upstream, c.Op).Observe(c.Duration.Seconds())
}

// policyReload records a reload and, when it succeeded, the version now in
// force.
func (m *Metrics) policyReload(version string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.policyReloads.WithLabelValues("failure").Inc()
		return
	}
	m.policyReloads.WithLabelValues("success").Inc()
	m.policyVersion(version)
}

// policyVersion makes version the one embedgate_policy_info reports.
func (m *Metrics) policyVersion(version string) {
	if m == nil {
		return
	}
	m.policyInfo.Reset()
	m.policyInfo.WithLabelValues(version).Set(1)
}

// rateLimit records a caller's rate-limit decision. The caller label is
// bounded by the policy: only callers it gives a rate_limit get here.
func (m *Metrics) rateLimit(caller string, admitted bool) {
	if m == nil {
		return
	}
	outcome := "rejected"
	if admitted {
		outcome = "admitted"
	}
	m.rateLimits.WithLabelValues(caller, outcome).Inc()
}

// tokenCache exports the gateway's embed-token cache size.
func (m *Metrics) tokenCache(size func() int) {
	if m == nil {
		return
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "embedgate_token_cache_entries",
		Help: "Embed tokens held for reuse (one per distinct grant, until its refresh time; 0 with disable_token_cache).",
	}, func() float64 { return float64(size()) }))
}
