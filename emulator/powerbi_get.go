package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// clusterURL is the cluster the emulator claims to be; it appears in embed
// URL configs and OData contexts the way a real WABI cluster does.
const (
	clusterURL  = "https://WABI-EMULATOR-PRIMARY-redirect.analysis.windows.net"
	odataBase   = "http://wabi-emulator-primary-redirect.analysis.windows.net/v1.0/myorg"
	appBaseURL  = "https://app.powerbi.com"
	datasetMode = "Abf"
)

// embedConfig is the base64 JSON config real embed URLs carry.
var embedConfig = base64.StdEncoding.EncodeToString(
	[]byte(`{"clusterUrl":"` + clusterURL + `","embedFeatures":{"modernEmbed":true}}`))

func reportEmbedURL(ws *Workspace, rep *Report) string {
	page := "reportEmbed"
	if rep.Paginated {
		page = "rdlEmbed"
	}
	if ws.ID == myWorkspaceID {
		return fmt.Sprintf("%s/%s?reportId=%s&w=2&config=%s", appBaseURL, page, rep.ID, url.QueryEscape(embedConfig))
	}
	return fmt.Sprintf("%s/%s?reportId=%s&groupId=%s&w=2&config=%s", appBaseURL, page, rep.ID, ws.ID, url.QueryEscape(embedConfig))
}

func dashboardEmbedURL(ws *Workspace, d *Dashboard) string {
	return fmt.Sprintf("%s/dashboardEmbed?dashboardId=%s&groupId=%s&w=2&config=%s", appBaseURL, d.ID, ws.ID, url.QueryEscape(embedConfig))
}

func tileEmbedURL(ws *Workspace, d *Dashboard, t *Tile) string {
	return fmt.Sprintf("%s/embed?dashboardId=%s&tileId=%s&groupId=%s&w=2&config=%s", appBaseURL, d.ID, t.ID, ws.ID, url.QueryEscape(embedConfig))
}

// reportJSON is the Report wire object (without @odata.context).
func (s *Server) reportJSON(ws *Workspace, rep *Report) map[string]any {
	m := map[string]any{
		"id":            rep.ID,
		"name":          rep.Name,
		"embedUrl":      reportEmbedURL(ws, rep),
		"isFromPbix":    !rep.Paginated,
		"isOwnedByMe":   false,
		"users":         []any{},
		"subscriptions": []any{},
	}
	if rep.Paginated {
		m["reportType"] = "PaginatedReport"
		m["webUrl"] = fmt.Sprintf("%s/groups/%s/rdlreports/%s", appBaseURL, ws.ID, rep.ID)
		return m
	}
	m["reportType"] = "PowerBIReport"
	m["webUrl"] = fmt.Sprintf("%s/groups/%s/reports/%s", appBaseURL, ws.ID, rep.ID)
	m["datasetId"] = rep.DatasetID
	if p, ok := s.world.datasets[strings.ToLower(rep.DatasetID)]; ok && p.ws.ID != myWorkspaceID {
		m["datasetWorkspaceId"] = p.ws.ID
	}
	return m
}

// powerBIPrelude authenticates a Power BI call and resolves its group.
func (s *Server) powerBIPrelude(w http.ResponseWriter, r *http.Request) (*caller, *Workspace, bool) {
	c, apiErr := s.authenticate(r)
	if apiErr == nil {
		var ws *Workspace
		if ws, apiErr = s.group(r, c); apiErr == nil {
			return c, ws, true
		}
	}
	apiErr.write(w)
	return nil, nil, false
}

func (s *Server) handleGetReports(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	value := make([]any, 0, len(ws.Reports))
	for i := range ws.Reports {
		value = append(value, s.reportJSON(ws, &ws.Reports[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s/groups/%s/$metadata#reports", odataBase, ws.ID),
		"value":          value,
	})
}

func (s *Server) handleGetReport(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	rep := s.world.reportIn(ws, r.PathValue("report"))
	if rep == nil {
		errNotFound.write(w)
		return
	}
	m := s.reportJSON(ws, rep)
	m["@odata.context"] = fmt.Sprintf("%s/groups/%s/$metadata#reports/$entity", odataBase, ws.ID)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleGetDataset(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	ds := s.world.datasetIn(ws, r.PathValue("dataset"))
	if ds == nil {
		errNotFound.write(w)
		return
	}
	m := s.datasetJSON(ws, ds)
	m["@odata.context"] = fmt.Sprintf("%s/groups/%s/$metadata#datasets/$entity", odataBase, ws.ID)
	writeJSON(w, http.StatusOK, m)
}

// datasetJSON is the Dataset wire object (without @odata.context).
func (s *Server) datasetJSON(ws *Workspace, ds *Dataset) map[string]any {
	return map[string]any{
		"id":                               ds.ID,
		"name":                             ds.Name,
		"webUrl":                           fmt.Sprintf("%s/groups/%s/datasets/%s", appBaseURL, ws.ID, ds.ID),
		"addRowsAPIEnabled":                false,
		"configuredBy":                     "emulator@embedgate.local",
		"isRefreshable":                    true,
		"isEffectiveIdentityRequired":      ds.IdentityRequired,
		"isEffectiveIdentityRolesRequired": ds.RolesRequired,
		"isOnPremGatewayRequired":          ds.onPremGateway(),
		"targetStorageMode":                datasetMode,
		"createReportEmbedURL":             fmt.Sprintf("%s/reportEmbed?config=%s", appBaseURL, url.QueryEscape(embedConfig)),
		"qnaEmbedURL":                      fmt.Sprintf("%s/qnaEmbed?config=%s", appBaseURL, url.QueryEscape(embedConfig)),
		"upstreamDatasets":                 s.upstreamJSON(ds),
		"users":                            []any{},
	}
}

// dashboardJSON is the Dashboard wire object (without @odata.context).
func dashboardJSON(ws *Workspace, d *Dashboard) map[string]any {
	return map[string]any{
		"id":            d.ID,
		"displayName":   d.Name,
		"isReadOnly":    false,
		"webUrl":        fmt.Sprintf("%s/groups/%s/dashboards/%s", appBaseURL, ws.ID, d.ID),
		"embedUrl":      dashboardEmbedURL(ws, d),
		"users":         []any{},
		"subscriptions": []any{},
	}
}

// tileJSON is the Tile wire object (without @odata.context).
func (s *Server) tileJSON(ws *Workspace, d *Dashboard, t *Tile) map[string]any {
	m := map[string]any{
		"id":        t.ID,
		"title":     t.Title,
		"embedUrl":  tileEmbedURL(ws, d, t),
		"embedData": "{}",
		"rowSpan":   0,
		"colSpan":   0,
	}
	if t.ReportID != "" {
		m["reportId"] = t.ReportID
	}
	if id := s.world.tileDatasetID(t); id != "" {
		m["datasetId"] = id
	}
	return m
}

func (s *Server) handleGetDashboards(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	value := make([]any, 0, len(ws.Dashboards))
	for i := range ws.Dashboards {
		value = append(value, dashboardJSON(ws, &ws.Dashboards[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s/groups/%s/$metadata#dashboards", odataBase, ws.ID),
		"value":          value,
	})
}

func (s *Server) handleGetDashboard(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	d := s.world.dashboardIn(ws, r.PathValue("dashboard"))
	if d == nil {
		errNotFound.write(w)
		return
	}
	m := dashboardJSON(ws, d)
	m["@odata.context"] = fmt.Sprintf("%s/groups/%s/$metadata#dashboards/$entity", odataBase, ws.ID)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleGetTiles(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	d := s.world.dashboardIn(ws, r.PathValue("dashboard"))
	if d == nil {
		errNotFound.write(w)
		return
	}
	value := make([]any, 0, len(d.Tiles))
	for i := range d.Tiles {
		value = append(value, s.tileJSON(ws, d, &d.Tiles[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s/groups/%s/dashboards/%s/$metadata#tiles", odataBase, ws.ID, d.ID),
		"value":          value,
	})
}

func (s *Server) handleGetTile(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	d := s.world.dashboardIn(ws, r.PathValue("dashboard"))
	var t *Tile
	if d != nil {
		t = d.tile(r.PathValue("tile"))
	}
	if t == nil {
		errNotFound.write(w)
		return
	}
	m := s.tileJSON(ws, d, t)
	m["@odata.context"] = fmt.Sprintf("%s/groups/%s/dashboards/%s/$metadata#tiles/$entity", odataBase, ws.ID, d.ID)
	writeJSON(w, http.StatusOK, m)
}

// isAvailableFeatures matches availableFeatures and
// availableFeatures(featureName='x').
func isAvailableFeatures(seg string) bool {
	return seg == "availableFeatures" || strings.HasPrefix(seg, "availableFeatures(")
}

// handleAvailableFeatures reports the embedTrial feature and its usage.
func (s *Server) handleAvailableFeatures(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("feature")
	if !isAvailableFeatures(seg) {
		s.handleNotFound(w, r)
		return
	}
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	usage := s.trialUsage(c)
	feature := map[string]any{
		"name":           "embedTrial",
		"state":          "Enabled",
		"extendedState":  "Enabled",
		"additionalInfo": map[string]any{"usage": usage},
	}
	if seg == "availableFeatures" {
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.context": odataBase + "/$metadata#availableFeatures",
			"features":       []any{feature},
		})
		return
	}
	arg := strings.TrimSuffix(strings.TrimPrefix(seg, "availableFeatures("), ")")
	name, ok := strings.CutPrefix(arg, "featureName=")
	name = strings.Trim(name, `'"`)
	if !ok || !strings.EqualFold(name, "embedTrial") {
		errNotFound.write(w)
		return
	}
	feature["@odata.context"] = odataBase + "/$metadata#Microsoft.PowerBI.ServiceContract.Apis.v1.AvailableFeature"
	writeJSON(w, http.StatusOK, feature)
}
