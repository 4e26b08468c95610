package authz

import (
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// TestRequestKeyCoversEveryField: every field of a request, at any depth,
// changes its Key: two requests that differ (two users, two callers, edit
// or view) never share the grant cached under it.
func TestRequestKeyCoversEveryField(t *testing.T) {
	t.Parallel()
	testkit.EachFieldChanges(t, func() Request {
		return Request{
			Caller: "spiffe://mesh.example/ns/web/sa/frontend", Tenant: "acme", User: "alice",
			Items:     []ItemRef{{Kind: KindTile, ID: "t1", Parent: "d1"}},
			AllowEdit: true, AllowCreate: true, Lifetime: time.Hour,
		}
	}, Request.Key)
}

// TestRequestKeyAllocatesNothing: it is computed on every call.
func TestRequestKeyAllocatesNothing(t *testing.T) {
	r := Request{Caller: "spiffe://mesh.example/ns/web/sa/frontend", Tenant: "acme", User: "alice@acme.example", Items: Reports("a1000000-0000-4000-8000-000000000001")}
	if allocs := testing.AllocsPerRun(100, func() { _ = r.Key() }); allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
