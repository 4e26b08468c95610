package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// User owns data ("embed for your organization"): a caller holds an end
// user's Entra access token and asks for what the user's browser needs to
// embed Power BI items as the user. Power BI then applies the user's own
// rights; the policy says which callers may ask at all, for users of which
// Entra tenants, and in which workspaces:
//
//	callers:
//	  - id: spiffe://mesh.example/ns/intranet/sa/portal
//	    user_owns_data:
//	      entra_tenants: [<tenant uuid>, ...]   # users of these Entra tenants
//	      workspaces: ["*"]                     # or workspace uuids
//
// A caller may have tenants (app owns data), user_owns_data, or both.

// ErrUserEmbeddingNotAllowed means the policy does not let the caller embed
// for users this way: it has no user_owns_data, or the user's Entra tenant
// or the workspace is not among those it lists.
var ErrUserEmbeddingNotAllowed = errors.New("user embedding not allowed")

// userOwnsDataFile is a caller's user_owns_data block.
type userOwnsDataFile struct {
	// EntraTenants are the Entra tenant ids (uuids) whose users the caller
	// may embed for.
	EntraTenants []string `yaml:"entra_tenants"`
	// Workspaces are the workspace ids (uuids) the caller may embed from,
	// or ["*"] for any workspace (the user's own rights still decide).
	Workspaces []string `yaml:"workspaces"`
}

// userAccess is a validated userOwnsDataFile, ids in lower case.
type userAccess struct {
	entraTenants  map[string]bool
	workspaces    map[string]bool
	allWorkspaces bool
}

// compileUserAccess builds the caller's userAccess; nil for none.
func compileUserAccess(u *userOwnsDataFile) *userAccess {
	if u == nil {
		return nil
	}
	a := &userAccess{entraTenants: map[string]bool{}, workspaces: map[string]bool{}}
	for _, t := range u.EntraTenants {
		a.entraTenants[strings.ToLower(t)] = true
	}
	for _, w := range u.Workspaces {
		if w == Wildcard {
			a.allWorkspaces = true
		} else {
			a.workspaces[strings.ToLower(w)] = true
		}
	}
	return a
}

// validateUserOwnsData reports every problem of a caller's user_owns_data
// block, found at key.
func validateUserOwnsData(key string, u *userOwnsDataFile) []yamlfile.Problem {
	var ps []yamlfile.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if len(u.EntraTenants) == 0 {
		add(key+".entra_tenants", "must list the Entra tenant ids (uuids) whose users the caller may embed for")
	}
	seen := map[string]bool{}
	for i, t := range u.EntraTenants {
		k := key + ".entra_tenants[" + strconv.Itoa(i) + "]"
		switch {
		case !isUUID(t):
			add(k, "%q is not an Entra tenant id (a uuid)", t)
		case seen[strings.ToLower(t)]:
			add(k, "duplicate tenant id %s", strings.ToLower(t))
		}
		seen[strings.ToLower(t)] = true
	}
	if len(u.Workspaces) == 0 {
		add(key+".workspaces", "must list workspace ids, or %q", Wildcard)
	}
	seen = map[string]bool{}
	for i, w := range u.Workspaces {
		k := key + ".workspaces[" + strconv.Itoa(i) + "]"
		switch {
		case w == Wildcard && len(u.Workspaces) > 1:
			add(k, "%q must be the only entry", Wildcard)
		case w == Wildcard:
		case !isUUID(w):
			add(k, "%q is not a workspace id (a uuid)", w)
		case seen[strings.ToLower(w)]:
			add(k, "duplicate workspace id %s", strings.ToLower(w))
		}
		seen[strings.ToLower(w)] = true
	}
	return ps
}

// UserRequest is a caller's user-owns-data request, as the server read it:
// the reports of one workspace, for the user whose assertion it holds.
type UserRequest struct {
	// Caller is the authenticated SPIFFE ID.
	Caller string
	// WorkspaceID is the workspace of the reports (uuid, any case).
	WorkspaceID string
	// ReportIDs are the reports (uuids, any case): 1..MaxReportIDs, each once.
	ReportIDs []string
}

// UserGrant is what the policy lets a caller do for users: the workspace
// and reports asked, and the Entra tenants whose users it may act for.
type UserGrant struct {
	// Caller is the SPIFFE ID the grant was made to.
	Caller string
	// WorkspaceID is the workspace, lower case.
	WorkspaceID string
	// ReportIDs are the reports, lower case, in request order.
	ReportIDs []string
	// Rule is the policy entry that decided, e.g.
	// `callers[spiffe://…].user_owns_data`, for audit records.
	Rule   string
	access *userAccess
}

// DecideUser applies the policy to a user-owns-data request: the caller
// must be listed and have user_owns_data, the request must be well formed,
// and the workspace must be one of those the block lists. The user's Entra
// tenant is checked once it is known (CheckEntraTenant). A denial is a
// *Denial wrapping ErrUnknownCaller, ErrUserEmbeddingNotAllowed or
// ErrInvalidRequest.
func (p *Policy) DecideUser(r UserRequest) (UserGrant, error) {
	c, ok := p.callers[r.Caller]
	if !ok {
		return UserGrant{}, &Denial{Reason: ErrUnknownCaller, Rule: "callers",
			Message: "caller is not allowed to request embed tokens"}
	}
	rule := c.rule + ".user_owns_data"
	if c.user == nil {
		return UserGrant{}, &Denial{Reason: ErrUserEmbeddingNotAllowed, Rule: rule,
			Message: "caller may not embed for users with their own Power BI access (the policy gives it no user_owns_data)"}
	}
	if d := checkUserRequest(r); d != nil {
		return UserGrant{}, d
	}
	ws := strings.ToLower(r.WorkspaceID)
	if !c.user.allWorkspaces && !c.user.workspaces[ws] {
		return UserGrant{}, &Denial{Reason: ErrUserEmbeddingNotAllowed, Rule: rule + ".workspaces",
			Message: fmt.Sprintf("workspace %s is not open to this caller's users", ws)}
	}
	g := UserGrant{Caller: r.Caller, WorkspaceID: ws, Rule: rule, access: c.user, ReportIDs: make([]string, len(r.ReportIDs))}
	for i, id := range r.ReportIDs {
		g.ReportIDs[i] = strings.ToLower(id)
	}
	return g, nil
}

// CheckEntraTenant refuses a user of an Entra tenant the grant's caller
// may not act for (a *Denial wrapping ErrUserEmbeddingNotAllowed).
func (g UserGrant) CheckEntraTenant(tenantID string) error {
	if g.access != nil && g.access.entraTenants[strings.ToLower(tenantID)] {
		return nil
	}
	return &Denial{Reason: ErrUserEmbeddingNotAllowed, Rule: g.Rule + ".entra_tenants",
		Message: fmt.Sprintf("users of Entra tenant %s may not be served to this caller", strings.ToLower(tenantID))}
}

// checkUserRequest reports what is malformed in the request itself; the
// API's protovalidate rules say the same.
func checkUserRequest(r UserRequest) *Denial {
	switch {
	case !isUUID(r.WorkspaceID):
		return invalid("request", "workspace_id", fmt.Sprintf("workspace id %q is not a uuid", r.WorkspaceID))
	case len(r.ReportIDs) == 0:
		return invalid("request", "report_ids", "at least one report id is required")
	case len(r.ReportIDs) > MaxReportIDs:
		return invalid("request", "report_ids", fmt.Sprintf("at most %d report ids are allowed", MaxReportIDs))
	}
	seen := make(map[string]int, len(r.ReportIDs))
	for i, id := range r.ReportIDs {
		field := fieldOf(KindReport, i)
		if !isUUID(id) {
			return invalid("request", field, fmt.Sprintf("report id %q is not a uuid", id))
		}
		lower := strings.ToLower(id)
		if j, dup := seen[lower]; dup {
			return invalid("request", field, fmt.Sprintf("report id %s is repeated (%s)", lower, fieldOf(KindReport, j)))
		}
		seen[lower] = i
	}
	return nil
}
