package sharedstate

import (
	"context"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// TestOneBucketAcrossReplicas: two replicas draw on one bucket per
// caller: a burst of 3 admits 3 calls in all, then each replica refuses
// with the time until the next request; callers have buckets of their
// own; the bucket refills at the rate.
func TestOneBucketAcrossReplicas(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	a, _ := openStore(t, r, nil, nil)
	b, _ := openStore(t, r, nil, nil)
	ctx := context.Background()
	const perSecond, burst = 10.0, 3
	admitted := 0
	for i, s := range []*Store{a, b, a, b, a, b} {
		wait, err := s.Take(ctx, "spiffe://t/batch", perSecond, burst)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case wait == 0:
			admitted++
		case wait > 100*time.Millisecond:
			t.Errorf("call %d: wait %v, want at most one interval (100ms)", i, wait)
		}
	}
	if admitted != burst {
		t.Fatalf("admitted %d calls across two replicas, want the burst, %d", admitted, burst)
	}
	if wait, err := a.Take(ctx, "spiffe://t/other", perSecond, burst); err != nil || wait != 0 {
		t.Fatalf("another caller: wait %v, %v; want admitted", wait, err)
	}
	testkit.Eventually(t, "the bucket to refill", func() bool {
		wait, err := b.Take(ctx, "spiffe://t/batch", perSecond, burst)
		return err == nil && wait == 0
	})
}

// TestSlowRateRetryAfter: at 0.5 requests a second the refusal says about
// two seconds, as the per-process bucket would.
func TestSlowRateRetryAfter(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	s, _ := openStore(t, r, nil, nil)
	ctx := context.Background()
	if wait, err := s.Take(ctx, "slow", 0.5, 1); err != nil || wait != 0 {
		t.Fatalf("first: %v, %v", wait, err)
	}
	wait, err := s.Take(ctx, "slow", 0.5, 1)
	if err != nil || wait < 1900*time.Millisecond || wait > 2*time.Second {
		t.Fatalf("second: wait %v, %v; want just under 2s", wait, err)
	}
}
