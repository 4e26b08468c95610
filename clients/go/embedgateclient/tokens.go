package embedgateclient

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// Token is an embed token response: GenerateEmbedTokenResponse or
// GenerateDashboardEmbedTokenResponse.
type Token interface {
	proto.Message
	GetRefreshTime() *timestamppb.Timestamp
}

// TokenSource hands out one embed token for one request until the token's
// refresh_time, then asks Embedgate for a new one. Concurrent callers that
// find no fresh token share one call: N askers, one RPC. A failed call is
// returned to every caller waiting for it and is not cached.
//
// The returned response is shared: read it, do not modify it. A TokenSource
// is safe for concurrent use.
type TokenSource[T Token] struct {
	fetch   func(context.Context) (T, error)
	now     func() time.Time
	timeout time.Duration

	mu       sync.Mutex
	token    T
	fresh    time.Time // the token is handed out while now is before this
	inflight *fetchCall[T]
	onWait   func() // tests: a caller starts waiting for the call in flight
}

type fetchCall[T Token] struct {
	done  chan struct{}
	token T
	err   error
}

// NewTokenSource returns a TokenSource over fetch, which asks Embedgate for a
// token. [Client.ReportTokens] and [Client.DashboardTokens] build the usual
// ones.
func NewTokenSource[T Token](fetch func(context.Context) (T, error)) *TokenSource[T] {
	return &TokenSource[T]{fetch: fetch, now: time.Now, timeout: defaultFetchTimeout}
}

// ReportTokens returns a TokenSource for one report token request. The
// request must not be modified afterwards.
func (c *Client) ReportTokens(req *embedgatev1.GenerateEmbedTokenRequest, opts ...grpc.CallOption) *TokenSource[*embedgatev1.GenerateEmbedTokenResponse] {
	return NewTokenSource(func(ctx context.Context) (*embedgatev1.GenerateEmbedTokenResponse, error) {
		return c.GenerateEmbedToken(ctx, req, opts...)
	})
}

// DashboardTokens returns a TokenSource for one dashboard (or tile) token
// request. The request must not be modified afterwards.
func (c *Client) DashboardTokens(req *embedgatev1.GenerateDashboardEmbedTokenRequest, opts ...grpc.CallOption) *TokenSource[*embedgatev1.GenerateDashboardEmbedTokenResponse] {
	return NewTokenSource(func(ctx context.Context) (*embedgatev1.GenerateDashboardEmbedTokenResponse, error) {
		return c.GenerateDashboardEmbedToken(ctx, req, opts...)
	})
}

// Token returns the current token, or waits for a new one. ctx bounds only
// this caller's wait: the call itself runs until it ends (at most 30
// seconds), so that one impatient caller does not fail the others.
func (s *TokenSource[T]) Token(ctx context.Context) (T, error) {
	s.mu.Lock()
	if s.now().Before(s.fresh) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	c := s.inflight
	if c == nil {
		c = &fetchCall[T]{done: make(chan struct{})}
		s.inflight = c
		go s.run(context.WithoutCancel(ctx), c)
	}
	if s.onWait != nil {
		s.onWait()
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.token, c.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (s *TokenSource[T]) run(ctx context.Context, c *fetchCall[T]) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c.token, c.err = s.fetch(ctx)
	s.mu.Lock()
	if c.err == nil {
		s.token = c.token
		s.fresh = c.token.GetRefreshTime().AsTime() // zero (never fresh) when unset
	}
	s.inflight = nil
	s.mu.Unlock()
	close(c.done)
}
