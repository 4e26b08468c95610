package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

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
// every workspace touched (401 without a role, 403 with too low a one),
// then dataset and RLS rules (400), then the trial quota (403).
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

	var touched []requirement
	it := &v2Items{xmla: map[*Dataset]string{}}
	for _, rr := range req.Reports {
		if rr.ID == "" {
			return info, 0, invalidRequest("Report id is required.")
		}
		p, ok := s.world.reports[strings.ToLower(rr.ID)]
		if !ok {
			return info, 0, errNotFound
		}
		it.reports = append(it.reports, p)
		it.edit = append(it.edit, bool(rr.AllowEdit))
		touched = append(touched, requirement{p.ws, needEmbed, "generate an embed token for report " + p.item.ID})
		info.Reports = append(info.Reports, TokenReport{ID: p.item.ID, AllowEdit: bool(rr.AllowEdit)})
	}
	for _, rd := range req.Datasets {
		if rd.ID == "" {
			return info, 0, invalidRequest("Dataset id is required.")
		}
		p, ok := s.world.datasets[strings.ToLower(rd.ID)]
		if !ok {
			return info, 0, errNotFound
		}
		xmla, ok := normalizeXmla(rd.XmlaPermissions)
		if !ok {
			return info, 0, invalidRequest(fmt.Sprintf("xmlaPermissions '%s' is not valid; use Off or ReadOnly.", rd.XmlaPermissions))
		}
		it.datasets = append(it.datasets, p.item)
		it.xmla[p.item] = xmla
		touched = append(touched, requirement{p.ws, needEmbed, "generate an embed token for dataset " + p.item.ID})
	}
	for _, tw := range req.TargetWorkspaces {
		ws := s.world.workspace(tw.ID)
		if ws == nil {
			return info, 0, errNotAuthorized
		}
		touched = append(touched, requirement{ws, needCreate, "create reports in workspace " + ws.ID})
		info.TargetWorkspaces = append(info.TargetWorkspaces, ws.ID)
	}
	if apiErr := s.world.requireAll(c, touched); apiErr != nil {
		return info, 0, apiErr
	}
	if apiErr := s.userV2Rules(c, it, touched, len(info.TargetWorkspaces) > 0); apiErr != nil {
		return info, 0, apiErr
	}
	if apiErr := s.modelRules(it); apiErr != nil {
		return info, 0, apiErr
	}
	ids, sources, apiErr := s.checkIdentities(c, req.Identities, identityRules{
		datasets: it.datasets, paginated: it.paginated(), sources: req.DatasourceIdentities})
	if apiErr != nil {
		return info, 0, apiErr
	}
	info.Kind = KindV2
	info.Datasets = tokenDatasets(it.datasets, func(d *Dataset) string { return it.xmla[d] })
	info.Identities = ids
	info.DatasourceIdentities = sources
	if apiErr := s.spendTrialToken(c, touched); apiErr != nil {
		return info, 0, apiErr
	}
	return info, minutes, nil
}
