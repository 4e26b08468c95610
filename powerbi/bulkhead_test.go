package powerbi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestBulkheadShedsBeyondMaxConcurrency: with Power BI stuck, requests
// beyond max_concurrency to its host wait a moment, then fail with
// ErrOverloaded without being sent; the ones in flight finish.
func TestBulkheadShedsBeyondMaxConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache, withConfig(func(c *Config) { c.MaxConcurrency = 2 }))
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil { // Entra and metadata, once
		t.Fatal(err)
	}
	gate := e.emu.Gate(emulator.RouteGenerateToken)
	const n = 5
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := e.c.Issue(context.Background(), req(repPlain))
			errs <- err
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gate.WaitFor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for range n - 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrOverloaded) {
				t.Fatalf("beyond the bulkhead: %v, want ErrOverloaded", err)
			}
		case <-ctx.Done():
			t.Fatal("the requests beyond the bulkhead were not shed while Power BI was stuck")
		}
	}
	if w, sent := gate.Waiting(), e.mints(); w != 2 || len(sent) != 3 {
		t.Errorf("%d mints in flight, %d sent in all; want 2 in flight and 3 sent (the warm-up too)", w, len(sent))
	}
	gate.Open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a request in flight: %v", err)
		}
	}
}

// TestGoneCallerStartsNothing: a request whose caller has already gone
// (its context is done) starts no upstream call: no metadata, no mint.
func TestGoneCallerStartsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := e.emu.Counters()
	_, err := e.c.Issue(ctx, req(repPlain))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	for route, n := range e.emu.Counters() {
		if n != before[route] {
			t.Errorf("%s called %d times for a caller already gone", route, n-before[route])
		}
	}
}

// TestCallersGoneDuringThePlanNoMint: when every caller of a mint has gone
// while its metadata was fetched, the metadata is kept (cached) but no
// token is minted: Power BI is not asked for tokens no one will get.
func TestCallersGoneDuringThePlanNoMint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Fatal(err)
	}
	gate := e.emu.Gate(emulator.RouteGetReport)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.c.Issue(ctx, req(repPlain)); done <- err }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := gate.WaitFor(wctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller got %v, want context.Canceled", err)
	}
	gate.Open()
	// The plan goes on for the cache: wait until the dataset is asked for.
	testkit.Eventually(t, "the plan to finish", func() bool { return e.calls(emulator.RouteGetDataset) == 1 })
	time.Sleep(200 * time.Millisecond) // room for a mint, were one started
	if n := len(e.mints()); n != 0 {
		t.Errorf("%d tokens minted for callers who had all gone", n)
	}
	// A caller now is served from the metadata cached for the one who left.
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if n := e.calls(emulator.RouteGetReport); n != 1 {
		t.Errorf("%d report GETs, want 1", n)
	}
}

// TestUserTokensAreBounded: users' On-Behalf-Of tokens are kept until 5
// minutes before they expire, and no more than maxUserTokens: the one
// expiring first goes, after the expired ones.
func TestUserTokensAreBounded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var u userTokens
	key := func(i int) [32]byte { return userTokenKey(fmt.Sprintf("assertion-%d", i), "t") }
	u.put(key(-1), UserToken{Value: "short", ExpiresOn: now.Add(4 * time.Minute)}, now)
	if _, ok := u.get(key(-1), now); ok || u.size() != 0 {
		t.Error("a token within 5 minutes of expiry was kept")
	}
	for i := range maxUserTokens + 10 {
		u.put(key(i), UserToken{Value: "t", ExpiresOn: now.Add(time.Hour + time.Duration(i)*time.Second)}, now)
	}
	if n := u.size(); n != maxUserTokens {
		t.Errorf("%d tokens kept, want %d", n, maxUserTokens)
	}
	if _, ok := u.get(key(0), now); ok {
		t.Error("the token expiring first was kept past the bound")
	}
	if _, ok := u.get(key(maxUserTokens+9), now); !ok {
		t.Error("the newest token was dropped")
	}
	if _, ok := u.get(key(maxUserTokens+9), now.Add(time.Hour+time.Duration(maxUserTokens+9)*time.Second-4*time.Minute)); ok {
		t.Error("a token was served within 5 minutes of its expiry")
	}
	if _, ok := u.get(userTokenKey("assertion-5", "other-tenant"), now); ok {
		t.Error("a token was served for another tenant's exchange of the same assertion")
	}
}
