package sharedstate

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The circuit breaker: after breakerThreshold failures in a row, Redis is
// taken for down and no call asks it anything (each is served per
// process at once); a probe asks every probeInterval, and the first answer
// closes the breaker again.
const (
	breakerThreshold = 3
	probeInterval    = time.Second
)

// breaker tracks whether Redis answers. Calls check open (an atomic load)
// before any command; results of commands feed it.
type breaker struct {
	open     atomic.Bool
	failures atomic.Int32
	probe    func(context.Context) error
	interval time.Duration
	changed  func(up bool, cause error) // called on each transition, never concurrently

	mu      sync.Mutex // serialises transitions and the prober's start
	probing bool
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

func newBreaker(probe func(context.Context) error, changed func(bool, error)) *breaker {
	return &breaker{probe: probe, interval: probeInterval, changed: changed, stop: make(chan struct{})}
}

// allow reports whether commands may be sent (the breaker is closed).
func (b *breaker) allow() bool { return !b.open.Load() }

// succeeded records a command Redis answered.
func (b *breaker) succeeded() { b.failures.Store(0) }

// failed records a command Redis did not answer (or answered too late);
// the breakerThreshold-th in a row opens the breaker.
func (b *breaker) failed(cause error) {
	if b.failures.Add(1) >= breakerThreshold {
		b.trip(cause)
	}
}

// trip opens the breaker at once and starts probing.
func (b *breaker) trip(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped || !b.open.CompareAndSwap(false, true) {
		return
	}
	b.changed(false, cause)
	if !b.probing {
		b.probing = true
		b.wg.Add(1)
		go b.probeUntilUp()
	}
}

// probeUntilUp pings Redis every interval until it answers, then closes
// the breaker.
func (b *breaker) probeUntilUp() {
	defer b.wg.Done()
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { // Close does not wait for a ping in flight
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := b.probe(ctx)
		cancel()
		if err != nil {
			continue
		}
		b.mu.Lock()
		b.probing = false
		if !b.stopped {
			b.failures.Store(0)
			b.open.Store(false)
			b.changed(true, nil)
		}
		b.mu.Unlock()
		return
	}
}

// close stops the prober and waits for it.
func (b *breaker) close() {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}
