package powerbi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// reportMeta is what GenerateToken needs from Get Report In Group.
type reportMeta struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	DatasetID  string `json:"datasetId"`
	EmbedURL   string `json:"embedUrl"`
	ReportType string `json:"reportType"`
	// DatasetWorkspaceID is set when the dataset lives in another workspace
	// (a shared dataset); Get Dataset must then ask that workspace.
	DatasetWorkspaceID string `json:"datasetWorkspaceId"`
}

// paginated reports whether the report is a paginated (RDL) report: Power BI
// sends no datasetId for those, or says so in reportType.
func (m reportMeta) paginated() bool {
	return m.DatasetID == "" || strings.EqualFold(m.ReportType, "PaginatedReport")
}

// datasetMeta is what GenerateToken needs from Get Dataset In Group. The swagger
// spells the flags with a capital I and the examples with a small one;
// encoding/json matches keys case-insensitively, which covers both.
type datasetMeta struct {
	ID                               string `json:"id"`
	IsEffectiveIdentityRequired      bool   `json:"isEffectiveIdentityRequired"`
	IsEffectiveIdentityRolesRequired bool   `json:"isEffectiveIdentityRolesRequired"`
	// IsOnPremGatewayRequired: a data source is reached through an
	// on-premises data gateway.
	IsOnPremGatewayRequired bool `json:"isOnPremGatewayRequired"`
	// UpstreamDatasets are the datasets a composite model reads with
	// DirectQuery (DependentDataset objects).
	UpstreamDatasets []struct {
		TargetDatasetID string `json:"targetDatasetId"`
		GroupID         string `json:"groupId"`
	} `json:"upstreamDatasets"`
}

// datasourceMeta is one data source of Get Datasources In Group (of a
// dataset, or of a paginated report).
type datasourceMeta struct {
	DatasourceType    string `json:"datasourceType"`
	ConnectionDetails struct {
		Server   string `json:"server"`
		Database string `json:"database"`
		URL      string `json:"url"`
		Path     string `json:"path"`
		Kind     string `json:"kind"`
	} `json:"connectionDetails"`
	GatewayID string `json:"gatewayId"`
}

// datasourceList is Get Datasources In Group's answer.
type datasourceList struct {
	Value []datasourceMeta `json:"value"`
}

// dashboardMeta is what GenerateItemToken needs from Get Dashboard In Group.
type dashboardMeta struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	EmbedURL    string `json:"embedUrl"`
}

// tileMeta is what GenerateItemToken needs from Get Tile(s) In Group. Tiles
// without data (text, images) have no datasetId.
type tileMeta struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	EmbedURL  string `json:"embedUrl"`
	ReportID  string `json:"reportId"`
	DatasetID string `json:"datasetId"`
}

// tileList is Get Tiles In Group's answer.
type tileList struct {
	Value []tileMeta `json:"value"`
}

// ttlCache is a small map with per-entry expiry. Metadata changes rarely and
// its key space is bounded by the policy's reports, so there is no LRU: expired
// entries are swept when the map grows.
type ttlCache[V any] struct {
	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v   V
	exp time.Time
}

const cacheSweepAt = 4096

func newTTLCache[V any]() *ttlCache[V] { return &ttlCache[V]{m: map[string]ttlEntry[V]{}} }

func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= cacheSweepAt {
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = ttlEntry[V]{v, now.Add(ttl)}
}

func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// metaKey scopes cached metadata to what Power BI scopes visibility to: the
// workspace and the service principal profile.
func metaKey(ws, profile, id string) string {
	return strings.ToLower(ws) + "|" + strings.ToLower(profile) + "|" + strings.ToLower(id)
}

// groupURL is {api}/v1.0/myorg/groups/{ws}/{kind}/{id}, each further path
// segment appended escaped (e.g. "tiles", tileID).
func (cl *Client) groupURL(ws, kind, id string, more ...string) string {
	u := cl.cfg.apiURL + "/v1.0/myorg/groups/" + url.PathEscape(ws) + "/" + kind + "/" + url.PathEscape(id)
	for _, m := range more {
		u += "/" + url.PathEscape(m)
	}
	return u
}

// metaCaches holds the metadata of every kind, each entry for MetadataTTL.
type metaCaches struct {
	reports    *ttlCache[reportMeta]
	datasets   *ttlCache[datasetMeta]
	dashboards *ttlCache[dashboardMeta]
	tiles      *ttlCache[tileMeta] // key: dashboard/tile
	tileLists  *ttlCache[tileList] // key: dashboard
	// sources are the data sources of datasets; reportSources of
	// paginated reports.
	sources       *ttlCache[datasourceList]
	reportSources *ttlCache[datasourceList]
	// located is the workspace of a dataset that Power BI names without one
	// (a paginated report's), key: the workspaces looked in|profile|dataset.
	located *ttlCache[string]
}

func newMetaCaches() metaCaches {
	return metaCaches{
		reports:       newTTLCache[reportMeta](),
		datasets:      newTTLCache[datasetMeta](),
		dashboards:    newTTLCache[dashboardMeta](),
		tiles:         newTTLCache[tileMeta](),
		tileLists:     newTTLCache[tileList](),
		sources:       newTTLCache[datasourceList](),
		reportSources: newTTLCache[datasourceList](),
		located:       newTTLCache[string](),
	}
}

// cached returns what GET u answers, from c while fresh (MetadataTTL);
// concurrent misses for the same key make one GET.
func cached[V any](ctx context.Context, cl *Client, c *ttlCache[V], op, key, u, profile string) (V, error) {
	if m, ok := c.get(key, cl.now()); ok {
		return m, nil
	}
	return shared(ctx, &cl.metaSF, op+"|"+key, op, func(ctx context.Context) (V, error) {
		// A flight that ended between our lookup and this one has filled
		// the cache: one GET per key, however the calls interleave.
		if m, ok := c.get(key, cl.now()); ok {
			return m, nil
		}
		var m V
		if err := cl.getJSON(ctx, op, u, profile, &m); err != nil {
			return m, err
		}
		c.put(key, m, cl.now(), cl.cfg.MetadataTTL)
		return m, nil
	})
}

// report returns Get Report In Group.
func (cl *Client) report(ctx context.Context, ws, profile, id string) (reportMeta, error) {
	return cached(ctx, cl, cl.meta.reports, "GetReport", metaKey(ws, profile, id), cl.groupURL(ws, "reports", id), profile)
}

// dataset returns the RLS flags of Get Dataset In Group.
func (cl *Client) dataset(ctx context.Context, ws, profile, id string) (datasetMeta, error) {
	m, err := cached(ctx, cl, cl.meta.datasets, "GetDataset", metaKey(ws, profile, id), cl.groupURL(ws, "datasets", id), profile)
	m.ID = id
	return m, err
}

// datasetSources returns Get Datasources In Group of a dataset.
func (cl *Client) datasetSources(ctx context.Context, ws, profile, id string) (datasourceList, error) {
	return cached(ctx, cl, cl.meta.sources, "GetDatasources", metaKey(ws, profile, id), cl.groupURL(ws, "datasets", id, "datasources"), profile)
}

// reportSources returns Reports - Get Datasources In Group of a paginated
// report.
func (cl *Client) reportSources(ctx context.Context, ws, profile, id string) (datasourceList, error) {
	return cached(ctx, cl, cl.meta.reportSources, "GetReportDatasources", metaKey(ws, profile, id), cl.groupURL(ws, "reports", id, "datasources"), profile)
}

// dashboard returns Get Dashboard In Group.
func (cl *Client) dashboard(ctx context.Context, ws, profile, id string) (dashboardMeta, error) {
	return cached(ctx, cl, cl.meta.dashboards, "GetDashboard", metaKey(ws, profile, id), cl.groupURL(ws, "dashboards", id), profile)
}

// dashboardTiles returns Get Tiles In Group.
func (cl *Client) dashboardTiles(ctx context.Context, ws, profile, dashboardID string) (tileList, error) {
	return cached(ctx, cl, cl.meta.tileLists, "GetTiles", metaKey(ws, profile, dashboardID), cl.groupURL(ws, "dashboards", dashboardID, "tiles"), profile)
}

// tile returns Get Tile In Group.
func (cl *Client) tile(ctx context.Context, ws, profile, dashboardID, tileID string) (tileMeta, error) {
	return cached(ctx, cl, cl.meta.tiles, "GetTile", metaKey(ws, profile, dashboardID+"/"+tileID), cl.groupURL(ws, "dashboards", dashboardID, "tiles", tileID), profile)
}

// getJSON GETs u (retrying up to twice) and decodes the body into v.
func (cl *Client) getJSON(ctx context.Context, op, u, profile string, v any) error {
	resp, err := cl.do(ctx, call{op: op, method: http.MethodGet, url: u, profileID: profile, retries: 2})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("powerbi: %s: malformed response (RequestId %s): %w", op, resp.requestID, err)
	}
	return nil
}

// datasetAt names a dataset, the workspace to ask about it, the requested
// reports (or tiles' reports) on it, for errors and the WithoutRLS rule, and
// the composite model or paginated report that reads it ("" for a requested
// report's own).
type datasetAt struct {
	ws, id string
	owners []string
	readBy string
}

// datasetWorkspace is where to ask about the report's dataset: its own
// workspace for a shared dataset, else the report's (ws).
func datasetWorkspace(ws string, m reportMeta) string {
	if m.DatasetWorkspaceID != "" {
		return m.DatasetWorkspaceID
	}
	return ws
}

// fanOutLimit is how many of one request's metadata lookups run at once: a
// quarter of the per-host bulkhead (max_concurrency), so that a cold request
// for many reports, or for a composite model reading many datasets, never
// fills the bulkhead and sheds its own lookups or other requests'.
func (cl *Client) fanOutLimit() int { return max(1, cl.cfg.MaxConcurrency/4) }

// fanOut runs get for 0..n-1, at most limit at once, and returns the results
// in order, or the first error (which cancels the other calls' context).
func fanOut[T any](ctx context.Context, limit, n int, get func(ctx context.Context, i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := range n {
		g.Go(func() error {
			v, err := get(gctx, i)
			out[i] = v
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// forgetDatasets drops cached dataset flags and data sources, after Power BI
// rejected a token request built from them (a dataset's RLS flags or kind
// changed).
func (cl *Client) forgetDatasets(profile string, refs []datasetAt) {
	for _, d := range refs {
		if d.id != "" {
			cl.meta.datasets.forget(metaKey(d.ws, profile, d.id))
			cl.meta.sources.forget(metaKey(d.ws, profile, d.id))
		}
	}
}
