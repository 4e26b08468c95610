package powerbi

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxItems is Power BI's cap on reports, datasets and target workspaces per V2
// token.
const maxItems = 50

// minting is a planned GenerateToken call and what to forget if Power BI
// rejects it.
type minting struct {
	plan   *Plan
	op     string
	forget func()
}

// newMinting marshals body into the plan of a POST to u.
func newMinting(op, u, profile string, body any, items []Embedded, forget func()) *minting {
	b, _ := json.Marshal(body) // cannot fail: the bodies hold strings, ints and bools only
	return &minting{op: op, forget: forget, plan: &Plan{Method: http.MethodPost, URL: u, ProfileID: profile, Body: b, Items: items}}
}

// plan builds the one GenerateToken call for r, by the kind of its items:
// reports go on the V2 route together (or, a lone paginated report, on its V1
// route); a dashboard or a tile on its own V1 route. Metadata comes from cache
// or the Get calls; RLS preconditions are checked before anything is minted.
func (cl *Client) plan(ctx context.Context, r TokenRequest) (*minting, error) {
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	switch r.Items[0].Kind {
	case KindReport:
		return cl.planReports(ctx, r)
	case KindDashboard:
		return cl.planDashboard(ctx, r)
	default: // KindTile; checkRequest refused any other
		return cl.planTile(ctx, r)
	}
}

// checkRequest refuses what the server never sends; it guards the package's
// own invariants (one kind, counts, ids).
func checkRequest(r TokenRequest) error {
	switch {
	case len(r.Items) == 0:
		return invalidRequest("no items")
	case len(r.TargetWorkspaceIDs) > maxItems:
		return invalidRequest("%d target workspaces, Power BI allows at most %d per token", len(r.TargetWorkspaceIDs), maxItems)
	case r.Lifetime < 0:
		return invalidRequest("negative lifetime %s", r.Lifetime)
	case slices.Contains(r.TargetWorkspaceIDs, ""):
		return invalidRequest("empty target workspace id")
	}
	kind := r.Items[0].Kind
	switch kind {
	case KindReport:
		if len(r.Items) > maxItems {
			return invalidRequest("%d reports, Power BI allows at most %d per token", len(r.Items), maxItems)
		}
	case KindDashboard, KindTile:
		switch {
		case len(r.Items) > 1:
			return invalidRequest("a %s is embedded alone", kind)
		case r.AllowEdit || r.TargetWorkspaceIDs != nil:
			return invalidRequest("a %s is embedded for viewing only", kind)
		case kind == KindTile && r.Items[0].DashboardID == "":
			return invalidRequest("tile %s without its dashboard", r.Items[0].ID)
		}
	default:
		return invalidRequest("unknown item kind %v", kind)
	}
	for _, it := range r.Items {
		switch {
		case it.Kind != kind:
			return invalidRequest("items of kinds %v and %v in one token", kind, it.Kind)
		case it.ID == "":
			return invalidRequest("empty %s id", it.Kind)
		case it.WorkspaceID == "":
			return invalidRequest("no workspace id for %s %s", it.Kind, it.ID)
		}
	}
	return nil
}

// planReports plans one V2 POST for every report, whatever their workspaces,
// or the V1 report route for a lone paginated report.
func (cl *Client) planReports(ctx context.Context, r TokenRequest) (*minting, error) {
	metas, err := fanOut(ctx, len(r.Items), func(ctx context.Context, i int) (reportMeta, error) {
		it := r.Items[i]
		return cl.report(ctx, it.WorkspaceID, r.ProfileID, it.ID)
	})
	if err != nil {
		return nil, err
	}
	items := make([]Embedded, len(metas))
	refs := make([]datasetAt, len(metas))
	paginated := -1
	for i, m := range metas {
		it := r.Items[i]
		items[i] = Embedded{Kind: KindReport, ID: it.ID, Name: m.Name, EmbedURL: m.EmbedURL, WorkspaceID: it.WorkspaceID, DatasetID: m.DatasetID}
		refs[i] = datasetAt{ws: datasetWorkspace(it.WorkspaceID, m), id: m.DatasetID, owner: it.ID}
		if m.paginated() {
			paginated = i
			items[i].DatasetID, refs[i].id = "", ""
		}
	}
	forget := func() {
		for _, it := range r.Items {
			cl.meta.reports.forget(metaKey(it.WorkspaceID, r.ProfileID, it.ID))
		}
		cl.forgetDatasets(r.ProfileID, refs)
	}
	if paginated >= 0 {
		return cl.planPaginated(r, paginated, items, forget)
	}
	datasets, err := cl.datasets(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	if len(datasets) > maxItems {
		return nil, invalidRequest("%d datasets, Power BI allows at most %d per token", len(datasets), maxItems)
	}
	ids, err := identitiesFor(r.Identity, datasets, refs)
	if err != nil {
		return nil, err
	}
	body := &generateTokenRequestV2{Identities: ids, LifetimeInMinutes: lifetimeMinutes(r.Lifetime)}
	reportIDs := make([]string, len(items))
	for i, it := range items {
		reportIDs[i] = it.ID
	}
	for _, id := range distinctFold(reportIDs) {
		body.Reports = append(body.Reports, reportRef{ID: id, AllowEdit: r.AllowEdit})
	}
	for _, d := range datasets {
		body.Datasets = append(body.Datasets, datasetRef{ID: d.ID})
	}
	if r.TargetWorkspaceIDs != nil {
		body.TargetWorkspaces = []workspaceRef{}
		for _, id := range distinctFold(r.TargetWorkspaceIDs) {
			body.TargetWorkspaces = append(body.TargetWorkspaces, workspaceRef{ID: id})
		}
	}
	return newMinting("GenerateToken", cl.cfg.apiURL+"/v1.0/myorg/GenerateToken", r.ProfileID, body, items, forget), nil
}

// planPaginated plans the V1 report route the official samples use for the
// i-th report, a paginated one. It must come alone: mixing it with others
// would need the V2 body with identities[].reports, which this gateway does
// not build.
func (cl *Client) planPaginated(r TokenRequest, i int, items []Embedded, forget func()) (*minting, error) {
	it := r.Items[i]
	for _, other := range r.Items {
		if !strings.EqualFold(other.ID, it.ID) {
			return nil, &UnsupportedError{ReportID: it.ID, Reason: "mixing a paginated report with other reports in one token is not supported; request it alone"}
		}
	}
	body := generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime)}
	if ident := r.Identity; ident != nil {
		if ident.Username == "" {
			return nil, &PreconditionError{Kind: ErrIdentityRequired, ReportID: it.ID}
		}
		// Paginated RLS filters on the username; roles only if there are any.
		body.Identities = []effectiveIdentity{{Username: ident.Username, Roles: ident.Roles, CustomData: ident.CustomData, Reports: []string{it.ID}}}
	}
	return newMinting("GenerateReportToken", cl.groupURL(it.WorkspaceID, "reports", it.ID, "GenerateToken"), r.ProfileID, body, items, forget), nil
}

// planDashboard learns the dashboard's datasets from its tiles; Power BI
// allows a dashboard token one identity per role set.
func (cl *Client) planDashboard(ctx context.Context, r TokenRequest) (*minting, error) {
	it := r.Items[0]
	// Both GETs run together; errors are reported dashboard first, so that
	// an unknown dashboard is named as such.
	var (
		d          dashboardMeta
		tiles      tileList
		dErr, tErr error
		wg         sync.WaitGroup
	)
	wg.Go(func() { d, dErr = cl.dashboard(ctx, it.WorkspaceID, r.ProfileID, it.ID) })
	wg.Go(func() { tiles, tErr = cl.dashboardTiles(ctx, it.WorkspaceID, r.ProfileID, it.ID) })
	wg.Wait()
	if err := cmp.Or(dErr, tErr); err != nil {
		return nil, err
	}
	refs := make([]datasetAt, len(tiles.Value))
	for i, t := range tiles.Value {
		refs[i] = datasetAt{ws: it.WorkspaceID, id: t.DatasetID, owner: t.ReportID}
	}
	ids, err := cl.itemIdentities(ctx, r, refs)
	if err != nil {
		return nil, err
	}
	key := metaKey(it.WorkspaceID, r.ProfileID, it.ID)
	items := []Embedded{{Kind: KindDashboard, ID: it.ID, Name: d.DisplayName, EmbedURL: d.EmbedURL, WorkspaceID: it.WorkspaceID}}
	return newMinting("GenerateDashboardToken", cl.groupURL(it.WorkspaceID, "dashboards", it.ID, "GenerateToken"), r.ProfileID,
		generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ids}, items,
		func() {
			cl.meta.dashboards.forget(key)
			cl.meta.tileLists.forget(key)
			cl.forgetDatasets(r.ProfileID, refs)
		}), nil
}

// planTile addresses the tile under its dashboard, so that Power BI refuses a
// tile of another one. Power BI refuses more than one identity on V1 routes
// other than the dashboard's.
func (cl *Client) planTile(ctx context.Context, r TokenRequest) (*minting, error) {
	it := r.Items[0]
	t, err := cl.tile(ctx, it.WorkspaceID, r.ProfileID, it.DashboardID, it.ID)
	if err != nil {
		return nil, err
	}
	refs := []datasetAt{{ws: it.WorkspaceID, id: t.DatasetID, owner: t.ReportID}}
	ids, err := cl.itemIdentities(ctx, r, refs)
	if err != nil {
		return nil, err
	}
	if len(ids) > 1 {
		return nil, &UnsupportedError{ReportID: t.ReportID, Reason: "tile " + it.ID + " needs identities with different role sets (DatasetRoles), and a tile token carries at most one"}
	}
	items := []Embedded{{Kind: KindTile, ID: it.ID, Name: t.Title, EmbedURL: t.EmbedURL, WorkspaceID: it.WorkspaceID,
		DatasetID: t.DatasetID, ReportID: t.ReportID, DashboardID: it.DashboardID}}
	return newMinting("GenerateTileToken", cl.groupURL(it.WorkspaceID, "dashboards", it.DashboardID, "tiles", it.ID, "GenerateToken"), r.ProfileID,
		generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ids}, items,
		func() {
			cl.meta.tiles.forget(metaKey(it.WorkspaceID, r.ProfileID, it.DashboardID+"/"+it.ID))
			cl.forgetDatasets(r.ProfileID, refs)
		}), nil
}

// itemIdentities fetches the datasets' flags and builds the identities.
func (cl *Client) itemIdentities(ctx context.Context, r TokenRequest, refs []datasetAt) ([]effectiveIdentity, error) {
	datasets, err := cl.datasets(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	return identitiesFor(r.Identity, datasets, refs)
}

// lifetimeMinutes is lifetimeInMinutes for d: whole minutes, at least 1; 0
// (not sent) for no lifetime.
func lifetimeMinutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return max(1, int(d/time.Minute))
}

// distinctFold returns ids without case-insensitive repeats, in order.
func distinctFold(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if k := strings.ToLower(id); !seen[k] {
			seen[k] = true
			out = append(out, id)
		}
	}
	return out
}
