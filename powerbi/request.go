package powerbi

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of Power BI item a token embeds. Each kind has its own route
// to a token (plan.go): a new kind is a value here and a case in Client.plan.
type Kind int

// The item kinds.
const (
	// KindReport is a Power BI report or a paginated report: up to 50 per V2 token.
	KindReport Kind = iota + 1
	// KindDashboard is a dashboard: one per token, on its V1 route.
	KindDashboard
	// KindTile is a tile of a dashboard: one per token, on its V1 route.
	KindTile
)

// String names the kind in logs and errors.
func (k Kind) String() string {
	switch k {
	case KindReport:
		return "report"
	case KindDashboard:
		return "dashboard"
	case KindTile:
		return "tile"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Item is one item to embed, in the workspace (Power BI group) it lives in.
type Item struct {
	Kind        Kind
	ID          string
	WorkspaceID string
	// DashboardID is a tile's dashboard; "" for other kinds.
	DashboardID string
}

// TokenRequest is one embed token to mint: what the policy granted, in Power BI
// terms. The items are all of one kind: 1..50 reports, or one dashboard, or one
// tile.
type TokenRequest struct {
	// ProfileID is the service principal profile; "" sends no
	// X-PowerBI-Profile-Id header.
	ProfileID string
	// Items are the items to embed, in the order the response lists them.
	Items []Item
	// TargetWorkspaceIDs are the workspaces where the embedded reports may save
	// or create reports, sent as targetWorkspaces:[{id}]; nil sends no
	// targetWorkspaces (an empty, non-nil slice sends []). At most 50. Reports
	// only.
	TargetWorkspaceIDs []string
	// AllowEdit lets the embedded reports be edited. Paginated reports,
	// dashboards and tiles cannot be edited.
	AllowEdit bool
	// Lifetime is the token's lifetime, sent as lifetimeInMinutes (whole
	// minutes, rounded down, at least 1). 0 leaves Power BI's default (the
	// remaining life of the Entra token). Before minting, the Entra token is
	// renewed if it would not outlive Lifetime (see credential.go).
	Lifetime time.Duration
	// Identity is the RLS effective identity; nil means none (see rls.go).
	Identity *Identity
	// Workspaces are the tenant's workspaces: where a dataset that Power BI
	// names without its workspace (a paginated report reads one by id) is
	// looked for, after the report's own.
	Workspaces []string
	// Models are the policy's decisions on what the token opens (see
	// Client.Models), by Model id: another identity for a dataset whose kind
	// needs one, identity blobs for single sign-on data sources. A dataset
	// that a composite model or a paginated report reads is opened only if
	// it has one: the policy must have seen it.
	Models []ModelGrant
}

// Identity is a Power BI effective identity (row-level security).
type Identity struct {
	Username string
	// ServicePrincipal: the username is Embedgate's service principal's
	// object id, or with a profile the profile's id; Username is then unused.
	ServicePrincipal bool
	CustomData       string
	// Roles are the roles for every dataset not in DatasetRoles.
	Roles []string
	// DatasetRoles maps a dataset id (compared case-insensitively) to the
	// roles that replace Roles for that dataset. Datasets with the same role
	// set share one identity in the token.
	DatasetRoles map[string][]string
	// WithoutRLS are report and dataset ids (compared case-insensitively)
	// that carry no row-level security on purpose. A dataset that enforces no
	// RLS is embedded without an identity if it, or every requested report on
	// it, is listed; any other is refused with ErrRLSNotEnforced, so that an
	// RLS tenant never gets a token that shows every row.
	WithoutRLS []string
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

// withoutRLS reports whether the policy says id carries no RLS.
func (id *Identity) withoutRLS(itemID string) bool {
	for _, w := range id.WithoutRLS {
		if strings.EqualFold(w, itemID) {
			return true
		}
	}
	return false
}

// EmbedToken is a minted token and what a browser needs to embed its items.
// Each call returns its own copy: callers may modify it.
type EmbedToken struct {
	Token      string    // the embed token (a secret: never log it)
	TokenID    string    // Power BI's id for audit correlation
	Expiration time.Time // exactly as Power BI returned it (UTC)
	RequestID  string    // Power BI RequestId of the GenerateToken response
	// Items are the embedded items, in request order.
	Items []Embedded
	// Issued is when the gateway received the token from Power BI, by the
	// Client's clock (WithClock).
	Issued time.Time
	// RefreshAt is when a client should ask again: the token cache hands this
	// token out only before then (see RefreshAt), so a client that renews at
	// RefreshAt gets a fresh one.
	RefreshAt time.Time
	// Requested is the lifetime that was asked of Power BI (0 for its
	// default). Power BI caps a token at its Entra token's remaining life, so
	// Expiration may come earlier than Issued + Requested: see Shortfall.
	Requested time.Duration
	// Cached reports that the token was minted before this call began and
	// served from the token cache (Token, TokenID and RequestID are then
	// those of that earlier mint). Callers that shared a concurrent mint get
	// false.
	Cached bool
}

// Shortfall is how much shorter than requested Power BI made the token (0 if
// it lived as long as asked, to the minute Power BI counts in).
func (t *EmbedToken) Shortfall() time.Duration {
	if t.Requested <= 0 {
		return 0
	}
	if d := t.Issued.Add(t.Requested).Sub(t.Expiration); d >= time.Minute {
		return d.Truncate(time.Second)
	}
	return 0
}

// Embedded is one embeddable item: Power BI's name and embed URL, unchanged.
type Embedded struct {
	Kind        Kind
	ID          string
	Name        string // a report's or dashboard's name, a tile's title
	EmbedURL    string
	WorkspaceID string
	// DatasetID is a report's or tile's dataset; "" for a paginated report, a
	// dashboard, or a tile without data.
	DatasetID string
	// ReportID is the report a tile was pinned from; "" otherwise.
	ReportID string
	// DashboardID is a tile's dashboard; "" otherwise.
	DashboardID string
}

// Plan is exactly what Issue would send for a request: for the Explain RPC and
// for debugging RLS decisions without minting a token.
type Plan struct {
	Method    string // always POST
	URL       string // {api_url}/v1.0/myorg/GenerateToken (V2), or the V1 route of a paginated report, dashboard or tile
	ProfileID string // X-PowerBI-Profile-Id header value, "" = not sent
	// Body is the GenerateTokenRequest body (V2 or V1) as sent, each identity
	// blob's value replaced by RedactedBlob.
	Body  json.RawMessage
	Items []Embedded // what the token would embed, in request order
	// Datasets are the datasets the token opens, then its paginated
	// reports, as Power BI describes them, with what is sent for each.
	Datasets []PlannedModel
}

// RedactedBlob stands for an identity blob's value in Plan.Body: a blob is
// an access token, never shown.
const RedactedBlob = "[redacted]"

// PlannedModel is one Model of a token and what the token carries for it.
type PlannedModel struct {
	Model
	// Identity is the effective identity sent for it (the service principal
	// resolved to its object id); nil for none.
	Identity *PlannedIdentity
	// BlobAudiences are the resources of the identity blobs sent for its
	// single sign-on data sources, in an identity or in
	// datasourceIdentities (never the blobs).
	BlobAudiences []string
}

// PlannedIdentity is an effective identity as sent.
type PlannedIdentity struct {
	Username   string
	Roles      []string
	CustomData string
}
