package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/testkit"
	"github.com/embedgate/embedgate/powerbi"
)

// countingModels is a modelGateway that counts its calls: each is a
// decision the cache did not hold.
type countingModels struct{ calls int }

func (c *countingModels) Models(context.Context, powerbi.TokenRequest) ([]powerbi.Model, error) {
	c.calls++
	return nil, nil
}

func cachePolicy(t *testing.T, role string) *authz.Policy {
	t.Helper()
	p, err := authz.Parse([]byte(`
callers:
  - id: ` + testCaller + `
    tenants: [acme]
tenants:
  acme:
    workspace_id: a0000000-0000-4000-8000-000000000001
    reports: ["*"]
    rls:
      username: "{user}"
      roles: [` + role + `]
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecidedCache: a request is decided once per policy and per
// metadata_ttl; another user, another policy (a reload), the end of the
// ttl and a failed mint each decide it again; a refusal is never kept.
func TestDecidedCache(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	c := newDecidedCache(time.Minute, clock.Now)
	gw := &countingModels{}
	p1 := cachePolicy(t, "EU")
	alice := authz.Request{Caller: testCaller, Tenant: "acme", User: "alice", Items: authz.Reports("a1000000-0000-4000-8000-000000000001")}
	bob := alice
	bob.User = "bob"

	ask := func(p *authz.Policy, r authz.Request, wantCalls int) (authz.Grant, [32]byte) {
		t.Helper()
		g, tr, k, err := c.request(context.Background(), gw, p, r)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Identity == nil || tr.Identity.Username != r.User {
			t.Fatalf("%s's request carries the identity %+v", r.User, tr.Identity)
		}
		if gw.calls != wantCalls {
			t.Fatalf("%d decisions, want %d", gw.calls, wantCalls)
		}
		return g, k
	}
	ask(p1, alice, 1)
	ask(p1, alice, 1) // held
	ask(p1, bob, 2)   // another user: another grant
	ask(p1, bob, 2)

	p2 := cachePolicy(t, "US") // a reload: a new policy, whatever its version
	if g, _ := ask(p2, alice, 3); g.Identity.Roles[0] != "US" {
		t.Errorf("after the reload the grant has the roles %q, want the new policy's", g.Identity.Roles)
	}
	ask(p2, alice, 3)
	ask(p2, bob, 4) // the old policy's entries went with it

	clock.Advance(time.Minute)
	_, k := ask(p2, alice, 5) // metadata_ttl is over
	c.forget(k)
	ask(p2, alice, 6) // a failed mint forgot it

	refused := alice
	refused.Tenant = "umbrella"
	for range 2 {
		var d *authz.Denial
		if _, _, _, err := c.request(context.Background(), gw, p2, refused); !errors.As(err, &d) {
			t.Fatalf("umbrella: %v, want a denial", err)
		}
	}
	if _, kept := c.m[refused.Key()]; kept || len(c.m) != 2 {
		t.Errorf("%d entries, want alice's and bob's (refusals are not kept)", len(c.m))
	}
}
