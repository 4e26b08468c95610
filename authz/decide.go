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
	// Workspaces are every workspace of the tenant, lower case, the primary one
	// first: the only ones whose datasets a composite model or a paginated report of
	// the token may read (Grant.Models).
	Workspaces []string
	// SSO lists the datasets and paginated reports (lower case) whose single
	// sign-on data sources get an identity blob, or Wildcard; nil for none.
	SSO []string
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
	// Username is the tenant's username template expanded for the request's user;
	// "" when ServicePrincipal.
	Username string
	// ServicePrincipal: the username is Embedgate's service principal's object id
	// (or its profile's): the policy's username is ServicePrincipal.
	ServicePrincipal bool
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
	// Datasets are the identities of the datasets rls.datasets names (lower case),
	// each complete (what it does not set is the rls block's); nil when none. A
	// copy the caller may keep.
	Datasets map[string]DatasetIdentity
}

// DatasetIdentity is the effective identity of one dataset, expanded for one
// request.
type DatasetIdentity struct {
	// ServicePrincipal: the username is Embedgate's service principal's object id
	// (or its profile's); Username is then "".
	ServicePrincipal bool
	Username         string
	CustomData       string
	// Roles are its roles; empty for none.
	Roles []string
}

// rolesFor returns the roles the rls block gives a dataset (id in lower case):
// its dataset_roles, else the default roles.
func (id *Identity) rolesFor(dataset string) []string {
	if roles, ok := id.DatasetRoles[dataset]; ok {
		return roles
	}
	return id.Roles
}

// datasetIdentity is the identity of a dataset (id in lower case): its
// rls.datasets entry (own), else the rls block's.
func (id *Identity) datasetIdentity(dataset string) (di DatasetIdentity, own bool) {
	if di, ok := id.Datasets[dataset]; ok {
		return di, true
	}
	return DatasetIdentity{ServicePrincipal: id.ServicePrincipal, Username: id.Username, CustomData: id.CustomData,
		Roles: slices.Clone(id.rolesFor(dataset))}, false
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
		Workspaces:  slices.Clone(t.workspaces),
		SSO:         slices.Clone(t.sso),
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
		ServicePrincipal: r.servicePrincipal,
		CustomData:       r.customData.expand(user, tenantKey),
		Roles:            slices.Clone(r.roles),
		WithoutRLS:       slices.Clone(r.withoutRLS),
	}
	if !r.servicePrincipal {
		id.Username = r.username.expand(user, tenantKey)
		if d := checkUsername(id.Username, rule, ".rls.username"); d != nil {
			return nil, d
		}
	}
	if r.datasetRoles != nil {
		id.DatasetRoles = make(map[string][]string, len(r.datasetRoles))
		for ds, roles := range r.datasetRoles {
			id.DatasetRoles[ds] = slices.Clone(roles)
		}
	}
	for ds, dr := range r.datasets {
		di, _ := id.datasetIdentity(ds)
		if dr.username != nil {
			di.ServicePrincipal, di.Username = dr.servicePrincipal, ""
			if !dr.servicePrincipal {
				di.Username = dr.username.expand(user, tenantKey)
				if d := checkUsername(di.Username, rule, ".rls.datasets.", ds, ".username"); d != nil {
					return nil, d
				}
			}
		}
		if dr.customData != nil {
			di.CustomData = dr.customData.expand(user, tenantKey)
		}
		if dr.roles != nil {
			di.Roles = slices.Clone(dr.roles)
		}
		if id.Datasets == nil {
			id.Datasets = make(map[string]DatasetIdentity, len(r.datasets))
		}
		id.Datasets[ds] = di
	}
	return id, nil
}

// checkUsername refuses an expanded username Power BI would not take. The
// rule's name comes in parts, joined only for a denial: this runs on every
// call.
func checkUsername(username string, rule ...string) *Denial {
	if n := utf8.RuneCountInString(username); n > MaxUsernameLength {
		return invalid(strings.Join(rule, ""), "user",
			fmt.Sprintf("user expands to a %d-character username; at most %d are allowed", n, MaxUsernameLength))
	}
	if strings.IndexFunc(username, unsafeInUsername) >= 0 {
		return invalid(strings.Join(rule, ""), "user", "user must not contain whitespace or control characters")
	}
	return nil
}
