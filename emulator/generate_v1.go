package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// v1Call is the common part of the V1 GenerateTokenInGroup routes: the
// caller, the group, the decoded body, and what the token will cover.
type v1Call struct {
	c        *caller
	ws       *Workspace
	req      generateTokenV1
	level    string
	minutes  int
	datasets []*Dataset    // the datasets the token reads
	needs    []requirement // the roles the token needs, per workspace
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

// need records the role the token needs in the path's workspace.
func (call *v1Call) need(role Role, what string) {
	call.needs = append(call.needs, requirement{call.ws, role, what})
}

// addDataset adds a dataset the token reads, wherever it lives (a
// report's dataset may be in another workspace, where the caller must be
// a member too).
func (call *v1Call) addDataset(w *world, id string) *apiError {
	if containsDataset(call.datasets, id) {
		return nil
	}
	p, ok := w.datasets[strings.ToLower(id)]
	if !ok {
		return errNotFound
	}
	call.datasets = append(call.datasets, p.item)
	call.needs = append(call.needs, requirement{p.ws, needEmbed, "generate an embed token for dataset " + p.item.ID})
	return nil
}

// finishV1 checks the caller's roles, what a V1 token can carry, the
// identity rules and the trial quota, then mints. rep is the report of a
// report token (nil for the other items).
func (s *Server) finishV1(w http.ResponseWriter, call *v1Call, info TokenInfo, rep *Report) {
	apiErr := s.world.requireAll(call.c, call.needs)
	var paginated []*Report
	if rep != nil && rep.Paginated {
		paginated = []*Report{rep}
	}
	if apiErr == nil {
		var reports []*Report
		if rep != nil {
			reports = []*Report{rep}
		}
		apiErr = s.userTokenRules(call.c, call.needs, reports)
	}
	if apiErr == nil {
		apiErr = v1ModelRules(rep, call.datasets)
	}
	var ids []TokenIdentity
	if apiErr == nil {
		ids, _, apiErr = s.checkIdentities(call.c, call.req.Identities, identityRules{datasets: call.datasets, paginated: paginated, v1Defaults: true})
	}
	if apiErr == nil {
		apiErr = s.spendTrialToken(call.c, call.needs)
	}
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	info.GroupID = call.ws.ID
	info.Identities = ids
	info.AccessLevel = call.level
	info.Datasets = tokenDatasets(call.datasets, func(*Dataset) string { return "Off" })
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
		errNotFound.write(w)
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
	call.need(needEmbed, "generate an embed token for report "+rep.ID)
	if !rep.Paginated {
		if apiErr := call.addDataset(s.world, rep.DatasetID); apiErr != nil {
			apiErr.write(w)
			return
		}
	}
	info := TokenInfo{
		Kind:        KindReport,
		Reports:     []TokenReport{{ID: rep.ID, AllowEdit: call.level == "Edit"}},
		AllowSaveAs: bool(call.req.AllowSaveAs),
	}
	s.finishV1(w, call, info, rep)
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
	call.need(needCreate, "create reports in workspace "+call.ws.ID)
	if apiErr := call.addDataset(s.world, call.req.DatasetID); apiErr != nil {
		apiErr.write(w)
		return
	}
	info := TokenInfo{Kind: KindCreate, TargetWorkspaces: []string{call.ws.ID}, AllowSaveAs: bool(call.req.AllowSaveAs)}
	s.finishV1(w, call, info, nil)
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
		errNotFound.write(w)
		return
	}
	if apiErr := viewOnly(call); apiErr != nil {
		apiErr.write(w)
		return
	}
	call.need(needEmbed, "generate an embed token for dashboard "+d.ID)
	for i := range d.Tiles {
		if id := s.world.tileDatasetID(&d.Tiles[i]); id != "" {
			if apiErr := call.addDataset(s.world, id); apiErr != nil {
				apiErr.write(w)
				return
			}
		}
	}
	s.finishV1(w, call, TokenInfo{Kind: KindDashboard, DashboardID: d.ID}, nil)
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
		errNotFound.write(w)
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
	call.need(needEmbed, "generate an embed token for tile "+t.ID)
	if id := s.world.tileDatasetID(t); id != "" {
		if apiErr := call.addDataset(s.world, id); apiErr != nil {
			apiErr.write(w)
			return
		}
	}
	s.finishV1(w, call, TokenInfo{Kind: KindTile, DashboardID: d.ID, TileID: t.ID}, nil)
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
		errNotFound.write(w)
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
	if apiErr := call.addDataset(s.world, ds.ID); apiErr != nil {
		apiErr.write(w)
		return
	}
	s.finishV1(w, call, TokenInfo{Kind: KindDataset}, nil)
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
