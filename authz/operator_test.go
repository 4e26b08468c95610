package authz

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDecideForTenant: the operator's decision is the caller's, for every
// kind of request, refusals included; only the caller is left out.
func TestDecideForTenant(t *testing.T) {
	t.Parallel()
	p := mustParse(t, decisionPolicy)
	for _, r := range []Request{
		{Caller: frontend, Tenant: "acme", User: "alice@acme.com", Items: Reports(acmeR1)},
		{Caller: frontend, Tenant: "acme-eu", User: "bob", Items: Reports(otherR), AllowEdit: true, AllowCreate: true, Lifetime: 3 * time.Hour},
		{Caller: frontend, Tenant: "acme", User: "alice", Items: Reports(acmeR1), AllowEdit: true},
		{Caller: frontend, Tenant: "acme", User: "alice", Items: Reports(otherR)},
	} {
		want, wantErr := p.Decide(r)
		caller := r.Caller
		r.Caller = ""
		got, err := p.DecideForTenant(r)
		if !errors.Is(err, errors.Unwrap(wantErr)) || (err == nil) != (wantErr == nil) {
			t.Errorf("%+v: %v, Decide says %v", r, err, wantErr)
			continue
		}
		if err == nil {
			got.Caller = caller
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%+v: grant (-Decide +DecideForTenant):\n%s", r, diff)
		}
	}
	if _, err := p.DecideForTenant(Request{Tenant: "nowhere", User: "alice", Items: Reports(acmeR1)}); !errors.Is(err, ErrTenantNotAllowed) {
		t.Errorf("an unknown tenant: %v", err)
	}
}
