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

// datasetMeta is what GenerateToken needs from Get Dataset In Group. The swagger
// spells the flags with a capital I and the examples with a small one;
// encoding/json matches keys case-insensitively, which covers both.
type datasetMeta struct {
	ID                               string `json:"id"`
	IsEffectiveIdentityRequired      bool   `json:"isEffectiveIdentityRequired"`
	IsEffectiveIdentityRolesRequired bool   `json:"isEffectiveIdentityRolesRequired"`
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

func (cl *Client) groupURL(ws string, kind, id string) string {
	return cl.cfg.apiURL + "/v1.0/myorg/groups/" + url.PathEscape(ws) + "/" + kind + "/" + url.PathEscape(id)
}

// report returns the report's metadata, cached for MetadataTTL; concurrent
// misses for the same key make one GET.
func (cl *Client) report(ctx context.Context, ws, profile, id string) (reportMeta, error) {
	key := metaKey(ws, profile, id)
	if m, ok := cl.reports.get(key, cl.now()); ok {
		return m, nil
	}
	return shared(ctx, &cl.metaSF, "report|"+key, "GetReport", func(ctx context.Context) (reportMeta, error) {
		var m reportMeta
		if err := cl.getJSON(ctx, "GetReport", cl.groupURL(ws, "reports", id), profile, &m); err != nil {
			return m, err
		}
		cl.reports.put(key, m, cl.now(), cl.cfg.MetadataTTL)
		return m, nil
	})
}

// dataset returns the dataset's RLS flags, cached like report.
func (cl *Client) dataset(ctx context.Context, ws, profile, id string) (datasetMeta, error) {
	key := metaKey(ws, profile, id)
	if m, ok := cl.datasets.get(key, cl.now()); ok {
		return m, nil
	}
	return shared(ctx, &cl.metaSF, "dataset|"+key, "GetDataset", func(ctx context.Context) (datasetMeta, error) {
		var m datasetMeta
		if err := cl.getJSON(ctx, "GetDataset", cl.groupURL(ws, "datasets", id), profile, &m); err != nil {
			return m, err
		}
		cl.datasets.put(key, m, cl.now(), cl.cfg.MetadataTTL)
		return m, nil
	})
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

// resolved metadata of one TokenRequest, in request order.
type resolvedRequest struct {
	reports  []reportMeta  // one per TokenRequest.ReportIDs entry
	datasets []datasetMeta // distinct, in first-seen order
}

// resolve fetches (or reads from cache) every report, then every distinct
// dataset, concurrently.
func (cl *Client) resolve(ctx context.Context, r TokenRequest) (*resolvedRequest, error) {
	out := &resolvedRequest{reports: make([]reportMeta, len(r.ReportIDs))}
	g, gctx := errgroup.WithContext(ctx)
	for i, id := range r.ReportIDs {
		g.Go(func() error {
			m, err := cl.report(gctx, r.WorkspaceID, r.ProfileID, id)
			if err != nil {
				return err
			}
			if m.DatasetID == "" {
				// Paginated (RDL) reports have no dataset and need identities with
				// "reports" instead of "datasets": not supported yet.
				return &UnsupportedError{ReportID: id, Reason: "paginated reports (no datasetId) are not supported"}
			}
			out.reports[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var refs []reportMeta // one per distinct dataset
	for _, m := range out.reports {
		if k := strings.ToLower(m.DatasetID); !seen[k] {
			seen[k] = true
			refs = append(refs, m)
		}
	}
	out.datasets = make([]datasetMeta, len(refs))
	g, gctx = errgroup.WithContext(ctx)
	for i, ref := range refs {
		g.Go(func() error {
			m, err := cl.dataset(gctx, datasetWorkspace(r, ref), r.ProfileID, ref.DatasetID)
			if err != nil {
				return err
			}
			m.ID = ref.DatasetID
			out.datasets[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func datasetWorkspace(r TokenRequest, m reportMeta) string {
	if m.DatasetWorkspaceID != "" {
		return m.DatasetWorkspaceID
	}
	return r.WorkspaceID
}

// forget drops the request's cached metadata, after Power BI rejected a token
// request built from it (a report moved, a dataset's RLS flags changed).
func (cl *Client) forget(r TokenRequest, rr *resolvedRequest) {
	for _, id := range r.ReportIDs {
		cl.reports.forget(metaKey(r.WorkspaceID, r.ProfileID, id))
	}
	for _, m := range rr.reports {
		cl.datasets.forget(metaKey(datasetWorkspace(r, m), r.ProfileID, m.DatasetID))
	}
}
