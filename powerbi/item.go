package powerbi

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// ItemRequest is one embed token for a dashboard or one of its tiles. Power
// BI mints those only on the V1 routes, one item per token, always View.
type ItemRequest struct {
	// WorkspaceID is the dashboard's workspace (Power BI group id).
	WorkspaceID string
	// ProfileID is the service principal profile; "" sends no
	// X-PowerBI-Profile-Id header.
	ProfileID   string
	DashboardID string
	// TileID is the tile to embed; "" embeds the dashboard itself.
	TileID string
	// Lifetime shortens the token's life, as TokenRequest.Lifetime.
	Lifetime time.Duration
	// Identity is the RLS effective identity, sent for the datasets (of the
	// dashboard's tiles, or of the tile) that require one. A dashboard token
	// carries one identity per role set; a tile token at most one, so
	// DatasetRoles needing two role sets there give ErrUnsupported.
	Identity *Identity
}

// Dashboard is an embeddable dashboard. EmbedURL is Power BI's, unchanged.
type Dashboard struct {
	ID, Name, EmbedURL string
}

// Tile is an embeddable dashboard tile. EmbedURL is Power BI's, unchanged;
// ReportID and DatasetID are "" for tiles without data.
type Tile struct {
	ID, Title, EmbedURL, ReportID, DatasetID string
}

// GenerateItemToken mints a V1 View token for a dashboard (r.TileID == "")
// or a tile. Metadata comes from cache or Get Dashboard, Get Tiles (the
// datasets behind the dashboard) or Get Tile, and Get Dataset; errors,
// preconditions, retries and token reuse are those of GenerateToken.
func (cl *Client) GenerateItemToken(ctx context.Context, r ItemRequest) (*EmbedToken, error) {
	return cl.issue(ctx, "GenerateItemToken", r, func(ctx context.Context) (*minting, error) { return cl.planItem(ctx, r) })
}

// PlanItem returns the call GenerateItemToken would make for r, after the
// same metadata lookups and checks, without minting a token.
func (cl *Client) PlanItem(ctx context.Context, r ItemRequest) (*Plan, error) {
	m, err := cl.planItem(ctx, r)
	if err != nil {
		return nil, err
	}
	return m.plan, nil
}

func (cl *Client) planItem(ctx context.Context, r ItemRequest) (*minting, error) {
	switch {
	case r.WorkspaceID == "":
		return nil, invalidRequest("no workspace id")
	case r.DashboardID == "":
		return nil, invalidRequest("no dashboard id")
	case r.Lifetime < 0:
		return nil, invalidRequest("negative lifetime %s", r.Lifetime)
	}
	if r.TileID == "" {
		return cl.planDashboard(ctx, r)
	}
	return cl.planTile(ctx, r)
}

// planDashboard learns the dashboard's datasets from its tiles; Power BI
// allows a dashboard token one identity per role set.
func (cl *Client) planDashboard(ctx context.Context, r ItemRequest) (*minting, error) {
	// Both GETs run together; errors are reported dashboard first, so that
	// an unknown dashboard is named as such.
	var (
		d          dashboardMeta
		tiles      tileList
		dErr, tErr error
		wg         sync.WaitGroup
	)
	wg.Go(func() { d, dErr = cl.dashboard(ctx, r.WorkspaceID, r.ProfileID, r.DashboardID) })
	wg.Go(func() { tiles, tErr = cl.dashboardTiles(ctx, r.WorkspaceID, r.ProfileID, r.DashboardID) })
	wg.Wait()
	if err := cmp.Or(dErr, tErr); err != nil {
		return nil, err
	}
	refs := make([]datasetAt, len(tiles.Value))
	for i, t := range tiles.Value {
		refs[i] = datasetAt{ws: r.WorkspaceID, id: t.DatasetID, owner: t.ReportID}
	}
	ids, err := cl.itemIdentities(ctx, r, refs)
	if err != nil {
		return nil, err
	}
	key := metaKey(r.WorkspaceID, r.ProfileID, r.DashboardID)
	m := newMinting("GenerateDashboardToken", cl.groupURL(r.WorkspaceID, "dashboards", r.DashboardID, "GenerateToken"), r.ProfileID,
		generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ids},
		func() {
			cl.meta.dashboards.forget(key)
			cl.meta.tileLists.forget(key)
			cl.forgetDatasets(r.ProfileID, refs)
		})
	m.dashboard = &Dashboard{ID: r.DashboardID, Name: d.DisplayName, EmbedURL: d.EmbedURL}
	return m, nil
}

// planTile: Power BI refuses more than one identity on V1 routes other than
// the dashboard's.
func (cl *Client) planTile(ctx context.Context, r ItemRequest) (*minting, error) {
	t, err := cl.tile(ctx, r.WorkspaceID, r.ProfileID, r.DashboardID, r.TileID)
	if err != nil {
		return nil, err
	}
	refs := []datasetAt{{ws: r.WorkspaceID, id: t.DatasetID, owner: t.ReportID}}
	ids, err := cl.itemIdentities(ctx, r, refs)
	if err != nil {
		return nil, err
	}
	if len(ids) > 1 {
		return nil, &UnsupportedError{ReportID: t.ReportID, Reason: "tile " + r.TileID + " needs identities with different role sets (DatasetRoles), and a tile token carries at most one"}
	}
	m := newMinting("GenerateTileToken", cl.groupURL(r.WorkspaceID, "dashboards", r.DashboardID, "tiles", r.TileID, "GenerateToken"), r.ProfileID,
		generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ids},
		func() {
			cl.meta.tiles.forget(metaKey(r.WorkspaceID, r.ProfileID, r.DashboardID+"/"+r.TileID))
			cl.forgetDatasets(r.ProfileID, refs)
		})
	m.tile = &Tile{ID: r.TileID, Title: t.Title, EmbedURL: t.EmbedURL, ReportID: t.ReportID, DatasetID: t.DatasetID}
	return m, nil
}

// itemIdentities fetches the datasets' flags and builds the identities.
func (cl *Client) itemIdentities(ctx context.Context, r ItemRequest, refs []datasetAt) ([]effectiveIdentity, error) {
	datasets, err := cl.datasets(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	return identitiesFor(r.Identity, datasets, refs)
}
