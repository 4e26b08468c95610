package powerbi

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// What a token needs depends on the kind of model each dataset is, and Power
// BI says which through three calls (cached like the rest of the metadata):
// Get Dataset (isEffectiveIdentityRequired, isEffectiveIdentityRolesRequired,
// isOnPremGatewayRequired, upstreamDatasets), Get Datasources of the dataset,
// and, for a paginated report, Reports - Get Datasources. Microsoft documents
// each kind with a service principal under "Power BI embedded analytics":
//
//   - a cloud model (imported, or DirectQuery without single sign-on):
//     Power BI's own row-level security ("Embed a report with cloud-based
//     RLS");
//   - a live connection to Azure Analysis Services: the username is the
//     service principal's object id (or its profile's), the end user goes in
//     customData ("Embed a report with an Azure Analysis Services database");
//   - a live connection to SQL Server Analysis Services through an
//     on-premises gateway: a user the server knows, no customData ("Embed a
//     report on an on-premises SQL Server Analysis Services");
//   - DirectQuery with single sign-on: an identity blob, an Entra access
//     token for the data source ("Embed a report with token-based identity
//     (SSO)"); Power BI's REST API does not say whether a source uses SSO,
//     so a source of a kind that can (Azure SQL Database, Azure Databricks)
//     is reported with its audience, and the policy says whether to send it
//     one (ModelGrant.SSO);
//   - a composite model (DirectQuery to Power BI datasets): every dataset it
//     reads, transitively, in the token with xmlaPermissions ReadOnly
//     ("Generate an embed token", DirectQuery for Power BI datasets);
//   - a paginated report on Power BI datasets: each dataset in the token
//     with xmlaPermissions ReadOnly ("Embed a paginated report").

// ModelKind is the kind of model a dataset is, as far as its effective
// identity goes.
type ModelKind int

// The model kinds.
const (
	// ModelCloud is a model hosted by Power BI (imported or DirectQuery):
	// row-level security, if any, is Power BI's own.
	ModelCloud ModelKind = iota + 1
	// ModelAAS is a live connection to Azure Analysis Services.
	ModelAAS
	// ModelSSAS is a live connection to SQL Server Analysis Services through
	// an on-premises data gateway.
	ModelSSAS
)

// String names the kind as Explain and the logs show it.
func (k ModelKind) String() string {
	switch k {
	case ModelCloud:
		return "cloud"
	case ModelAAS:
		return "aas"
	case ModelSSAS:
		return "ssas"
	}
	return "unknown"
}

// Identity-blob audiences: the resource of the Entra access token a single
// sign-on data source takes ("Embed a report with token-based identity
// (SSO)"; Azure Databricks' Entra application id).
const (
	audienceAzureSQL   = "https://database.windows.net/"
	audienceDatabricks = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
)

// Datasource is a data source of a dataset or paginated report that can take
// an identity blob (single sign-on), as Get Datasources reports it.
type Datasource struct {
	// Type is the datasourceType (Sql, Extension, ...).
	Type string
	// Server, Database, URL, Path and Kind are its connectionDetails, echoed
	// in datasourceIdentities to name it.
	Server, Database, URL, Path, Kind string
	// Audience is the resource its identity blob is issued for.
	Audience string
}

// Model is what Power BI says about one dataset a token opens, or about a
// paginated report's own data sources.
type Model struct {
	// ID is the dataset's id, or the paginated report's.
	ID string
	// WorkspaceID is where it lives; "" for a dataset a paginated report
	// reads that is in none of the workspaces it was looked for in (the
	// report's and TokenRequest.Workspaces).
	WorkspaceID string
	// Paginated marks a paginated report: its Upstream are the Power BI
	// datasets it reads, its SSO its own data sources.
	Paginated bool
	// Kind is a dataset's kind; 0 for a paginated report or a dataset that
	// was not found.
	Kind ModelKind
	// IdentityRequired and RolesRequired are isEffectiveIdentityRequired and
	// isEffectiveIdentityRolesRequired.
	IdentityRequired, RolesRequired bool
	// Upstream are the datasets a composite model reads with DirectQuery, or
	// a paginated report reads (each is a Model of the token too).
	Upstream []string
	// SSO are its data sources that can take an identity blob.
	SSO []Datasource
	// ReadBy is the composite model or paginated report that makes the
	// token open this dataset; "" for the dataset of a requested report (or
	// tile).
	ReadBy string
	// Reports are the requested reports (or tiles' reports) on it, directly
	// or through ReadBy.
	Reports []string
	// XMLA: the token gives it xmlaPermissions ReadOnly (a composite model,
	// a dataset one reads, a paginated report's dataset).
	XMLA bool
}

// ModelGrant is the policy's decision for one Model of a token
// (TokenRequest.Models).
type ModelGrant struct {
	// ID is the Model's id.
	ID string
	// Identity replaces TokenRequest.Identity for this dataset (its kind, or
	// the policy, wants another username, customData or roles); nil:
	// TokenRequest.Identity's rules apply.
	Identity *ModelIdentity
	// SSO: Embedgate acquires an identity blob for each of its SSO data
	// sources, as its service principal, and sends it.
	SSO bool
}

// ModelIdentity is the effective identity of one dataset.
type ModelIdentity struct {
	// ServicePrincipal: the username is Embedgate's service principal's
	// object id, or with a profile the profile's id (Azure Analysis
	// Services); Username is then unused.
	ServicePrincipal bool
	Username         string
	CustomData       string
	// Roles are its roles; nil or empty for none.
	Roles []string
}

// Models learns, from Power BI (or the metadata cache), in a metadata span,
// what a token for r would open: every dataset (the requested reports' or tiles', each
// paginated report's, and each composite model's upstream datasets,
// transitively), then each paginated report. The policy decides on them
// (TokenRequest.Models) before Issue or Plan.
func (cl *Client) Models(ctx context.Context, r TokenRequest) ([]Model, error) {
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	ctx, span := cl.tracer.Start(ctx, spanMetadata, trace.WithAttributes(attribute.Int(attrItems, len(r.Items))))
	o, err := cl.open(ctx, r)
	endSpan(span, err)
	if err != nil {
		return nil, err
	}
	return o.models, nil
}

// opened is what a token for a request opens: its items, as the response
// lists them, and their models.
type opened struct {
	items  []Embedded
	models []Model
	// paginated is the index in items of the paginated reports.
	paginated []int
	// reports is how many distinct reports the items are.
	reports int
	// v1 names the V1 route of a dashboard or a tile ("" for reports).
	v1 string
	op string
	// forget drops the metadata it was learned from.
	forget func()
}

// open learns the items of r and their models, by kind.
func (cl *Client) open(ctx context.Context, r TokenRequest) (*opened, error) {
	switch r.Items[0].Kind {
	case KindReport:
		return cl.openReports(ctx, r)
	case KindDashboard:
		return cl.openDashboard(ctx, r)
	default: // KindTile; checkRequest refused any other
		return cl.openTile(ctx, r)
	}
}

// openReports reads each report, the data sources of each paginated one, and
// the models of their datasets.
func (cl *Client) openReports(ctx context.Context, r TokenRequest) (*opened, error) {
	metas, err := fanOut(ctx, cl.fanOutLimit(), len(r.Items), func(ctx context.Context, i int) (reportMeta, error) {
		it := r.Items[i]
		return cl.report(ctx, it.WorkspaceID, r.ProfileID, it.ID)
	})
	if err != nil {
		return nil, err
	}
	o := &opened{items: make([]Embedded, len(metas)), reports: len(distinctFold(itemIDs(r.Items)))}
	var refs []datasetAt
	for i, m := range metas {
		it := r.Items[i]
		o.items[i] = Embedded{Kind: KindReport, ID: it.ID, Name: m.Name, EmbedURL: m.EmbedURL, WorkspaceID: it.WorkspaceID, DatasetID: m.DatasetID}
		if m.paginated() {
			o.items[i].DatasetID = ""
			o.paginated = append(o.paginated, i)
			continue
		}
		refs = append(refs, datasetAt{ws: datasetWorkspace(it.WorkspaceID, m), id: m.DatasetID, owners: []string{it.ID}})
	}
	var distinct []Item // the paginated reports, each once
	for _, i := range o.paginated {
		it := r.Items[i]
		if !slices.ContainsFunc(distinct, func(d Item) bool { return strings.EqualFold(d.ID, it.ID) }) {
			distinct = append(distinct, it)
		}
	}
	pages, err := fanOut(ctx, cl.fanOutLimit(), len(distinct), func(ctx context.Context, j int) (Model, error) {
		return cl.paginatedModel(ctx, r, distinct[j])
	})
	if err != nil {
		return nil, err
	}
	var located []string // keys of the located cache
	for _, p := range pages {
		candidates := append([]string{p.WorkspaceID}, r.Workspaces...)
		for _, id := range p.Upstream {
			ws, err := cl.locate(ctx, r.ProfileID, id, candidates)
			if err != nil {
				return nil, err
			}
			located = append(located, locatedKey(candidates, r.ProfileID, id))
			refs = append(refs, datasetAt{ws: ws, id: id, owners: []string{p.ID}, readBy: p.ID})
		}
	}
	o.models, err = cl.expand(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	o.models = append(o.models, pages...)
	o.forget = func() {
		for _, it := range r.Items {
			cl.meta.reports.forget(metaKey(it.WorkspaceID, r.ProfileID, it.ID))
			cl.meta.reportSources.forget(metaKey(it.WorkspaceID, r.ProfileID, it.ID))
		}
		for _, k := range located {
			cl.meta.located.forget(k)
		}
		cl.forgetModels(r.ProfileID, o.models)
	}
	return o, nil
}

func itemIDs(items []Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// paginatedModel reads a paginated report's data sources: its own, and the
// Power BI datasets it reads.
func (cl *Client) paginatedModel(ctx context.Context, r TokenRequest, it Item) (Model, error) {
	list, err := cl.reportSources(ctx, it.WorkspaceID, r.ProfileID, it.ID)
	if err != nil {
		return Model{}, err
	}
	m := Model{ID: it.ID, WorkspaceID: it.WorkspaceID, Paginated: true, Reports: []string{it.ID}}
	for _, src := range list.Value {
		if id := paginatedDatasetID(src); id != "" {
			if !slices.ContainsFunc(m.Upstream, func(u string) bool { return strings.EqualFold(u, id) }) {
				m.Upstream = append(m.Upstream, id)
			}
			continue
		}
		if aud := audienceOf(src); aud != "" {
			m.SSO = append(m.SSO, datasource(src, aud))
		}
	}
	return m, nil
}

// paginatedDatasetPrefix starts the catalog name under which a paginated
// report reads a Power BI dataset (the connection string Power BI Report
// Builder writes: Data Source=pbiazure://api.powerbi.com/; Initial
// Catalog=sobe_wowvirtualserver-<dataset id>).
const paginatedDatasetPrefix = "sobe_wowvirtualserver-"

// paginatedDatasetID is the id of the Power BI dataset a paginated report's
// data source reads, or "" for any other data source.
func paginatedDatasetID(src datasourceMeta) string {
	db := src.ConnectionDetails.Database
	if !strings.EqualFold(src.DatasourceType, "AnalysisServices") || len(db) <= len(paginatedDatasetPrefix) ||
		!strings.EqualFold(db[:len(paginatedDatasetPrefix)], paginatedDatasetPrefix) {
		return ""
	}
	return db[len(paginatedDatasetPrefix):]
}

// locate finds the workspace of a dataset Power BI names without one (a
// paginated report reads it by id alone): the first of candidates whose Get
// Dataset knows it; "" when none does. The answer, found or not, is cached
// with the metadata.
func (cl *Client) locate(ctx context.Context, profile, id string, candidates []string) (string, error) {
	key := locatedKey(candidates, profile, id)
	if ws, ok := cl.meta.located.get(key, cl.now()); ok {
		return ws, nil
	}
	seen := map[string]bool{}
	for _, ws := range candidates {
		if ws == "" || seen[strings.ToLower(ws)] {
			continue
		}
		seen[strings.ToLower(ws)] = true
		_, err := cl.dataset(ctx, ws, profile, id)
		switch {
		case err == nil:
			cl.meta.located.put(key, ws, cl.now(), cl.cfg.MetadataTTL)
			return ws, nil
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrForbidden):
		default:
			return "", err
		}
	}
	cl.meta.located.put(key, "", cl.now(), cl.cfg.MetadataTTL)
	return "", nil
}

func locatedKey(candidates []string, profile, id string) string {
	return metaKey(strings.Join(candidates, ","), profile, id)
}

// expand learns the model of each dataset of refs and of every dataset a
// composite model among them reads, transitively: each once (ids compared
// case-insensitively), in first-seen order, level by level.
func (cl *Client) expand(ctx context.Context, profile string, refs []datasetAt) ([]Model, error) {
	var models []Model
	index := map[string]int{}
	for level := refs; len(level) > 0; {
		var fetch []int // indexes into models
		for _, ref := range level {
			if ref.id == "" {
				continue
			}
			k := strings.ToLower(ref.id)
			if i, ok := index[k]; ok {
				m := &models[i]
				if ref.readBy == "" {
					m.ReadBy = "" // a requested report's own dataset
				}
				m.XMLA = m.XMLA || ref.readBy != ""
				m.Reports = appendOwner(m.Reports, ref.owners...)
				continue
			}
			index[k] = len(models)
			if ref.ws != "" {
				fetch = append(fetch, len(models))
			}
			models = append(models, Model{ID: ref.id, WorkspaceID: ref.ws, ReadBy: ref.readBy, Reports: appendOwner(nil, ref.owners...), XMLA: ref.readBy != ""})
		}
		type learned struct {
			meta    datasetMeta
			sources datasourceList
		}
		got, err := fanOut(ctx, cl.fanOutLimit(), 2*len(fetch), func(ctx context.Context, i int) (learned, error) {
			m := models[fetch[i/2]]
			if i%2 == 0 {
				meta, err := cl.dataset(ctx, m.WorkspaceID, profile, m.ID)
				return learned{meta: meta}, err
			}
			src, err := cl.datasetSources(ctx, m.WorkspaceID, profile, m.ID)
			return learned{sources: src}, err
		})
		if err != nil {
			return nil, err
		}
		level = nil
		for j, i := range fetch {
			meta, sources := got[2*j].meta, got[2*j+1].sources
			m := &models[i]
			m.IdentityRequired, m.RolesRequired = meta.IsEffectiveIdentityRequired, meta.IsEffectiveIdentityRolesRequired
			m.Kind, m.SSO = classifyModel(meta, sources.Value)
			for _, up := range meta.UpstreamDatasets {
				if up.TargetDatasetID == "" {
					continue
				}
				m.XMLA = true
				m.Upstream = append(m.Upstream, up.TargetDatasetID)
				level = append(level, datasetAt{ws: up.GroupID, id: up.TargetDatasetID, owners: m.Reports, readBy: m.ID})
			}
		}
	}
	return models, nil
}

// appendOwner adds ids not yet in list.
func appendOwner(list []string, ids ...string) []string {
	for _, id := range ids {
		if id != "" && !slices.ContainsFunc(list, func(o string) bool { return strings.EqualFold(o, id) }) {
			list = append(list, id)
		}
	}
	return list
}

// classifyModel tells the kind of a dataset from its flags and data sources, and
// lists the sources that can take an identity blob. A composite model lists
// the datasets it reads among its data sources (Analysis Services on a
// powerbi:// server): they are its upstream datasets, not a live connection.
func classifyModel(meta datasetMeta, sources []datasourceMeta) (ModelKind, []Datasource) {
	var own []datasourceMeta
	for _, s := range sources {
		if !powerBIDataset(s) {
			own = append(own, s)
		}
	}
	kind := ModelCloud
	if len(own) == 1 && len(meta.UpstreamDatasets) == 0 && strings.EqualFold(own[0].DatasourceType, "AnalysisServices") {
		kind = ModelSSAS
		if hasPrefixFold(own[0].ConnectionDetails.Server, "asazure://") {
			kind = ModelAAS
		}
	}
	var sso []Datasource
	for _, s := range own {
		if aud := audienceOf(s); aud != "" {
			sso = append(sso, datasource(s, aud))
		}
	}
	return kind, sso
}

// powerBIDataset reports whether a data source is a Power BI dataset read
// through its XMLA endpoint.
func powerBIDataset(s datasourceMeta) bool {
	server := s.ConnectionDetails.Server
	return strings.EqualFold(s.DatasourceType, "AnalysisServices") &&
		(hasPrefixFold(server, "powerbi://") || hasPrefixFold(server, "pbiazure://"))
}

// audienceOf is the resource of the identity blob a data source takes when
// it uses single sign-on: Azure SQL Database (a Sql source on
// *.database.windows.net, or a national cloud's), Azure Databricks; "" for
// any other source.
func audienceOf(s datasourceMeta) string {
	switch {
	case strings.EqualFold(s.DatasourceType, "Sql"):
		host := strings.ToLower(s.ConnectionDetails.Server)
		host = strings.TrimPrefix(host, "tcp:")
		if i := strings.IndexAny(host, ",:"); i >= 0 {
			host = host[:i]
		}
		for _, suffix := range []string{"database.windows.net", "database.usgovcloudapi.net", "database.chinacloudapi.cn"} {
			if strings.HasSuffix(host, "."+suffix) {
				return "https://" + suffix + "/"
			}
		}
	case strings.EqualFold(s.DatasourceType, "Extension") && strings.EqualFold(s.ConnectionDetails.Kind, "Databricks"),
		strings.EqualFold(s.DatasourceType, "Databricks"):
		return audienceDatabricks
	}
	return ""
}

func datasource(s datasourceMeta, audience string) Datasource {
	cd := s.ConnectionDetails
	return Datasource{Type: s.DatasourceType, Server: cd.Server, Database: cd.Database, URL: cd.URL, Path: cd.Path, Kind: cd.Kind, Audience: audience}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// openDashboard reads the dashboard and its tiles (together; errors are
// reported dashboard first, so that an unknown dashboard is named as such),
// and the models of the tiles' datasets.
func (cl *Client) openDashboard(ctx context.Context, r TokenRequest) (*opened, error) {
	it := r.Items[0]
	var (
		dash       dashboardMeta
		tiles      tileList
		dErr, tErr error
		wg         sync.WaitGroup
	)
	wg.Go(func() { dash, dErr = cl.dashboard(ctx, it.WorkspaceID, r.ProfileID, it.ID) })
	wg.Go(func() { tiles, tErr = cl.dashboardTiles(ctx, it.WorkspaceID, r.ProfileID, it.ID) })
	wg.Wait()
	if err := cmp.Or(dErr, tErr); err != nil {
		return nil, err
	}
	refs := make([]datasetAt, len(tiles.Value))
	for i, t := range tiles.Value {
		refs[i] = datasetAt{ws: it.WorkspaceID, id: t.DatasetID, owners: []string{t.ReportID}}
	}
	models, err := cl.expand(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	key := metaKey(it.WorkspaceID, r.ProfileID, it.ID)
	return &opened{
		items:  []Embedded{{Kind: KindDashboard, ID: it.ID, Name: dash.DisplayName, EmbedURL: dash.EmbedURL, WorkspaceID: it.WorkspaceID}},
		models: models,
		op:     "GenerateDashboardToken",
		v1:     cl.groupURL(it.WorkspaceID, "dashboards", it.ID, "GenerateToken"),
		forget: func() {
			cl.meta.dashboards.forget(key)
			cl.meta.tileLists.forget(key)
			cl.forgetModels(r.ProfileID, models)
		},
	}, nil
}

// openTile reads the tile, addressed under its dashboard so that Power BI
// refuses a tile of another one, and the model of its dataset.
func (cl *Client) openTile(ctx context.Context, r TokenRequest) (*opened, error) {
	it := r.Items[0]
	t, err := cl.tile(ctx, it.WorkspaceID, r.ProfileID, it.DashboardID, it.ID)
	if err != nil {
		return nil, err
	}
	models, err := cl.expand(ctx, r.ProfileID, []datasetAt{{ws: it.WorkspaceID, id: t.DatasetID, owners: []string{t.ReportID}}})
	if err != nil {
		return nil, err
	}
	return &opened{
		items: []Embedded{{Kind: KindTile, ID: it.ID, Name: t.Title, EmbedURL: t.EmbedURL, WorkspaceID: it.WorkspaceID,
			DatasetID: t.DatasetID, ReportID: t.ReportID, DashboardID: it.DashboardID}},
		models: models,
		op:     "GenerateTileToken",
		v1:     cl.groupURL(it.WorkspaceID, "dashboards", it.DashboardID, "tiles", it.ID, "GenerateToken"),
		forget: func() {
			cl.meta.tiles.forget(metaKey(it.WorkspaceID, r.ProfileID, it.DashboardID+"/"+it.ID))
			cl.forgetModels(r.ProfileID, models)
		},
	}, nil
}

// forgetModels drops the cached metadata of the datasets of models.
func (cl *Client) forgetModels(profile string, models []Model) {
	refs := make([]datasetAt, 0, len(models))
	for _, m := range models {
		if !m.Paginated {
			refs = append(refs, datasetAt{ws: m.WorkspaceID, id: m.ID})
		}
	}
	cl.forgetDatasets(profile, refs)
}
