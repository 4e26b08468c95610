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

// decidedCache keeps, per request, what the policy made of it: the grant
// (authz.Policy.Decide) and the gateway's request with the policy's
// decisions on the models the token opens (decidedRequest). A request it
// holds is neither decided nor walked again: the cached path costs one hash
// of the request (authz.Request.Key). Decide is a pure function of the
// policy and the request, so the entries hold for the one *authz.Policy
// they were decided under, the policy in force (the source's) when they
// were stored: the first answer stored under a new policy (a reload) drops
// the old one's entries, and an answer decided under a policy since
// replaced (a call that straddled the reload) is not stored. The models'
// decisions rest on Power BI's metadata
// (cached for metadata_ttl), so an entry is also kept at most metadata_ttl,
// and a failed mint forgets it: a change in Power BI shows within twice
// metadata_ttl, or at the first failed mint. Refusals are not kept.
type decidedCache struct {
	source PolicySource
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	policy *authz.Policy // the policy every entry was decided under
	m      map[[sha256.Size]byte]decidedEntry
}

type decidedEntry struct {
	grant authz.Grant
	r     powerbi.TokenRequest
	exp   time.Time
}

// decidedCacheSize bounds the answers kept; when full they are dropped at
// once, which costs one decision and one metadata walk per request after.
const decidedCacheSize = 8192

func newDecidedCache(source PolicySource, ttl time.Duration, now func() time.Time) *decidedCache {
	return &decidedCache{source: source, ttl: ttl, now: now, m: map[[sha256.Size]byte]decidedEntry{}}
}

// request is the policy's grant for areq and the gateway's request for it
// (decide, then decidedRequest), from the cache while fresh. The error is
// an *authz.Denial when the policy refuses (the grant is then zero if
// Decide refused, set if a model was refused), or the gateway's. The key
// is what forget takes.
func (c *decidedCache) request(ctx context.Context, gw modelGateway, p *authz.Policy, areq authz.Request) (authz.Grant, powerbi.TokenRequest, [sha256.Size]byte, error) {
	k := areq.Key()
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	ok = ok && c.policy == p && now.Before(e.exp)
	c.mu.Unlock()
	if ok {
		traceCachedDecision(ctx, p, e.grant)
		return e.grant, e.r, k, nil
	}
	g, err := decide(ctx, p, areq)
	if err != nil {
		return g, powerbi.TokenRequest{}, k, err
	}
	r, _, err := decidedRequest(ctx, gw, g)
	if err != nil {
		return g, r, k, err
	}
	if p != c.source.Current() {
		return g, r, k, nil // decided under a policy since replaced: not kept
	}
	c.mu.Lock()
	if c.policy != p || len(c.m) >= decidedCacheSize {
		clear(c.m)
		c.policy = p
	}
	c.m[k] = decidedEntry{grant: g, r: r, exp: now.Add(c.ttl)}
	c.mu.Unlock()
	return g, r, k, nil
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
