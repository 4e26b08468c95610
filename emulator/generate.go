package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// errTrialExhausted answers token generation when Faults.TrialExhausted is
// set. [unk] the real code and message: the reference only says 403.
var errTrialExhausted = &apiError{http.StatusForbidden, "TokenGenerationQuotaExceeded",
	"The embed token quota of the embed trial (embedTrial) is exhausted. Assign the workspace to a capacity to generate more embed tokens."}

// handleGenerateTokenV2 is POST /v1.0/myorg/GenerateToken.
func (s *Server) handleGenerateTokenV2(w http.ResponseWriter, r *http.Request) {
	c, apiErr := s.authenticate(r)
	if apiErr == nil {
		var req generateTokenV2
		if apiErr = decodeBody(r, &req); apiErr == nil {
			var info TokenInfo
			var minutes int
			if info, minutes, apiErr = s.checkV2(c, &req); apiErr == nil {
				s.mint(w, c, info, minutes)
				return
			}
		}
	}
	apiErr.write(w)
}

// checkV2 applies the V2 rules and returns the grant. The order mirrors
// the real service: shape and limits, then existence (404), then access to
// every workspace touched (401), then dataset and RLS rules (400).
func (s *Server) checkV2(c *caller, req *generateTokenV2) (TokenInfo, int, *apiError) {
	var info TokenInfo
	switch {
	case len(req.Reports) > maxItems:
		return info, 0, invalidRequest(fmt.Sprintf("The number of reports exceeds the maximum of %d.", maxItems))
	case len(req.Datasets) > maxItems:
		return info, 0, invalidRequest(fmt.Sprintf("The number of datasets exceeds the maximum of %d.", maxItems))
	case len(req.TargetWorkspaces) > maxItems:
		return info, 0, invalidRequest(fmt.Sprintf("The number of target workspaces exceeds the maximum of %d.", maxItems))
	case len(req.Reports) == 0 && len(req.Datasets) == 0:
		// [unk] message.
		return info, 0, invalidRequest("GenerateToken needs at least one report or dataset.")
	}
	minutes, apiErr := lifetime(req.LifetimeInMinutes)
	if apiErr != nil {
		return info, 0, apiErr
	}

	touched := []*Workspace{}
	var reports []placed[Report]
	var reportIDs []string // the paginated ones, which identities may name
	for _, rr := range req.Reports {
		if rr.ID == "" {
			return info, 0, invalidRequest("Report id is required.")
		}
		p, ok := s.world.reports[strings.ToLower(rr.ID)]
		if !ok {
			return info, 0, notFound(fmt.Sprintf("Report %s was not found.", rr.ID))
		}
		reports = append(reports, p)
		if p.item.Paginated {
			reportIDs = append(reportIDs, p.item.ID)
		}
		touched = append(touched, p.ws)
		info.Reports = append(info.Reports, TokenReport{ID: p.item.ID, AllowEdit: bool(rr.AllowEdit)})
	}
	var datasets []*Dataset
	for _, rd := range req.Datasets {
		if rd.ID == "" {
			return info, 0, invalidRequest("Dataset id is required.")
		}
		p, ok := s.world.datasets[strings.ToLower(rd.ID)]
		if !ok {
			return info, 0, notFound(fmt.Sprintf("Dataset %s was not found.", rd.ID))
		}
		xmla, ok := normalizeXmla(rd.XmlaPermissions)
		if !ok {
			return info, 0, invalidRequest(fmt.Sprintf("xmlaPermissions '%s' is not valid; use Off or ReadOnly.", rd.XmlaPermissions))
		}
		datasets = append(datasets, p.item)
		touched = append(touched, p.ws)
		info.Datasets = append(info.Datasets, TokenDataset{ID: p.item.ID, XmlaPermissions: xmla})
	}
	for _, tw := range req.TargetWorkspaces {
		ws := s.world.workspace(tw.ID)
		if ws == nil {
			return info, 0, errNotAuthorized
		}
		touched = append(touched, ws)
		info.TargetWorkspaces = append(info.TargetWorkspaces, ws.ID)
	}
	for _, ws := range touched {
		if !c.canUse(ws) {
			return info, 0, errNotAuthorized
		}
	}
	// Emulator choice: a Power BI report's dataset must be listed in
	// datasets. Microsoft's samples always send it and the docs build the
	// request that way; refusing the omission keeps callers honest.
	for _, p := range reports {
		if p.item.Paginated {
			continue
		}
		if !containsDataset(datasets, p.item.DatasetID) {
			return info, 0, invalidRequest(fmt.Sprintf("Report %s uses dataset %s, which must be included in datasets.", p.item.ID, p.item.DatasetID))
		}
	}
	ids, apiErr := checkIdentities(req.Identities, identityRules{datasets: datasets, paginatedIDs: reportIDs})
	if apiErr != nil {
		return info, 0, apiErr
	}
	info.Kind = KindV2
	info.Identities = ids
	if s.faults.get().TrialExhausted {
		return info, 0, errTrialExhausted
	}
	return info, minutes, nil
}

func containsDataset(list []*Dataset, id string) bool {
	for _, d := range list {
		if strings.EqualFold(d.ID, id) {
			return true
		}
	}
	return false
}

// v1Call is the common part of the V1 GenerateTokenInGroup routes: the
// caller, the group, and the decoded body.
type v1Call struct {
	c       *caller
	ws      *Workspace
	req     generateTokenV1
	level   string
	minutes int
}

// v1Prelude authenticates, resolves the group, decodes and checks the
// shared V1 fields. The caller then applies the item rules.
func (s *Server) v1Prelude(r *http.Request) (*v1Call, *apiError) {
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		return nil, apiErr
	}
	ws, apiErr := s.group(r, c)
	if apiErr != nil {
		return nil, apiErr
	}
	call := &v1Call{c: c, ws: ws}
	if apiErr := decodeBody(r, &call.req); apiErr != nil {
		return nil, apiErr
	}
	level, ok := normalizeAccessLevel(call.req.AccessLevel)
	if !ok {
		return nil, invalidRequest(fmt.Sprintf("accessLevel '%s' is not valid; use View, Edit or Create.", call.req.AccessLevel))
	}
	call.level = level
	if call.minutes, apiErr = lifetime(call.req.LifetimeInMinutes); apiErr != nil {
		return nil, apiErr
	}
	return call, nil
}

// singleIdentity enforces that V1 tokens other than dashboards carry at
// most one identity.
func (call *v1Call) singleIdentity() *apiError {
	if len(call.req.Identities) > 1 {
		return invalidRequest("Creating embed token with multiple identities is not supported")
	}
	return nil
}

// datasetFor resolves a dataset anywhere and checks the caller may use its
// workspace (a report's dataset may live in another workspace).
func (s *Server) datasetFor(c *caller, id string) (*Dataset, *apiError) {
	p, ok := s.world.datasets[strings.ToLower(id)]
	if !ok {
		return nil, notFound(fmt.Sprintf("Dataset %s was not found.", id))
	}
	if !c.canUse(p.ws) {
		return nil, errNotAuthorized
	}
	return p.item, nil
}

// finishV1 applies the RLS rules and the trial quota, then mints.
// paginatedIDs is the item itself when it is a paginated report.
func (s *Server) finishV1(w http.ResponseWriter, call *v1Call, info TokenInfo, datasets []*Dataset, paginatedIDs []string) {
	ids, apiErr := checkIdentities(call.req.Identities, identityRules{datasets: datasets, paginatedIDs: paginatedIDs, v1Defaults: true})
	if apiErr == nil && s.faults.get().TrialExhausted {
		apiErr = errTrialExhausted
	}
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	info.GroupID = call.ws.ID
	info.Identities = ids
	info.AccessLevel = call.level
	for _, d := range datasets {
		info.Datasets = append(info.Datasets, TokenDataset{ID: d.ID, XmlaPermissions: "Off"})
	}
	s.mint(w, call.c, info, call.minutes)
}

// handleReportToken is POST groups/{g}/reports/{r}/GenerateToken.
func (s *Server) handleReportToken(w http.ResponseWriter, r *http.Request) {
	call, apiErr := s.v1Prelude(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	rep := s.world.reportIn(call.ws, r.PathValue("report"))
	if rep == nil {
		notFound(fmt.Sprintf("Report %s was not found.", r.PathValue("report"))).write(w)
		return
	}
	if call.level == "" {
		call.level = "View"
	}
	if call.level == "Create" {
		invalidRequest("accessLevel Create is only valid for the create-report token (reports/GenerateToken).").write(w)
		return
	}
	if apiErr := call.singleIdentity(); apiErr != nil {
		apiErr.write(w)
		return
	}
	var datasets []*Dataset
	var paginatedIDs []string
	if rep.Paginated {
		paginatedIDs = []string{rep.ID}
	} else {
		ds, apiErr := s.datasetFor(call.c, rep.DatasetID)
		if apiErr != nil {
			apiErr.write(w)
			return
		}
		datasets = append(datasets, ds)
	}
	info := TokenInfo{
		Kind:        KindReport,
		Reports:     []TokenReport{{ID: rep.ID, AllowEdit: call.level == "Edit"}},
		AllowSaveAs: bool(call.req.AllowSaveAs),
	}
	s.finishV1(w, call, info, datasets, paginatedIDs)
}

// handleCreateToken is POST groups/{g}/reports/GenerateToken (create a
// report on datasetId in the group).
func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	call, apiErr := s.v1Prelude(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	if call.level == "" {
		call.level = "Create"
	}
	switch {
	case call.level != "Create":
		apiErr = invalidRequest("The create-report token needs accessLevel Create.")
	case call.req.DatasetID == "":
		apiErr = invalidRequest("accessLevel Create needs datasetId.")
	default:
		apiErr = call.singleIdentity()
	}
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	ds, apiErr := s.datasetFor(call.c, call.req.DatasetID)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	info := TokenInfo{Kind: KindCreate, TargetWorkspaces: []string{call.ws.ID}, AllowSaveAs: bool(call.req.AllowSaveAs)}
	s.finishV1(w, call, info, []*Dataset{ds}, nil)
}

// handleDashboardToken is POST groups/{g}/dashboards/{d}/GenerateToken;
// the only V1 token that may carry several identities.
func (s *Server) handleDashboardToken(w http.ResponseWriter, r *http.Request) {
	call, apiErr := s.v1Prelude(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	d := s.world.dashboardIn(call.ws, r.PathValue("dashboard"))
	if d == nil {
		notFound(fmt.Sprintf("Dashboard %s was not found.", r.PathValue("dashboard"))).write(w)
		return
	}
	if apiErr := viewOnly(call); apiErr != nil {
		apiErr.write(w)
		return
	}
	var datasets []*Dataset
	for i := range d.Tiles {
		id := s.world.tileDatasetID(&d.Tiles[i])
		if id == "" || containsDataset(datasets, id) {
			continue
		}
		ds, apiErr := s.datasetFor(call.c, id)
		if apiErr != nil {
			apiErr.write(w)
			return
		}
		datasets = append(datasets, ds)
	}
	s.finishV1(w, call, TokenInfo{Kind: KindDashboard, DashboardID: d.ID}, datasets, nil)
}

// handleTileToken is POST groups/{g}/dashboards/{d}/tiles/{t}/GenerateToken.
func (s *Server) handleTileToken(w http.ResponseWriter, r *http.Request) {
	call, apiErr := s.v1Prelude(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	d := s.world.dashboardIn(call.ws, r.PathValue("dashboard"))
	var t *Tile
	if d != nil {
		t = d.tile(r.PathValue("tile"))
	}
	if t == nil {
		notFound(fmt.Sprintf("Tile %s was not found.", r.PathValue("tile"))).write(w)
		return
	}
	if apiErr := viewOnly(call); apiErr != nil {
		apiErr.write(w)
		return
	}
	if apiErr := call.singleIdentity(); apiErr != nil {
		apiErr.write(w)
		return
	}
	var datasets []*Dataset
	if id := s.world.tileDatasetID(t); id != "" {
		ds, apiErr := s.datasetFor(call.c, id)
		if apiErr != nil {
			apiErr.write(w)
			return
		}
		datasets = append(datasets, ds)
	}
	s.finishV1(w, call, TokenInfo{Kind: KindTile, DashboardID: d.ID, TileID: t.ID}, datasets, nil)
}

// handleDatasetToken is POST groups/{g}/datasets/{d}/GenerateToken (Q&A).
func (s *Server) handleDatasetToken(w http.ResponseWriter, r *http.Request) {
	call, apiErr := s.v1Prelude(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	ds := s.world.datasetIn(call.ws, r.PathValue("dataset"))
	if ds == nil {
		notFound(fmt.Sprintf("Dataset %s was not found.", r.PathValue("dataset"))).write(w)
		return
	}
	if apiErr := viewOnly(call); apiErr != nil {
		apiErr.write(w)
		return
	}
	if apiErr := call.singleIdentity(); apiErr != nil {
		apiErr.write(w)
		return
	}
	s.finishV1(w, call, TokenInfo{Kind: KindDataset}, []*Dataset{ds}, nil)
}

// viewOnly: Edit is for reports and Create for report creation only.
func viewOnly(call *v1Call) *apiError {
	if call.level == "" {
		call.level = "View"
	}
	if call.level != "View" {
		return invalidRequest(fmt.Sprintf("accessLevel %s is only valid for reports.", call.level))
	}
	return nil
}
