package sharedstate

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// TestOneMintAcrossReplicas: of two replicas asking for one grant at
// once, one leads and the other waits for its entry, then gets the value
// the first stored, without minting.
func TestOneMintAcrossReplicas(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	key := randomKey(t)
	a, obsA := openStore(t, r, nil, nil, key)
	b, obsB := openStore(t, r, nil, nil, key)
	grant := [32]byte{7}
	ctx := context.Background()

	v, done, err := a.Claim(ctx, grant)
	if err != nil || v != nil || done == nil {
		t.Fatalf("first Claim = %q, %v, %v; want the lease", v, done != nil, err)
	}
	type claim struct {
		v    []byte
		lead bool
		err  error
	}
	got := make(chan claim, 1)
	go func() {
		v, done, err := b.Claim(ctx, grant)
		got <- claim{v, done != nil, err}
	}()
	testkit.Eventually(t, "the second replica to wait for the lease", func() bool { return obsB.leaseWaits() == 1 })
	done(secret, time.Now().Add(time.Minute))
	c := <-got
	if c.err != nil || c.lead || !bytes.Equal(c.v, secret) {
		t.Fatalf("second Claim = %q, lead %v, %v; want the first one's value", c.v, c.lead, c.err)
	}
	if obsA.token("miss") != 1 || obsB.token("hit") != 1 || obsB.token("miss") != 0 {
		t.Errorf("tokens: A %v, B %v; want A miss, B hit", obsA.tokens, obsB.tokens)
	}
	// The lease is gone, and the entry expires at the time given.
	raw := rawClient(t, r)
	entryKey, leaseKey := a.names(grant)
	if n := raw.Exists(ctx, leaseKey).Val(); n != 0 {
		t.Error("the lease outlived the mint")
	}
	if ttl := raw.PTTL(ctx, entryKey).Val(); ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("the entry's TTL is %v, want about a minute", ttl)
	}
}

// TestLeaseReleasedOnlyByItsHolder: a lease that lapsed and was taken by
// another replica is not released (nor overwritten) by the former holder,
// whether its mint failed or succeeded.
func TestLeaseReleasedOnlyByItsHolder(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	raw := rawClient(t, r)
	ctx := context.Background()
	s, _ := openStore(t, r, nil, nil)

	// The scripts themselves.
	if err := raw.Set(ctx, "test:lease:x", "holder", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := releaseScript.Run(ctx, raw, []string{"test:lease:x"}, "someone else").Int64(); err != nil || n != 0 {
		t.Fatalf("release by another = %d, %v; want 0", n, err)
	}
	if n, err := renewScript.Run(ctx, raw, []string{"test:lease:x"}, "someone else", 60000).Int64(); err != nil || n != 0 {
		t.Fatalf("renew by another = %d, %v; want 0", n, err)
	}
	if raw.Get(ctx, "test:lease:x").Val() != "holder" {
		t.Fatal("another replica's release or renewal touched the lease")
	}
	if n, err := releaseScript.Run(ctx, raw, []string{"test:lease:x"}, "holder").Int64(); err != nil || n != 1 {
		t.Fatalf("release by the holder = %d, %v; want 1", n, err)
	}

	// Through Claim: the lease is taken over while the holder mints.
	for _, value := range [][]byte{nil, secret} {
		grant := [32]byte{byte(len(value))}
		_, leaseKey := s.names(grant)
		_, done, err := s.Claim(ctx, grant)
		if err != nil || done == nil {
			t.Fatalf("Claim = %v; want the lease", err)
		}
		if err := raw.Set(ctx, leaseKey, "taken over", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		done(value, time.Now().Add(time.Minute))
		if got := raw.Get(ctx, leaseKey).Val(); got != "taken over" {
			t.Errorf("done(%q): the other replica's lease is %q", value, got)
		}
	}
}

// TestHolderThatDiedIsReplaced: a replica that dies while minting (its
// lease no longer renewed) holds the others up for at most the lease,
// then one of them mints.
func TestHolderThatDiedIsReplaced(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	key := randomKey(t)
	short := func(c *Config) { c.MintLease = 300 * time.Millisecond }
	a, _ := openStore(t, r, nil, short, key)
	b, obsB := openStore(t, r, nil, short, key)
	grant := [32]byte{9}
	ctx := context.Background()
	if _, done, err := a.Claim(ctx, grant); err != nil || done == nil {
		t.Fatalf("Claim = %v; want the lease", err)
	}
	// A renews while it lives: B waits past several leases.
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	_, done, err := b.Claim(wctx, grant)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || done != nil || obsB.token("gave_up") != 1 {
		t.Fatalf("Claim while A mints = lead %v, %v; want to give up waiting", done != nil, err)
	}
	a.Close() // dies: the renewals stop
	start := time.Now()
	_, done, err = b.Claim(ctx, grant)
	if err != nil || done == nil {
		t.Fatalf("Claim after A died = %v; want the lease", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took the lease over after %v, want about 300ms", d)
	}
	done(nil, time.Time{})
}

// TestUnreadableEntryIsReplaced: an entry this replica cannot open
// (another key, altered) is a miss: it takes the lease over the entry,
// mints and replaces it; a replica with both keys reads either.
func TestUnreadableEntryIsReplaced(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	oldKey, newKey := randomKey(t), randomKey(t)
	old, _ := openStore(t, r, nil, nil, oldKey)
	rotated, _ := openStore(t, r, nil, nil, newKey, oldKey)
	fresh, obsFresh := openStore(t, r, nil, nil, newKey)
	grant := [32]byte{3}
	ctx := context.Background()
	until := time.Now().Add(time.Minute)

	_, done, _ := old.Claim(ctx, grant)
	done([]byte("minted with the old key"), until)
	if v, _, err := rotated.Claim(ctx, grant); err != nil || string(v) != "minted with the old key" {
		t.Fatalf("a replica with both keys: %q, %v", v, err)
	}
	v, done, err := fresh.Claim(ctx, grant)
	if err != nil || v != nil || done == nil || obsFresh.token("unreadable") != 1 {
		t.Fatalf("a replica without the old key: %q, lead %v, %v; want to lead over the unreadable entry", v, done != nil, err)
	}
	done([]byte("minted with the new key"), until)
	if v, _, err := rotated.Claim(ctx, grant); err != nil || string(v) != "minted with the new key" {
		t.Fatalf("a replica with both keys, after: %q, %v", v, err)
	}

	// Altered in Redis: a miss, then replaced.
	raw := rawClient(t, r)
	entryKey, _ := fresh.names(grant)
	entry := []byte(raw.Get(ctx, entryKey).Val())
	entry[len(entry)-1] ^= 1
	raw.Set(ctx, entryKey, entry, time.Minute)
	if v, done, err := fresh.Claim(ctx, grant); err != nil || v != nil || done == nil {
		t.Fatalf("an altered entry: %q, lead %v, %v; want to lead", v, done != nil, err)
	} else {
		done(nil, time.Time{})
	}
}

// TestNothingInClear: Redis holds neither the value nor the grant key in
// any key or value.
func TestNothingInClear(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	s, _ := openStore(t, r, nil, nil)
	ctx := context.Background()
	grant := [32]byte{}
	copy(grant[:], "alice@acme.example/report-1234")
	_, done, err := s.Claim(ctx, grant)
	if err != nil || done == nil {
		t.Fatalf("Claim = %v", err)
	}
	done(secret, time.Now().Add(time.Minute))
	raw := rawClient(t, r)
	keys := raw.Keys(ctx, "*").Val()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "test:token:{") {
		t.Fatalf("keys = %q, want one entry under the prefix", keys)
	}
	value := raw.Get(ctx, keys[0]).Val()
	for _, clear := range []string{"alice", "acme", "report", string(secret), "embed-token"} {
		if strings.Contains(keys[0], clear) || strings.Contains(value, clear) {
			t.Errorf("%q appears in Redis", clear)
		}
	}
}
