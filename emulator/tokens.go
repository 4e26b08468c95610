package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sort"
	"sync"
	"time"
)

// TokenKind says which GenerateToken route minted an embed token.
type TokenKind string

// Token kinds.
const (
	KindV2        TokenKind = "V2"        // POST /v1.0/myorg/GenerateToken
	KindReport    TokenKind = "report"    // reports/{id}/GenerateToken
	KindCreate    TokenKind = "create"    // reports/GenerateToken
	KindDashboard TokenKind = "dashboard" // dashboards/{id}/GenerateToken
	KindTile      TokenKind = "tile"      // dashboards/{id}/tiles/{id}/GenerateToken
	KindDataset   TokenKind = "dataset"   // datasets/{id}/GenerateToken
)

// TokenInfo is what an embed token grants, as recorded when it was minted.
type TokenInfo struct {
	// TokenID is the tokenId returned with the token.
	TokenID string `json:"tokenId"`
	// Kind is the route that minted it.
	Kind TokenKind `json:"kind"`
	// GroupID is the workspace of a V1 call's path (empty for V2).
	GroupID string `json:"groupId,omitempty"`
	// Reports are the reports the token opens.
	Reports []TokenReport `json:"reports"`
	// Datasets are the datasets the token reads.
	Datasets []TokenDataset `json:"datasets"`
	// TargetWorkspaces are where the token may save or create reports.
	TargetWorkspaces []string `json:"targetWorkspaces"`
	// DashboardID is set for dashboard and tile tokens.
	DashboardID string `json:"dashboardId,omitempty"`
	// TileID is set for tile tokens.
	TileID string `json:"tileId,omitempty"`
	// Identities are the effective (RLS) identities.
	Identities []TokenIdentity `json:"identities"`
	// DatasourceIdentities are the V2 datasourceIdentities: the SSO data
	// sources each identity blob was given for.
	DatasourceIdentities []TokenDatasourceIdentity `json:"datasourceIdentities,omitempty"`
	// AccessLevel is the V1 access level, normalised (View, Edit, Create).
	AccessLevel string `json:"accessLevel,omitempty"`
	// AllowSaveAs is the V1 allowSaveAs flag.
	AllowSaveAs bool `json:"allowSaveAs,omitempty"`
	// ProfileID is the X-PowerBI-Profile-Id of the call, if any.
	ProfileID string `json:"profileId,omitempty"`
	// AppID is the calling service principal's client id.
	AppID string `json:"appId"`
	// ObjectID is the calling service principal's object id, or the
	// user's for a token a user minted (AppID is then the client app).
	ObjectID string `json:"objectId"`
	// UserPrincipalName is the UPN of the user who minted the token, if a
	// user did.
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	// TenantID is the caller's Entra tenant.
	TenantID string `json:"tenantId"`
	// Issued is when the token was minted.
	Issued time.Time `json:"issued"`
	// Expiration is the token's expiry (whole seconds, UTC).
	Expiration time.Time `json:"expiration"`
	// LifetimeInMinutes is the requested lifetime (0 if absent).
	LifetimeInMinutes int `json:"lifetimeInMinutes"`
}

// TokenReport is a report an embed token opens.
type TokenReport struct {
	ID        string `json:"id"`
	AllowEdit bool   `json:"allowEdit"`
}

// TokenDataset is a dataset an embed token reads.
type TokenDataset struct {
	ID              string `json:"id"`
	XmlaPermissions string `json:"xmlaPermissions"`
	// UpstreamDatasets are the datasets this composite model reads (each
	// is also in the token).
	UpstreamDatasets []string `json:"upstreamDatasets,omitempty"`
}

// TokenDatasourceIdentity is an identity blob given for SSO data sources.
type TokenDatasourceIdentity struct {
	Datasources  []TokenDatasource `json:"datasources"`
	IdentityBlob BlobInfo          `json:"identityBlob"`
}

// TokenDatasource names a data source by type and connection details.
type TokenDatasource struct {
	DatasourceType string `json:"datasourceType"`
	Server         string `json:"server,omitempty"`
	Database       string `json:"database,omitempty"`
	URL            string `json:"url,omitempty"`
	Path           string `json:"path,omitempty"`
	Kind           string `json:"kind,omitempty"`
}

// TokenIdentity is an effective identity baked into an embed token.
type TokenIdentity struct {
	Username        string   `json:"username"`
	Roles           []string `json:"roles"`
	CustomData      string   `json:"customData,omitempty"`
	Datasets        []string `json:"datasets"`
	Reports         []string `json:"reports,omitempty"`
	HasIdentityBlob bool     `json:"hasIdentityBlob,omitempty"`
	// IdentityBlob describes the blob (never its value).
	IdentityBlob *BlobInfo `json:"identityBlob,omitempty"`
}

// tokenStore records minted embed tokens.
type tokenStore struct {
	mu      sync.Mutex
	byIDs   map[string]TokenInfo
	byToken map[string]string
}

func (ts *tokenStore) add(token string, info TokenInfo) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byIDs == nil {
		ts.byIDs, ts.byToken = map[string]TokenInfo{}, map[string]string{}
	}
	ts.byIDs[info.TokenID] = info
	ts.byToken[token] = info.TokenID
}

func (ts *tokenStore) byID(id string) (TokenInfo, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	info, ok := ts.byIDs[id]
	return info, ok
}

func (ts *tokenStore) byValue(token string) (TokenInfo, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	info, ok := ts.byIDs[ts.byToken[token]]
	return info, ok
}

func (ts *tokenStore) all() []TokenInfo {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]TokenInfo, 0, len(ts.byIDs))
	for _, info := range ts.byIDs {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Issued.Before(out[j].Issued) })
	return out
}

// opaqueToken builds a token that looks like the real ones (base64 of a
// gzip stream, so it starts with H4sI) and carries nothing readable.
func opaqueToken(tokenID string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	noise := make([]byte, 96)
	_, _ = rand.Read(noise)
	_, _ = zw.Write(noise)
	_, _ = zw.Write([]byte(tokenID))
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// mint records info and answers with the EmbedToken. The expiry is the
// requested lifetime capped by the caller's Entra token expiry.
func (s *Server) mint(w http.ResponseWriter, c *caller, info TokenInfo, lifetime int) {
	now := s.now().UTC()
	exp := c.expires
	if lifetime > 0 {
		if asked := now.Add(time.Duration(lifetime) * time.Minute); asked.Before(exp) {
			exp = asked
		}
	}
	exp = exp.Truncate(time.Second)
	info.TokenID = newUUID()
	info.Issued = now
	info.Expiration = exp
	info.LifetimeInMinutes = lifetime
	info.AppID, info.ObjectID, info.TenantID, info.ProfileID = c.appID, c.objectID, c.tenantID, c.profileID
	if c.user != nil {
		info.UserPrincipalName = c.user.UPN
	}
	if info.Reports == nil {
		info.Reports = []TokenReport{}
	}
	if info.Datasets == nil {
		info.Datasets = []TokenDataset{}
	}
	if info.TargetWorkspaces == nil {
		info.TargetWorkspaces = []string{}
	}
	if info.Identities == nil {
		info.Identities = []TokenIdentity{}
	}
	token := opaqueToken(info.TokenID)
	s.tokens.add(token, info)
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": odataBase + "/$metadata#Microsoft.PowerBI.ServiceContract.Apis.v1.EmbedToken",
		"token":          token,
		"tokenId":        info.TokenID,
		"expiration":     exp.Format("2006-01-02T15:04:05Z"),
	})
}
