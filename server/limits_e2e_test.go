package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// newGrant is a request no cache can serve: a user of its own.
func newGrant(i int) *embedgatev1.GenerateEmbedTokenRequest {
	return &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: fmt.Sprintf("flood%d@acme.example", i), ReportIds: []string{salesReport}}
}

// TestFloodIsShedNotQueued: with Power BI stuck, calls beyond max_in_flight
// are answered at once with RESOURCE_EXHAUSTED, OVERLOADED and a RetryInfo,
// instead of piling up into timeouts; the ones admitted finish when Power
// BI answers; the shed ones are counted.
func TestFloodIsShedNotQueued(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true, config: "limits:\n  max_in_flight: 8\n"})
	if _, err := s.client.GenerateEmbedToken(context.Background(), newGrant(-1)); err != nil { // sign-in and metadata
		t.Fatal(err)
	}
	gate := s.emu.Gate(emulator.RouteGenerateToken)
	const n = 40
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.client.GenerateEmbedToken(context.Background(), newGrant(i))
			errs <- err
		})
	}
	// The admitted calls wait at Power BI; every other one is already answered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gate.WaitFor(ctx, 8); err != nil {
		t.Fatalf("%d calls reached Power BI: %v", gate.Waiting(), err)
	}
	shed, began := 0, time.Now()
	for shed < n-8 {
		select {
		case err := <-errs:
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("a call beyond the limit: %v, want ResourceExhausted", err)
			}
			checkDetails(t, err, "OVERLOADED", "")
			if retryDelay(err) <= 0 {
				t.Error("a shed call has no RetryInfo")
			}
			shed++
		case <-ctx.Done():
			t.Fatalf("only %d of %d calls beyond the limit were answered while Power BI was stuck", shed, n-8)
		}
	}
	if w := gate.Waiting(); w != 8 {
		t.Errorf("%d calls at Power BI, want 8", w)
	}
	t.Logf("%d calls with Power BI stuck and max_in_flight 8: 8 waiting at Power BI, %d shed in %v", n, shed, time.Since(began).Round(time.Millisecond))
	gate.Open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("an admitted call: %v", err)
		}
	}
	if m := s.scrape(t); !strings.Contains(m, `embedgate_shed_total{limit="in_flight"} 32`) {
		t.Errorf("the shed calls are not counted:\n%s", grepLines(m, "embedgate_shed_total"))
	}
}

// TestStreamsPerConnectionAreBounded: one connection gets
// max_concurrent_streams calls served at once; its others wait on the
// client's side, as HTTP/2 says, and are served in turn.
func TestStreamsPerConnectionAreBounded(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{config: "limits:\n  max_concurrent_streams: 5\n"})
	if _, err := s.client.GenerateEmbedToken(context.Background(), newGrant(-1)); err != nil {
		t.Fatal(err)
	}
	gate := s.emu.Gate(emulator.RouteGenerateToken)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			_, err := s.client.GenerateEmbedToken(context.Background(), newGrant(i))
			errs <- err
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gate.WaitFor(ctx, 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // room for a sixth, were it let through
	if w := gate.Waiting(); w != 5 {
		t.Errorf("%d calls of one connection in flight, want 5", w)
	}
	gate.Open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call: %v", err)
		}
	}
}

// TestIdleConnectionsAreClosed: a connection with no call for idle_timeout
// gets a GOAWAY; the client reconnects when it next calls.
func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{config: "limits:\n  idle_timeout: 1s\n"})
	conn := s.dial(t, s.clientCert(t, frontend))
	client := embedgatev1.NewEmbedTokenServiceClient(conn)
	req := newGrant(0)
	if _, err := client.GenerateEmbedToken(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the connection to go idle after idle_timeout", func() bool { return conn.GetState() == connectivity.Idle })
	if _, err := client.GenerateEmbedToken(context.Background(), req); err != nil {
		t.Fatalf("after the GOAWAY: %v", err)
	}
}

// TestConnectionsAreCapped: one connection over max_connections is closed
// as soon as it is accepted; the ones open are unaffected, and a place
// freed is a place again.
func TestConnectionsAreCapped(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true, config: "limits:\n  max_connections: 3\n"})
	cert := s.clientCert(t, frontend)
	var conns []embedgatev1.EmbedTokenServiceClient
	for i := range 3 {
		c := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, cert))
		if _, err := c.GenerateEmbedToken(context.Background(), newGrant(i)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	extra := s.dial(t, cert)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := embedgatev1.NewEmbedTokenServiceClient(extra).GenerateEmbedToken(ctx, newGrant(9))
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("a fourth connection: %v, want it refused", err)
	}
	for i, c := range conns {
		if _, err := c.GenerateEmbedToken(context.Background(), newGrant(i)); err != nil {
			t.Errorf("connection %d after the refusal: %v", i, err)
		}
	}
	if m := s.scrape(t); strings.Contains(m, `embedgate_shed_total{limit="connections"} 0`) {
		t.Error("the refused connection is not counted")
	}
}

// TestOversizeRequestIsRefused: a request beyond max_request_bytes (a 1 MB
// tenant, from a caller with or without an identity) is refused before it
// is decoded, and none of it reaches the log.
func TestOversizeRequestIsRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	big := strings.Repeat("t", 1<<20) // under grpc-go's own 4 MB default, over max_request_bytes
	for _, c := range []embedgatev1.EmbedTokenServiceClient{s.client, embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t)))} {
		_, err := c.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: big, User: "u", ReportIds: []string{salesReport}})
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("a 1 MB request: %v, want ResourceExhausted", err)
		}
	}
	if strings.Contains(s.logs.String(), strings.Repeat("t", 1024)) {
		t.Error("the oversize field reached the log")
	}
}

// TestHeaderFloodIsRefusedUnread: a caller that ignores the server's
// SETTINGS_MAX_HEADER_LIST_SIZE (raw HTTP/2 frames, as no gRPC client would
// send them) and sends 8 MB of metadata with each of 16 valid calls, while
// Power BI is slow, gets every stream refused: none reaches the handler,
// and the server does not hold the 128 MB. Other callers are served.
func TestHeaderFloodIsRefusedUnread(t *testing.T) {
	// Not parallel: it measures this process's heap.
	s := startStack(t, stackOptions{})
	if _, err := s.client.GenerateEmbedToken(context.Background(), newGrant(-1)); err != nil { // sign-in, metadata
		t.Fatal(err)
	}
	gate := s.emu.Gate(emulator.RouteGenerateToken)
	defer gate.Open()
	cert := s.clientCert(t, frontend)
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}})
	must(t, err)
	defer conn.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		must(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	for i := range 8 {
		must(t, enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("a", 1<<20), Sensitive: true}))
	}
	headers := block.Bytes()
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	var wmu sync.Mutex // the writer and the reader's SETTINGS ack share the framer's writes
	wmu.Lock()
	must(t, fr.WriteSettings())
	wmu.Unlock()
	const streams = 16
	go func() {
		wmu.Lock()
		defer wmu.Unlock()
		for i := range streams {
			id := uint32(2*i + 1)
			chunk, rest := headers[:16<<10], headers[16<<10:]
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk}) != nil {
				return // refused: the server closed the connection
			}
			for len(rest) > 0 {
				n := min(len(rest), 16<<10)
				if fr.WriteContinuation(id, n == len(rest), rest[:n]) != nil {
					return
				}
				rest = rest[n:]
			}
			msg, err := proto.Marshal(newGrant(i))
			if err != nil {
				return
			}
			frame := append([]byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
			if fr.WriteData(id, true, frame) != nil {
				return
			}
		}
	}()
	refusedc := make(chan uint32, 4*streams)
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil { // the server closed the connection: every stream refused
				for i := range streams {
					refusedc <- uint32(2*i + 1)
				}
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				refusedc <- f.StreamID
			case *http2.HeadersFrame:
				refusedc <- f.StreamID // a trailers-only error response
			case *http2.GoAwayFrame:
				for i := range streams {
					refusedc <- uint32(2*i + 1)
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					wmu.Lock()
					_ = fr.WriteSettingsAck()
					wmu.Unlock()
				}
			}
		}
	}()
	refused := map[uint32]bool{}
	deadline := time.After(20 * time.Second)
	for len(refused) < streams && gate.Waiting() < streams {
		select {
		case id := <-refusedc:
			refused[id] = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("after 20s: %d streams refused, %d at Power BI", len(refused), gate.Waiting())
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if w := gate.Waiting(); w > 0 || len(refused) < streams {
		t.Errorf("%d flooded calls reached Power BI; %d of %d refused", w, len(refused), streams)
	}
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grown > 48<<20 {
		t.Errorf("the heap grew by %d MB for %d MB of headers", grown>>20, streams*8)
	}
	t.Logf("%d streams with 8 MB of metadata each: %d refused, none reached Power BI; heap %+.1f MB", streams, len(refused), float64(grown)/(1<<20))
	gate.Open()
	if _, err := s.client.GenerateEmbedToken(context.Background(), newGrant(0)); err != nil {
		t.Errorf("another caller after the flood: %v", err)
	}
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			return r.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
