package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// get fetches an admin URL and returns its status and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(body)
}

// TestDrain: on SIGTERM (Run's context cancelled) readiness and gRPC
// health turn NOT_SERVING at once, while the listener keeps accepting and
// serving for shutdown_delay: calls sent throughout, on open connections
// and on new ones, all succeed. Run then returns as soon as the calls in
// flight are done, not after the grace.
func TestDrain(t *testing.T) {
	t.Parallel()
	const delay = 3 * time.Second
	s := startStack(t, stackOptions{metrics: true, config: "shutdown_delay: 3s\n"})
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}
	testkit.Eventually(t, "ready", func() bool { code, _ := get(t, s.adminURL+"/readyz"); return code == http.StatusOK })

	var (
		calls, failures atomic.Int64
		afterNotServing atomic.Int64 // calls that succeeded after NOT_SERVING was seen
		notServing      atomic.Bool
		firstErr        atomic.Value
		stopLoad        = make(chan struct{})
		wg              sync.WaitGroup
	)
	for i := range 4 {
		client := s.client
		if i%2 == 1 { // half of the load on connections opened during the drain
			client = nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				c := client
				if c == nil {
					c = embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, frontend)))
				}
				calls.Add(1)
				if _, err := c.GenerateEmbedToken(context.Background(), req); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else if notServing.Load() {
					afterNotServing.Add(1)
				}
			}
		}()
	}
	testkit.Eventually(t, "calls flowing", func() bool { return calls.Load() > 20 })

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }() // what SIGTERM does
	testkit.Eventually(t, "/readyz says shutting down", func() bool {
		code, body := get(t, s.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	hc := healthpb.NewHealthClient(s.dial(t, s.clientCert(t))) // a new connection, on the main port
	resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: embedgatev1.EmbedTokenService_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health during the delay = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	notServing.Store(true)
	// Keep calling well inside the delay: endpoints catching up, a
	// client that has not noticed yet.
	testkit.Eventually(t, "calls served after NOT_SERVING", func() bool { return afterNotServing.Load() >= 20 || time.Since(start) > delay/2 })
	close(stopLoad)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d calls failed during the delay; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	if afterNotServing.Load() == 0 {
		t.Errorf("no call was served after NOT_SERVING: the listener did not keep accepting")
	}

	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	if took < delay {
		t.Errorf("Run returned after %v, before shutdown_delay %v", took, delay)
	}
	if took > delay+4*time.Second { // grace is 5 s: nothing was left to wait for
		t.Errorf("Run returned after %v: the drain waited for the grace", took)
	}
	for _, want := range []string{"shutting down: NOT_SERVING; still serving during the delay", "shutting down: listener closed", `"msg":"shut down"`} {
		if !strings.Contains(s.logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(s.logs.String(), "admin listener stopped") {
		t.Errorf("the admin listener failed instead of shutting down after the drain")
	}
}

// TestAdminEndpoints: liveness, readiness with its reason, the profiler
// only when asked for, and the metrics operators alert on.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true})
	if code, body := get(t, s.adminURL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	testkit.Eventually(t, "ready", func() bool { code, _ := get(t, s.adminURL+"/readyz"); return code == http.StatusOK })
	if _, body := get(t, s.adminURL+"/readyz"); !regexp.MustCompile(`^ready: policy sha256:[0-9a-f]{64}, Entra ID sign-in ok\n$`).MatchString(body) {
		t.Errorf("/readyz body = %q", body)
	}
	if code, _ := get(t, s.adminURL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without pprof: %d, want 404", code)
	}

	// A mint, a cached token, a rate-limited caller, a bad policy edit.
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}
	for range 2 {
		_, err := s.client.GenerateEmbedToken(context.Background(), req)
		must(t, err)
	}
	batchClient := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, batch)))
	for range 3 { // burst 2: the third is over the rate
		_, _ = batchClient.GenerateEmbedToken(context.Background(), req)
	}
	writeFile(t, s.dir, "policy.yaml", "callers: [\n")
	testkit.Eventually(t, "the bad edit counted", func() bool {
		return strings.Contains(s.scrape(t), `embedgate_policy_reloads_total{result="failure"} 1`)
	})
	text := s.scrape(t)
	for _, want := range []string{
		`embedgate_build_info{commit="`,
		`embedgate_policy_info{version="sha256:`,
		`embedgate_policy_reloads_total{result="success"} 0`,
		`embedgate_upstream_requests_total{op="GenerateToken",status="2xx",upstream="powerbi"} 1`,
		`embedgate_upstream_requests_total{op="GetReport",status="2xx",upstream="powerbi"} 1`,
		`embedgate_upstream_requests_total{op="token",status="2xx",upstream="entra"} 1`,
		`embedgate_upstream_request_duration_seconds_bucket{op="GenerateToken",upstream="powerbi",le="`,
		`embedgate_rate_limit_total{caller="` + batch + `",outcome="admitted"} 2`,
		`embedgate_rate_limit_total{caller="` + batch + `",outcome="rejected"} 1`,
		`embedgate_token_cache_entries 1`,
		`embedgate_tokens_total{source="minted"} 1`, // the batch caller's two admitted calls are the same grant
		`embedgate_tokens_total{source="cached"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, frontend) {
		t.Errorf("a caller without a rate_limit is a label value")
	}
}

// TestPprofAndRejectedReadiness: pprof: true serves the profiler; a
// credential Entra rejects keeps /readyz 503 with the reason, while
// /healthz stays 200.
func TestPprofAndRejectedReadiness(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true, secret: "not-the-secret", config: "pprof: true\n"})
	if code, body := get(t, s.adminURL+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d", code)
	}
	testkit.Eventually(t, "/readyz names the rejected credential", func() bool {
		code, body := get(t, s.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "Entra ID rejects the credential")
	})
	if code, _ := get(t, s.adminURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while the credential is rejected, want 200", code)
	}
}

// TestTrace: one GenerateEmbedToken against the emulator is one trace,
// continuing the caller's: the gRPC call, the policy decision, the Entra
// token, the metadata lookups and the mint (with Power BI's RequestId),
// and a client span per HTTP request; no token or secret in any attribute,
// and no trace context sent to Microsoft.
func TestTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startStack(t, stackOptions{tracer: tp})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := s.client.GenerateEmbedToken(ctx, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}})
	must(t, err)

	var server sdktrace.ReadOnlySpan
	byName := map[string][]tracetest.SpanStub{}
	testkit.Eventually(t, "the call's span ended", func() bool {
		for _, sp := range exp.GetSpans() {
			if sp.Name == "embedgate.v1.EmbedTokenService/GenerateEmbedToken" {
				return true
			}
		}
		return false
	})
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID().String() != traceID {
			continue
		}
		byName[sp.Name] = append(byName[sp.Name], sp)
		if sp.Name == "embedgate.v1.EmbedTokenService/GenerateEmbedToken" {
			server = sp.Snapshot()
		}
	}
	if server == nil {
		t.Fatalf("no server span in the caller's trace; spans: %v", names(exp.GetSpans()))
	}
	if server.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the server span does not continue the caller's")
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) == 0 {
			t.Fatalf("no %s span in the trace; spans: %v", name, names(exp.GetSpans()))
		}
		return byName[name][0]
	}
	attr := func(sp tracetest.SpanStub, key string) string {
		for _, a := range sp.Attributes {
			if string(a.Key) == key {
				return a.Value.Emit()
			}
		}
		return ""
	}
	decide, meta, mint := one("embedgate.decide"), one("powerbi.metadata"), one("powerbi.mint")
	entra := one("powerbi.entra_token")
	for _, sp := range []tracetest.SpanStub{decide, meta, mint} {
		if sp.Parent.SpanID() != server.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the call's span", sp.Name)
		}
	}
	if attr(decide, "embedgate.rule") != "tenants.acme" || attr(decide, "embedgate.outcome") != "allowed" || !strings.HasPrefix(attr(decide, "embedgate.policy_version"), "sha256:") {
		t.Errorf("decide attributes: %v", decide.Attributes)
	}
	if attr(entra, "entra.token_source") == "" {
		t.Errorf("entra token span attributes: %v", entra.Attributes)
	}
	rid := attr(mint, "powerbi.request_id")
	if rid == "" || attr(mint, "powerbi.token_id") != resp.GetTokenId() {
		t.Errorf("mint attributes: %v", mint.Attributes)
	}
	post := one("powerbi GenerateToken")
	if post.Parent.SpanID() != mint.SpanContext.SpanID() || attr(post, "powerbi.request_id") != rid {
		t.Errorf("the GenerateToken HTTP span is not the mint's, with its RequestId: %v", post.Attributes)
	}
	if get := one("powerbi GetReport"); get.Parent.SpanID() != meta.SpanContext.SpanID() {
		t.Errorf("the GetReport HTTP span is not under the metadata span")
	}

	if attr(decide, "embedgate.cached") != "" {
		t.Errorf("the first call's decision is marked cached: %v", decide.Attributes)
	}

	// The same request again is decided from the cache: its trace still
	// has the decision, marked cached, and nothing of Power BI.
	const trace2 = "4bf92f3577b34da6a3ce929d0e0e4737"
	ctx2 := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+trace2+"-00f067aa0ba902b8-01")
	_, err = s.client.GenerateEmbedToken(ctx2, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}})
	must(t, err)
	var second []tracetest.SpanStub
	testkit.Eventually(t, "the second call's span ended", func() bool {
		second = second[:0]
		done := false
		for _, sp := range exp.GetSpans() {
			if sp.SpanContext.TraceID().String() == trace2 {
				second = append(second, sp)
				done = done || sp.Name == "embedgate.v1.EmbedTokenService/GenerateEmbedToken"
			}
		}
		return done
	})
	var cached *tracetest.SpanStub
	for i, sp := range second {
		switch sp.Name {
		case "embedgate.decide":
			cached = &second[i]
		case "powerbi.metadata", "powerbi.mint":
			t.Errorf("the cached call has a %s span", sp.Name)
		}
	}
	if cached == nil || attr(*cached, "embedgate.cached") != "true" || attr(*cached, "embedgate.rule") != "tenants.acme" || attr(*cached, "embedgate.outcome") != "allowed" {
		t.Errorf("the cached call's decision span: %+v", cached)
	}

	// The Entra sign-in at start (no call's trace) has its HTTP spans too.
	entraHTTP := false
	for _, sp := range exp.GetSpans() {
		entraHTTP = entraHTTP || sp.Name == "entra token"
	}
	if !entraHTTP {
		t.Errorf("no HTTP span of the Entra token request; spans: %v", names(exp.GetSpans()))
	}

	// Nothing secret anywhere in the spans.
	var all strings.Builder
	for _, sp := range exp.GetSpans() {
		all.WriteString(sp.Name + " " + sp.Status.Description)
		for _, a := range sp.Attributes {
			all.WriteString(" " + a.Value.Emit())
		}
		for _, e := range sp.Events {
			for _, a := range e.Attributes {
				all.WriteString(" " + a.Value.Emit())
			}
		}
	}
	for _, secret := range []string{resp.GetToken(), clientSecret} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a span carries a token or secret")
		}
	}
	for _, r := range append(s.emu.Requests(emulator.RouteGenerateToken), s.emu.Requests(emulator.RouteEntraToken)...) {
		if r.Header.Get("traceparent") != "" {
			t.Errorf("the trace context was sent to %s", r.Route)
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name)
	}
	return out
}

// TestCachedGrantLearnsNothingAgain: the same grant again is served from
// the caches alone: no metadata walk (the models' decisions are kept with
// the grant), no mint, no Entra call: only the policy's decision.
func TestCachedGrantLearnsNothingAgain(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startStack(t, stackOptions{tracer: tp})
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{salesReport}}
	var ids []string
	for _, traceID := range []string{"4bf92f3577b34da6a3ce929d0e0e4731", "4bf92f3577b34da6a3ce929d0e0e4732"} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		resp, err := s.client.GenerateEmbedToken(ctx, req)
		must(t, err)
		ids = append(ids, resp.GetTokenId())
	}
	if ids[0] != ids[1] {
		t.Fatal("the second call was not served the first call's token")
	}
	testkit.Eventually(t, "both calls' spans ended", func() bool {
		n := 0
		for _, sp := range exp.GetSpans() {
			if sp.Name == "embedgate.v1.EmbedTokenService/GenerateEmbedToken" {
				n++
			}
		}
		return n == 2
	})
	var second []string
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4732" {
			second = append(second, sp.Name)
		}
	}
	for _, name := range second {
		if strings.HasPrefix(name, "powerbi.metadata") || strings.HasPrefix(name, "powerbi.mint") || strings.HasPrefix(name, "powerbi.entra") || strings.HasPrefix(name, "GET") || strings.HasPrefix(name, "POST") {
			t.Errorf("the cached call did %s; its spans: %v", name, second)
		}
	}
}
