package powerbi

import "time"

// The JSON bodies of the Power BI REST API calls this package makes, as
// Microsoft's REST reference (Embed Token - Generate Token, and the
// GenerateTokenInGroup routes of Reports, Dashboards and Tiles) spells them.

// generateTokenRequestV2 is the body of POST /v1.0/myorg/GenerateToken.
type generateTokenRequestV2 struct {
	Datasets          []datasetRef        `json:"datasets"`
	Reports           []reportRef         `json:"reports"`
	TargetWorkspaces  []workspaceRef      `json:"targetWorkspaces,omitzero"`
	Identities        []effectiveIdentity `json:"identities,omitempty"`
	LifetimeInMinutes int                 `json:"lifetimeInMinutes,omitempty"`
}

// generateTokenRequestV1 is the body of the per-item GenerateTokenInGroup
// routes.
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
