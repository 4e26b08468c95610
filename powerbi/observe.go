package powerbi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Observability: an observer told about every HTTP request to Entra ID and
// Power BI (metrics), and OpenTelemetry spans for the steps of a token
// (powerbi.entra_token, powerbi.metadata, powerbi.mint) with one client
// span per HTTP request under them (otelhttp). Attributes carry operation
// names, ids and Power BI's RequestId, never a token or a secret; otelhttp
// records no headers and no bodies.

// UpstreamCall is one HTTP request to Entra ID or Power BI, as
// WithUpstreamObserver reports it.
type UpstreamCall struct {
	// Upstream is "entra" (MSAL's requests) or "powerbi".
	Upstream string
	// Op names the operation: Power BI's (GenerateToken, GetReport,
	// GetDataset, ...) or Entra's (token, oidc_metadata,
	// instance_discovery, jwks, other). A bounded set: fit for metric labels.
	Op string
	// Status is the HTTP status; 0 when no response came (Err says why).
	Status int
	// Err is the transport error, if any.
	Err error
	// Duration runs from sending the request to its response headers.
	Duration time.Duration
}

// WithUpstreamObserver has fn told about every HTTP request the Client
// makes, for metrics. fn runs on the request's goroutine: keep it quick.
func WithUpstreamObserver(fn func(UpstreamCall)) Option {
	return func(o *options) { o.observe = fn }
}

// WithTracerProvider turns on tracing: spans for the Entra token, the
// metadata lookups and the mint, and a client span per HTTP request. The
// trace context is not sent to Microsoft (nothing there continues it).
// Default: no spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// TokenCacheSize is the number of embed tokens held for reuse (0 when the
// cache is disabled).
func (cl *Client) TokenCacheSize() int {
	if cl.tokens == nil {
		return 0
	}
	return cl.tokens.size()
}

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/embedgate/embedgate/powerbi"

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// instrument wraps hc's transport with the observer and otelhttp, when
// either is wanted; it returns hc itself otherwise.
func instrument(hc *http.Client, o options) *http.Client {
	if o.observe == nil && o.tp == nil {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	var rt http.RoundTripper = &observed{base: base, observe: o.observe}
	if o.tp != nil {
		rt = otelhttp.NewTransport(rt,
			otelhttp.WithTracerProvider(o.tp),
			otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				up, op := classify(r)
				return up + " " + op
			}))
	}
	c := *hc
	c.Transport = rt
	return &c
}

// observed reports each request to the observer, and Power BI's RequestId
// to the request's span.
type observed struct {
	base    http.RoundTripper
	observe func(UpstreamCall)
}

// CloseIdleConnections forwards to the base transport.
func (t *observed) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *observed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.base.RoundTrip(r)
	up, op := classify(r)
	c := UpstreamCall{Upstream: up, Op: op, Err: err, Duration: time.Since(start)}
	if res != nil {
		c.Status = res.StatusCode
		if rid := res.Header.Get("RequestId"); rid != "" {
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String(attrRequestID, rid))
		}
	}
	if t.observe != nil {
		t.observe(c)
	}
	return res, err
}

type opKey struct{}

// withOp marks a Power BI request's context with its operation.
func withOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// classify names a request's upstream and operation: Power BI requests
// carry theirs in the context; every other request is MSAL's, to Entra.
func classify(r *http.Request) (upstream, op string) {
	if op, ok := r.Context().Value(opKey{}).(string); ok {
		return "powerbi", op
	}
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/oauth2/v2.0/token"), strings.HasSuffix(p, "/oauth2/token"):
		return "entra", "token"
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		return "entra", "oidc_metadata"
	case strings.HasSuffix(p, "/discovery/instance"):
		return "entra", "instance_discovery"
	case strings.HasSuffix(p, "/discovery/v2.0/keys"), strings.HasSuffix(p, "/discovery/keys"):
		return "entra", "jwks"
	}
	return "entra", "other"
}

// Span and attribute names.
const (
	spanEntraToken  = "powerbi.entra_token"
	spanMetadata    = "powerbi.metadata"
	spanMint        = "powerbi.mint"
	attrRequestID   = "powerbi.request_id"
	attrTokenID     = "powerbi.token_id"
	attrOp          = "powerbi.operation"
	attrItems       = "powerbi.items"
	attrTokenSource = "entra.token_source"
	attrTokenCached = "embedgate.token_cached"
)

// endSpan ends span, marking it failed with err's message (errors of this
// package never hold a token or a secret).
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		if id := RequestIDOf(err); id != "" {
			span.SetAttributes(attribute.String(attrRequestID, id))
		}
	}
	span.End()
}

// entraToken is credential.token in a span that says whether the token in
// use served (cache) or a new one was acquired (entra).
func (cl *Client) entraToken(ctx context.Context, need time.Duration) (*entraToken, error) {
	ctx, span := cl.tracer.Start(ctx, spanEntraToken)
	if cl.user != nil {
		t, err := cl.userToken(ctx)
		endSpan(span, err)
		return t, err
	}
	before := cl.cred.pbi.tok.Load()
	t, err := cl.cred.token(ctx, need)
	if err == nil {
		source := "entra"
		if t == before {
			source = "cache"
		}
		span.SetAttributes(attribute.String(attrTokenSource, source))
	}
	endSpan(span, err)
	return t, err
}

// tracedPlan is plan (the metadata lookups) in a span.
func (cl *Client) tracedPlan(ctx context.Context, r TokenRequest) (*minting, error) {
	ctx, span := cl.tracer.Start(ctx, spanMetadata, trace.WithAttributes(attribute.Int(attrItems, len(r.Items))))
	m, err := cl.plan(ctx, r)
	endSpan(span, err)
	return m, err
}

// tracedMint is mint in a span with Power BI's RequestId and the token's id.
func (cl *Client) tracedMint(ctx context.Context, m *minting, lifetime time.Duration) (*EmbedToken, error) {
	ctx, span := cl.tracer.Start(ctx, spanMint, trace.WithAttributes(attribute.String(attrOp, m.op)))
	tok, err := cl.mint(ctx, m, lifetime)
	if err == nil {
		span.SetAttributes(attribute.String(attrRequestID, tok.RequestID), attribute.String(attrTokenID, tok.TokenID))
	}
	endSpan(span, err)
	return tok, err
}
