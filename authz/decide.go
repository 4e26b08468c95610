package authz

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Request is what a caller asks for, as the server authenticated and parsed it.
type Request struct {
	// Caller is the authenticated SPIFFE ID (the client certificate's URI SAN).
	Caller string
	// Tenant is the tenant key the caller acts for.
	Tenant string
	// User is the end user; the source of the RLS username, and recorded for audit.
	User string
	// ReportIDs are the reports to embed (uuids, any case).
	ReportIDs []string
	// AllowEdit asks for an edit token.
	AllowEdit bool
	// Lifetime is the requested token lifetime; 0 = the tenant's default.
	Lifetime time.Duration
}

// Grant is everything the Power BI gateway needs to mint one token, decided by the
// policy: the caller never chooses the workspace, the profile or the RLS roles.
type Grant struct {
	// Caller is the SPIFFE ID the grant was made to, for the audit record.
	Caller string
	// Tenant is the tenant key the grant is for.
	Tenant string
	// WorkspaceID is the tenant's workspace, lower case.
	WorkspaceID string
	// ProfileID is the service-principal profile, lower case; "" if none.
	ProfileID string
	// ReportIDs are the requested reports, lower case, in request order.
	ReportIDs []string
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

// Identity is a Power BI effective identity, already expanded for one request.
type Identity struct {
	// Username is the tenant's username template expanded for the request's user.
	Username string
	// Roles are the tenant's RLS roles, a copy the caller may keep.
	Roles []string
	// CustomData is the expanded custom_data template; "" when the tenant has none.
	CustomData string
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
	ids := make([]string, len(r.ReportIDs))
	for i, id := range r.ReportIDs {
		ids[i] = strings.ToLower(id)
		if !t.allReports && !t.reports[ids[i]] {
			return Grant{}, &Denial{Reason: ErrReportNotAllowed, Rule: rule + ".reports",
				Message: fmt.Sprintf("report %s is not available to tenant %q", ids[i], t.key)}
		}
	}
	if r.AllowEdit && !t.allowEdit {
		return Grant{}, &Denial{Reason: ErrEditNotAllowed, Rule: rule + ".allow_edit",
			Message: fmt.Sprintf("edit tokens are not allowed for tenant %q", t.key)}
	}

	g := Grant{
		Caller:      r.Caller,
		Tenant:      t.key,
		WorkspaceID: t.workspaceID,
		ProfileID:   t.profileID,
		ReportIDs:   ids,
		AllowEdit:   r.AllowEdit,
		Lifetime:    r.Lifetime,
		Rule:        rule,
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
			Roles:      append([]string(nil), t.rls.roles...),
			CustomData: expand.Replace(t.rls.customData),
		}
		if n := utf8.RuneCountInString(id.Username); n > MaxUsernameLength {
			return Grant{}, invalid(rule+".rls.username", "user",
				fmt.Sprintf("user expands to a %d-character username; at most %d are allowed", n, MaxUsernameLength))
		}
		if strings.IndexFunc(id.Username, unsafeInUsername) >= 0 {
			return Grant{}, invalid(rule+".rls.username", "user",
				"user must not contain whitespace or control characters")
		}
		g.Identity = id
	}
	return g, nil
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
	case len(r.ReportIDs) == 0:
		return invalid("request", "report_ids", "at least one report id is required")
	case r.Lifetime < 0:
		return invalid("request", "lifetime", "lifetime must not be negative")
	case r.Lifetime > 0 && r.Lifetime < MinLifetime:
		return invalid("request", "lifetime", fmt.Sprintf("lifetime must be at least %v", MinLifetime))
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
