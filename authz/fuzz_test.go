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
// KnownFields(true), and serves every tenant it grants (an item of a known workspace,
// a create workspace where create is allowed).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", tenantYAML, decisionPolicy, policyBad, policyV2,
		"callers: [\n", "tenants:\n  acme:\n", "a: &a [*a, *a]\n",
		"tenants: {acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*'], rls: {roles: [a], username: '{user}{tenant}'}, max_lifetime: 90s}}\n",
		"callers: [{id: spiffe://x/y, tenants: ['*'], rate_limit: {per_second: .nan, burst: 1}}]\n",
		"callers: [{id: spiffe://x/y, tenants: ['*']}]\ntenants: {acme: {workspace_id: 11111111-1111-1111-1111-111111111111, " +
			"dashboards: ['*'], workspaces: [{id: 22222222-2222-2222-2222-222222222222, reports: [aaaaaaaa-0000-0000-0000-000000000001]}], " +
			"rls: {roles: [a], dataset_roles: {ffffffff-0000-0000-0000-000000000001: [b]}}, allow_create: true, " +
			"create_workspace_id: 22222222-2222-2222-2222-222222222222}}\n",
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
				// A report if the tenant grants any, else a dashboard; create where allowed.
				req := Request{Caller: id, Tenant: key, User: "u", Lifetime: 25 * time.Hour}
				if len(tn.reports.ids) > 0 || tn.reports.all {
					req.Items, req.AllowCreate = Reports(acmeR1), tn.allowCreate
					for r := range tn.reports.ids {
						req.Items[0].ID = r
					}
				} else {
					req.Items = []ItemRef{{Kind: KindDashboard, ID: acmeR1}}
					for d := range tn.dashboards.ids {
						req.Items[0].ID = d
					}
				}
				g, err := p.Decide(req)
				if errors.Is(err, ErrInvalidRequest) {
					continue // a template with many {user} can outgrow the username limit
				}
				if err != nil {
					t.Fatalf("Decide(%s, %s) = %v, want a grant", id, key, err)
				}
				var item Item
				if len(g.Items) == 1 {
					item = g.Items[0]
				}
				if !isUUID(item.ID) || !isUUID(item.WorkspaceID) {
					t.Fatalf("Decide(%s, %s) granted item %+v, want one item in a workspace", id, key, item)
				}
				if req.AllowCreate && (len(g.TargetWorkspaceIDs) != 1 || !isUUID(g.TargetWorkspaceIDs[0])) {
					t.Fatalf("Decide(%s, %s) create targets = %q, want one workspace", id, key, g.TargetWorkspaceIDs)
				}
				if g.Lifetime != tn.maxLifetime || !g.LifetimeClamped || g.Lifetime < MinLifetime || g.Lifetime > MaxLifetime {
					t.Fatalf("Decide(%s, %s) lifetime = %v (clamped %v), max %v", id, key, g.Lifetime, g.LifetimeClamped, tn.maxLifetime)
				}
			}
		}
	})
}
