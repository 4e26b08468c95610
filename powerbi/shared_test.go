package powerbi

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeFleet is a SharedTokens in memory: what one replica stores, the
// next one claims.
type fakeFleet struct {
	mu       sync.Mutex
	entries  map[[32]byte][]byte
	claims   int
	released int
	err      error // every Claim fails with it
}

func (f *fakeFleet) Claim(_ context.Context, grant [32]byte) ([]byte, func([]byte, time.Time), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if f.err != nil {
		return nil, nil, f.err
	}
	if v, ok := f.entries[grant]; ok {
		return v, nil, nil
	}
	return nil, func(v []byte, _ time.Time) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if v == nil {
			f.released++
			return
		}
		f.entries[grant] = v
	}, nil
}

func (f *fakeFleet) claimCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.claims }

// TestSharedTokensAcrossReplicas: a second Client (another replica) gets
// the token the first minted, without a POST; its own cache then serves it
// without asking the fleet again.
func TestSharedTokensAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fleet := &fakeFleet{entries: map[[32]byte][]byte{}}
	e.c.fleet = fleet
	other, err := New(e.cfg, WithClock(e.clock.Now), WithSharedTokens(fleet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	ctx := context.Background()
	first, err := e.c.Issue(ctx, req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	second, err := other.Issue(ctx, req(repPlain))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 1 {
		t.Errorf("GenerateToken POSTs = %d, want 1 across the two replicas", got)
	}
	if second.Token != first.Token || !second.Cached || first.Cached {
		t.Errorf("the second replica got token %s (cached %v), want the first's", second.TokenID, second.Cached)
	}
	if diff := cmp.Diff(first, second, cmpIgnoreCached); diff != "" {
		t.Errorf("the shared token differs (-first +second):\n%s", diff)
	}
	claims := fleet.claimCount()
	for range 3 {
		if _, err := other.Issue(ctx, req(repPlain)); err != nil {
			t.Fatal(err)
		}
	}
	if fleet.claimCount() != claims {
		t.Errorf("a hit of the local cache asked the fleet (%d claims, then %d)", claims, fleet.claimCount())
	}
}

var cmpIgnoreCached = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Cached" }, cmp.Ignore())

// TestSharedTokensUnavailable: a fleet that fails costs nothing but the
// sharing: the replica mints by itself.
func TestSharedTokensUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.c.fleet = &fakeFleet{err: errors.New("Redis unavailable")}
	if _, err := e.c.Issue(context.Background(), req(repPlain)); err != nil {
		t.Fatal(err)
	}
	if got := e.generatePosts(); got != 1 {
		t.Errorf("GenerateToken POSTs = %d, want 1", got)
	}
}

// TestSharedLeaseReleasedOnFailure: a mint that fails stores nothing and
// releases the lease, so another replica may try.
func TestSharedLeaseReleasedOnFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fleet := &fakeFleet{entries: map[[32]byte][]byte{}}
	e.c.fleet = fleet
	if _, err := e.c.Issue(context.Background(), req("00000000-0000-4000-8000-00000000dead")); err == nil {
		t.Fatal("Issue of an unknown report succeeded")
	}
	if fleet.released != 1 || len(fleet.entries) != 0 {
		t.Errorf("released %d, stored %d; want the lease released and nothing stored", fleet.released, len(fleet.entries))
	}
}

// TestSharedTokenKeepsEveryField: every field of EmbedToken but Cached
// survives the fleet's encoding; a field added to EmbedToken (or
// Embedded) must be added to sharedToken (or sharedEmbedded, which the
// compiler checks).
func TestSharedTokenKeepsEveryField(t *testing.T) {
	t.Parallel()
	var tok EmbedToken
	v := reflect.ValueOf(&tok).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString("value of " + v.Type().Field(i).Name)
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, i, 5, time.UTC)))
		case time.Duration:
			f.SetInt(int64(time.Minute) * int64(i+1))
		case []Embedded:
			f.Set(reflect.ValueOf([]Embedded{{Kind: KindTile, ID: "t", Name: "n", EmbedURL: "u", WorkspaceID: "w", DatasetID: "d", ReportID: "r", DashboardID: "b"}}))
		case bool:
			f.SetBool(true)
		default:
			t.Fatalf("EmbedToken.%s: a type this test does not fill; add it here and to sharedToken", v.Type().Field(i).Name)
		}
	}
	got, err := decodeShared(encodeShared(&tok))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&tok, got, cmpIgnoreCached); diff != "" {
		t.Errorf("lost in the fleet's encoding (-want +got):\n%s", diff)
	}
	if _, err := decodeShared([]byte(`{"v":2,"token":"x"}`)); !errors.Is(err, errSharedFormat) {
		t.Errorf("another format: err = %v", err)
	}
}
