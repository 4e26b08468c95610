package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// TestSoak runs the real binary against the emulator (a process of its
// own, with faults on and restarted now and then) under mixed traffic:
// cached and new grants, denials, invalid and malformed requests, callers
// without identity, Explain, Health/Watch streams, connection churn, idle
// connections and header floods. Every answer must be one the API
// documents for its case, never INTERNAL or UNKNOWN, and the server must
// survive.
//
// By default it is the short form `make test` runs (20 s). `make soak`
// sets EMBEDGATE_SOAK=10m: then the server's RSS, goroutines and open file
// descriptors, sampled every 5 s after a warm-up, must also be flat: the
// median of the last half of the samples within 15% (plus a small
// constant) of the first half's.
func TestSoak(t *testing.T) {
	duration, full := 20*time.Second, false
	if v := os.Getenv("EMBEDGATE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EMBEDGATE_SOAK=%q: %v", v, err)
		}
		duration, full = d, true
	}
	dir := t.TempDir()
	bin := buildCommand(t, dir, "github.com/embedgate/embedgate/cmd/embedgate")

	// The emulator, on a port of its own that survives its restarts.
	emuAddr := freeAddr(t)
	emuCerts := filepath.Join(dir, "emulator")
	emuArgs := []string{"emulator", "--addr", emuAddr, "--certs", emuCerts, "--token-lifetime", "3m",
		"--throttle-rate", "0.02", "--server-error-rate", "0.02", "--drop-rate", "0.01", "--entra-error-rate", "0.05", "--powerbi-latency", "2ms"}
	emu := startProcess(t, dir, "emulator.log", bin, emuArgs...)
	waitFor(t, "the emulator", func() bool {
		_, err := os.Stat(filepath.Join(emuCerts, "ca.pem"))
		return err == nil && dialable(emuAddr)
	})

	emuCA, err := os.ReadFile(filepath.Join(emuCerts, "ca.pem"))
	must(t, err)
	adminAddr := freeAddr(t)
	ca := writeProcessFolder(t, dir, "https://"+emuAddr, emuCA, "", `admin_listen: `+adminAddr+`
limits: {max_in_flight: 64, idle_timeout: 10s}
`)
	srv := startProcess(t, dir, "embedgate.log", bin, "serve", "--config", filepath.Join(dir, "config.yaml"))
	var addr string
	waitFor(t, "the server", func() bool { a, ok := servingAddr(filepath.Join(dir, "embedgate.log")); addr = a; return ok })

	s := &stack{ca: ca, addr: addr}
	cert := s.clientCert(t, frontend)
	client := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, cert))

	// The traffic: each worker repeats its case until the end.
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var calls atomic.Int64
	var unexpected sync.Map // description -> count
	answered := func(what string, err error, want ...codes.Code) {
		calls.Add(1)
		c := status.Code(err)
		if ctx.Err() != nil && (c == codes.Canceled || c == codes.DeadlineExceeded) {
			return // the end of the run
		}
		// Upstream faults and limits may answer any call that reaches
		// Power BI with these.
		if slices.Contains(want, c) || c == codes.Unavailable || c == codes.ResourceExhausted || c == codes.DeadlineExceeded {
			return
		}
		key := what + ": " + c.String()
		v, _ := unexpected.LoadOrStore(key, new(atomic.Int64))
		if v.(*atomic.Int64).Add(1) == 1 {
			t.Logf("unexpected: %s: %v", what, err)
		}
	}
	call := func(c embedgatev1.EmbedTokenServiceClient, r *embedgatev1.GenerateEmbedTokenRequest) error {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_, err := c.GenerateEmbedToken(cctx, r)
		return err
	}
	var wg sync.WaitGroup
	worker := func(pause time.Duration, step func(i int)) {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				step(i)
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		})
	}
	cached := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}}
	for range 4 {
		worker(0, func(int) { answered("cached grant", call(client, cached), codes.OK, codes.FailedPrecondition) })
	}
	var users atomic.Int64
	for range 2 {
		worker(10*time.Millisecond, func(int) {
			r := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: fmt.Sprintf("soak%d@acme.example", users.Add(1)), ReportIds: []string{salesReport}}
			answered("new grant", call(client, r), codes.OK, codes.FailedPrecondition)
		})
	}
	worker(20*time.Millisecond, func(int) {
		answered("denied", call(client, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "u", ReportIds: []string{globexReport}}), codes.PermissionDenied)
	})
	worker(20*time.Millisecond, func(int) {
		answered("invalid", call(client, &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "a b", ReportIds: []string{salesReport}}), codes.InvalidArgument)
	})
	worker(20*time.Millisecond, func(int) {
		_, err := client.ExplainEmbedToken(ctx, &embedgatev1.ExplainEmbedTokenRequest{Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: cached}})
		answered("explain", err, codes.OK)
	})
	rawConn := s.dial(t, cert)
	malformed := []byte{0x0a, 0x04, 'a', 'c', 'm', 'e', 0x12, 0x02, 0xff, 0xfe}
	worker(20*time.Millisecond, func(int) {
		var reply []byte
		err := rawConn.Invoke(ctx, "/embedgate.v1.EmbedTokenService/GenerateEmbedToken", &malformed, &reply, grpc.ForceCodecV2(rawCodec{}))
		answered("malformed", err, codes.InvalidArgument)
	})
	anonymous := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t)))
	worker(20*time.Millisecond, func(int) { answered("anonymous", call(anonymous, cached), codes.Unauthenticated) })
	worker(100*time.Millisecond, func(int) {
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		defer wcancel()
		w, err := healthpb.NewHealthClient(rawConn).Watch(wctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			for err == nil {
				_, err = w.Recv()
			}
		}
		answered("health watch", err, codes.OK, codes.DeadlineExceeded, codes.Canceled) // Canceled: the server saw the deadline first
	})
	worker(50*time.Millisecond, func(int) { // connection churn
		conn := dialOnce(t, s, cert)
		answered("new connection", call(embedgatev1.NewEmbedTokenServiceClient(conn), cached), codes.OK, codes.FailedPrecondition)
		conn.Close()
	})
	var idleMu sync.Mutex
	var idle []*grpc.ClientConn
	worker(200*time.Millisecond, func(int) { // idle connections, left for the server to close
		conn := dialOnce(t, s, cert)
		answered("idle connection", call(embedgatev1.NewEmbedTokenServiceClient(conn), cached), codes.OK, codes.FailedPrecondition)
		idleMu.Lock()
		idle = append(idle, conn)
		idleMu.Unlock()
	})
	worker(2*time.Second, func(int) { headerFlood(s, cert) })
	if full {
		worker(2*time.Minute, func(i int) { // Power BI restarts
			if i == 0 {
				return
			}
			emu.stop(t)
			emu = startProcess(t, dir, "emulator.log", bin, emuArgs...)
		})
	}

	// The samples.
	type sample struct {
		at                   time.Duration
		rss, goroutines, fds float64
	}
	var samples []sample
	start := time.Now()
	pid := srv.cmd.Process.Pid
	tick := time.NewTicker(5 * time.Second)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			m := scrapeAdmin(t, "http://"+adminAddr+"/metrics")
			samples = append(samples, sample{at: time.Since(start), rss: m["process_resident_memory_bytes"], goroutines: m["go_goroutines"], fds: m["process_open_fds"]})
		}
	}
	tick.Stop()
	wg.Wait()
	idleMu.Lock()
	for _, c := range idle {
		c.Close()
	}
	idleMu.Unlock()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the server died: %v", err)
	}

	// The report.
	t.Logf("%d calls in %v", calls.Load(), duration)
	unexpected.Range(func(k, v any) bool {
		t.Errorf("unexpected answers: %s: %d", k, v.(*atomic.Int64).Load())
		return true
	})
	var table strings.Builder
	fmt.Fprintf(&table, "%8s %10s %11s %5s\n", "t", "RSS MB", "goroutines", "fds")
	for _, sm := range samples {
		fmt.Fprintf(&table, "%8s %10.1f %11.0f %5.0f\n", sm.at.Round(time.Second), sm.rss/(1<<20), sm.goroutines, sm.fds)
	}
	t.Logf("server samples:\n%s", table.String())
	if !full {
		return
	}
	warm := len(samples) / 5
	steady := samples[warm:]
	if len(steady) < 4 {
		t.Fatalf("only %d samples after the warm-up", len(steady))
	}
	half := len(steady) / 2
	med := func(ss []sample, f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return median(v)
	}
	for _, q := range []struct {
		name  string
		f     func(sample) float64
		slack float64
	}{
		{"RSS (MB)", func(s sample) float64 { return s.rss / (1 << 20) }, 4},
		{"goroutines", func(s sample) float64 { return s.goroutines }, 20},
		{"open file descriptors", func(s sample) float64 { return s.fds }, 10},
	} {
		first, last := med(steady[:half], q.f), med(steady[half:], q.f)
		t.Logf("%s: median %.1f, then %.1f", q.name, first, last)
		if last > first*1.15+q.slack {
			t.Errorf("%s grew from %.1f to %.1f: not flat", q.name, first, last)
		}
	}
}

// dialOnce is a connection the caller closes (stack.dial's are closed at
// the test's end).
func dialOnce(t *testing.T, s *stack, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	must(t, err)
	return conn
}

// headerFlood sends one call with 1 MB of metadata on a connection of its
// own, ignoring the server's limit, and reads until the server refuses it.
func headerFlood(s *stack, cert *tls.Certificate) {
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}})
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"x-flood", strings.Repeat("a", 1<<20)}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		return
	}
	fr := http2.NewFramer(conn, conn)
	_ = fr.WriteSettings()
	b := block.Bytes()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:16<<10]})
	for rest := b[16<<10:]; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		if fr.WriteContinuation(1, n == len(rest), rest[:n]) != nil {
			break
		}
		rest = rest[n:]
	}
	_, _ = io.Copy(io.Discard, conn)
}

// scrapeAdmin reads the unlabelled series of a /metrics page.
func scrapeAdmin(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Errorf("scrape: %v", err)
		return nil
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out
}
