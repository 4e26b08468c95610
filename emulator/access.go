package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// Who may do what in a workspace. The roles and their rights are those of
// "Roles in workspaces in Power BI" (learn.microsoft.com/power-bi/collaborate-share/service-roles-new-workspaces):
// every role views items; Contributor and up create and edit content. To
// generate an embed token the principal must be "at least a member" of the
// workspace of every report and dataset in it ("Generate an embed token",
// learn.microsoft.com/power-bi/developer/embedded/generate-embed-token), as
// the service-principal setup says: "Add the service principal as an
// Admin or Member" ("Embed Power BI content with service principal").

// parseRole reads a role in any case.
func parseRole(s string) (Role, bool) {
	for _, r := range []Role{RoleAdmin, RoleMember, RoleContributor, RoleViewer} {
		if strings.EqualFold(s, string(r)) {
			return r, true
		}
	}
	return "", false
}

// rank orders the roles; no role is 0.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 4
	case RoleMember:
		return 3
	case RoleContributor:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// atLeast reports whether r grants what min grants.
func (r Role) atLeast(min Role) bool { return r.rank() >= min.rank() }

// What each kind of call needs.
const (
	needRead   = RoleViewer      // Get Report, Get Dataset, lists, Get Group
	needCreate = RoleContributor // a target workspace: save or create reports there
	needEmbed  = RoleMember      // a workspace whose report or dataset a token opens
)

// Principal keys: an app and a profile never share one.
func appKey(a *App) string        { return "app:" + strings.ToLower(a.ClientID) }
func profileKey(id string) string { return "profile:" + strings.ToLower(id) }

// roleIn is the caller's role in ws ("" for none).
func (w *world) roleIn(ws *Workspace, c *caller) Role {
	return w.roles[ws][c.principal]
}

// insufficientRole is the 403 for a principal whose role is too low for
// the call. [unk] code and message: the troubleshooting page ("Troubleshoot
// REST API", learn.microsoft.com/power-bi/developer/embedded/troubleshoot-rest-api)
// lists "The authenticated user doesn't have permissions" among the causes
// of a 403, without a body.
func insufficientRole(ws *Workspace, have, need Role, what string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "InsufficientPermissions", message: fmt.Sprintf(
		"The authenticated principal doesn't have permission to %s: its role in workspace %s is %s, and this needs %s or higher.",
		what, ws.ID, have, need)}
}

// require checks the caller's role in ws: no role at all is the 401 of a
// workspace the caller cannot see, too low a role the 403.
func (w *world) require(c *caller, ws *Workspace, need Role, what string) *apiError {
	have := w.roleIn(ws, c)
	switch {
	case have == "":
		return errNotAuthorized
	case !have.atLeast(need):
		return insufficientRole(ws, have, need, what)
	case c.user != nil && ws.shared() && w.personal[ws] == nil && !c.user.licensed():
		// A free user works in My workspace only; shared workspaces
		// need Power BI Pro ("Power BI service features by license type").
		return errNotLicensed(c.user, "workspace "+ws.ID+" on shared capacity")
	}
	return nil
}

// requirement is one workspace a call touches and the role it needs there.
type requirement struct {
	ws   *Workspace
	need Role
	what string
}

// requireAll checks several workspaces: any without access is the 401
// before any role too low is the 403, so a caller learns nothing about a
// workspace it cannot see.
func (w *world) requireAll(c *caller, reqs []requirement) *apiError {
	for _, rq := range reqs {
		if w.roleIn(rq.ws, c) == "" {
			return errNotAuthorized
		}
	}
	for _, rq := range reqs {
		if err := w.require(c, rq.ws, rq.need, rq.what); err != nil {
			return err
		}
	}
	return nil
}

// servicePrincipalsAllowed applies the tenant's "Service principals can use
// Fabric APIs" setting to app.
func (t *Tenant) servicePrincipalsAllowed(app *App) bool {
	sp := t.ServicePrincipals
	if sp == nil {
		return true
	}
	if sp.Enabled == nil || !*sp.Enabled {
		return false
	}
	inAny := func(groups []string) bool {
		for _, g := range groups {
			if containsFold(app.SecurityGroups, g) {
				return true
			}
		}
		return false
	}
	if len(sp.SecurityGroups) > 0 && !inAny(sp.SecurityGroups) {
		return false
	}
	return !inAny(sp.ExceptSecurityGroups)
}

// errAdminSwitch is the 401 for a service principal the tenant setting
// keeps out of the APIs: the header is the one community threads quote
// (for example community.fabric.microsoft.com/t5/Developer/401-Unauthorized-response-when-fetching-an-embed-token-for-Power/td-p/4009737);
// [unk] the body, given the pbi.error shape of the other 401s.
var errAdminSwitch = &apiError{
	status: http.StatusUnauthorized,
	code:   "PowerBINotAuthorizedException",
	header: http.Header{"X-PowerBI-Error-Info": {"ServicePrincipalIsNotAllowedByTenantAdminSwitch"}},
}
