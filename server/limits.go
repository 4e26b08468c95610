package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// LimitsConfig bounds what a connection, a caller or a flood can take from
// the server, so that one of them cannot take it all: the `limits:` block.
// Every limit has a safe default; a value of 0 keeps it.
type LimitsConfig struct {
	// MaxConnections is the most connections the gRPC listener keeps open
	// (DefaultMaxConnections); one more is closed as soon as it is
	// accepted, so that its client tries another replica at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentStreams is the most calls one connection may have in
	// flight (DefaultMaxConcurrentStreams), announced to clients in HTTP/2
	// SETTINGS; a client's further calls wait on its side.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxHeaderBytes bounds a call's metadata (DefaultMaxHeaderBytes): a
	// call with more is refused by the transport before any of it is kept.
	MaxHeaderBytes uint32 `yaml:"max_header_bytes"`
	// MaxRequestBytes bounds a request message (DefaultMaxRequestBytes):
	// Embedgate's largest valid request is a few kilobytes.
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxInFlight is the most calls the server works on at once, all
	// connections together (DefaultMaxInFlight). A call beyond it is
	// answered at once with RESOURCE_EXHAUSTED and a RetryInfo, reason
	// OVERLOADED, instead of queueing into timeouts. Health checks and
	// reflection are not counted.
	MaxInFlight int `yaml:"max_in_flight"`
	// IdleTimeout closes a connection that has had no call for this long
	// (DefaultIdleTimeout), with a GOAWAY: a client reconnects when it
	// next calls.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Defaults of LimitsConfig: generous for a platform's callers (a few
// connections each, each with a handful of calls in flight), small against
// a flood.
const (
	DefaultMaxConnections       = 1000
	DefaultMaxConcurrentStreams = 100
	DefaultMaxHeaderBytes       = 64 << 10 // Envoy's default is 60 KiB; a mesh's XFCC fits
	DefaultMaxRequestBytes      = 64 << 10
	DefaultMaxInFlight          = 512
	DefaultIdleTimeout          = 5 * time.Minute
)

// withDefaults fills the limits left at 0.
func (l LimitsConfig) withDefaults() LimitsConfig {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

func (l LimitsConfig) validate() []yamlfile.Problem {
	var ps []yamlfile.Problem
	neg := func(key string, v int64) {
		if v < 0 {
			ps = append(ps, yamlfile.Problem{Key: "limits." + key, Message: "must not be negative (0 keeps the default)"})
		}
	}
	neg("max_connections", int64(l.MaxConnections))
	neg("max_request_bytes", int64(l.MaxRequestBytes))
	neg("max_in_flight", int64(l.MaxInFlight))
	neg("idle_timeout", int64(l.IdleTimeout))
	if l.MaxHeaderBytes != 0 && l.MaxHeaderBytes < 4<<10 {
		ps = append(ps, yamlfile.Problem{Key: "limits.max_header_bytes", Message: fmt.Sprintf("%d is too small for a call's metadata: at least 4096", l.MaxHeaderBytes)})
	}
	return ps
}

// serverOptions are the gRPC server's options for these limits.
func (l LimitsConfig) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(l.MaxHeaderBytes),
		grpc.MaxRecvMsgSize(l.MaxRequestBytes),
	}
}

// errOverloaded is a call shed because the server already works on
// max_in_flight calls.
var errOverloaded = errors.New("the server is at its limit of calls in flight; retry shortly")

// overloadRetryAfter is what a shed call is told to wait.
const overloadRetryAfter = time.Second

// inFlight is the server-wide limit of calls in flight (max_in_flight).
type inFlight struct {
	max     int64
	n       atomic.Int64
	metrics *Metrics
}

func (f *inFlight) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if !f.acquire() {
			return nil, errorStatus(errOverloaded).Err()
		}
		defer f.n.Add(-1)
		return next(ctx, req)
	}
}

func (f *inFlight) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if !f.acquire() {
			return errorStatus(errOverloaded).Err()
		}
		defer f.n.Add(-1)
		return next(srv, ss)
	}
}

func (f *inFlight) acquire() bool {
	if f.n.Add(1) > f.max {
		f.n.Add(-1)
		f.metrics.shed("in_flight")
		return false
	}
	return true
}

// connLimit is a listener that keeps at most max connections open and
// closes any beyond them as soon as they are accepted.
type connLimit struct {
	net.Listener
	max     int64
	n       atomic.Int64
	metrics *Metrics
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.n.Add(1) > l.max {
			l.n.Add(-1)
			l.metrics.shed("connections")
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { l.n.Add(-1) }}, nil
	}
}

// countedConn gives its place back once, when closed.
type countedConn struct {
	net.Conn
	closed  atomic.Bool
	release func()
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.release()
	}
	return c.Conn.Close()
}
