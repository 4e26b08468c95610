package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// maxItems is Power BI's cap on reports (and datasets) per V2 token.
const maxItems = 50

// TokenRequest is one embed token to mint: what authz granted, in Power BI
// terms.
type TokenRequest struct {
	// WorkspaceID is the tenant's workspace (Power BI group id).
	WorkspaceID string
	// ProfileID is the service principal profile; "" sends no
	// X-PowerBI-Profile-Id header.
	ProfileID string
	// ReportIDs are the reports to embed, 1..50.
	ReportIDs []string
	// AllowEdit lets the embedded reports be edited.
	AllowEdit bool
	// Lifetime shortens the token's life; sent as lifetimeInMinutes (whole
	// minutes, rounded down, at least 1). 0 leaves Power BI's default (the
	// remaining life of the Entra token).
	Lifetime time.Duration
	// Identity is the RLS effective identity. It is sent only for datasets
	// whose isEffectiveIdentityRequired is true (Power BI rejects an identity
	// for any other dataset); nil means none.
	Identity *Identity
}

// Identity is a Power BI effective identity (row-level security).
type Identity struct {
	Username   string
	Roles      []string
	CustomData string
}

// EmbedToken is a minted token and what a browser needs to embed the reports.
type EmbedToken struct {
	Token      string    // the embed token (a secret: never log it)
	TokenID    string    // Power BI's id for audit correlation
	Expiration time.Time // exactly as Power BI returned it (UTC)
	RequestID  string    // Power BI RequestId of the GenerateToken response
	Reports    []Report  // one per requested report, in request order
}

// Report is one embeddable report. EmbedURL is Power BI's, unchanged.
type Report struct {
	ID, Name, EmbedURL, DatasetID string
}

// Plan is exactly what GenerateToken would send for a request: for the
// Explain RPC and for debugging RLS decisions without minting a token.
type Plan struct {
	Method    string          // always POST
	URL       string          // {api_url}/v1.0/myorg/GenerateToken
	ProfileID string          // X-PowerBI-Profile-Id header value, "" = not sent
	Body      json.RawMessage // the V2 GenerateTokenRequest body, as sent
	Reports   []Report        // resolved reports, in request order
}

// generateTokenRequestV2 is the V2 body (shared/reference/powerbi-api.md §1).
type generateTokenRequestV2 struct {
	Datasets          []datasetRef        `json:"datasets"`
	Reports           []reportRef         `json:"reports"`
	Identities        []effectiveIdentity `json:"identities,omitempty"`
	LifetimeInMinutes int                 `json:"lifetimeInMinutes,omitempty"`
}

type datasetRef struct {
	ID string `json:"id"`
}

type reportRef struct {
	ID        string `json:"id"`
	AllowEdit bool   `json:"allowEdit"`
}

type effectiveIdentity struct {
	Username   string   `json:"username"`
	Roles      []string `json:"roles,omitempty"`
	CustomData string   `json:"customData,omitempty"`
	Datasets   []string `json:"datasets"`
}

// embedTokenResponse is Power BI's EmbedToken.
type embedTokenResponse struct {
	Token      string    `json:"token"`
	TokenID    string    `json:"tokenId"`
	Expiration time.Time `json:"expiration"`
}

// GenerateToken mints one V2 embed token for all reports of r. Metadata comes
// from cache or Get Report/Get Dataset; RLS preconditions are checked before
// anything is minted (ErrIdentityRequired, ErrRolesRequired); paginated reports
// give ErrUnsupported. The POST is retried once on a connection reset or
// 502/503/504, never on 429.
func (cl *Client) GenerateToken(ctx context.Context, r TokenRequest) (*EmbedToken, error) {
	p, rr, err := cl.plan(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := cl.do(ctx, call{op: "GenerateToken", method: http.MethodPost, url: p.URL, body: p.Body, profileID: p.ProfileID, retries: 1})
	if err != nil {
		if errors.Is(err, ErrBadRequest) || errors.Is(err, ErrNotFound) {
			cl.forget(r, rr)
		}
		return nil, err
	}
	var et embedTokenResponse
	if err := json.Unmarshal(resp.body, &et); err != nil || et.Token == "" || et.TokenID == "" || et.Expiration.IsZero() {
		// Never include the body: it may hold a token.
		return nil, fmt.Errorf("powerbi: GenerateToken: malformed response (RequestId %s)", resp.requestID)
	}
	return &EmbedToken{
		Token:      et.Token,
		TokenID:    et.TokenID,
		Expiration: et.Expiration,
		RequestID:  resp.requestID,
		Reports:    p.Reports,
	}, nil
}

// Plan returns the GenerateToken call that GenerateToken would make for r,
// after the same metadata lookups and checks, without minting a token.
func (cl *Client) Plan(ctx context.Context, r TokenRequest) (*Plan, error) {
	p, _, err := cl.plan(ctx, r)
	return p, err
}

// CheckCredential acquires an Entra token now (from MSAL's cache if it holds a
// valid one), for readiness and health checks. It returns a *CredentialError
// when Entra rejects the service principal.
func (cl *Client) CheckCredential(ctx context.Context) error {
	_, err := cl.cred.token(ctx)
	return err
}

func (cl *Client) plan(ctx context.Context, r TokenRequest) (*Plan, *resolvedRequest, error) {
	if err := checkRequest(r); err != nil {
		return nil, nil, err
	}
	rr, err := cl.resolve(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	body, err := buildBody(r, rr)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("powerbi: GenerateToken: %w", err)
	}
	reports := make([]Report, len(rr.reports))
	for i, m := range rr.reports {
		reports[i] = Report{ID: r.ReportIDs[i], Name: m.Name, EmbedURL: m.EmbedURL, DatasetID: m.DatasetID}
	}
	return &Plan{
		Method:    http.MethodPost,
		URL:       cl.cfg.apiURL + "/v1.0/myorg/GenerateToken",
		ProfileID: r.ProfileID,
		Body:      b,
		Reports:   reports,
	}, rr, nil
}

func checkRequest(r TokenRequest) error {
	switch {
	case r.WorkspaceID == "":
		return invalidRequest("no workspace id")
	case len(r.ReportIDs) == 0:
		return invalidRequest("no report ids")
	case len(r.ReportIDs) > maxItems:
		return invalidRequest("%d reports, Power BI allows at most %d per token", len(r.ReportIDs), maxItems)
	case r.Lifetime < 0:
		return invalidRequest("negative lifetime %s", r.Lifetime)
	}
	for i, id := range r.ReportIDs {
		if id == "" {
			return invalidRequest("report id %d is empty", i)
		}
	}
	return nil
}

// buildBody applies the RLS rules: an identity goes only to datasets that
// require one, must exist for each of them, and must have roles where the
// dataset requires roles.
func buildBody(r TokenRequest, rr *resolvedRequest) (*generateTokenRequestV2, error) {
	if len(rr.datasets) > maxItems {
		return nil, invalidRequest("%d datasets, Power BI allows at most %d per token", len(rr.datasets), maxItems)
	}
	reportOf := func(datasetID string) string {
		for i, m := range rr.reports {
			if strings.EqualFold(m.DatasetID, datasetID) {
				return r.ReportIDs[i]
			}
		}
		return ""
	}
	body := &generateTokenRequestV2{}
	seen := map[string]bool{}
	for _, id := range r.ReportIDs {
		if k := strings.ToLower(id); !seen[k] {
			seen[k] = true
			body.Reports = append(body.Reports, reportRef{ID: id, AllowEdit: r.AllowEdit})
		}
	}
	var rls []string
	for _, d := range rr.datasets {
		body.Datasets = append(body.Datasets, datasetRef{ID: d.ID})
		if !d.IsEffectiveIdentityRequired {
			continue
		}
		if r.Identity == nil || r.Identity.Username == "" {
			return nil, &PreconditionError{Kind: ErrIdentityRequired, DatasetID: d.ID, ReportID: reportOf(d.ID)}
		}
		if d.IsEffectiveIdentityRolesRequired && len(r.Identity.Roles) == 0 {
			return nil, &PreconditionError{Kind: ErrRolesRequired, DatasetID: d.ID, ReportID: reportOf(d.ID)}
		}
		rls = append(rls, d.ID)
	}
	if len(rls) > 0 {
		body.Identities = []effectiveIdentity{{
			Username:   r.Identity.Username,
			Roles:      r.Identity.Roles,
			CustomData: r.Identity.CustomData,
			Datasets:   rls,
		}}
	}
	if r.Lifetime > 0 {
		body.LifetimeInMinutes = max(1, int(r.Lifetime/time.Minute))
	}
	return body, nil
}
