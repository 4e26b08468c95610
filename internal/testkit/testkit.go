// Package testkit holds the few helpers that the tests of several packages
// need and would otherwise copy: a buffer that concurrent loggers may write
// to, a clock a test moves by hand, a poll that waits for a condition with a
// deadline instead of sleeping for a guessed time, a JWT signed the way a
// workload identity provider signs one, and a redis-server of a test's own
// (redis.go).
//
// It is for tests only and imports nothing but the standard library, so
// that any package's tests may use it, the emulator's included, without
// pulling service code into them.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Buffer collects what loggers write from many goroutines (a server's
// request log, a client's upstream log), so that a test can read it while
// they run. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Clock is a clock that moves only when the test moves it, so that TTLs,
// expiries and refresh points are reached without waiting. Pass its Now
// wherever code takes a func() time.Time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until moved.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Patience is how long Poll and Eventually wait for a condition: far more
// than anything they wait for needs on a loaded machine, so that reaching
// it means the condition will never hold.
const Patience = 30 * time.Second

// Poll checks cond until it holds, and reports whether it did before
// Patience ran out. The checks start a millisecond apart and slow to one
// every 20 ms, so a condition that holds soon is seen soon.
func Poll(cond func() bool) bool { return poll(Patience, cond) }

func poll(patience time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(patience)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
	return true
}

// Eventually fails the test at once if cond does not hold within Patience;
// what says what was awaited ("the edit to apply").
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Poll(cond) {
		t.Fatalf("timed out after %s waiting for %s", Patience, what)
	}
}
