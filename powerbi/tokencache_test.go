package powerbi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

func TestRefreshAt(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration // expiration - issued
		want time.Duration // RefreshAt - issued
	}{
		{"an hour: 10m30s before expiry", time.Hour, 49*time.Minute + 30*time.Second},
		{"ten hours", 10 * time.Hour, 9*time.Hour + 49*time.Minute + 30*time.Second},
		{"30 minutes", 30 * time.Minute, 19*time.Minute + 30*time.Second},
		{"11 minutes: reused for 30s", 11 * time.Minute, 30 * time.Second},
		{"just over the guard: reused for 30s, still more than 10 minutes left", 10*time.Minute + 40*time.Second, 30 * time.Second},
		{"the guard itself: half its life", 10*time.Minute + 30*time.Second, 5*time.Minute + 15*time.Second},
		{"5 minutes: half its life", 5 * time.Minute, 2*time.Minute + 30*time.Second},
		{"2 minutes: half its life, never the issue time", 2 * time.Minute, time.Minute},
		{"1 minute", time.Minute, 30 * time.Second},
		{"1 second, rounded up", time.Second, time.Second},
		{"already expired: never reused", -time.Minute, 0},
		{"odd nanoseconds round up", 4*time.Hour + 3, 3*time.Hour + 49*time.Minute + 31*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := RefreshAt(t0, t0.Add(tt.life)).Sub(t0); got != tt.want {
				t.Errorf("RefreshAt(t0, t0+%s) = t0+%s, want t0+%s", tt.life, got, tt.want)
			}
		})
	}
	// Whatever the lifetime: after the issue time; and with more than
	// ClientRenewWindow left whenever the lifetime is longer than the window
	// plus slack, so a browser following Microsoft's guidance never gets a
	// token it would renew at once.
	for life := time.Second; life <= 2*time.Hour; life += 7 * time.Second {
		for _, issued := range []time.Time{t0, t0.Add(123456789)} {
			at := RefreshAt(issued, issued.Add(life))
			if !at.After(issued) {
				t.Fatalf("life %s: RefreshAt = issued", life)
			}
			if left := issued.Add(life).Sub(at); life > ClientRenewWindow+renewSlack && left <= ClientRenewWindow {
				t.Fatalf("life %s: a token handed out until RefreshAt has only %s left", life, left)
			}
		}
	}
}

func TestGrantKey(t *testing.T) {
	t.Parallel()
	base := func() TokenRequest {
		return TokenRequest{
			ProfileID:          testProfile,
			Items:              []Item{rep(testWS, repSales), rep(testWS2, repWS2)},
			TargetWorkspaceIDs: []string{testWS},
			Lifetime:           time.Hour,
			Identity:           &Identity{Username: "alice", CustomData: "acme", Roles: []string{"A", "B"}, DatasetRoles: map[string][]string{dsRLS: {"EU"}, dsRLS2: {"US"}}},
		}
	}
	key := func(mutate func(*TokenRequest)) grantKey {
		r := base()
		mutate(&r)
		return grantKeyOf(r)
	}
	same := func(*TokenRequest) {}
	tests := []struct {
		name   string
		mutate func(*TokenRequest)
		same   bool
	}{
		{"identical", same, true},
		{"DatasetRoles built in another order", func(r *TokenRequest) {
			m := map[string][]string{}
			m[dsRLS2] = []string{"US"}
			m[dsRLS] = []string{"EU"}
			r.Identity.DatasetRoles = m
		}, true},
		{"profile", func(r *TokenRequest) { r.ProfileID = "" }, false},
		{"report order", func(r *TokenRequest) { r.Items[0], r.Items[1] = r.Items[1], r.Items[0] }, false},
		{"report workspace", func(r *TokenRequest) { r.Items[0].WorkspaceID = testWS2 }, false},
		{"kind", func(r *TokenRequest) { r.Items[0].Kind = KindDashboard }, false},
		{"without rls", func(r *TokenRequest) { r.Identity.WithoutRLS = []string{repSales} }, false},
		{"target workspaces nil", func(r *TokenRequest) { r.TargetWorkspaceIDs = nil }, false},
		{"target workspaces empty", func(r *TokenRequest) { r.TargetWorkspaceIDs = []string{} }, false},
		{"edit", func(r *TokenRequest) { r.AllowEdit = true }, false},
		{"lifetime", func(r *TokenRequest) { r.Lifetime = 2 * time.Hour }, false},
		{"username", func(r *TokenRequest) { r.Identity.Username = "bob" }, false},
		{"custom data", func(r *TokenRequest) { r.Identity.CustomData = "" }, false},
		{"roles", func(r *TokenRequest) { r.Identity.Roles = []string{"A"} }, false},
		{"dataset roles", func(r *TokenRequest) { r.Identity.DatasetRoles[dsRLS2] = []string{"EU"} }, false},
		{"no identity", func(r *TokenRequest) { r.Identity = nil }, false},
	}
	want := key(same)
	for _, tt := range tests {
		if got := key(tt.mutate) == want; got != tt.same {
			t.Errorf("%s: same key = %v, want %v", tt.name, got, tt.same)
		}
	}
	// A tile's dashboard is part of the key.
	if grantKeyOf(TokenRequest{Items: tileItem(testWS, dashSales, tileSales)}) == grantKeyOf(TokenRequest{Items: tileItem(testWS, "", tileSales)}) {
		t.Errorf("a tile's dashboard is not part of the key")
	}
}

func TestTokenReusedUntilRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r := req(repSales)
	r.Identity = &Identity{Username: "alice", Roles: []string{"Customer"}}
	first, err := e.c.Issue(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || !first.Issued.Equal(e.clock.Now()) {
		t.Errorf("first: Cached = %v, Issued = %v; want false, %v", first.Cached, first.Issued, e.clock.Now())
	}
	first.Items[0].Name = "mutated by a caller"
	second, err := e.c.Issue(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
	if !second.Cached || second.TokenID != first.TokenID || !second.Issued.Equal(first.Issued) {
		t.Errorf("second: Cached %v, TokenID %s, Issued %v; want the first token from cache", second.Cached, second.TokenID, second.Issued)
	}
	if second.Items[0].Name != "SalesMarketing" {
		t.Errorf("a caller's change reached the cache: report name %q", second.Items[0].Name)
	}

	// Another user is another grant.
	r2 := r
	r2.Identity = &Identity{Username: "bob", Roles: []string{"Customer"}}
	other, err := e.c.Issue(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 2 || other.Cached || other.TokenID == first.TokenID {
		t.Errorf("other user: POSTs = %d, Cached = %v, TokenID %s; want a new token", got, other.Cached, other.TokenID)
	}

	// Reused up to the refresh point, replaced from it on.
	at := first.RefreshAt
	e.clock.Advance(at.Sub(e.clock.Now()) - time.Nanosecond)
	if tok := mustToken(t)(e.c.Issue(ctx, r)); !tok.Cached || e.generatePosts() != 2 {
		t.Fatalf("just before the refresh point: Cached %v, POSTs %d; want the cached token", tok.Cached, e.generatePosts())
	}
	e.clock.Advance(time.Nanosecond)
	fresh, err := e.c.Issue(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 3 || fresh.Cached || fresh.TokenID == first.TokenID || !fresh.Issued.Equal(at) {
		t.Errorf("at the refresh point: POSTs = %d, Cached %v, Issued %v; want a new token issued %v", got, fresh.Cached, fresh.Issued, at)
	}
	if tok := mustToken(t)(e.c.Issue(ctx, r)); !tok.Cached || tok.TokenID != fresh.TokenID {
		t.Errorf("after refresh: Cached %v, TokenID %s; want the new token from cache", tok.Cached, tok.TokenID)
	}
}

func TestItemTokenReused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r := TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "alice", Roles: []string{"Customer"}, WithoutRLS: []string{dsPlain}}}
	first, err := e.c.Issue(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	first.Items[0].Name = "mutated by a caller"
	second, err := e.c.Issue(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 1 || !second.Cached || second.TokenID != first.TokenID {
		t.Errorf("POSTs = %d, Cached %v; want one POST and the token from cache", got, second.Cached)
	}
	if second.Items[0].Name != "Sales overview" {
		t.Errorf("a caller's change reached the cache: dashboard name %q", second.Items[0].Name)
	}
	r.Items = tileItem(testWS, dashSales, tileSales)
	if tok := mustToken(t)(e.c.Issue(ctx, r)); tok.Cached || e.generatePosts() != 2 {
		t.Errorf("tile: Cached %v, POSTs %d; want a token of its own", tok.Cached, e.generatePosts())
	}
}

// mustToken returns the token of a GenerateToken call, failing t on an error.
func mustToken(t *testing.T) func(*EmbedToken, error) *EmbedToken {
	t.Helper()
	return func(tok *EmbedToken, err error) *EmbedToken {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func TestConcurrentIdenticalRequestsShareOnePost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := e.emu.Gate(emulator.RouteGenerateToken)
	defer gate.Open()
	const n = 8
	var wg sync.WaitGroup
	toks := make([]*EmbedToken, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = e.c.Issue(context.Background(), req(repPlain)) })
	}
	testkit.Eventually(t, "all callers waiting on one POST, held at Power BI", func() bool {
		return e.c.mintSF.waiting.Load() == n && gate.Waiting() > 0
	})
	gate.Open()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if toks[i].TokenID != toks[0].TokenID || toks[i].Cached {
			t.Errorf("caller %d: TokenID %s, Cached %v; want the shared token, not from cache", i, toks[i].TokenID, toks[i].Cached)
		}
		if i > 0 && &toks[i].Items[0] == &toks[0].Items[0] {
			t.Errorf("callers %d and 0 share their Reports", i)
		}
	}
	if got := e.generatePosts(); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
}

func TestCancelledCallerDoesNotCancelSharedMint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := e.emu.Gate(emulator.RouteGenerateToken)
	defer gate.Open()
	ctx, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() {
		_, err := e.c.Issue(ctx, req(repPlain))
		impatient <- err
	}()
	type result struct {
		tok *EmbedToken
		err error
	}
	patient := make(chan result, 1)
	go func() {
		tok, err := e.c.Issue(context.Background(), req(repPlain))
		patient <- result{tok, err}
	}()
	testkit.Eventually(t, "both callers waiting on one POST, held at Power BI", func() bool {
		return e.c.mintSF.waiting.Load() == 2 && gate.Waiting() > 0
	})
	cancel()
	select {
	case err := <-impatient:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled caller did not return while the POST was pending")
	}
	gate.Open()
	res := <-patient
	if res.err != nil {
		t.Fatalf("the other caller failed: %v", res.err)
	}
	if tok := mustToken(t)(e.c.Issue(context.Background(), req(repPlain))); !tok.Cached || tok.TokenID != res.tok.TokenID {
		t.Errorf("next call: Cached %v, TokenID %s; want the shared token from cache", tok.Cached, tok.TokenID)
	}
	if got := e.generatePosts(); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
}

func TestFailedMintNotCached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer emulator.Answer
		want   error
	}{
		{"503 after the retry", times(2, answer(503, `{"error":{"code":"ServiceUnavailable","message":"try later"}}`)), ErrUnavailable},
		{"400", times(1, answer(400, `{"error":{"code":"InvalidRequest","message":"no"}}`)), ErrBadRequest},
		{"429", times(1, answer(429, `{"error":{"code":"TooManyRequests"}}`, "Retry-After", "5")), ErrThrottled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.emu.SetAnswer(emulator.RouteGenerateToken, tt.answer)
			if _, err := e.c.Issue(ctx, req(repPlain)); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			tok, err := e.c.Issue(ctx, req(repPlain))
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.answer.Times + 1; tok.Cached || e.generatePosts() != want {
				t.Errorf("after the failure: Cached %v, POSTs %d; want a new POST (%d in all)", tok.Cached, e.generatePosts(), want)
			}
		})
	}
}

func TestTokenCacheDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache)
	if e.c.tokens != nil {
		t.Fatal("token cache built while disabled")
	}
	seen := map[string]bool{}
	for range 3 {
		tok, err := e.c.Issue(context.Background(), req(repPlain))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Cached || seen[tok.TokenID] {
			t.Errorf("token %s: Cached %v, seen before %v", tok.TokenID, tok.Cached, seen[tok.TokenID])
		}
		seen[tok.TokenID] = true
	}
	if got := e.generatePosts(); got != 3 {
		t.Errorf("POSTs = %d, want 3", got)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)
	c := newTokenCache(false)
	c.max = 3
	k := func(i byte) grantKey { return grantKey{i} }
	tok := func(life time.Duration) *EmbedToken {
		return &EmbedToken{Issued: t0, Expiration: t0.Add(life), RefreshAt: RefreshAt(t0, t0.Add(life))}
	}
	c.put(k(1), tok(time.Hour), t0)      // refresh t0+49m30s
	c.put(k(2), tok(10*time.Minute), t0) // refresh t0+5m
	c.put(k(3), tok(time.Hour), t0)
	c.put(k(9), tok(0), t0) // expired on arrival: not stored
	if got := c.size(); got != 3 {
		t.Fatalf("size = %d, want 3", got)
	}
	now := t0.Add(9 * time.Minute)
	c.put(k(4), tok(time.Hour), now) // full: the expired 2 goes first
	c.put(k(5), tok(time.Hour), now) // full, none expired: the oldest, 1, goes
	for i, want := range map[byte]bool{1: false, 2: false, 3: true, 4: true, 5: true, 9: false} {
		if _, ok := c.get(k(i), now); ok != want {
			t.Errorf("entry %d cached = %v, want %v", i, ok, want)
		}
	}
	if got := c.size(); got != 3 {
		t.Errorf("size = %d, want 3", got)
	}
}

// TestGrantKeyCoversEveryField changes every field of a full TokenRequest by
// reflection, one at a time, down into its items and identity, and fails on a
// field whose change leaves the key as it was: two requests that differ in it
// would share a token. A field added to TokenRequest without a line in
// grantKeyOf fails here.
func TestGrantKeyCoversEveryField(t *testing.T) {
	t.Parallel()
	full := func() TokenRequest {
		return TokenRequest{
			ProfileID:          testProfile,
			Items:              []Item{{Kind: KindTile, ID: tileSales, WorkspaceID: testWS, DashboardID: dashSales}},
			TargetWorkspaceIDs: []string{testWS},
			AllowEdit:          false,
			Lifetime:           time.Hour,
			Identity: &Identity{Username: "alice", CustomData: "acme", Roles: []string{"A"},
				DatasetRoles: map[string][]string{dsRLS: {"EU"}}, WithoutRLS: []string{repPlain}},
			Workspaces: []string{testWS},
			Models: []ModelGrant{{ID: dsRLS, SSO: true,
				Identity: &ModelIdentity{Username: "bob", CustomData: "acme", Roles: []string{"B"}}}},
		}
	}
	testkit.EachFieldChanges(t, full, grantKeyOf)
}
