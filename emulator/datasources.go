package emulator

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The metadata that tells a caller what kind of model it embeds: Get
// Dataset (isEffectiveIdentityRequired, isEffectiveIdentityRolesRequired,
// isOnPremGatewayRequired, upstreamDatasets), and the data sources of a
// dataset and of a paginated report ("Datasets - Get Datasources In
// Group", "Reports - Get Datasources In Group"). targetStorageMode is the
// storage format (Abf, PremiumFiles), not the connection mode; no call
// says whether a Power BI report has a paginated visual.

// upstreamJSON is Get Dataset's upstreamDatasets: DependentDataset
// objects.
func (s *Server) upstreamJSON(ds *Dataset) []any {
	out := []any{}
	for _, id := range ds.UpstreamDatasets {
		if p, ok := s.world.datasets[strings.ToLower(id)]; ok {
			out = append(out, map[string]any{"targetDatasetId": p.item.ID, "groupId": p.ws.ID})
		}
	}
	return out
}

// datasourceJSON is one Datasource wire object.
func datasourceJSON(src *Datasource) map[string]any {
	details := map[string]any{}
	for k, v := range map[string]string{"server": src.Server, "database": src.Database, "url": src.URL, "path": src.Path, "kind": src.Kind} {
		if v != "" {
			details[k] = v
		}
	}
	m := map[string]any{"datasourceType": src.Type, "connectionDetails": details}
	if g := src.Gateway; g != nil {
		m["gatewayId"] = g.ID
		m["datasourceId"] = g.DatasourceID
	}
	return m
}

// powerBIDatasetSource is how a dataset read through the XMLA endpoint
// appears among data sources. [unk] the exact connection details: they
// follow the connection strings Power BI Desktop (composite models:
// powerbi://api.powerbi.com/v1.0/myorg/<workspace>, the dataset name)
// and Power BI Report Builder (pbiazure://api.powerbi.com/,
// sobe_wowvirtualserver-<dataset id>) write.
func powerBIDatasetSource(ws *Workspace, ds *Dataset, paginated bool) map[string]any {
	if paginated {
		return map[string]any{"datasourceType": "AnalysisServices", "connectionDetails": map[string]any{
			"server": "pbiazure://api.powerbi.com/", "database": "sobe_wowvirtualserver-" + ds.ID}}
	}
	return map[string]any{"datasourceType": "AnalysisServices", "connectionDetails": map[string]any{
		"server": "powerbi://api.powerbi.com/v1.0/myorg/" + url.PathEscape(ws.Name), "database": ds.Name}}
}

// handleGetDatasources is GET groups/{g}/datasets/{d}/datasources.
func (s *Server) handleGetDatasources(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	ds := s.world.datasetIn(ws, r.PathValue("dataset"))
	if ds == nil {
		errNotFound.write(w)
		return
	}
	value := []any{}
	for i := range ds.Datasources {
		value = append(value, datasourceJSON(&ds.Datasources[i]))
	}
	for _, id := range ds.UpstreamDatasets {
		if p, ok := s.world.datasets[strings.ToLower(id)]; ok {
			value = append(value, powerBIDatasetSource(p.ws, p.item, false))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s/groups/%s/$metadata#datasources", odataBase, ws.ID),
		"value":          value,
	})
}

// handleGetReportDatasources is GET groups/{g}/reports/{r}/datasources,
// which Power BI documents for paginated reports.
func (s *Server) handleGetReportDatasources(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	rep := s.world.reportIn(ws, r.PathValue("report"))
	if rep == nil {
		errNotFound.write(w)
		return
	}
	if !rep.Paginated {
		// [unk] what the call answers for a Power BI report; its data
		// sources are its dataset's (Datasets - Get Datasources In Group).
		invalidRequest(fmt.Sprintf("Report %s is not a paginated report; read the data sources of its dataset %s.", rep.ID, rep.DatasetID)).write(w)
		return
	}
	value := []any{}
	for i := range rep.Datasources {
		value = append(value, datasourceJSON(&rep.Datasources[i]))
	}
	for _, id := range rep.Datasets {
		if p, ok := s.world.datasets[strings.ToLower(id)]; ok {
			value = append(value, powerBIDatasetSource(p.ws, p.item, true))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s/groups/%s/$metadata#datasources", odataBase, ws.ID),
		"value":          value,
	})
}
