package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/embedgate/embedgate/internal/filewatch"
)

// Plan returns the GenerateToken call that Issue would make for r, after the
// same metadata lookups and checks, without minting a token.
func (cl *Client) Plan(ctx context.Context, r TokenRequest) (*Plan, error) {
	m, err := cl.tracedPlan(ctx, r)
	if err != nil {
		return nil, err
	}
	return m.plan, nil
}

// CheckCredential acquires an Entra token now (or reuses the one in use), for
// readiness and health checks. It returns a *CredentialError when Entra
// rejects the service principal.
func (cl *Client) CheckCredential(ctx context.Context) error {
	if cl.user != nil {
		_, err := cl.userToken(ctx)
		return err
	}
	_, err := cl.cred.token(ctx, 0)
	return err
}

// Watch reloads the client secret or certificate file whenever it changes,
// until ctx is done: a rotated credential is used from the next Entra call on,
// and a file that does not load keeps the previous credential (logged). The
// federated token file needs no watch: it is read on every assertion.
func (cl *Client) Watch(ctx context.Context) error {
	c := cl.cred
	if c == nil || c.kind == credFederated {
		<-ctx.Done()
		return nil
	}
	return filewatch.Watch(ctx, []string{c.path}, c.reload, filewatch.Options{
		OnError: func(err error) {
			c.log.Warn("powerbi: credential file watch error; reading it anyway", "file", c.path, "error", err)
		},
	})
}

// mint makes the planned POST with an Entra token that outlives the embed
// token's lifetime (when Entra's token lifetimes allow) and reads the
// EmbedToken. A 400 or 404 means the metadata the plan was built from may be
// stale: it is forgotten.
func (cl *Client) mint(ctx context.Context, m *minting, lifetime time.Duration) (*EmbedToken, error) {
	p := m.plan
	c := call{op: m.op, method: p.Method, url: p.URL, body: m.body, profileID: p.ProfileID, retries: 1, mints: true}
	if lifetime > 0 {
		c.need = lifetime + mintMargin
	}
	resp, err := cl.do(ctx, c)
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
	issued := cl.now()
	tok := &EmbedToken{
		Token:      et.Token,
		TokenID:    et.TokenID,
		Expiration: et.Expiration,
		RequestID:  resp.requestID,
		Items:      p.Items,
		Issued:     issued,
		RefreshAt:  RefreshAt(issued, et.Expiration),
		Requested:  lifetime,
	}
	if d := tok.Shortfall(); d > 0 {
		cl.log.Warn("powerbi: Power BI issued a shorter embed token than asked", "op", m.op, "pbi_request_id", resp.requestID,
			"token_id", et.TokenID, "requested", lifetime.String(), "shortfall", d.String())
	}
	return tok, nil
}
