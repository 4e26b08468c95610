package sharedstate

import (
	"context"
	"errors"
	"math"
	"time"
)

// Take spends one request of caller's fleet-wide bucket: perSecond
// requests a second, burst at once (the policy's rate_limit, as a token
// bucket). It returns 0 when the request is admitted, else how long until
// one would be; the decision is one atomic script on Redis' clock, so
// every replica draws on the same bucket. An error (ErrUnavailable, or the
// caller's context) means no decision: the caller limits per process.
//
// The bucket's key holds the caller's id (a workload identity, neither a
// user nor a tenant) in clear, so that an operator can inspect it.
func (s *Store) Take(ctx context.Context, caller string, perSecond float64, burst int) (time.Duration, error) {
	interval := int64(math.Round(1e6 / perSecond))
	if interval < 1 {
		interval = 1
	}
	var wait int64
	err := s.do(ctx, "rate_limit", func(ctx context.Context) error {
		v, err := gcraScript.Run(ctx, s.rdb, []string{s.cfg.KeyPrefix + "rate:" + caller}, interval, burst).Int64()
		wait = v
		return err
	})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			s.obs.Fallback("rate_limit")
		}
		return 0, err
	}
	return time.Duration(wait) * time.Microsecond, nil
}
