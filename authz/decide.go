package authz

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Grant is everything the Power BI gateway needs to mint one token, decided by the
// policy: the caller never chooses the workspaces, the profile or the RLS roles.
type Grant struct {
	// Caller is the SPIFFE ID the grant was made to, for the audit record.
	Caller string
	// Tenant is the tenant key the grant is for.
	Tenant string
	// WorkspaceID is the tenant's primary workspace, lower case.
	WorkspaceID string
	// ProfileID is the service-principal profile, lower case; "" if none.
	ProfileID string
	// Items are the requested items in request order, each with the workspace it
	// lives in, all of one kind (see Request.Items).
	Items []Item
	// TargetWorkspaceIDs are the workspaces the token may create and save reports in
	// (the tenant's create workspace) when AllowCreate was asked and granted; nil
	// otherwise.
	TargetWorkspaceIDs []string
	// Identity is the RLS effective identity; nil when the tenant has no rls block.
	Identity *Identity
	// AllowEdit is true when an edit token was requested and is allowed.
	AllowEdit bool
	// Lifetime is the lifetime to request, after default and clamp, in whole minutes.
	Lifetime time.Duration
	// LifetimeClamped is true when the request asked for more than max_lifetime and
	// got max_lifetime: worth a log line and an audit field.
	LifetimeClamped bool
	// Rule is the policy entry that decided, e.g. `tenants.acme`, for audit and explain.
	Rule string
}

// Item is a granted item and the workspace it lives in, all ids lower case.
type Item struct {
	Kind        Kind
	ID          string
	WorkspaceID string
	// Parent is a tile's dashboard, in the same workspace; "" for other kinds. The
	// policy grants every tile of a granted dashboard and cannot know which tiles
	// those are: the gateway must address the tile under its dashboard
	// (dashboards/{id}/tiles/{tile}), so that Power BI refuses a tile of another one.
	Parent string
}

// Identity is a Power BI effective identity, already expanded for one request.
type Identity struct {
	// Username is the tenant's username template expanded for the request's user.
	Username string
	// CustomData is the expanded custom_data template; "" when the tenant has none.
	CustomData string
	// Roles are the tenant's default RLS roles, a copy the caller may keep.
	Roles []string
	// DatasetRoles maps a dataset id (lower case) to the roles that replace Roles for
	// that dataset; nil when the tenant has no dataset_roles. A copy the caller may keep.
	DatasetRoles map[string][]string
	// WithoutRLS are the report and dataset ids (lower case) the policy says carry no
	// row-level security: a dataset that enforces none is embedded without an identity
	// only if it, or every requested report on it, is listed here. Any other such
	// dataset must be refused (RLS fails closed). A copy the caller may keep.
	WithoutRLS []string
}

// Decide applies the policy to one request: a Grant, or a *Denial wrapping one of the
// Err* sentinels. Checks run in an order that never leaks: the caller, then the tenant
// grant, and only then anything that depends on the tenant's entry.
func (p *Policy) Decide(r Request) (Grant, error) {
	c, ok := p.callers[r.Caller]
	if !ok {
		return Grant{}, &Denial{Reason: ErrUnknownCaller, Rule: "callers",
			Message: "caller is not allowed to request embed tokens"}
	}
	t, known := p.tenants[r.Tenant]
	if !known || !(c.allTenants || c.tenants[r.Tenant]) {
		// The same Reason, Rule and Message whether the tenant exists or not.
		return Grant{}, &Denial{Reason: ErrTenantNotAllowed, Rule: c.rule + ".tenants",
			Message: fmt.Sprintf("caller may not act for tenant %q", r.Tenant)}
	}
	return t.decide(r)
}

// decide is Decide for a request whose caller may act for tenant t.
func (t *tenant) decide(r Request) (Grant, error) {
	rule := "tenants." + t.key
	if d := checkRequest(r); d != nil {
		return Grant{}, d
	}
	g := Grant{
		Caller:      r.Caller,
		Tenant:      t.key,
		WorkspaceID: t.workspaceID,
		ProfileID:   t.profileID,
		AllowEdit:   r.AllowEdit,
		Lifetime:    r.Lifetime,
		Rule:        rule,
		Items:       make([]Item, len(r.Items)),
	}
	for i, ref := range r.Items {
		item, d := t.resolve(ref, rule)
		if d != nil {
			return Grant{}, d
		}
		g.Items[i] = item
	}
	if r.AllowEdit && !t.allowEdit {
		return Grant{}, &Denial{Reason: ErrEditNotAllowed, Rule: rule + ".allow_edit",
			Message: fmt.Sprintf("edit tokens are not allowed for tenant %q", t.key)}
	}
	if r.AllowCreate {
		if !t.allowCreate {
			return Grant{}, &Denial{Reason: ErrCreateNotAllowed, Rule: rule + ".allow_create",
				Message: fmt.Sprintf("create tokens are not allowed for tenant %q", t.key)}
		}
		g.TargetWorkspaceIDs = []string{t.createWorkspaceID}
	}

	switch {
	case g.Lifetime == 0:
		g.Lifetime = t.defaultLifetime
	case g.Lifetime > t.maxLifetime:
		g.Lifetime, g.LifetimeClamped = t.maxLifetime, true
	}
	g.Lifetime = g.Lifetime.Truncate(time.Minute)

	if t.rls != nil {
		id, d := t.rls.identity(r.User, t.key, rule)
		if d != nil {
			return Grant{}, d
		}
		g.Identity = id
	}
	return g, nil
}

// resolve finds the workspace of a requested item (a uuid, any case) among the
// tenant's items, or denies it with the same message whether or not it exists
// elsewhere. A tile resolves through its dashboard.
func (t *tenant) resolve(ref ItemRef, rule string) (Item, *Denial) {
	item := Item{Kind: ref.Kind, ID: strings.ToLower(ref.ID)}
	lookup, what := item.ID, ref.Kind
	if ref.Kind == KindTile {
		item.Parent = strings.ToLower(ref.Parent)
		lookup, what = item.Parent, KindDashboard
	}
	l := t.listed(what)
	ws, ok := l.ids[lookup]
	if !ok && l.all {
		ws, ok = t.workspaceID, true
	}
	if !ok {
		return item, &Denial{Reason: notAllowed(what), Rule: rule + "." + what.String() + "s",
			Message: fmt.Sprintf("%s %s is not available to tenant %q", what, lookup, t.key)}
	}
	item.WorkspaceID = ws
	return item, nil
}

// notAllowed is the denial reason for an item of kind k outside the tenant's lists.
func notAllowed(k Kind) error {
	if k == KindDashboard {
		return ErrDashboardNotAllowed
	}
	return ErrReportNotAllowed
}

// identity expands the tenant's rls block for one user.
func (r *rls) identity(user, tenantKey, rule string) (*Identity, *Denial) {
	id := &Identity{
		Username:   r.username.expand(user, tenantKey),
		CustomData: r.customData.expand(user, tenantKey),
		Roles:      slices.Clone(r.roles),
		WithoutRLS: slices.Clone(r.withoutRLS),
	}
	if n := utf8.RuneCountInString(id.Username); n > MaxUsernameLength {
		return nil, invalid(rule+".rls.username", "user",
			fmt.Sprintf("user expands to a %d-character username; at most %d are allowed", n, MaxUsernameLength))
	}
	if strings.IndexFunc(id.Username, unsafeInUsername) >= 0 {
		return nil, invalid(rule+".rls.username", "user",
			"user must not contain whitespace or control characters")
	}
	if r.datasetRoles != nil {
		id.DatasetRoles = make(map[string][]string, len(r.datasetRoles))
		for ds, roles := range r.datasetRoles {
			id.DatasetRoles[ds] = slices.Clone(roles)
		}
	}
	return id, nil
}
