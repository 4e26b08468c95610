package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/buildinfo"
)

// Tracing is OpenTelemetry, off by default and configured only by the
// standard OTEL_* environment variables, so that the platform's usual
// injection (an operator, a Helm value, the collector's DaemonSet address)
// needs nothing Embedgate-specific. It is on when OTEL_TRACES_EXPORTER is
// "otlp", or when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_TRACES_EXPORTER=none and
// OTEL_SDK_DISABLED=true keep it off. The OTLP protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
// http/protobuf (the default, as the specification says) or grpc. The
// exporter reads the endpoint, headers, certificates, compression and
// timeout itself; the SDK reads the sampler (OTEL_TRACES_SAMPLER, default
// parentbased_always_on), the batch settings (OTEL_BSP_*) and the resource
// (OTEL_SERVICE_NAME, default "embedgate"; OTEL_RESOURCE_ATTRIBUTES).
//
// What is traced: each gRPC call (otelgrpc; W3C trace context and baggage
// continue a caller's trace; health checks are left out), the policy
// decision (embedgate.decide), and in the gateway the Entra token, the
// metadata lookups and the mint, each HTTP request to Entra ID or Power BI
// a client span below them.

// tracingSetting is what the OTEL_* variables ask for.
type tracingSetting struct {
	on       bool
	protocol string // grpc | http/protobuf
	endpoint string // as given, "" = the exporter's default
}

// String says in a line what tracing will do, for `embedgate check`.
func (t tracingSetting) String() string {
	if !t.on {
		return "off (no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=otlp)"
	}
	endpoint := t.endpoint
	if endpoint == "" {
		endpoint = "the exporter's default endpoint"
	}
	return "OTLP over " + t.protocol + " to " + endpoint
}

// tracingFromEnv reads the OTEL_* variables that decide whether and how
// spans are exported.
func tracingFromEnv(lookup func(string) (string, bool)) (tracingSetting, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	var t tracingSetting
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return t, nil
	}
	t.endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if t.endpoint == "" {
		t.endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	switch exporter := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exporter {
	case "none":
		return t, nil
	case "otlp":
		t.on = true
	case "":
		t.on = t.endpoint != ""
	default:
		return t, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: only otlp and none are supported", exporter)
	}
	t.protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if t.protocol == "" {
		t.protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch t.protocol {
	case "":
		t.protocol = "http/protobuf"
	case "grpc", "http/protobuf":
	default:
		return t, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: want grpc or http/protobuf", t.protocol)
	}
	return t, nil
}

// newTracerProvider builds the SDK's provider with the OTLP exporter t
// asks for. Its Shutdown flushes the spans not yet exported.
func newTracerProvider(ctx context.Context, t tracingSetting) (*sdktrace.TracerProvider, error) {
	var client otlptrace.Client
	if t.protocol == "grpc" {
		client = otlptracegrpc.NewClient()
	} else {
		client = otlptracehttp.NewClient()
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	bi := buildinfo.Get()
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "embedgate"), attribute.String("service.version", bi.Version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// grpcTracing is the gRPC server option that traces calls: a span per call,
// continuing the caller's W3C trace context. Health checks are not traced.
func grpcTracing(tp trace.TracerProvider) grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/")
		})))
}

// Span and attribute names of the server's own spans.
const (
	tracerName        = "github.com/embedgate/embedgate/server"
	spanDecide        = "embedgate.decide"
	attrRequestID     = "embedgate.request_id"
	attrPolicyVersion = "embedgate.policy_version"
	attrRule          = "embedgate.rule"
	attrOutcome       = "embedgate.outcome"
	attrReason        = "embedgate.reason"
	attrTenant        = "embedgate.tenant"
	attrCached        = "embedgate.cached"
)

// decide is the policy's decision in a span (a child of the call's, when
// the call is traced): the rule that decided, the policy version, and for a
// denial the reason. The call's span gets the request id, to find its log
// and audit records. No user, no token: the tenant key and the rule say
// which entry of the policy applied.
func decide(ctx context.Context, p *authz.Policy, r authz.Request) (authz.Grant, error) {
	span := startDecideSpan(ctx, p, r.Tenant)
	if span == nil {
		return p.Decide(r)
	}
	defer span.End()
	g, err := p.Decide(r)
	if err != nil {
		span.SetAttributes(attribute.String(attrOutcome, outcomeDenied), attribute.String(attrReason, reasonOf(errorStatus(err))))
		var d *authz.Denial
		if errors.As(err, &d) {
			span.SetAttributes(attribute.String(attrRule, d.Rule))
		}
		return g, err
	}
	span.SetAttributes(attribute.String(attrOutcome, outcomeAllowed), attribute.String(attrRule, g.Rule))
	return g, nil
}

// traceCachedDecision is decide's span for a grant the decided cache held:
// the same attributes, and embedgate.cached.
func traceCachedDecision(ctx context.Context, p *authz.Policy, g authz.Grant) {
	if span := startDecideSpan(ctx, p, g.Tenant); span != nil {
		span.SetAttributes(attribute.String(attrOutcome, outcomeAllowed), attribute.String(attrRule, g.Rule), attribute.Bool(attrCached, true))
		span.End()
	}
}

// startDecideSpan starts the decision's span, nil when the call is not
// traced.
func startDecideSpan(ctx context.Context, p *authz.Policy, tenant string) trace.Span {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return nil
	}
	parent.SetAttributes(attribute.String(attrRequestID, requestIDFrom(ctx)))
	_, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, spanDecide,
		trace.WithAttributes(attribute.String(attrPolicyVersion, p.Version()), attribute.String(attrTenant, tenant)))
	return span
}
