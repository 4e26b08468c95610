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

// swappedPolicy is a PolicySource a test reloads by hand.
type swappedPolicy struct{ p *authz.Policy }

func (s *swappedPolicy) Current() *authz.Policy { return s.p }

func cachePolicy(t *testing.T, role string) *authz.Policy {
	t.Helper()
	return acmePolicy(t, "    rls:\n      username: \"{user}\"\n      roles: ["+role+"]\n")
}

// TestDecidedCache: a request is decided once per policy and per
// metadata_ttl, a hit handing back the grant decided then; another user,
// another policy (a reload), the end of the ttl and a failed mint each
// decide it again; an answer decided under a policy since replaced is not
// kept; a refusal is never kept.
func TestDecidedCache(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	p1 := cachePolicy(t, "EU")
	source := &swappedPolicy{p1}
	c := newDecidedCache(source, time.Minute, clock.Now)
	gw := &countingModels{}
	alice := authz.Request{Caller: testCaller, Tenant: "acme", User: "alice", Items: authz.Reports("a1000000-0000-4000-8000-000000000001")}
	bob := alice
	bob.User = "bob"

	// ask returns the grant and its key, and checks how many requests were
	// walked so far; a hit hands back the very grant decided before (its
	// identity, not an equal one: Decide did not run).
	ask := func(p *authz.Policy, r authz.Request, wantCalls int) (authz.Grant, [32]byte) {
		t.Helper()
		g, tr, k, err := c.request(context.Background(), gw, p, r)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Identity == nil || tr.Identity.Username != r.User || g.Identity.Username != r.User {
			t.Fatalf("%s's request carries the identity %+v", r.User, tr.Identity)
		}
		if gw.calls != wantCalls {
			t.Fatalf("%d decisions, want %d", gw.calls, wantCalls)
		}
		return g, k
	}
	first, _ := ask(p1, alice, 1)
	if again, _ := ask(p1, alice, 1); again.Identity != first.Identity {
		t.Error("a hit decided the request again")
	}
	ask(p1, bob, 2) // another user: another grant
	ask(p1, bob, 2)

	p2 := cachePolicy(t, "US") // a reload: a new policy, whatever its version
	source.p = p2
	if g, _ := ask(p2, alice, 3); g.Identity.Roles[0] != "US" {
		t.Errorf("after the reload the grant has the roles %q, want the new policy's", g.Identity.Roles)
	}
	ask(p2, alice, 3)
	ask(p1, bob, 4) // a call that straddled the reload: decided, not kept...
	ask(p2, alice, 4)
	ask(p2, bob, 5) // ...so neither the new entries went nor the old stayed

	clock.Advance(time.Minute)
	_, k := ask(p2, alice, 6) // metadata_ttl is over
	c.forget(k)
	ask(p2, alice, 7) // a failed mint forgot it

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
