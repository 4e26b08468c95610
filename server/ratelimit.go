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
// long (they are dropped on the reload after). With shared set, the
// fleet's bucket decides, and this process's only when the fleet's does
// not answer (sharedstate.go).
type callerLimits struct {
	policy  PolicySource
	metrics *Metrics    // nil = none
	shared  SharedRates // nil = per process

	mu      sync.Mutex
	version string
	buckets map[string]*rate.Limiter
}

func newCallerLimits(p PolicySource, m *Metrics, shared SharedRates) *callerLimits {
	return &callerLimits{policy: p, metrics: m, shared: shared, buckets: map[string]*rate.Limiter{}}
}

// take spends one token of caller's bucket, or says how long to wait.
func (l *callerLimits) take(ctx context.Context, caller string, now time.Time) error {
	p := l.policy.Current()
	limit, ok := p.RateLimit(caller)
	if ok && l.shared != nil {
		if d, err := l.shared.Take(ctx, caller, limit.PerSecond, limit.Burst); err == nil {
			return l.decided(caller, d)
		}
	}
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
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
	}
	return l.decided(caller, d)
}

// decided counts a decision: admitted when wait is 0, else refused with
// the wait as the retry delay.
func (l *callerLimits) decided(caller string, wait time.Duration) error {
	if wait > 0 {
		l.metrics.rateLimit(caller, false)
		return &rateLimitedError{retryAfter: wait}
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
		err = l.take(ctx, caller, now)
	}
	if err != nil {
		return errorStatus(err).Err()
	}
	return nil
}
