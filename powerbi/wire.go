package powerbi

import "time"

// The JSON bodies of the Power BI REST API calls this package makes, as
// Microsoft's REST reference (Embed Token - Generate Token, and the
// GenerateTokenInGroup routes of Reports, Dashboards and Tiles) spells them.

// generateTokenRequestV2 is the body of POST /v1.0/myorg/GenerateToken.
type generateTokenRequestV2 struct {
	Datasets             []datasetRef         `json:"datasets"`
	Reports              []reportRef          `json:"reports"`
	TargetWorkspaces     []workspaceRef       `json:"targetWorkspaces,omitzero"`
	Identities           []effectiveIdentity  `json:"identities,omitempty"`
	DatasourceIdentities []datasourceIdentity `json:"datasourceIdentities,omitempty"`
	LifetimeInMinutes    int                  `json:"lifetimeInMinutes,omitempty"`
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
	// XmlaPermissions is "ReadOnly" for a composite model, the datasets it
	// reads and a paginated report's datasets; omitted (Off) otherwise.
	XmlaPermissions string `json:"xmlaPermissions,omitempty"`
}

// xmlaReadOnly grants read on a dataset's XMLA endpoint.
const xmlaReadOnly = "ReadOnly"

type reportRef struct {
	ID        string `json:"id"`
	AllowEdit bool   `json:"allowEdit"`
}

type workspaceRef struct {
	ID string `json:"id"`
}

// effectiveIdentity names the datasets it applies to, or (paginated reports
// only) the reports. The username may be left out with an identity blob (the
// swagger's examples do).
type effectiveIdentity struct {
	Username     string        `json:"username,omitempty"`
	Roles        []string      `json:"roles,omitempty"`
	CustomData   string        `json:"customData,omitempty"`
	Datasets     []string      `json:"datasets,omitempty"`
	Reports      []string      `json:"reports,omitempty"`
	IdentityBlob *identityBlob `json:"identityBlob,omitempty"`
}

// identityBlob is an EffectiveIdentity's identityBlob: an access token for a
// single sign-on data source.
type identityBlob struct {
	Value string `json:"value"`
}

// datasourceIdentity is a V2 datasourceIdentities entry: one identity blob
// (here a plain string) for the data sources it names.
type datasourceIdentity struct {
	IdentityBlob string               `json:"identityBlob"`
	Datasources  []datasourceSelector `json:"datasources"`
}

// datasourceSelector names a data source as Get Datasources reported it.
type datasourceSelector struct {
	DatasourceType    string            `json:"datasourceType"`
	ConnectionDetails connectionDetails `json:"connectionDetails"`
}

type connectionDetails struct {
	Server   string `json:"server,omitempty"`
	Database string `json:"database,omitempty"`
	URL      string `json:"url,omitempty"`
	Path     string `json:"path,omitempty"`
	Kind     string `json:"kind,omitempty"`
}

// embedTokenResponse is Power BI's EmbedToken.
type embedTokenResponse struct {
	Token      string    `json:"token"`
	TokenID    string    `json:"tokenId"`
	Expiration time.Time `json:"expiration"`
}
