package authz

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Request is what a caller asks for, as the server authenticated and parsed it: either
// reports (ReportIDs) or one dashboard (DashboardID), optionally one of its tiles.
type Request struct {
	// Caller is the authenticated SPIFFE ID (the client certificate's URI SAN).
	Caller string
	// Tenant is the tenant key the caller acts for.
	Tenant string
	// User is the end user; the source of the RLS username, and recorded for audit.
	User string
	// ReportIDs are the reports to embed (1..MaxReportIDs uuids, any case); empty for a
	// dashboard or tile request.
	ReportIDs []string
	// DashboardID is the dashboard to embed, or the dashboard of TileID (uuid, any
	// case); empty for a report request.
	DashboardID string
	// TileID is a tile of DashboardID to embed alone (uuid, any case); optional.
	TileID string
	// AllowEdit asks for an edit token (reports only).
	AllowEdit bool
	// AllowCreate asks for a token that may create and save-as reports (reports only).
	AllowCreate bool
	// Lifetime is the requested token lifetime; 0 = the tenant's default.
	Lifetime time.Duration
}

// Grant is everything the Power BI gateway needs to mint one token, decided by the
// policy: the caller never chooses the workspaces, the profile or the RLS roles.
// Exactly one of Reports and Dashboard is set.
type Grant struct {
	// Caller is the SPIFFE ID the grant was made to, for the audit record.
	Caller string
	// Tenant is the tenant key the grant is for.
	Tenant string
	// WorkspaceID is the tenant's primary workspace, lower case.
	WorkspaceID string
	// ProfileID is the service-principal profile, lower case; "" if none.
	ProfileID string
	// Reports are the requested reports in request order, each with the workspace it
	// lives in; nil for a dashboard or tile request.
	Reports []Item
	// Dashboard is the requested dashboard (or the tile's dashboard) with its
	// workspace; nil for a report request.
	Dashboard *Item
	// TileID is the requested tile of Dashboard, lower case; "" unless a tile request.
	// The policy grants every tile of a granted dashboard and cannot know which tiles
	// those are: the gateway must address the tile under Dashboard
	// (dashboards/{id}/tiles/{tile}), so that Power BI refuses a tile of another one.
	TileID string
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

// Item is a granted report or dashboard and the workspace it lives in, both lower case.
type Item struct {
	ID          string
	WorkspaceID string
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
	}
	// An id listed in one of the tenant's workspaces lives there; an id listed nowhere
	// is the primary workspace's when its list is "*"; anything else is denied with
	// the same message whether or not the item exists.
	if len(r.ReportIDs) > 0 {
		g.Reports = make([]Item, len(r.ReportIDs))
		for i, id := range r.ReportIDs {
			item, ok := t.resolve(id, t.reports, t.allReports)
			if !ok {
				return Grant{}, &Denial{Reason: ErrReportNotAllowed, Rule: rule + ".reports",
					Message: fmt.Sprintf("report %s is not available to tenant %q", item.ID, t.key)}
			}
			g.Reports[i] = item
		}
	} else {
		item, ok := t.resolve(r.DashboardID, t.dashboards, t.allDashboards)
		if !ok {
			return Grant{}, &Denial{Reason: ErrDashboardNotAllowed, Rule: rule + ".dashboards",
				Message: fmt.Sprintf("dashboard %s is not available to tenant %q", item.ID, t.key)}
		}
		g.Dashboard, g.TileID = &item, strings.ToLower(r.TileID)
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
		expand := strings.NewReplacer("{user}", r.User, "{tenant}", t.key)
		id := &Identity{
			Username:   expand.Replace(t.rls.username),
			CustomData: expand.Replace(t.rls.customData),
			Roles:      slices.Clone(t.rls.roles),
		}
		if n := utf8.RuneCountInString(id.Username); n > MaxUsernameLength {
			return Grant{}, invalid(rule+".rls.username", "user",
				fmt.Sprintf("user expands to a %d-character username; at most %d are allowed", n, MaxUsernameLength))
		}
		if strings.IndexFunc(id.Username, unsafeInUsername) >= 0 {
			return Grant{}, invalid(rule+".rls.username", "user",
				"user must not contain whitespace or control characters")
		}
		if t.rls.datasetRoles != nil {
			id.DatasetRoles = make(map[string][]string, len(t.rls.datasetRoles))
			for ds, roles := range t.rls.datasetRoles {
				id.DatasetRoles[ds] = slices.Clone(roles)
			}
		}
		g.Identity = id
	}
	return g, nil
}

// resolve finds the workspace of a requested item (a uuid, any case) among a tenant's
// items: ok is false when the tenant does not grant it. The item's ID is lower case
// either way.
func (t *tenant) resolve(id string, listed map[string]string, primaryAll bool) (item Item, ok bool) {
	item.ID = strings.ToLower(id)
	item.WorkspaceID, ok = listed[item.ID]
	if !ok && primaryAll {
		item.WorkspaceID, ok = t.workspaceID, true
	}
	return item, ok
}

// checkRequest reports what is malformed in the request itself, independent of the
// tenant's entry.
func checkRequest(r Request) *Denial {
	switch {
	case r.User == "":
		return invalid("request", "user", "user is required")
	case !utf8.ValidString(r.User):
		return invalid("request", "user", "user must be valid UTF-8")
	case utf8.RuneCountInString(r.User) > MaxUsernameLength:
		return invalid("request", "user", fmt.Sprintf("user must be at most %d characters", MaxUsernameLength))
	case strings.IndexFunc(r.User, unicode.IsControl) >= 0:
		return invalid("request", "user", "user must not contain control characters")
	case len(r.ReportIDs) > 0 && r.DashboardID != "":
		return invalid("request", "dashboard_id", "report_ids and dashboard_id are mutually exclusive: one token embeds reports or one dashboard")
	case r.TileID != "" && r.DashboardID == "":
		return invalid("request", "tile_id", "tile_id needs the dashboard_id of its dashboard")
	case len(r.ReportIDs) == 0 && r.DashboardID == "":
		return invalid("request", "report_ids", "at least one report id, or a dashboard_id, is required")
	case len(r.ReportIDs) > MaxReportIDs:
		return invalid("request", "report_ids", fmt.Sprintf("at most %d report ids are allowed", MaxReportIDs))
	case r.Lifetime < 0:
		return invalid("request", "lifetime", "lifetime must not be negative")
	case r.Lifetime > 0 && r.Lifetime < MinLifetime:
		return invalid("request", "lifetime", fmt.Sprintf("lifetime must be at least %v", MinLifetime))
	}
	if r.DashboardID != "" {
		// Power BI embeds dashboards and tiles for viewing only (V1 accessLevel View).
		switch {
		case !isUUID(r.DashboardID):
			return invalid("request", "dashboard_id", fmt.Sprintf("dashboard id %q is not a uuid", r.DashboardID))
		case r.TileID != "" && !isUUID(r.TileID):
			return invalid("request", "tile_id", fmt.Sprintf("tile id %q is not a uuid", r.TileID))
		case r.AllowEdit:
			return invalid("request", "allow_edit", "edit tokens are for reports only, not dashboards or tiles")
		case r.AllowCreate:
			return invalid("request", "allow_create", "create tokens are for reports only, not dashboards or tiles")
		}
		return nil
	}
	seen := make(map[string]int, len(r.ReportIDs))
	for i, id := range r.ReportIDs {
		field := "report_ids[" + strconv.Itoa(i) + "]"
		if !isUUID(id) {
			return invalid("request", field, fmt.Sprintf("report id %q is not a uuid", id))
		}
		lower := strings.ToLower(id)
		if j, dup := seen[lower]; dup {
			return invalid("request", field, fmt.Sprintf("report id %s is repeated (report_ids[%d])", lower, j))
		}
		seen[lower] = i
	}
	return nil
}

// invalid builds an ErrInvalidRequest denial.
func invalid(rule, field, msg string) *Denial {
	return &Denial{Reason: ErrInvalidRequest, Rule: rule, Field: field, Message: msg}
}
