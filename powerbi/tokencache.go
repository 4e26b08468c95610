package powerbi

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Embed-token reuse: DESIGN.md "Speed" asks for identical concurrent requests
// coalesced and no more than one GenerateToken per distinct grant per refresh
// window.
const (
	// tokenCacheSize bounds the distinct grants whose tokens are kept.
	tokenCacheSize = 10_000
	// refreshFloor is how close to its expiration a token is never handed
	// out again.
	refreshFloor = 2 * time.Minute
	// sharedMintTimeouts bounds a shared mint, which no caller can cancel,
	// in units of Config.Timeout: room for an Entra acquisition, the POST and
	// its one retry.
	sharedMintTimeouts = 3
)

// RefreshAt is when a token minted at issued and expiring at expiration stops
// being reused and should be replaced: three quarters into its life, but no
// later than two minutes before it expires, and never before issued:
//
//	min(issued + 3/4 (expiration - issued), expiration - 2m), at least issued
//
// So a lifetime of 8 minutes or more is refreshed at 3/4, a shorter one 2
// minutes before expiry, and one of 2 minutes or less (or an expiration not
// after issued) is never reused. The gateway serves a cached token only
// strictly before RefreshAt(tok.Issued, tok.Expiration), so every token it
// hands out has at least a quarter of its life, and at least 2 minutes, left.
// The server should tell callers to renew at that same time: a caller
// returning then gets a fresh token, not the one it already holds.
func RefreshAt(issued, expiration time.Time) time.Time {
	life := expiration.Sub(issued)
	at := issued.Add(life - life/4)
	if latest := expiration.Add(-refreshFloor); at.After(latest) {
		at = latest
	}
	if at.Before(issued) {
		return issued
	}
	return at
}

// grantKey identifies a request's grant: the sha256 of the canonical JSON of
// the operation and the whole request.
type grantKey [sha256.Size]byte

// grantKeyOf keys every field of the request exactly as given (report order,
// as the token lists reports in request order; the case of ids; role order;
// nil versus empty target workspaces), so that two requests share a token
// only if they would make the same POST. DatasetRoles is a map, which
// encoding/json writes with sorted keys.
func grantKeyOf(op string, req any) grantKey {
	b, _ := json.Marshal(struct { // cannot fail: requests hold strings, slices, maps of them, bools and durations
		Op      string
		Request any
	}{op, req})
	return sha256.Sum256(b)
}

// issue returns the token for req: from the token cache until its refresh
// point; else planned and minted once for all identical concurrent callers,
// on a context that none of them can cancel (each still returns as soon as
// its own ctx ends), bounded by sharedMintTimeouts x Timeout. A failed plan or
// mint is shared by the callers waiting for it, and never cached.
func (cl *Client) issue(ctx context.Context, op string, req any, plan func(context.Context) (*minting, error)) (*EmbedToken, error) {
	mintNow := func(ctx context.Context) (*EmbedToken, error) {
		m, err := plan(ctx)
		if err != nil {
			return nil, err
		}
		return cl.mint(ctx, m)
	}
	if cl.tokens == nil {
		return mintNow(ctx)
	}
	if err := ctx.Err(); err != nil {
		// Do not start a call that nobody will wait for.
		return nil, fmt.Errorf("powerbi: %s: %w", op, err)
	}
	k := grantKeyOf(op, req)
	if tok, ok := cl.tokens.get(k, cl.now()); ok {
		return tok.copy(true), nil
	}
	type result struct {
		tok    *EmbedToken
		cached bool
	}
	res, err := shared(ctx, &cl.mintSF, string(k[:]), op, func(ctx context.Context) (result, error) {
		// A flight that ended between our lookup and this one has filled
		// the cache.
		if tok, ok := cl.tokens.get(k, cl.now()); ok {
			return result{tok, true}, nil
		}
		ctx, cancel := context.WithTimeout(ctx, sharedMintTimeouts*cl.cfg.Timeout)
		defer cancel()
		tok, err := mintNow(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
				// Our own deadline, not any caller's: upstream was too slow.
				err = &UnavailableError{Op: op, Err: err}
			}
			return result{}, err
		}
		cl.tokens.put(k, tok, cl.now())
		return result{tok: tok}, nil
	})
	if err != nil {
		return nil, err
	}
	return res.tok.copy(res.cached), nil
}

// copy returns a copy of t that shares nothing mutable with it.
func (t *EmbedToken) copy(cached bool) *EmbedToken {
	c := *t
	c.Cached = cached
	c.Reports = slices.Clone(t.Reports)
	if t.Dashboard != nil {
		d := *t.Dashboard
		c.Dashboard = &d
	}
	if t.Tile != nil {
		tl := *t.Tile
		c.Tile = &tl
	}
	return &c
}

// tokenCache holds minted tokens until their refresh point, at most max of
// them. When full, it drops the entries past their refresh point, then the
// oldest (first minted). That sweep is O(n), but it runs only on a mint, which
// costs a network round trip anyway. Entries are never handed out: callers get
// copies.
type tokenCache struct {
	mu    sync.Mutex
	max   int
	m     map[grantKey]*list.Element // of *cachedToken
	order *list.List                 // oldest first
}

type cachedToken struct {
	key     grantKey
	tok     *EmbedToken
	refresh time.Time // RefreshAt(tok.Issued, tok.Expiration)
}

// newTokenCache returns nil (no cache) when disabled.
func newTokenCache(disabled bool) *tokenCache {
	if disabled {
		return nil
	}
	return &tokenCache{max: tokenCacheSize, m: map[grantKey]*list.Element{}, order: list.New()}
}

// get returns the token for k if now is before its refresh point.
func (c *tokenCache) get(k grantKey, now time.Time) (*EmbedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	ct := e.Value.(*cachedToken)
	if !now.Before(ct.refresh) {
		c.remove(e)
		return nil, false
	}
	return ct.tok, true
}

// put stores tok for k (replacing any older token), unless it is already
// past its refresh point.
func (c *tokenCache) put(k grantKey, tok *EmbedToken, now time.Time) {
	refresh := RefreshAt(tok.Issued, tok.Expiration)
	if !now.Before(refresh) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.remove(e)
	}
	if len(c.m) >= c.max {
		for e := c.order.Front(); e != nil; {
			next := e.Next()
			if !now.Before(e.Value.(*cachedToken).refresh) {
				c.remove(e)
			}
			e = next
		}
		for len(c.m) >= c.max {
			c.remove(c.order.Front())
		}
	}
	c.m[k] = c.order.PushBack(&cachedToken{key: k, tok: tok, refresh: refresh})
}

func (c *tokenCache) remove(e *list.Element) {
	delete(c.m, e.Value.(*cachedToken).key)
	c.order.Remove(e)
}

// size returns the number of entries, for tests.
func (c *tokenCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
