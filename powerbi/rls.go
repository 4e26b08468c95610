package powerbi

import (
	"context"
	"slices"
	"strings"
	"time"
)

// identityPlan builds a token's effective identities and datasource
// identities from the models it opens, before anything is minted:
//
//   - a dataset that requires an effective identity (isEffectiveIdentityRequired)
//     gets one: the policy's for its kind (ModelGrant.Identity), else
//     TokenRequest.Identity's, with roles where it requires roles; without an
//     identity (or a username, or an identity blob standing for one), or
//     without roles, the request fails with ErrIdentityRequired or
//     ErrRolesRequired;
//   - a dataset that enforces no RLS gets no identity (Power BI rejects one); but
//     if the request carries an identity (the tenant has RLS), such a dataset is
//     refused with ErrRLSNotEnforced unless Identity.WithoutRLS names it or every
//     requested report (or tile's report) on it: RLS fails closed;
//   - a single sign-on data source the policy grants (ModelGrant.SSO) gets an
//     identity blob, an access token for its audience acquired by the
//     service principal: in the identity of its dataset when the dataset
//     requires one (the first audience), else in datasourceIdentities (V2
//     only);
//   - a paginated report that reads no Power BI dataset gets the tenant's
//     identity, naming the report (RLS in the report filters on the
//     username);
//   - a dataset that a composite model or a paginated report reads is opened
//     only if the policy decided on it (a ModelGrant): fail closed.
//
// Identities alike (username, customData, role set, blob audience) are one,
// in the order of their first dataset.
type identityPlan struct {
	cl     *Client
	ctx    context.Context
	r      TokenRequest
	grants map[string]*ModelGrant
	// need is how long an identity blob must outlive the call: as the Power
	// BI token, the embed token's lifetime and a margin.
	need      time.Duration
	principal string // resolved once

	identities []effectiveIdentity
	bySet      map[string]int // identity key -> index in identities
	sources    []datasourceIdentity
	byAudience map[string]int // audience -> index in sources
	planned    []PlannedModel
}

func (cl *Client) newIdentityPlan(ctx context.Context, r TokenRequest) *identityPlan {
	ip := &identityPlan{cl: cl, ctx: ctx, r: r, grants: map[string]*ModelGrant{}, bySet: map[string]int{}, byAudience: map[string]int{}}
	for i := range r.Models {
		ip.grants[strings.ToLower(r.Models[i].ID)] = &r.Models[i]
	}
	if r.Lifetime > 0 {
		ip.need = r.Lifetime + mintMargin
	}
	return ip
}

// sendsBlobs reports whether the policy has identity blobs sent for m.
func (ip *identityPlan) sendsBlobs(m Model) bool {
	g := ip.grants[strings.ToLower(m.ID)]
	return g != nil && g.SSO && len(m.SSO) > 0
}

// blob is an identity blob for one data source.
type blob struct {
	src   Datasource
	value string
}

// build plans the identities of models; v2 allows datasourceIdentities.
func (ip *identityPlan) build(models []Model, v2 bool) error {
	for _, m := range models {
		g := ip.grants[strings.ToLower(m.ID)]
		if m.ReadBy != "" && g == nil {
			return invalidRequest("dataset %s, read by %s, has no policy decision (TokenRequest.Models)", m.ID, m.ReadBy)
		}
		pm := PlannedModel{Model: m}
		blobs, err := ip.blobs(m)
		if err != nil {
			return err
		}
		for _, b := range blobs {
			if !slices.Contains(pm.BlobAudiences, b.src.Audience) {
				pm.BlobAudiences = append(pm.BlobAudiences, b.src.Audience)
			}
		}
		switch {
		case m.Paginated:
			if err := ip.addSources(m, blobs, v2); err != nil {
				return err
			}
			if id := ip.r.Identity; id != nil && len(m.Upstream) == 0 {
				// RLS in a paginated report filters on the username; roles
				// only if there are any.
				username, err := ip.username(id.ServicePrincipal, id.Username)
				if err != nil {
					return err
				}
				if username == "" {
					return &PreconditionError{Kind: ErrIdentityRequired, ReportID: m.ID}
				}
				ip.identities = append(ip.identities, effectiveIdentity{Username: username, Roles: id.Roles, CustomData: id.CustomData, Reports: []string{m.ID}})
				pm.Identity = &PlannedIdentity{Username: username, Roles: id.Roles, CustomData: id.CustomData}
			}
		case !m.IdentityRequired:
			if id := ip.r.Identity; id != nil && !exempt(id, m.ID, m.Reports) {
				return &PreconditionError{Kind: ErrRLSNotEnforced, DatasetID: m.ID, ReportID: first(m.Reports)}
			}
			if err := ip.addSources(m, blobs, v2); err != nil {
				return err
			}
		default:
			pi, err := ip.datasetIdentity(m, g, blobs, v2)
			if err != nil {
				return err
			}
			pm.Identity = pi
		}
		ip.planned = append(ip.planned, pm)
	}
	return nil
}

// datasetIdentity adds the identity of a dataset that requires one.
func (ip *identityPlan) datasetIdentity(m Model, g *ModelGrant, blobs []blob, v2 bool) (*PlannedIdentity, error) {
	var ident *ModelIdentity
	switch id := ip.r.Identity; {
	case g != nil && g.Identity != nil:
		ident = g.Identity
	case id != nil:
		ident = &ModelIdentity{ServicePrincipal: id.ServicePrincipal, Username: id.Username, CustomData: id.CustomData, Roles: id.rolesFor(m.ID)}
	}
	var username string
	if ident != nil {
		var err error
		if username, err = ip.username(ident.ServicePrincipal, ident.Username); err != nil {
			return nil, err
		}
	}
	if username == "" && len(blobs) == 0 {
		if ident == nil && ip.cl.user != nil {
			// A signed-in user who names no identity: Power BI applies the
			// user's own (a master user's token needs none).
			return nil, nil
		}
		return nil, &PreconditionError{Kind: ErrIdentityRequired, DatasetID: m.ID, ReportID: first(m.Reports)}
	}
	var roles []string
	var customData string
	if ident != nil {
		roles, customData = ident.Roles, ident.CustomData
	}
	if m.RolesRequired && len(roles) == 0 {
		return nil, &PreconditionError{Kind: ErrRolesRequired, DatasetID: m.ID, ReportID: first(m.Reports)}
	}
	var b *blob
	if len(blobs) > 0 {
		b = &blobs[0]
		if err := ip.addSources(m, blobs[1:], v2); err != nil {
			return nil, err
		}
	}
	ip.add(m.ID, username, customData, roles, b)
	return &PlannedIdentity{Username: username, Roles: roles, CustomData: customData}, nil
}

// add puts dataset under the identity alike, or a new one.
func (ip *identityPlan) add(dataset, username, customData string, roles []string, b *blob) {
	set := slices.Compact(slices.Sorted(slices.Values(roles)))
	key := username + "\x00" + customData + "\x00" + strings.Join(set, "\x00") + "\x00"
	if b != nil {
		key += b.src.Audience
	}
	if i, ok := ip.bySet[key]; ok {
		ip.identities[i].Datasets = append(ip.identities[i].Datasets, dataset)
		return
	}
	ip.bySet[key] = len(ip.identities)
	id := effectiveIdentity{Username: username, Roles: roles, CustomData: customData, Datasets: []string{dataset}}
	if b != nil {
		id.IdentityBlob = &identityBlob{Value: b.value}
	}
	ip.identities = append(ip.identities, id)
}

// blobs acquires the identity blobs of m's single sign-on data sources, if
// the policy grants them: one access token per audience, as the service
// principal, cached and renewed like the Power BI token.
func (ip *identityPlan) blobs(m Model) ([]blob, error) {
	if !ip.sendsBlobs(m) {
		return nil, nil
	}
	out := make([]blob, 0, len(m.SSO))
	for _, src := range m.SSO {
		t, err := ip.cl.cred.sourceToken(ip.ctx, src.Audience, ip.need)
		if err != nil {
			return nil, err
		}
		out = append(out, blob{src: src, value: t.value})
	}
	return out, nil
}

// addSources names each blob's data source in the datasourceIdentities entry
// of its audience.
func (ip *identityPlan) addSources(m Model, blobs []blob, v2 bool) error {
	if len(blobs) == 0 {
		return nil
	}
	if !v2 {
		return &UnsupportedError{Reason: m.ID + " has single sign-on data sources whose identity blobs only the V2 token (datasourceIdentities) carries"}
	}
	for _, b := range blobs {
		sel := datasourceSelector{DatasourceType: b.src.Type, ConnectionDetails: connectionDetails{
			Server: b.src.Server, Database: b.src.Database, URL: b.src.URL, Path: b.src.Path, Kind: b.src.Kind}}
		i, ok := ip.byAudience[b.src.Audience]
		if !ok {
			i = len(ip.sources)
			ip.byAudience[b.src.Audience] = i
			ip.sources = append(ip.sources, datasourceIdentity{IdentityBlob: b.value})
		}
		if !slices.Contains(ip.sources[i].Datasources, sel) {
			ip.sources[i].Datasources = append(ip.sources[i].Datasources, sel)
		}
	}
	return nil
}

// username is the identity's username: the service principal's (or its
// profile's) object id when the policy says so.
func (ip *identityPlan) username(servicePrincipal bool, username string) (string, error) {
	if !servicePrincipal {
		return username, nil
	}
	if ip.principal == "" {
		p, err := ip.cl.principal(ip.ctx, ip.r.ProfileID)
		if err != nil {
			return "", err
		}
		ip.principal = p
	}
	return ip.principal, nil
}

// principal is the name Power BI knows the caller by: the profile's id with
// a profile, else the service principal's object id (from its Entra token).
func (cl *Client) principal(ctx context.Context, profile string) (string, error) {
	if profile != "" {
		return profile, nil
	}
	t, err := cl.entraToken(ctx, 0)
	if err != nil {
		return "", err
	}
	if t.objectID == "" {
		return "", &UnsupportedError{Reason: "the service principal's object id, the username Power BI requires here, is not in its Entra token (no oid claim)"}
	}
	return t.objectID, nil
}

// redacted are the identities and datasource identities with each blob's
// value replaced by RedactedBlob, for the Plan.
func (ip *identityPlan) redacted() ([]effectiveIdentity, []datasourceIdentity) {
	ids := slices.Clone(ip.identities)
	for i := range ids {
		if ids[i].IdentityBlob != nil {
			ids[i].IdentityBlob = &identityBlob{Value: RedactedBlob}
		}
	}
	sources := slices.Clone(ip.sources)
	for i := range sources {
		sources[i].IdentityBlob = RedactedBlob
	}
	return ids, sources
}

// exempt reports whether the policy says a dataset without RLS may be embedded
// for an RLS tenant: the dataset itself, or every report on it, is WithoutRLS.
func exempt(id *Identity, datasetID string, owners []string) bool {
	if id.withoutRLS(datasetID) {
		return true
	}
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		if !id.withoutRLS(o) {
			return false
		}
	}
	return true
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
