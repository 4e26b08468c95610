package powerbi

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/embedgate/embedgate/internal/keyhash"
)

// Embed-token reuse: identical concurrent requests share one mint, and a
// grant is minted at most once per refresh window.
const (
	// tokenCacheSize bounds the distinct grants whose tokens are kept.
	tokenCacheSize = 10_000
	// sharedMintTimeouts bounds a shared mint, which no caller can cancel,
	// in units of Config.Timeout: room for an Entra acquisition, the POST and
	// its one retry.
	sharedMintTimeouts = 3
	// ClientRenewWindow is when Microsoft's JavaScript guidance has a browser
	// renew its embed token: when 10 minutes or less remain (Power BI embedded
	// analytics client APIs, "Refresh the access token"; checked every 30 s).
	ClientRenewWindow = 10 * time.Minute
	// renewSlack is added to ClientRenewWindow for clock skew between the
	// browser and the gateway and for the browser's 30 s check interval.
	renewSlack = 30 * time.Second
	// minReuse is the shortest time a token is handed out for, so that a
	// client obeying refresh_time never asks in a tight loop.
	minReuse = 30 * time.Second
)

// RefreshAt is when a token minted at issued and expiring at expiration stops
// being handed out, and so the refresh time to tell callers. With the lifetime
// L = expiration - issued and the guard G = ClientRenewWindow + 30 s:
//
//	L > G:  expiration - G, but no earlier than issued + 30 s
//	L <= G: issued + L/2
//
// So a token is served only while more than 10 minutes (plus slack) remain
// whenever its lifetime allows that: a browser following Microsoft's guidance
// (ask again when 10 minutes or less remain) always gets a token with more
// than 10 minutes left, never the one it already holds. A 60-minute token is
// reused for 49.5 minutes; a 30-minute one for 19.5. A lifetime of 10.5
// minutes or less can never meet the guidance; such a token is reused for the
// first half of its life. RefreshAt is always after issued (for L > 0).
//
// The result is rounded up to a whole second, for callers reading it.
func RefreshAt(issued, expiration time.Time) time.Time {
	life := expiration.Sub(issued)
	guard := ClientRenewWindow + renewSlack
	var at time.Time
	switch {
	case life <= 0:
		at = issued
	case life <= guard:
		at = issued.Add(life / 2)
	default:
		at = expiration.Add(-guard)
		if floor := issued.Add(minReuse); at.Before(floor) {
			at = floor
		}
	}
	if up := at.Truncate(time.Second); up.Before(at) || (life > 0 && !up.After(issued)) {
		return up.Add(time.Second)
	}
	return at.Truncate(time.Second)
}

// grantKey identifies a request's grant: the sha256 of a canonical encoding
// of the whole request.
type grantKey [sha256.Size]byte

// Key identifies the request: two requests have the same Key only if they
// would make the same POST (see grantKeyOf). Callers use it to cache what
// they derive from a request.
func (r TokenRequest) Key() [sha256.Size]byte { return grantKeyOf(r) }

// grantKeyOf keys every field of the request exactly as given (item order,
// as the token lists items in request order; the case of ids; role order; nil
// versus empty target workspaces; DatasetRoles in key order), so that two
// requests share a token only if they would make the same POST. Each value is
// written with its length, so no two requests encode alike. A field added to
// TokenRequest must be written here: TestGrantKeyCoversEveryField changes
// every field by reflection and fails on one that does not change the key.
func grantKeyOf(r TokenRequest) grantKey {
	var buf [512]byte  // on the stack unless the request is large
	var keys [8]string // the same, for a map's keys
	b := keyhash.Str(buf[:0], r.ProfileID)
	b = keyhash.Int(b, int64(len(r.Items)))
	for _, it := range r.Items {
		b = keyhash.Int(b, int64(it.Kind))
		b = keyhash.Str(b, it.ID)
		b = keyhash.Str(b, it.WorkspaceID)
		b = keyhash.Str(b, it.DashboardID)
	}
	b = keyhash.Strs(b, r.TargetWorkspaceIDs)
	b = keyhash.Bool(b, r.AllowEdit)
	b = keyhash.Int(b, int64(r.Lifetime))
	b = keyhash.Bool(b, r.Identity != nil)
	if id := r.Identity; id != nil {
		b = keyhash.Str(b, id.Username)
		b = keyhash.Bool(b, id.ServicePrincipal)
		b = keyhash.Str(b, id.CustomData)
		b = keyhash.Strs(b, id.Roles)
		b = keyhash.Bool(b, id.DatasetRoles != nil)
		b = keyhash.Int(b, int64(len(id.DatasetRoles)))
		for _, ds := range keyhash.SortedKeys(keys[:0], id.DatasetRoles) {
			b = keyhash.Str(b, ds)
			b = keyhash.Strs(b, id.DatasetRoles[ds])
		}
		b = keyhash.Strs(b, id.WithoutRLS)
	}
	b = keyhash.Strs(b, r.Workspaces)
	b = keyhash.Int(b, int64(len(r.Models)))
	for _, g := range r.Models {
		b = keyhash.Str(b, g.ID)
		b = keyhash.Bool(b, g.SSO)
		b = keyhash.Bool(b, g.Identity != nil)
		if id := g.Identity; id != nil {
			b = keyhash.Bool(b, id.ServicePrincipal)
			b = keyhash.Str(b, id.Username)
			b = keyhash.Str(b, id.CustomData)
			b = keyhash.Strs(b, id.Roles)
		}
	}
	return sha256.Sum256(b)
}

// Issue mints one embed token for r (see plan for the route each kind
// takes), or hands out the token already minted for an identical request
// until its RefreshAt, without any upstream call; identical concurrent
// requests share one mint. The mint runs on a context that none of the
// callers can cancel (each still returns as soon as its own ctx ends),
// bounded by sharedMintTimeouts x Timeout. A failed plan or mint is shared by
// the callers waiting for it, and never cached. A caller whose context is
// already done starts nothing. With WithSharedTokens, a miss asks the fleet
// first (claimShared): another replica's token, or a wait (up to Timeout)
// for the replica minting it; a token minted here is stored for the fleet.
// A hit of this process's cache never asks the fleet.
func (cl *Client) Issue(ctx context.Context, r TokenRequest) (*EmbedToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("powerbi: Issue: %w", err)
	}
	if cl.tokens == nil {
		m, err := cl.tracedPlan(ctx, r)
		if err != nil {
			return nil, err
		}
		return cl.tracedMint(ctx, m, r.Lifetime)
	}
	k := grantKeyOf(r)
	if tok, ok := cl.tokens.get(k, cl.now()); ok {
		if span := trace.SpanFromContext(ctx); span.IsRecording() { // else its arguments still cost an allocation
			span.SetAttributes(attribute.Bool(attrTokenCached, true))
		}
		return tok.copy(true), nil
	}
	return cl.issueMiss(ctx, r, k)
}

// issueMiss is Issue for a request the cache does not hold: the shared
// flight that mints it. (Apart from Issue, so that the cached path keeps
// the request on its stack: the flight's closures take it to the heap.)
func (cl *Client) issueMiss(ctx context.Context, r TokenRequest, k grantKey) (*EmbedToken, error) {
	const op = "Issue"
	type result struct {
		tok    *EmbedToken
		cached bool
	}
	flight := func(ctx context.Context) (result, error) {
		var minted *EmbedToken // for the fleet, when this replica mints
		// A flight that ended between our lookup and this one has filled
		// the cache.
		if tok, ok := cl.tokens.get(k, cl.now()); ok {
			return result{tok, true}, nil
		}
		ctx, cancel := context.WithTimeout(ctx, sharedMintTimeouts*cl.cfg.Timeout)
		defer cancel()
		if cl.fleet != nil {
			// Another replica may have minted it, or be minting it.
			tok, done := cl.claimShared(ctx, k)
			if tok != nil {
				cl.tokens.put(k, tok, cl.now())
				return result{tok, true}, nil
			}
			defer func() { done(minted) }()
		}
		tok, err := func() (*EmbedToken, error) {
			m, err := cl.tracedPlan(ctx, r)
			if err != nil {
				return nil, err
			}
			if cl.mintSF.callers(string(k[:])) == 0 {
				// Every caller left while the plan was made: no one would
				// get the token, so none is minted.
				return nil, errCallersGone
			}
			return cl.tracedMint(ctx, m, r.Lifetime)
		}()
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
				// Our own deadline, not any caller's: upstream was too slow.
				err = &UnavailableError{Op: op, Err: err}
			}
			return result{}, err
		}
		cl.tokens.put(k, tok, cl.now())
		minted = tok
		return result{tok: tok}, nil
	}
	res, err := shared(ctx, &cl.mintSF, string(k[:]), op, flight)
	if errors.Is(err, errCallersGone) && ctx.Err() == nil {
		// We joined just as the flight found no one waiting and gave up:
		// fly again, for us.
		res, err = shared(ctx, &cl.mintSF, string(k[:]), op, flight)
	}
	if errors.Is(err, errCallersGone) {
		err = fmt.Errorf("powerbi: %s: %w", op, context.Canceled)
	}
	if err != nil {
		return nil, err
	}
	return res.tok.copy(res.cached), nil
}

// errCallersGone ends a mint's flight whose callers all left during its
// plan: a caller that joined as it ended flies again.
var errCallersGone = errors.New("every caller has gone")

// copy returns a copy of t that shares nothing mutable with it.
func (t *EmbedToken) copy(cached bool) *EmbedToken {
	c := *t
	c.Cached = cached
	c.Items = slices.Clone(t.Items)
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
	refresh time.Time // tok.RefreshAt
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
	refresh := tok.RefreshAt
	if !now.Before(refresh) || !now.Before(tok.Expiration) {
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

// size returns the number of entries (TokenCacheSize, tests).
func (c *tokenCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
