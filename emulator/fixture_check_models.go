package emulator

import (
	"fmt"
	"strings"
)

// reportModel checks what a report reads beyond its dataset: a paginated
// report's datasets and data sources, a Power BI report's paginated
// visuals.
func (v *validator) reportModel(key string, r Report, datasets map[string]bool, reports map[string]Report) {
	if !r.Paginated && len(r.Datasets) > 0 {
		v.addf("%s.datasets: only a paginated report lists datasets (a Power BI report has dataset_id)", key)
	}
	if !r.Paginated && len(r.Datasources) > 0 {
		v.addf("%s.datasources: only a paginated report has its own data sources (a Power BI report reads its dataset's)", key)
	}
	if r.Paginated && len(r.PaginatedVisuals) > 0 {
		v.addf("%s.paginated_visuals: only a Power BI report has paginated visuals", key)
	}
	for i, id := range r.Datasets {
		if !datasets[strings.ToLower(id)] {
			v.addf("%s.datasets[%d]: unknown dataset %q", key, i, id)
		}
	}
	for i, src := range r.Datasources {
		v.datasource(fmt.Sprintf("%s.datasources[%d]", key, i), src, principalIDs{})
		if src.analysisServices() && src.SSO {
			// "You can't currently embed a paginated report connected to
			// Azure Analysis Services with single sign-on (SSO) enabled."
			v.addf("%s.datasources[%d].sso: a paginated report cannot be embedded with SSO to Analysis Services", key, i)
		}
	}
	for i, id := range r.PaginatedVisuals {
		if p, ok := reports[strings.ToLower(id)]; !ok || !p.Paginated {
			v.addf("%s.paginated_visuals[%d]: %q is not a paginated report", key, i, id)
		}
	}
}

// datasetModel checks a dataset's data sources and upstream datasets, and
// that a live connection is declared the way Power BI reports it.
func (v *validator) datasetModel(key string, d Dataset, datasets map[string]Dataset, known principalIDs) {
	for i, src := range d.Datasources {
		v.datasource(fmt.Sprintf("%s.datasources[%d]", key, i), src, known)
	}
	hasAS := false
	for _, src := range d.Datasources {
		hasAS = hasAS || src.analysisServices()
	}
	if hasAS {
		switch {
		case len(d.Datasources) > 1 || len(d.UpstreamDatasets) > 0:
			v.addf("%s.datasources: a live connection to Analysis Services is the model's only source (no other sources, no upstream_datasets)", key)
		case !d.IdentityRequired:
			// Even a server without RLS needs an identity (the server
			// admin's): "Row-level security with Power BI Embedded",
			// On-premises data gateway with service principal.
			v.addf("%s.identity_required: a live connection to Analysis Services always requires an effective identity", key)
		}
	}
	for i, id := range d.UpstreamDatasets {
		switch up, ok := datasets[strings.ToLower(id)]; {
		case !ok:
			v.addf("%s.upstream_datasets[%d]: unknown dataset %q", key, i, id)
		case strings.EqualFold(id, d.ID):
			v.addf("%s.upstream_datasets[%d]: a dataset cannot read itself", key, i)
		case reaches(datasets, up, d.ID, map[string]bool{}):
			v.addf("%s.upstream_datasets[%d]: %q reads %q back (a cycle)", key, i, id, d.ID)
		}
	}
}

// reaches reports whether target is upstream of from.
func reaches(datasets map[string]Dataset, from Dataset, target string, seen map[string]bool) bool {
	for _, id := range from.UpstreamDatasets {
		k := strings.ToLower(id)
		if strings.EqualFold(id, target) {
			return true
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		if up, ok := datasets[k]; ok && reaches(datasets, up, target, seen) {
			return true
		}
	}
	return false
}

// datasource checks one data source: a type, a known SSO audience, and an
// Analysis Services server that is either in Azure or behind a gateway.
// With known empty, gateway principals are not checked.
func (v *validator) datasource(key string, src Datasource, known principalIDs) {
	if strings.TrimSpace(src.Type) == "" {
		v.addf("%s.type: required (the datasourceType, such as Sql or AnalysisServices)", key)
	}
	if src.SSO && src.audience() == "" {
		v.addf("%s.audience: required for an SSO source of type %q (the resource its identity blob is issued for)", key, src.Type)
	}
	if src.analysisServices() && src.azureAS() == (src.Gateway != nil) {
		v.addf("%s: an Analysis Services server is either in Azure (asazure://...) or on premises behind a gateway, not both or neither", key)
	}
	g := src.Gateway
	if g == nil {
		return
	}
	v.id(key+".gateway.id", g.ID)
	v.id(key+".gateway.datasource_id", g.DatasourceID)
	if known.apps == nil {
		return
	}
	for name, list := range map[string][]string{"admins": g.Admins, "read_override_effective_identity": g.ReadOverrideEffectiveIdentity} {
		for i, p := range list {
			if !known.has(p) {
				v.addf("%s.gateway.%s[%d]: %q is no app, profile or user", key, name, i, p)
			}
		}
	}
}

// has reports whether id names a known principal.
func (k principalIDs) has(id string) bool {
	id = strings.ToLower(id)
	return k.apps[id] || k.profiles[id] || k.users[id]
}
