package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errStreamsEnded ends a long-lived stream when the server drains.
var errStreamsEnded = status.Error(codes.Unavailable, "the server is shutting down; reconnect")

// endOnDrain ends every stream (the API's RPCs are unary: streams are
// Health/Watch and reflection) once ended is done, so that GracefulStop
// waits only for unary calls in flight: a watcher would otherwise hold the
// process until shutdown_grace cuts everything. A watch gets NOT_SERVING
// first (health.Shutdown), then UNAVAILABLE, which tells a client to
// reconnect (elsewhere).
//
// Health/Watch returns when its context ends; reflection blocks in
// RecvMsg, which nothing can interrupt but the end of the stream, so
// RecvMsg is waited for beside ended. The receive left behind returns
// when the stream ends, as grpc-go documents for a handler that returns
// while another goroutine receives.
func endOnDrain(ended context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if ended.Err() != nil {
			return errStreamsEnded
		}
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(ended, cancel)
		defer stop()
		err := next(srv, &drainingStream{ServerStream: ss, ctx: ctx})
		if ended.Err() != nil {
			return errStreamsEnded
		}
		return err
	}
}

// drainingStream is a server stream whose context ends when the server
// drains, and whose receives return then.
type drainingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *drainingStream) Context() context.Context { return s.ctx }

func (s *drainingStream) RecvMsg(m any) error {
	if s.ctx.Err() != nil {
		return errStreamsEnded
	}
	done := make(chan error, 1)
	go func() { done <- s.ServerStream.RecvMsg(m) }()
	select {
	case err := <-done:
		return err
	case <-s.ctx.Done():
		return errStreamsEnded
	}
}
