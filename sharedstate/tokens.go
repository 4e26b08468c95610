package sharedstate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// How a replica waits for another's mint: it asks again after firstPoll,
// then twice as long each time, up to maxPoll, until the token is there,
// the lease is free (the holder failed or died), or its context ends.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// names returns the Redis keys of a grant: its entry and its mint lease.
// The grant key is already a hash of the whole request; it is hashed
// again with a purpose of its own, so that a key name is related to
// nothing else Embedgate computes and holds no user, tenant or item in
// clear. The braces are a hash tag: both keys live on the same node of a
// cluster.
func (s *Store) names(grant [32]byte) (entry, lease string) {
	h := sha256.Sum256(append([]byte("embedgate shared state grant\x00"), grant[:]...))
	tag := "{" + hex.EncodeToString(h[:]) + "}"
	return s.cfg.KeyPrefix + "token:" + tag, s.cfg.KeyPrefix + "lease:" + tag
}

// Claim looks a grant up across the fleet, in one round trip when the
// entry is there or no replica is minting it:
//
//   - another replica's value (decrypted and verified), nil, nil;
//   - nil, done, nil: no replica has it, and this one now holds the mint
//     lease (renewed in the background): it mints, then calls done once
//     with the value and when the fleet must stop handing it out (the
//     entry's expiry), or with a nil value when the mint failed, which
//     only releases the lease;
//   - nil, nil, err: Redis did not answer (ErrUnavailable), or another
//     replica held the lease until ctx ended: the caller mints alone.
//
// While another replica holds the lease, Claim waits for its entry (see
// firstPoll), and takes the lease itself once it is free: when the holder
// failed, released it; when it died, after at most MintLease. The wait is
// bounded by ctx.
func (s *Store) Claim(ctx context.Context, grant [32]byte) ([]byte, func(value []byte, until time.Time), error) {
	entryKey, leaseKey := s.names(grant)
	id := leaseID()
	leaseMs := strconv.FormatInt(s.cfg.MintLease.Milliseconds(), 10)
	passOver, waited, unreadable := false, false, false
	pause := firstPoll
	for {
		var res []any
		err := s.do(ctx, "token_claim", func(ctx context.Context) error {
			skip := "0"
			if passOver {
				skip = "1"
			}
			v, err := claimScript.Run(ctx, s.rdb, []string{entryKey, leaseKey}, id, leaseMs, skip).Slice()
			res = v
			return err
		})
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				s.obs.Fallback("token")
			}
			return nil, nil, err
		}
		passOver = false
		switch claimCode(res) {
		case 1:
			entry, _ := res[1].(string)
			v, err := s.ring.Load().openEntry([]byte(entry), grant[:])
			if err == nil {
				s.obs.Token("hit")
				return v, nil, nil
			}
			if !unreadable {
				unreadable = true
				s.obs.Token("unreadable")
			}
			passOver = true // take the lease over it, mint and replace it
			continue
		case 2:
			if !unreadable {
				s.obs.Token("miss")
			}
			return nil, s.lead(entryKey, leaseKey, id, grant), nil
		}
		if !waited {
			waited = true
			s.obs.LeaseWait()
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			s.obs.Token("gave_up")
			return nil, nil, fmt.Errorf("sharedstate: another replica is still minting this grant: %w", ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, maxPoll)
	}
}

// claimCode reads claimScript's answer (0 if malformed).
func claimCode(res []any) int64 {
	if len(res) == 0 {
		return 0
	}
	c, _ := res[0].(int64)
	if c == 1 && len(res) < 2 {
		return 0
	}
	return c
}

// lead renews the lease in the background until done is called, and
// returns done.
func (s *Store) lead(entryKey, leaseKey, id string, grant [32]byte) func([]byte, time.Time) {
	stop := make(chan struct{})
	s.leases.Add(1)
	go s.renew(leaseKey, id, stop)
	var once sync.Once
	return func(value []byte, until time.Time) {
		once.Do(func() {
			close(stop)
			ctx := context.Background()
			if value == nil {
				s.release(ctx, leaseKey, id)
				return
			}
			sealed := s.ring.Load().sealEntry(value, grant[:])
			_ = s.do(ctx, "token_store", func(ctx context.Context) error {
				return fillScript.Run(ctx, s.rdb, []string{entryKey, leaseKey}, id, sealed, until.UnixMilli()).Err()
			})
		})
	}
}

// renew extends the lease every third of MintLease while its mint runs,
// so that it lapses only when this replica dies; it stops when the mint
// is done, the store closes, or the lease turns out to be lost.
func (s *Store) renew(leaseKey, id string, stop <-chan struct{}) {
	defer s.leases.Done()
	t := time.NewTicker(s.cfg.MintLease / 3)
	defer t.Stop()
	leaseMs := s.cfg.MintLease.Milliseconds()
	for {
		select {
		case <-stop:
			return
		case <-s.brk.stop:
			return
		case <-t.C:
		}
		var kept int64
		err := s.do(context.Background(), "lease_renew", func(ctx context.Context) error {
			v, err := renewScript.Run(ctx, s.rdb, []string{leaseKey}, id, leaseMs).Int64()
			kept = v
			return err
		})
		if err == nil && kept == 0 {
			return // lapsed and taken: the mint goes on, unleased
		}
	}
}

// release deletes the lease if it is still this replica's.
func (s *Store) release(ctx context.Context, leaseKey, id string) {
	_ = s.do(ctx, "lease_release", func(ctx context.Context) error {
		return releaseScript.Run(ctx, s.rdb, []string{leaseKey}, id).Err()
	})
}

// leaseID is a lease's random value: only its holder knows it, so only
// its holder renews or releases it.
func leaseID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}
