package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// Power BI for users: a delegated token (a user signed in to a client
// app) acts as the user. The user's workspace roles and licence decide,
// and the token's scopes: each call needs one of the delegated
// permissions its REST page lists under "Required Scope". The tenant's
// service-principal setting and profiles do not apply.

// routeScopes are the scopes a user token needs per route: every group,
// one scope of it.
var routeScopes = map[string][][]string{
	RouteGetGroups:                     {workspaceRead},
	RouteGetGroup:                      {workspaceRead},
	RouteGetReports:                    {reportRead},
	RouteGetReport:                     {reportRead},
	RouteGetReportDatasources:          {reportRead},
	RouteGetMyReports:                  {reportRead},
	RouteGetMyReport:                   {reportRead},
	RouteGetDataset:                    {datasetRead},
	RouteGetDatasources:                {datasetRead},
	RouteGetMyDataset:                  {datasetRead},
	RouteGetDashboards:                 {dashboardRead},
	RouteGetDashboard:                  {dashboardRead},
	RouteGetTiles:                      {dashboardRead},
	RouteGetTile:                       {dashboardRead},
	RouteGenerateToken:                 {datasetRead}, // and more per request, see checkV2
	RouteReportGenerateTokenInGroup:    {reportRead, datasetRead},
	RouteCreateReportTokenInGroup:      {{"Content.Create"}, datasetRead},
	RouteDashboardGenerateTokenInGroup: {dashboardRead, reportRead, datasetRead},
	RouteTileGenerateTokenInGroup:      {dashboardRead, reportRead, datasetRead},
	RouteDatasetGenerateTokenInGroup:   {datasetRead},
}

var (
	workspaceRead = []string{"Workspace.Read.All", "Workspace.ReadWrite.All"}
	reportRead    = []string{"Report.Read.All", "Report.ReadWrite.All"}
	datasetRead   = []string{"Dataset.Read.All", "Dataset.ReadWrite.All"}
	dashboardRead = []string{"Dashboard.Read.All", "Dashboard.ReadWrite.All"}
)

// userCaller completes the caller of a delegated token.
func (s *Server) userCaller(r *http.Request, c *caller, tok *jwtToken) (*caller, *apiError) {
	c.user = c.tenant.user(c.objectID)
	if c.user == nil {
		return nil, &apiError{status: http.StatusForbidden, code: "Forbidden", message: "The access token is not valid: it was not issued by this Entra ID."}
	}
	if c.profileID != "" {
		// Profiles belong to service principals. [unk] the answer to a
		// user who sends the header.
		return nil, errNotAuthorized
	}
	c.principal = userKey(c.user)
	c.scopes = strings.Fields(tok.claimString("scp"))
	if apiErr := c.requireScopes(routeScopes[routeName(r)]...); apiErr != nil {
		return nil, apiErr
	}
	return c, nil
}

// requireScopes checks a user token holds one scope of each group
// (service principals have no scopes: their rights are their roles).
// [unk] body: "Troubleshoot REST API" gives 401 for a missing scope.
func (c *caller) requireScopes(groups ...[]string) *apiError {
	if c.user == nil {
		return nil
	}
	for _, g := range groups {
		ok := false
		for _, sc := range g {
			ok = ok || containsFold(c.scopes, sc)
		}
		if !ok {
			return &apiError{status: http.StatusUnauthorized, code: "PowerBINotAuthorizedException",
				message: "The access token lacks the scope this call needs: one of " + strings.Join(g, ", ") + "."}
		}
	}
	return nil
}

// errNotLicensed is the 403 for a user without Power BI Pro (or Premium
// Per User) reaching content on shared capacity, or embedding for
// others ("Power BI service features by license type"; "Embed Power BI
// content with a master user" needs a Pro licence). [unk] code and
// message.
func errNotLicensed(u *User, why string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "PowerBINotLicensedException", message: fmt.Sprintf(
		"User %s has no Power BI Pro or Premium Per User license, which %s needs.", u.UPN, why)}
}

// userTokenRules are what a user may not mint, in any GenerateToken call:
// without a licence, for paginated reports ("You can't use a master user
// to generate an embed token for RDL") or for My workspace ("You can't
// create an embed token for My workspace"), both from "Generate an embed
// token". [unk] statuses and messages.
func (s *Server) userTokenRules(c *caller, touched []requirement, reports []*Report) *apiError {
	if c.user == nil {
		return nil
	}
	if !c.user.licensed() {
		return errNotLicensed(c.user, "generating an embed token")
	}
	for _, rq := range touched {
		if s.world.personal[rq.ws] != nil {
			return invalidRequest("You can't create an embed token for My workspace.")
		}
	}
	for _, rep := range reports {
		if rep.Paginated {
			return invalidRequest(fmt.Sprintf("Report %s is a paginated report: you can't use a master user to generate an embed token for RDL; use a service principal.", rep.ID))
		}
	}
	return nil
}

// userV2Rules adds, for a user, the scopes a V2 request needs beyond
// Dataset.Read.All (Embed Token - Generate Token, "Required Scope"): a
// report scope with reports, Report.ReadWrite.All with allowEdit,
// Content.Create with target workspaces; then what a user may not mint.
func (s *Server) userV2Rules(c *caller, it *v2Items, touched []requirement, targets bool) *apiError {
	if c.user == nil {
		return nil
	}
	var groups [][]string
	if len(it.reports) > 0 {
		groups = append(groups, reportRead)
	}
	for _, edit := range it.edit {
		if edit {
			groups = append(groups, []string{"Report.ReadWrite.All"})
			break
		}
	}
	if targets {
		groups = append(groups, []string{"Content.Create"})
	}
	if apiErr := c.requireScopes(groups...); apiErr != nil {
		return apiErr
	}
	var reports []*Report
	for _, p := range it.reports {
		reports = append(reports, p.item)
	}
	return s.userTokenRules(c, touched, reports)
}
