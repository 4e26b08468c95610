package authz

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// validate reports every semantic problem of a decoded file, callers in file order,
// then tenants by key.
func (f *policyFile) validate() []yamlfile.Problem {
	var ps []yamlfile.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}

	seen := map[string]int{}
	for i, c := range f.Callers {
		key := "callers[" + strconv.Itoa(i) + "]"
		if c == nil {
			add(key, "empty caller entry")
			continue
		}
		switch _, err := spiffeid.FromString(c.ID); {
		case c.ID == "":
			add(key+".id", "is required")
		case err != nil:
			add(key+".id", "%q is not a valid SPIFFE ID: %v", c.ID, err)
		}
		if j, dup := seen[c.ID]; dup && c.ID != "" {
			add(key+".id", "duplicate caller id (also callers[%d])", j)
		} else {
			seen[c.ID] = i
		}
		if len(c.Tenants) == 0 && !c.Admin && c.UserOwnsData == nil {
			add(key+".tenants", "must list at least one tenant key, or %q (or the caller is an admin: true, or has user_owns_data)", Wildcard)
		}
		if c.UserOwnsData != nil {
			ps = append(ps, validateUserOwnsData(key+".user_owns_data", c.UserOwnsData)...)
		}
		names := map[string]bool{}
		for k, name := range c.Tenants {
			tk := key + ".tenants[" + strconv.Itoa(k) + "]"
			_, defined := f.Tenants[name]
			switch {
			case name == Wildcard && len(c.Tenants) > 1:
				add(tk, "%q must be the only entry", Wildcard)
			case name == Wildcard:
			case names[name]:
				add(tk, "duplicate tenant %q", name)
			case !defined:
				add(tk, "tenant %q is not defined under tenants", name)
			}
			names[name] = true
		}
		if rl := c.RateLimit; rl != nil {
			if !(rl.PerSecond > 0) || math.IsInf(rl.PerSecond, 0) {
				add(key+".rate_limit.per_second", "must be a finite number > 0")
			}
			if rl.Burst < 1 {
				add(key+".rate_limit.burst", "must be >= 1")
			}
		}
	}

	keys := make([]string, 0, len(f.Tenants))
	for k := range f.Tenants {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, name := range keys {
		ps = append(ps, validateTenant(name, f.Tenants[name])...)
	}
	return ps
}

// validateTenant reports every problem of one tenant entry.
func validateTenant(name string, t *tenantFile) []yamlfile.Problem {
	var ps []yamlfile.Problem
	key := "tenants." + name
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if !TenantKeyPattern.MatchString(name) {
		add(key, "tenant key %q must match %s", name, TenantKeyPattern)
	}
	if t == nil {
		t = &tenantFile{}
	}
	switch {
	case t.WorkspaceID == "":
		add(key+".workspace_id", "is required")
	case !isUUID(t.WorkspaceID):
		add(key+".workspace_id", "%q is not a uuid", t.WorkspaceID)
	}
	if t.ProfileID != "" && !isUUID(t.ProfileID) {
		add(key+".profile_id", "%q is not a uuid", t.ProfileID)
	}

	// Every report and dashboard id maps to exactly one workspace, so an id listed twice
	// anywhere in the tenant is a problem, and "*" is the primary workspace's alone.
	// where records the first place of each id, relative to the tenant.
	reports, dashboards := map[string]string{}, map[string]string{}
	checkItems := func(at, kind string, ids []string, primary bool, where map[string]string) {
		for i, id := range ids {
			here := at + "[" + strconv.Itoa(i) + "]"
			k := key + "." + here
			switch first, dup := where[strings.ToLower(id)]; {
			case id == Wildcard && !primary:
				add(k, "%q is allowed only in the primary workspace's %ss: list %s ids here, each mapping to exactly one workspace", Wildcard, kind, kind)
			case id == Wildcard && len(ids) > 1:
				add(k, "%q must be the only entry", Wildcard)
			case id == Wildcard:
			case !isUUID(id):
				add(k, "%q is not a uuid", id)
			case dup:
				add(k, "duplicate %s id (also %s)", kind, first)
			default:
				where[strings.ToLower(id)] = here
			}
		}
	}
	if len(t.Reports) == 0 && !grantsItems(t) {
		add(key+".reports", "must list report ids, or %q (a tenant must grant at least one report or dashboard)", Wildcard)
	}
	checkItems("reports", "report", t.Reports, true, reports)
	checkItems("dashboards", "dashboard", t.Dashboards, true, dashboards)

	workspaces := map[string]string{} // lower id -> where, relative to the tenant
	if t.WorkspaceID != "" {
		workspaces[strings.ToLower(t.WorkspaceID)] = "workspace_id"
	}
	for i, w := range t.Workspaces {
		at := "workspaces[" + strconv.Itoa(i) + "]"
		wk := key + "." + at
		if w == nil {
			add(wk, "empty workspace entry")
			continue
		}
		switch first, dup := workspaces[strings.ToLower(w.ID)]; {
		case w.ID == "":
			add(wk+".id", "is required")
		case !isUUID(w.ID):
			add(wk+".id", "%q is not a uuid", w.ID)
		case dup:
			add(wk+".id", "duplicate workspace id (also %s)", first)
		default:
			workspaces[strings.ToLower(w.ID)] = at + ".id"
		}
		checkItems(at+".reports", "report", w.Reports, false, reports)
		checkItems(at+".dashboards", "dashboard", w.Dashboards, false, dashboards)
		if len(w.Reports) == 0 && len(w.Dashboards) == 0 && (w.ID == "" || !strings.EqualFold(w.ID, t.CreateWorkspaceID)) {
			add(wk, "grants nothing: list reports or dashboards, or name it in create_workspace_id")
		}
	}

	if r := t.RLS; r != nil {
		rk := key + ".rls"
		checkRoles(add, rk+".roles", r.Roles)
		// Keys in sorted order, so that problems come out in the same order every run.
		datasets := map[string]string{}
		for _, ds := range slices.Sorted(maps.Keys(r.DatasetRoles)) {
			checkDatasetID(add, datasets, rk, "dataset_roles", ds)
			checkRoles(add, rk+".dataset_roles."+ds, r.DatasetRoles[ds])
		}
		if r.Username != nil {
			checkUsernameTemplate(add, rk+".username", *r.Username, name)
		}
		if err := checkTemplate(r.CustomData); err != nil {
			add(rk+".custom_data", "%v", err)
		}
		overrides := map[string]string{}
		for _, ds := range slices.Sorted(maps.Keys(r.Datasets)) {
			dk := rk + ".datasets." + ds
			checkDatasetID(add, overrides, rk, "datasets", ds)
			d := r.Datasets[ds]
			if d == nil || (d.Username == nil && d.CustomData == nil && d.Roles == nil) {
				add(dk, "sets nothing: give it a username, custom_data or roles")
				continue
			}
			if d.Username != nil {
				checkUsernameTemplate(add, dk+".username", *d.Username, name)
			}
			if d.CustomData != nil {
				if err := checkTemplate(*d.CustomData); err != nil {
					add(dk+".custom_data", "%v", err)
				}
			}
			if len(d.Roles) > 0 {
				checkRoles(add, dk+".roles", d.Roles)
			}
			if _, both := datasets[strings.ToLower(ds)]; both && d.Roles != nil {
				add(dk+".roles", "dataset_roles gives this dataset roles too: keep one of the two")
			}
		}
		without := map[string]bool{}
		for i, id := range r.WithoutRLS {
			wk := rk + ".without_rls[" + strconv.Itoa(i) + "]"
			switch {
			case !isUUID(id):
				add(wk, "%q is not a uuid (list report or dataset ids)", id)
			case without[strings.ToLower(id)]:
				add(wk, "duplicate id %s", strings.ToLower(id))
			}
			without[strings.ToLower(id)] = true
		}
	}

	sso := map[string]bool{}
	for i, id := range t.SSO {
		k := key + ".sso[" + strconv.Itoa(i) + "]"
		switch {
		case id == Wildcard && len(t.SSO) > 1:
			add(k, "%q must be the only entry", Wildcard)
		case id == Wildcard:
		case !isUUID(id):
			add(k, "%q is not a uuid (list dataset or paginated report ids, or %q)", id, Wildcard)
		case sso[strings.ToLower(id)]:
			add(k, "duplicate id %s", strings.ToLower(id))
		}
		sso[strings.ToLower(id)] = true
	}

	if c := t.CreateWorkspaceID; c != "" {
		ck := key + ".create_workspace_id"
		if !t.AllowCreate {
			add(ck, "is set but allow_create is false: set allow_create: true, or remove it")
		}
		switch _, ok := workspaces[strings.ToLower(c)]; {
		case !isUUID(c):
			add(ck, "%q is not a uuid", c)
		case !ok:
			add(ck, "%s is not one of the tenant's workspaces (workspace_id or a workspaces[].id)", c)
		}
	}

	maxLT := DefaultMaxLifetime
	if t.MaxLifetime != nil {
		maxLT = *t.MaxLifetime
		if err := checkLifetime(maxLT); err != nil {
			add(key+".max_lifetime", "%v", err)
		}
	}
	if t.DefaultLifetime != nil {
		d := *t.DefaultLifetime
		if err := checkLifetime(d); err != nil {
			add(key+".default_lifetime", "%v", err)
		} else if d > maxLT {
			add(key+".default_lifetime", "%v exceeds max_lifetime %v", d, maxLT)
		}
	}
	return ps
}

// checkUsernameTemplate checks an rls username: ServicePrincipal, or a template over
// {user} and {tenant} that cannot expand to what Power BI refuses.
func checkUsernameTemplate(add func(key, format string, args ...any), key, u, tenant string) {
	switch {
	case u == "":
		add(key, "must not be empty (omit it for %q)", DefaultUsernameTemplate)
	case u == ServicePrincipal:
		return
	case strings.IndexFunc(u, unsafeInUsername) >= 0:
		add(key, "%q must not contain whitespace or control characters", u)
	case utf8.RuneCountInString(u)-len("{user}")*strings.Count(u, "{user}")+
		(utf8.RuneCountInString(tenant)-len("{tenant}"))*strings.Count(u, "{tenant}") > MaxUsernameLength:
		add(key, "expands to more than %d characters before any user is added", MaxUsernameLength)
	}
	if err := checkTemplate(u); err != nil {
		add(key, "%v", err)
	}
}

// grantsItems reports whether a tenant grants any item besides its primary reports.
func grantsItems(t *tenantFile) bool {
	if len(t.Dashboards) > 0 {
		return true
	}
	for _, w := range t.Workspaces {
		if w != nil && len(w.Reports)+len(w.Dashboards) > 0 {
			return true
		}
	}
	return false
}

// checkDatasetID checks one dataset id that keys rls's map section (found
// at rlsKey.section.ds): a uuid, not repeated in another case among the
// section's earlier keys, which seen holds by their lower case.
func checkDatasetID(add func(key, format string, args ...any), seen map[string]string, rlsKey, section, ds string) {
	switch first, dup := seen[strings.ToLower(ds)]; {
	case !isUUID(ds):
		add(rlsKey+"."+section+"."+ds, "dataset id %q is not a uuid", ds)
	case dup:
		add(rlsKey+"."+section+"."+ds, "duplicate dataset id (also %s.%s)", section, first)
	default:
		seen[strings.ToLower(ds)] = ds
	}
}

// checkRoles enforces Power BI's rules for the roles of one effective identity, found
// at key: 1..MaxRoles distinct, non-empty names of at most MaxRoleLength characters
// without ','.
func checkRoles(add func(key, format string, args ...any), key string, roles []string) {
	switch n := len(roles); {
	case n == 0:
		add(key, "must list 1 to %d roles", MaxRoles)
	case n > MaxRoles:
		add(key, "lists %d roles; at most %d are allowed", n, MaxRoles)
	}
	seen := map[string]bool{}
	for i, role := range roles {
		k := key + "[" + strconv.Itoa(i) + "]"
		switch n := utf8.RuneCountInString(role); {
		case strings.TrimSpace(role) == "":
			add(k, "must not be empty")
		case n > MaxRoleLength:
			add(k, "is %d characters; at most %d are allowed", n, MaxRoleLength)
		case strings.Contains(role, ","):
			add(k, "%q must not contain ','", role)
		case seen[role]:
			add(k, "duplicate role %q", role)
		}
		seen[role] = true
	}
}

// checkLifetime enforces the configurable range of lifetimes, in whole minutes.
func checkLifetime(d time.Duration) error {
	switch {
	case d < MinLifetime || d > MaxLifetime:
		return fmt.Errorf("%v is outside %v..%v", d, MinLifetime, MaxLifetime)
	case d%time.Minute != 0:
		return fmt.Errorf("%v is not a whole number of minutes", d)
	}
	return nil
}

// placeholders are the only template placeholders; template.expand fills them.
var placeholders = []string{"{user}", "{tenant}"}

// checkTemplate rejects any brace that is not part of a known placeholder, so that a
// typo such as "{usr}" fails at load time instead of minting a literal username.
func checkTemplate(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' && s[i] != '}' {
			continue
		}
		known := false
		for _, p := range placeholders {
			if strings.HasPrefix(s[i:], p) {
				i += len(p) - 1
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("template %q: only {user} and {tenant} are placeholders, and braces are not allowed elsewhere", s)
		}
	}
	return nil
}

// unsafeInUsername reports the characters an effective-identity username may not hold.
func unsafeInUsername(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

// isUUID reports whether s is a uuid in its canonical 8-4-4-4-12 hex form (any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
