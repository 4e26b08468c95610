package authz

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Tenant is a read-only view of what one tenant of a policy grants, for checks
// that go through it item by item (embedgate check --online) rather than
// decide one request.
type Tenant struct {
	// Key is the tenant key.
	Key string
	// ProfileID is the service-principal profile, lower case; "" if none.
	ProfileID string
	// Workspaces are the tenant's workspaces, the primary one first.
	Workspaces []Workspace
	// RLS is true when the tenant has an rls block.
	RLS bool
	// MaxLifetime is the tenant's max_lifetime (its default applied).
	MaxLifetime time.Duration
	// Digest changes whenever anything in the tenant's entry does, so that a
	// check can redo only the tenants a reload changed.
	Digest string
}

// Workspace is one of a tenant's workspaces and the items it grants there.
type Workspace struct {
	// ID is the workspace id, lower case.
	ID string
	// Reports and Dashboards are the ids listed for this workspace, sorted.
	Reports, Dashboards []string
	// AllReports and AllDashboards are the primary workspace's "*".
	AllReports, AllDashboards bool
}

// Tenants lists the policy's tenants, by key.
func (p *Policy) Tenants() []Tenant {
	out := make([]Tenant, 0, len(p.tenants))
	for _, key := range slices.Sorted(maps.Keys(p.tenants)) {
		t := p.tenants[key]
		v := Tenant{Key: key, ProfileID: t.profileID, RLS: t.rls != nil, MaxLifetime: t.maxLifetime, Digest: t.digest}
		byWS := map[string]*Workspace{t.workspaceID: {ID: t.workspaceID, AllReports: t.reports.all, AllDashboards: t.dashboards.all}}
		order := []string{t.workspaceID}
		add := func(ws string) *Workspace {
			if byWS[ws] == nil {
				byWS[ws] = &Workspace{ID: ws}
				order = append(order, ws)
			}
			return byWS[ws]
		}
		for id, ws := range t.reports.ids {
			w := add(ws)
			w.Reports = append(w.Reports, id)
		}
		for id, ws := range t.dashboards.ids {
			w := add(ws)
			w.Dashboards = append(w.Dashboards, id)
		}
		if t.createWorkspaceID != "" {
			add(t.createWorkspaceID)
		}
		slices.Sort(order[1:])
		for _, ws := range order {
			w := byWS[ws]
			slices.Sort(w.Reports)
			slices.Sort(w.Dashboards)
			v.Workspaces = append(v.Workspaces, *w)
		}
		out = append(out, v)
	}
	return out
}

// GrantFor decides a request for tenant as Decide does once a caller is allowed
// to act for it: for checks that ask "what would this tenant's token for these
// items be", with no caller in the picture. It never grants what the tenant's
// entry does not.
func (p *Policy) GrantFor(tenant, user string, items []ItemRef) (Grant, error) {
	t, ok := p.tenants[strings.TrimSpace(tenant)]
	if !ok || t.key != tenant {
		return Grant{}, &Denial{Reason: ErrTenantNotAllowed, Rule: "tenants", Message: "no tenant " + tenant + " in the policy"}
	}
	return t.decide(Request{Tenant: tenant, User: user, Items: items})
}
