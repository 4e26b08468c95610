package server

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// modelGateway says what a token would open, with each dataset's kind of
// model (powerbi.Client).
type modelGateway interface {
	Models(ctx context.Context, r powerbi.TokenRequest) ([]powerbi.Model, error)
}

// decidedRequest is the gateway's request for a grant, with the policy's
// decision on each dataset the token would open: the gateway learns the
// datasets and their kinds from Power BI (metadata, cached), the policy
// decides (authz.Grant.Models, pure). A refusal is an *authz.Denial.
func decidedRequest(ctx context.Context, gw modelGateway, g authz.Grant) (powerbi.TokenRequest, []powerbi.Model, error) {
	r := tokenRequest(g)
	models, err := gw.Models(ctx, r)
	if err != nil {
		return r, nil, err
	}
	in := make([]authz.Model, len(models))
	for i, m := range models {
		in[i] = authz.Model{ID: m.ID, WorkspaceID: m.WorkspaceID, Paginated: m.Paginated, Kind: authzKind(m.Kind),
			IdentityRequired: m.IdentityRequired, SSO: len(m.SSO) > 0, ReadBy: m.ReadBy, Reports: m.Reports}
	}
	decided, err := g.Models(in)
	if err != nil {
		return r, models, err
	}
	r.Models = make([]powerbi.ModelGrant, len(decided))
	for i, d := range decided {
		r.Models[i] = powerbi.ModelGrant{ID: d.ID, SSO: d.SSO}
		if id := d.Identity; id != nil {
			r.Models[i].Identity = &powerbi.ModelIdentity{ServicePrincipal: id.ServicePrincipal, Username: id.Username,
				CustomData: id.CustomData, Roles: id.Roles}
		}
	}
	return r, models, nil
}

// decidedCache keeps decidedRequest's answers, so that a request served
// from the token cache learns nothing again: the models come from metadata
// (cached for metadata_ttl) and the policy's decisions on them from the
// grant (every field of it: the per-dataset identities are the user's) and
// the policy (its version). An answer is kept for metadata_ttl, keyed by the
// policy version and the whole grant (authz.Grant.Key); a failed mint
// forgets it. It may rest on metadata up to metadata_ttl old when cached,
// so a change in Power BI shows within twice metadata_ttl, or at the first
// failed mint.
type decidedCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]decidedEntry
}

type decidedEntry struct {
	r   powerbi.TokenRequest
	exp time.Time
}

// decidedCacheSize bounds the answers kept; when full they are dropped at
// once, which costs one metadata walk per grant after.
const decidedCacheSize = 8192

func newDecidedCache(ttl time.Duration, now func() time.Time) *decidedCache {
	return &decidedCache{ttl: ttl, now: now, m: map[[sha256.Size]byte]decidedEntry{}}
}

// key is the cache key of a grant under a policy version.
func (c *decidedCache) key(version string, g authz.Grant) [sha256.Size]byte {
	k := g.Key()
	var buf [128]byte // on the stack unless the version is long
	b := append(append(append(buf[:0], version...), 0), k[:]...)
	return sha256.Sum256(b)
}

// request is decidedRequest, from the cache while fresh.
func (c *decidedCache) request(ctx context.Context, gw modelGateway, version string, g authz.Grant) (powerbi.TokenRequest, [sha256.Size]byte, error) {
	k := c.key(version, g)
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.r, k, nil
	}
	r, _, err := decidedRequest(ctx, gw, g)
	if err != nil {
		return r, k, err
	}
	c.mu.Lock()
	if len(c.m) >= decidedCacheSize {
		clear(c.m)
	}
	c.m[k] = decidedEntry{r: r, exp: now.Add(c.ttl)}
	c.mu.Unlock()
	return r, k, nil
}

// forget drops an answer (its mint failed: the metadata may have changed).
func (c *decidedCache) forget(k [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// authzKind maps the gateway's model kinds to the policy's.
func authzKind(k powerbi.ModelKind) authz.ModelKind {
	switch k {
	case powerbi.ModelAAS:
		return authz.ModelAAS
	case powerbi.ModelSSAS:
		return authz.ModelSSAS
	case powerbi.ModelCloud:
		return authz.ModelCloud
	}
	return 0
}

// explainedModels is what Explain shows of each planned model: its kind and
// what is sent for it, never an identity blob.
func explainedModels(planned []powerbi.PlannedModel) []*embedgatev1.ExplainedModel {
	out := make([]*embedgatev1.ExplainedModel, len(planned))
	for i, p := range planned {
		e := &embedgatev1.ExplainedModel{
			Id:                    p.ID,
			WorkspaceId:           p.WorkspaceID,
			Kind:                  p.Kind.String(),
			IdentityRequired:      p.IdentityRequired,
			UpstreamDatasets:      p.Upstream,
			ReadBy:                p.ReadBy,
			IdentityBlobAudiences: p.BlobAudiences,
		}
		if p.Paginated {
			e.Kind = "paginated"
		}
		if p.XMLA {
			e.XmlaPermissions = "ReadOnly"
		}
		for _, src := range p.SSO {
			where := src.Server
			if where == "" {
				where = src.Path + src.URL
			}
			if src.Database != "" {
				where += "/" + src.Database
			}
			e.SsoDatasources = append(e.SsoDatasources, src.Type+" "+where)
		}
		if id := p.Identity; id != nil {
			e.Identity = &embedgatev1.ExplainedIdentity{Username: id.Username, Roles: id.Roles, CustomData: id.CustomData}
		}
		out[i] = e
	}
	return out
}
