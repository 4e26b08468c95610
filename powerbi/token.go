package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxItems is Power BI's cap on reports, datasets and target workspaces per V2
// token.
const maxItems = 50

// TokenRequest is one embed token to mint: what authz granted, in Power BI
// terms.
type TokenRequest struct {
	// WorkspaceID is the tenant's primary workspace (Power BI group id), used
	// for every ReportRef without a WorkspaceID.
	WorkspaceID string
	// ProfileID is the service principal profile; "" sends no
	// X-PowerBI-Profile-Id header.
	ProfileID string
	// Reports are the reports to embed, 1..50, each with the workspace it
	// lives in. A paginated report can only be embedded alone.
	Reports []ReportRef
	// TargetWorkspaceIDs are the workspaces where the embedded reports may
	// save or create reports, sent as targetWorkspaces:[{id}]; nil sends no
	// targetWorkspaces (an empty, non-nil slice sends []). At most 50. Not
	// used for a paginated report.
	TargetWorkspaceIDs []string
	// AllowEdit lets the embedded reports be edited. Paginated reports cannot
	// be edited: their token is always View.
	AllowEdit bool
	// Lifetime shortens the token's life; sent as lifetimeInMinutes (whole
	// minutes, rounded down, at least 1). 0 leaves Power BI's default (the
	// remaining life of the Entra token).
	Lifetime time.Duration
	// Identity is the RLS effective identity. It is sent only for datasets
	// whose isEffectiveIdentityRequired is true (Power BI rejects an identity
	// for any other dataset), and for a paginated report always; nil means
	// none.
	Identity *Identity
}

// ReportRef is one report of a TokenRequest.
type ReportRef struct {
	ID string
	// WorkspaceID is the report's workspace; "" means
	// TokenRequest.WorkspaceID.
	WorkspaceID string
}

// Identity is a Power BI effective identity (row-level security).
type Identity struct {
	Username   string
	CustomData string
	// Roles are the roles for every dataset not in DatasetRoles.
	Roles []string
	// DatasetRoles maps a dataset id (compared case-insensitively) to the
	// roles that replace Roles for that dataset. Datasets with the same role
	// set share one identity in the token.
	DatasetRoles map[string][]string
}

// rolesFor returns the roles that apply to the dataset.
func (id *Identity) rolesFor(datasetID string) []string {
	if roles, ok := id.DatasetRoles[datasetID]; ok {
		return roles
	}
	for k, roles := range id.DatasetRoles {
		if strings.EqualFold(k, datasetID) {
			return roles
		}
	}
	return id.Roles
}

// EmbedToken is a minted token and what a browser needs to embed its items.
// Each call returns its own copy: callers may modify it.
type EmbedToken struct {
	Token      string     // the embed token (a secret: never log it)
	TokenID    string     // Power BI's id for audit correlation
	Expiration time.Time  // exactly as Power BI returned it (UTC)
	RequestID  string     // Power BI RequestId of the GenerateToken response
	Reports    []Report   // GenerateToken: one per requested report, in request order
	Dashboard  *Dashboard // GenerateItemToken for a dashboard
	Tile       *Tile      // GenerateItemToken for a tile
	// Issued is when the gateway received the token from Power BI, by the
	// Client's clock (WithClock). RefreshAt(Issued, Expiration) is when the
	// gateway stops reusing it, and the refresh time to tell callers.
	Issued time.Time
	// Cached reports that the token was minted before this call began and
	// served from the token cache (Token, TokenID and RequestID are then
	// those of that earlier mint). Callers that shared a concurrent mint get
	// false.
	Cached bool
}

// Report is one embeddable report. EmbedURL is Power BI's, unchanged;
// DatasetID is "" for a paginated report.
type Report struct {
	ID, Name, EmbedURL, DatasetID string
}

// Plan is exactly what GenerateToken or GenerateItemToken would send for a
// request: for the Explain RPC and for debugging RLS decisions without
// minting a token.
type Plan struct {
	Method    string          // always POST
	URL       string          // {api_url}/v1.0/myorg/GenerateToken (V2), or the V1 route of a paginated report, dashboard or tile
	ProfileID string          // X-PowerBI-Profile-Id header value, "" = not sent
	Body      json.RawMessage // the GenerateTokenRequest body (V2 or V1), as sent
	Reports   []Report        // resolved reports, in request order (none for dashboards and tiles)
}

// generateTokenRequestV2 is the V2 body (shared/reference/powerbi-api.md §1).
type generateTokenRequestV2 struct {
	Datasets          []datasetRef        `json:"datasets"`
	Reports           []reportRef         `json:"reports"`
	TargetWorkspaces  []workspaceRef      `json:"targetWorkspaces,omitzero"`
	Identities        []effectiveIdentity `json:"identities,omitempty"`
	LifetimeInMinutes int                 `json:"lifetimeInMinutes,omitempty"`
}

// generateTokenRequestV1 is the body of the per-item routes (§2).
type generateTokenRequestV1 struct {
	AccessLevel       string              `json:"accessLevel"`
	LifetimeInMinutes int                 `json:"lifetimeInMinutes,omitempty"`
	Identities        []effectiveIdentity `json:"identities,omitempty"`
}

// accessView is the V1 accessLevel of every token minted on a V1 route.
const accessView = "View"

type datasetRef struct {
	ID string `json:"id"`
}

type reportRef struct {
	ID        string `json:"id"`
	AllowEdit bool   `json:"allowEdit"`
}

type workspaceRef struct {
	ID string `json:"id"`
}

// effectiveIdentity names the datasets it applies to, or (paginated reports
// only) the reports.
type effectiveIdentity struct {
	Username   string   `json:"username"`
	Roles      []string `json:"roles,omitempty"`
	CustomData string   `json:"customData,omitempty"`
	Datasets   []string `json:"datasets,omitempty"`
	Reports    []string `json:"reports,omitempty"`
}

// embedTokenResponse is Power BI's EmbedToken.
type embedTokenResponse struct {
	Token      string    `json:"token"`
	TokenID    string    `json:"tokenId"`
	Expiration time.Time `json:"expiration"`
}

// minting is a planned GenerateToken call, what it embeds, and what to forget
// if Power BI rejects it.
type minting struct {
	plan      *Plan
	op        string
	dashboard *Dashboard
	tile      *Tile
	forget    func()
}

// GenerateToken mints one embed token for all reports of r: one V2 POST,
// whatever workspaces the reports live in, or, for a lone paginated report,
// one POST to its V1 route. Metadata comes from cache or Get Report/Get
// Dataset; RLS preconditions are checked before anything is minted
// (ErrIdentityRequired, ErrRolesRequired); a paginated report together with
// other reports gives ErrUnsupported. The POST is retried once on a
// connection reset or 502/503/504, never on 429.
//
// Unless Config.DisableTokenCache, a request identical to an earlier one (see
// grantKeyOf) is answered from the token cache until RefreshAt, without any
// upstream call, and identical concurrent requests share one POST.
func (cl *Client) GenerateToken(ctx context.Context, r TokenRequest) (*EmbedToken, error) {
	return cl.issue(ctx, "GenerateToken", r, func(ctx context.Context) (*minting, error) { return cl.plan(ctx, r) })
}

// Plan returns the GenerateToken call that GenerateToken would make for r,
// after the same metadata lookups and checks, without minting a token.
func (cl *Client) Plan(ctx context.Context, r TokenRequest) (*Plan, error) {
	m, err := cl.plan(ctx, r)
	if err != nil {
		return nil, err
	}
	return m.plan, nil
}

// CheckCredential acquires an Entra token now (from MSAL's cache if it holds a
// valid one), for readiness and health checks. It returns a *CredentialError
// when Entra rejects the service principal.
func (cl *Client) CheckCredential(ctx context.Context) error {
	_, err := cl.cred.token(ctx)
	return err
}

// mint makes the planned POST and reads the EmbedToken. A 400 or 404 means
// the metadata the plan was built from may be stale: it is forgotten.
func (cl *Client) mint(ctx context.Context, m *minting) (*EmbedToken, error) {
	p := m.plan
	resp, err := cl.do(ctx, call{op: m.op, method: p.Method, url: p.URL, body: p.Body, profileID: p.ProfileID, retries: 1})
	if err != nil {
		if errors.Is(err, ErrBadRequest) || errors.Is(err, ErrNotFound) {
			m.forget()
		}
		return nil, err
	}
	var et embedTokenResponse
	if err := json.Unmarshal(resp.body, &et); err != nil || et.Token == "" || et.TokenID == "" || et.Expiration.IsZero() {
		// Never include the body: it may hold a token.
		return nil, fmt.Errorf("powerbi: %s: malformed response (RequestId %s)", m.op, resp.requestID)
	}
	return &EmbedToken{
		Token:      et.Token,
		TokenID:    et.TokenID,
		Expiration: et.Expiration,
		RequestID:  resp.requestID,
		Reports:    p.Reports,
		Dashboard:  m.dashboard,
		Tile:       m.tile,
		Issued:     cl.now(),
	}, nil
}

// newMinting marshals body into the plan of a POST to u.
func newMinting(op, u, profile string, body any, forget func()) *minting {
	b, _ := json.Marshal(body) // cannot fail: the bodies hold strings, ints and bools only
	return &minting{op: op, forget: forget, plan: &Plan{Method: http.MethodPost, URL: u, ProfileID: profile, Body: b}}
}

func (cl *Client) plan(ctx context.Context, r TokenRequest) (*minting, error) {
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	metas, err := cl.reports(ctx, r)
	if err != nil {
		return nil, err
	}
	reports := make([]Report, len(metas))
	refs := make([]datasetAt, len(metas))
	paginated := -1
	for i, m := range metas {
		reports[i] = Report{ID: r.Reports[i].ID, Name: m.Name, EmbedURL: m.EmbedURL, DatasetID: m.DatasetID}
		refs[i] = datasetAt{ws: datasetWorkspace(r.workspaceOf(i), m), id: m.DatasetID, owner: r.Reports[i].ID}
		if m.paginated() {
			paginated = i
			reports[i].DatasetID, refs[i].id = "", ""
		}
	}
	forget := func() {
		for i, ref := range r.Reports {
			cl.meta.reports.forget(metaKey(r.workspaceOf(i), r.ProfileID, ref.ID))
		}
		cl.forgetDatasets(r.ProfileID, refs)
	}
	if paginated >= 0 {
		return cl.planPaginated(r, paginated, reports, forget)
	}
	datasets, err := cl.datasets(ctx, r.ProfileID, refs)
	if err != nil {
		return nil, err
	}
	body, err := buildBody(r, reports, refs, datasets)
	if err != nil {
		return nil, err
	}
	m := newMinting("GenerateToken", cl.cfg.apiURL+"/v1.0/myorg/GenerateToken", r.ProfileID, body, forget)
	m.plan.Reports = reports
	return m, nil
}

// planPaginated plans the V1 report route the official samples use for the
// i-th report, a paginated one. It must come alone: mixing it with others
// would need the V2 body with identities[].reports, which this gateway does
// not build.
func (cl *Client) planPaginated(r TokenRequest, i int, reports []Report, forget func()) (*minting, error) {
	id := r.Reports[i].ID
	for _, other := range r.Reports {
		if !strings.EqualFold(other.ID, id) {
			return nil, &UnsupportedError{ReportID: id, Reason: "mixing a paginated report with other reports in one token is not supported; request it alone"}
		}
	}
	body := generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime)}
	if ident := r.Identity; ident != nil {
		if ident.Username == "" {
			return nil, &PreconditionError{Kind: ErrIdentityRequired, ReportID: id}
		}
		// Paginated RLS filters on the username; roles only if there are any.
		body.Identities = []effectiveIdentity{{Username: ident.Username, Roles: ident.Roles, CustomData: ident.CustomData, Reports: []string{id}}}
	}
	m := newMinting("GenerateReportToken", cl.groupURL(r.workspaceOf(i), "reports", id, "GenerateToken"), r.ProfileID, body, forget)
	m.plan.Reports = reports
	return m, nil
}

func checkRequest(r TokenRequest) error {
	switch {
	case len(r.Reports) == 0:
		return invalidRequest("no reports")
	case len(r.Reports) > maxItems:
		return invalidRequest("%d reports, Power BI allows at most %d per token", len(r.Reports), maxItems)
	case len(r.TargetWorkspaceIDs) > maxItems:
		return invalidRequest("%d target workspaces, Power BI allows at most %d per token", len(r.TargetWorkspaceIDs), maxItems)
	case r.Lifetime < 0:
		return invalidRequest("negative lifetime %s", r.Lifetime)
	}
	for i, ref := range r.Reports {
		switch {
		case ref.ID == "":
			return invalidRequest("report id %d is empty", i)
		case r.workspaceOf(i) == "":
			return invalidRequest("no workspace id for report %s", ref.ID)
		}
	}
	if slices.Contains(r.TargetWorkspaceIDs, "") {
		return invalidRequest("empty target workspace id")
	}
	return nil
}

// workspaceOf returns the workspace of the i-th report.
func (r TokenRequest) workspaceOf(i int) string {
	if ws := r.Reports[i].WorkspaceID; ws != "" {
		return ws
	}
	return r.WorkspaceID
}

// buildBody builds the V2 body: every report once, every dataset once, the
// target workspaces, and the identities (see identitiesFor).
func buildBody(r TokenRequest, reports []Report, refs []datasetAt, datasets []datasetMeta) (*generateTokenRequestV2, error) {
	if len(datasets) > maxItems {
		return nil, invalidRequest("%d datasets, Power BI allows at most %d per token", len(datasets), maxItems)
	}
	ids, err := identitiesFor(r.Identity, datasets, refs)
	if err != nil {
		return nil, err
	}
	body := &generateTokenRequestV2{Identities: ids, LifetimeInMinutes: lifetimeMinutes(r.Lifetime)}
	reportIDs := make([]string, len(reports))
	for i, rep := range reports {
		reportIDs[i] = rep.ID
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
	return body, nil
}

// identitiesFor applies the RLS rules to datasets: an identity goes only to
// datasets that require one (Power BI rejects it for any other), must exist
// for each of them, and must have roles where the dataset requires roles.
// Datasets whose roles (Identity.rolesFor) are the same set share one
// identity; identities come in the order of their first dataset. refs name
// the report (or tile's report) of a dataset for errors.
func identitiesFor(id *Identity, datasets []datasetMeta, refs []datasetAt) ([]effectiveIdentity, error) {
	ownerOf := func(datasetID string) string {
		for _, ref := range refs {
			if strings.EqualFold(ref.id, datasetID) {
				return ref.owner
			}
		}
		return ""
	}
	var out []effectiveIdentity
	bySet := map[string]int{} // role set -> index in out
	for _, d := range datasets {
		if !d.IsEffectiveIdentityRequired {
			continue
		}
		if id == nil || id.Username == "" {
			return nil, &PreconditionError{Kind: ErrIdentityRequired, DatasetID: d.ID, ReportID: ownerOf(d.ID)}
		}
		roles := id.rolesFor(d.ID)
		if d.IsEffectiveIdentityRolesRequired && len(roles) == 0 {
			return nil, &PreconditionError{Kind: ErrRolesRequired, DatasetID: d.ID, ReportID: ownerOf(d.ID)}
		}
		set := slices.Compact(slices.Sorted(slices.Values(roles)))
		key := strings.Join(set, "\x00")
		if i, ok := bySet[key]; ok {
			out[i].Datasets = append(out[i].Datasets, d.ID)
			continue
		}
		bySet[key] = len(out)
		out = append(out, effectiveIdentity{Username: id.Username, Roles: roles, CustomData: id.CustomData, Datasets: []string{d.ID}})
	}
	return out, nil
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
