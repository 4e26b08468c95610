package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
)

// rateLimitedError says a caller is over its policy rate; errorStatus maps
// it to RESOURCE_EXHAUSTED with a RetryInfo.
type rateLimitedError struct {
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("over this caller's rate limit; retry in %v", e.retryAfter.Round(time.Millisecond))
}

// callerLimits holds one token bucket per caller that the policy gives a
// rate_limit. A policy reload retunes the buckets in place, so it neither
// resets a caller's spent budget nor leaks buckets of removed callers for
// long (they are dropped on the reload after).
type callerLimits struct {
	policy  PolicySource
	metrics *Metrics // nil = none

	mu      sync.Mutex
	version string
	buckets map[string]*rate.Limiter
}

func newCallerLimits(p PolicySource, m *Metrics) *callerLimits {
	return &callerLimits{policy: p, metrics: m, buckets: map[string]*rate.Limiter{}}
}

// take spends one token of caller's bucket, or says how long to wait.
func (l *callerLimits) take(caller string, now time.Time) error {
	p := l.policy.Current()
	limit, ok := p.RateLimit(caller)
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := p.Version(); v != l.version {
		for id := range l.buckets {
			if _, still := p.RateLimit(id); !still {
				delete(l.buckets, id)
			}
		}
		l.version = v
	}
	if !ok {
		return nil
	}
	b := l.buckets[caller]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(limit.PerSecond), limit.Burst)
		l.buckets[caller] = b
	} else if b.Limit() != rate.Limit(limit.PerSecond) || b.Burst() != limit.Burst {
		b.SetLimitAt(now, rate.Limit(limit.PerSecond))
		b.SetBurstAt(now, limit.Burst)
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		l.metrics.rateLimit(caller, false)
		return &rateLimitedError{retryAfter: d}
	}
	l.metrics.rateLimit(caller, true)
	return nil
}

// unary refuses calls over the caller's rate. It runs after caller
// authentication, so it knows who is calling; a call without a caller fails
// closed.
func (l *callerLimits) unary(now func() time.Time) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if err := l.admit(ctx, now()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// stream is unary for streaming calls: one token per stream.
func (l *callerLimits) stream(now func() time.Time) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if err := l.admit(ss.Context(), now()); err != nil {
			return err
		}
		return next(srv, ss)
	}
}

func (l *callerLimits) admit(ctx context.Context, now time.Time) error {
	caller, err := callerFrom(ctx)
	if err == nil {
		err = l.take(caller, now)
	}
	if err != nil {
		return errorStatus(err).Err()
	}
	return nil
}
