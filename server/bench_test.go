package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// BenchmarkHotPath measures, interleaved in one run so the machine's noise
// hits all three alike:
//
//   - bare:      a bare grpc-go server with the same mTLS, answering a
//     health check: the floor ("what gRPC with mTLS costs");
//   - embedgate: GenerateEmbedToken for an RLS tenant through the whole
//     service against the emulator, a new grant (user) each time;
//   - cached:    the same grant again, served from the token cache;
//   - sample:    what Microsoft's App Owns Data sample does per page view, a
//     new MSAL client and HTTP client per call, then Get Report and
//     GenerateToken, against the same emulator.
//
// It reports each one's time per op, the ratios embedgate/bare and
// sample/embedgate, and the upstream calls per op. The emulator answers
// instantly, so the ratios are the service's own overhead.
func BenchmarkHotPath(b *testing.B) {
	s := startStack(b, stackOptions{})
	bare := startBare(b, s)
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}}
	ctx := context.Background()
	// Warm both paths once (credential, metadata, connections, the cached grant).
	if _, err := s.client.GenerateEmbedToken(ctx, req); err != nil {
		b.Fatal(err)
	}
	sample := newSample(b, s)
	s.emu.ResetCounters()

	var tBare, tEmbed, tCached, tSample time.Duration
	var embedCalls, sampleCalls int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := bare.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			b.Fatal(err)
		}
		tBare += time.Since(start)

		before := upstreamCalls(s.emu)
		start = time.Now()
		// A distinct user per op, so no cache could serve it: the cost of a
		// new grant.
		r := &embedgatev1.GenerateEmbedTokenRequest{Tenant: req.Tenant, User: fmt.Sprintf("user%d@acme.example", i), ReportIds: req.ReportIds}
		if _, err := s.client.GenerateEmbedToken(ctx, r); err != nil {
			b.Fatal(err)
		}
		tEmbed += time.Since(start)
		embedCalls += upstreamCalls(s.emu) - before

		// The same grant again: served from the token cache.
		start = time.Now()
		if _, err := s.client.GenerateEmbedToken(ctx, req); err != nil {
			b.Fatal(err)
		}
		tCached += time.Since(start)

		before = upstreamCalls(s.emu)
		start = time.Now()
		sample.pageView(b)
		tSample += time.Since(start)
		sampleCalls += upstreamCalls(s.emu) - before
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op") // the three below say more than their sum
	b.ReportMetric(float64(tBare.Nanoseconds())/n, "bare-ns/op")
	b.ReportMetric(float64(tEmbed.Nanoseconds())/n, "embedgate-ns/op")
	b.ReportMetric(float64(tCached.Nanoseconds())/n, "cached-ns/op")
	b.ReportMetric(float64(tCached)/float64(tBare), "cached/bare")
	b.ReportMetric(float64(tSample.Nanoseconds())/n, "sample-ns/op")
	b.ReportMetric(float64(tEmbed)/float64(tBare), "embedgate/bare")
	b.ReportMetric(float64(tSample)/float64(tEmbed), "sample/embedgate")
	b.ReportMetric(float64(embedCalls)/n, "embedgate-upstream/op")
	b.ReportMetric(float64(sampleCalls)/n, "sample-upstream/op")
}

func upstreamCalls(emu *emulator.Server) int64 {
	var n int64
	for _, c := range emu.Counters() {
		n += c
	}
	return n
}

// startBare serves only health, with the stack's certificate and client CA
// and the same client-certificate requirement.
func startBare(b *testing.B, s *stack) healthpb.HealthClient {
	b.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.dir, "server.pem"), filepath.Join(s.dir, "server-key.pem"))
	must(b, err)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12,
	})))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	saved := s.addr
	s.addr = lis.Addr().String()
	conn := s.dial(b, s.clientCert(b, frontend))
	s.addr = saved
	return healthpb.NewHealthClient(conn)
}

// sample replays the App Owns Data sample's per-request work.
type sample struct {
	emu  *emulator.Server
	pool *x509.CertPool
}

func newSample(b *testing.B, s *stack) *sample {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.emu.CACertPEM()) {
		b.Fatal("emulator CA")
	}
	return &sample{emu: s.emu, pool: pool}
}

func (sm *sample) pageView(b *testing.B) {
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sm.pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	cred, err := confidential.NewCredFromSecret(clientSecret)
	must(b, err)
	app, err := confidential.New(sm.emu.URL()+"/"+entraTenant, clientID, cred, confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(hc))
	must(b, err)
	tok, err := app.AcquireTokenByCredential(ctx, []string{"https://analysis.windows.net/powerbi/api/.default"})
	must(b, err)
	var report struct {
		ID, DatasetID, EmbedURL string
	}
	sm.call(b, hc, tok.AccessToken, http.MethodGet, "/v1.0/myorg/groups/"+acmeWorkspace+"/reports/"+salesReport, nil, &report)
	body := map[string]any{
		"reports":    []map[string]string{{"id": report.ID}},
		"datasets":   []map[string]string{{"id": report.DatasetID}},
		"identities": []map[string]any{{"username": "alice@acme.example", "roles": []string{"Customer"}, "datasets": []string{report.DatasetID}}},
	}
	var embed struct{ Token string }
	sm.call(b, hc, tok.AccessToken, http.MethodPost, "/v1.0/myorg/GenerateToken", body, &embed)
	if embed.Token == "" {
		b.Fatal("the sample got no token")
	}
}

func (sm *sample) call(b *testing.B, hc *http.Client, bearer, method, path string, in, out any) {
	var rd io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		must(b, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, sm.emu.URL()+path, rd)
	must(b, err)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	must(b, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	must(b, json.NewDecoder(resp.Body).Decode(out))
}
