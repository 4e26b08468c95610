package powerbi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// A Client normally calls Power BI as Embedgate's service principal. Built
// with NewAsUser, it calls Power BI as a signed-in user instead (a
// delegated token, what Microsoft's samples call a master user): the same
// planning, the same requests, the user's own rights. That is what
// `embedgate token --device-login` does to reproduce what a developer would
// send by hand from the REST reference's "Try it" page.

// UserToken is a user's Entra access token for Power BI and when it
// expires.
type UserToken struct {
	// Value is the access token: a secret, never logged.
	Value string
	// ExpiresOn is when Entra says it expires.
	ExpiresOn time.Time
	// Issued is when the Client received it (OnBehalfOf), by the Client's
	// clock; zero from a UserTokenSource.
	Issued time.Time
}

// UserTokenSource hands out the signed-in user's access token for Power
// BI, renewed (silently, from a refresh token) as its owner sees fit.
type UserTokenSource func(ctx context.Context) (UserToken, error)

// NewAsUser builds a Client that calls Power BI with the tokens src hands
// out. Only the endpoint keys of cfg matter (cloud, api_url, ca_file,
// timeout, metadata_ttl); there is no service principal, so no profile
// (X-PowerBI-Profile-Id) either.
//
// As a user's, its requests differ from a service principal's in what
// Power BI allows: a request without an RLS identity is sent as it is
// (Power BI applies the user's own identity to RLS datasets, where a
// service principal must name one), a 401 or 403 is reported at once (a
// fresh token of the same user would not change it), and items in My
// workspace have no embed token at all (Power BI refuses).
func NewAsUser(cfg Config, src UserTokenSource, opts ...Option) (*Client, error) {
	if src == nil {
		return nil, errors.New("powerbi: NewAsUser without a token source")
	}
	ps := cfg.ValidateEndpoints()
	if cfg.Timeout < 0 || cfg.MetadataTTL < 0 {
		return nil, errors.New("powerbi: invalid config: timeout and metadata_ttl must not be negative")
	}
	if len(ps) > 0 {
		return nil, errProblems(ps)
	}
	o := options{logger: slog.Default(), now: time.Now, backoff: jitteredBackoff}
	for _, opt := range opts {
		opt(&o)
	}
	r := cfg.resolve()
	hc := o.hc
	if hc == nil {
		var err error
		if hc, err = newHTTPClient(r); err != nil {
			return nil, err
		}
	}
	return &Client{
		cfg:     r,
		hc:      instrument(limited(hc, r.MaxConcurrency), o),
		log:     o.logger,
		now:     o.now,
		backoff: o.backoff,
		user:    src,
		tracer:  newTracer(o.tp),
		meta:    newMetaCaches(),
		tokens:  newTokenCache(r.DisableTokenCache),
	}, nil
}

// HTTPClient is the client a Client built from c reaches Entra ID and
// Power BI with: TLS 1.2 or later, the system roots plus ca_file, c's
// timeout. For what talks to the same endpoints beside a Client (MSAL's
// public client in `embedgate token`).
func (c Config) HTTPClient() (*http.Client, error) {
	return newHTTPClient(c.resolve())
}

// userToken is the signed-in user's token, as an entraToken for do.
func (cl *Client) userToken(ctx context.Context) (*entraToken, error) {
	t, err := cl.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("powerbi: the signed-in user's token: %w", err)
	}
	now := cl.now()
	return &entraToken{value: t.Value, acquired: now, expires: now.Add(time.Until(t.ExpiresOn))}, nil
}

// renewAfterRefusal is the credential's, for a service principal; a user's
// token is not renewed after a refusal (the same user would be refused
// again).
func (cl *Client) renewAfterRefusal(ctx context.Context, stale *entraToken) (*entraToken, bool, error) {
	if cl.user != nil {
		return nil, false, nil
	}
	return cl.cred.renewAfterRefusal(ctx, stale)
}
