package authz

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: Parse never panics; every failure is a *ValidationError with at least one
// problem; a policy that parses re-validates clean, is as strict as yaml's
// KnownFields(true), and serves every tenant it grants.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", tenantYAML, decisionPolicy, policyBad, policyV2,
		"callers: [\n", "tenants:\n  acme:\n", "a: &a [*a, *a]\n",
		"tenants: {acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*'], rls: {roles: [a], username: '{user}{tenant}'}, max_lifetime: 90s}}\n",
		"callers: [{id: spiffe://x/y, tenants: ['*'], rate_limit: {per_second: .nan, burst: 1}}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error = %v (%T), want a *ValidationError with problems", err, err)
			}
			return
		}
		// A policy that parsed re-validates clean: parsing is deterministic.
		again, err := Parse(data)
		if err != nil || again.Version() != p.Version() {
			t.Fatalf("second Parse = %v, %v", again, err)
		}
		// ... and it is as strict as the yaml library's own strict decoding.
		var f policyFile
		strict := yaml.NewDecoder(bytes.NewReader(data))
		strict.KnownFields(true)
		if err := strict.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("Parse accepted what KnownFields(true) rejects: %v", err)
		}
		// Every granted tenant can be served: no valid policy makes Decide fail for a
		// well-formed request it allows, and lifetimes stay in the configured range.
		for id, c := range p.callers {
			for key, tn := range p.tenants {
				if !c.allTenants && !c.tenants[key] {
					continue
				}
				report := acmeR1
				for r := range tn.reports {
					report = r
				}
				g, err := p.Decide(Request{Caller: id, Tenant: key, User: "u", ReportIDs: []string{report}, Lifetime: 25 * time.Hour})
				if errors.Is(err, ErrInvalidRequest) {
					continue // a template with many {user} can outgrow the username limit
				}
				if err != nil {
					t.Fatalf("Decide(%s, %s) = %v, want a grant", id, key, err)
				}
				if g.Lifetime != tn.maxLifetime || !g.LifetimeClamped || g.Lifetime < MinLifetime || g.Lifetime > MaxLifetime {
					t.Fatalf("Decide(%s, %s) lifetime = %v (clamped %v), max %v", id, key, g.Lifetime, g.LifetimeClamped, tn.maxLifetime)
				}
			}
		}
	})
}
