package powerbi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// OnBehalfOf exchanges a user's verified assertion (VerifyAssertion) for
// the user's access token for Power BI: the On-Behalf-Of flow ("Microsoft
// identity platform and OAuth 2.0 On-Behalf-Of flow"), made by MSAL with
// Embedgate's own credential. The Client keeps each token under a hash of
// the assertion it was exchanged for (and the tenant), so that a user's
// token is only ever handed back for that user's assertion, until 5 minutes
// before it expires, at most maxUserTokens of them; a repeated request
// within that makes no call to Entra, and identical concurrent ones share
// one. The exchanges go through an MSAL client of their own, replaced after
// oboClientUses exchanges or oboClientAge: MSAL's cache keeps every user's
// tokens, refresh tokens included, and never drops them (nor can it be
// emptied from outside), so it is dropped whole instead.
//
// tenantID is the user's tenant (the assertion's tid); the exchange is made
// there when it is not the configured one. Entra's refusals that the user
// resolves come back as *UserSignInError (consent; Conditional Access, with
// the claims challenge) or *AssertionError; Entra's refusal of Embedgate's
// own credential as *CredentialError; an unreachable Entra as
// *UnavailableError.
func (cl *Client) OnBehalfOf(ctx context.Context, assertion, tenantID string) (UserToken, error) {
	if cl.cred == nil {
		return UserToken{}, errors.New("powerbi: OnBehalfOf needs the service principal's Client (New)")
	}
	key := userTokenKey(assertion, tenantID)
	if t, ok := cl.users.get(key, cl.now()); ok {
		return t, nil
	}
	return shared(ctx, &cl.oboSF, string(key[:]), "OnBehalfOf", func(ctx context.Context) (UserToken, error) {
		if t, ok := cl.users.get(key, cl.now()); ok {
			return t, nil
		}
		t, err := cl.exchange(ctx, assertion, tenantID)
		if err == nil {
			cl.users.put(key, t, cl.now())
		}
		return t, err
	})
}

// exchange makes the On-Behalf-Of request.
func (cl *Client) exchange(ctx context.Context, assertion, tenantID string) (UserToken, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*cl.cfg.Timeout)
	defer cancel()
	var opts []confidential.AcquireOnBehalfOfOption
	if tenantID != "" && !strings.EqualFold(tenantID, cl.cfg.TenantID) {
		opts = append(opts, confidential.WithTenantID(tenantID))
	}
	ctx, span := cl.tracer.Start(ctx, spanEntraToken)
	client, err := cl.oboClient()
	if err != nil {
		endSpan(span, err)
		return UserToken{}, err
	}
	ar, err := client.AcquireTokenOnBehalfOf(ctx, assertion, []string{cl.cfg.scope}, opts...)
	if err != nil {
		err = cl.classifyOBO(err)
		endSpan(span, err)
		return UserToken{}, err
	}
	endSpan(span, nil)
	// MSAL reports the expiry on the real clock; carry the remaining life
	// over to the Client's.
	now := cl.now()
	return UserToken{Value: ar.AccessToken, ExpiresOn: now.Add(time.Until(ar.ExpiresOn)).Truncate(time.Second), Issued: now}, nil
}

// The AADSTS codes of the On-Behalf-Of refusals the user (or the front
// end) resolves ("Microsoft Entra authentication and authorization error
// codes").
var (
	// consentCodes: the user or administrator has not consented.
	consentCodes = []int{65001}
	// interactionCodes: Conditional Access wants more of the sign-in (MFA,
	// a compliant device, terms of use, a location).
	interactionCodes = []int{50076, 50079, 50158, 53000, 53001, 53003, 50072}
	// expiredCodes: the assertion is not within its valid time range.
	expiredCodes = []int{500133}
)

// oboError is Entra's error body as the user flows have it.
type oboError struct {
	Error         string `json:"error"`
	SubError      string `json:"suberror"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	Claims        string `json:"claims"`
	CorrelationID string `json:"correlation_id"`
}

// classifyOBO sorts Entra's answer to an On-Behalf-Of request: what the
// user resolves, what the assertion is, else what classifyEntra says of
// Embedgate's own credential and of Entra's availability.
func (cl *Client) classifyOBO(err error) error {
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) || ce.Resp == nil || ce.Resp.Body == nil {
		return classifyEntra(err, cl.cred.kind, cl.cred.path)
	}
	body, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
	ce.Resp.Body = io.NopCloser(bytes.NewReader(body))
	var e oboError
	_ = json.Unmarshal(body, &e)
	desc := e.Description
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i]
	}
	has := func(codes []int) bool {
		return slices.ContainsFunc(e.ErrorCodes, func(c int) bool { return slices.Contains(codes, c) })
	}
	status := ce.Resp.StatusCode
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return classifyEntra(err, cl.cred.kind, cl.cred.path)
	case has(consentCodes) || e.SubError == "consent_required" || e.Error == "consent_required":
		return &UserSignInError{Kind: ErrConsentRequired, ErrorCodes: e.ErrorCodes, Description: desc, CorrelationID: e.CorrelationID}
	case e.Claims != "" || has(interactionCodes) || e.Error == "interaction_required":
		return &UserSignInError{Kind: ErrInteractionRequired, ErrorCodes: e.ErrorCodes, Claims: e.Claims, Description: desc, CorrelationID: e.CorrelationID}
	case has(expiredCodes):
		return &AssertionError{Kind: ErrAssertionExpired, ErrorCodes: e.ErrorCodes, Reason: "Entra ID says the assertion has expired: get a new access token for the user"}
	case e.Error == "invalid_grant":
		return &AssertionError{Kind: ErrAssertionInvalid, ErrorCodes: e.ErrorCodes, Reason: "Entra ID refused the assertion" + aadsts(e.ErrorCodes) + describe(desc)}
	case e.Error == "invalid_client" || e.Error == "unauthorized_client":
		return classifyEntra(err, cl.cred.kind, cl.cred.path) // Embedgate's own credential
	case status >= 400 && status < 500:
		// Any other refusal of this exchange is about what the user (or the
		// front end) sent, not Embedgate's credential: not an operator's
		// alarm.
		return &AssertionError{Kind: ErrAssertionInvalid, ErrorCodes: e.ErrorCodes, Reason: "Entra ID refused the exchange" + aadsts(e.ErrorCodes) + describe(desc)}
	}
	return classifyEntra(err, cl.cred.kind, cl.cred.path)
}

// The On-Behalf-Of MSAL client lives at most this many exchanges, or this
// long: a new one costs one authority discovery call to Entra.
const (
	oboClientUses = 1000
	oboClientAge  = time.Hour
)

// oboApp is one generation of the On-Behalf-Of MSAL client.
type oboApp struct {
	client confidential.Client
	app    *msalApp // the credential it was built from
	made   time.Time
	uses   atomic.Int64
}

// oboClient returns the On-Behalf-Of client, a new one when the current one
// is worn (uses, age) or the credential has changed.
func (cl *Client) oboClient() (confidential.Client, error) {
	app := cl.cred.app.Load()
	cur := cl.obo.Load()
	if cur != nil && cur.app == app && time.Since(cur.made) < oboClientAge && cur.uses.Add(1) <= oboClientUses {
		return cur.client, nil
	}
	client, err := confidential.New(cl.cfg.authorityHost+"/"+cl.cfg.TenantID, cl.cfg.ClientID, app.cred,
		confidential.WithHTTPClient(cl.hc), confidential.WithInstanceDiscovery(cl.cfg.discovery))
	if err != nil {
		return confidential.Client{}, &CredentialError{Description: "msal: " + err.Error()}
	}
	next := &oboApp{client: client, app: app, made: time.Now()}
	next.uses.Store(1)
	cl.obo.CompareAndSwap(cur, next) // a racing caller's new client is as good
	return client, nil
}

// Users' tokens are kept until userTokenMargin before they expire, at most
// maxUserTokens of them.
const (
	userTokenMargin = 5 * time.Minute
	maxUserTokens   = 10_000
)

// userTokens holds users' On-Behalf-Of tokens by assertion. Full, it drops
// the expired ones, then the one that expires first.
type userTokens struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]UserToken
}

func userTokenKey(assertion, tenantID string) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.ToLower(tenantID) + "\x00" + assertion))
}

func (u *userTokens) get(k [sha256.Size]byte, now time.Time) (UserToken, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[k]
	if !ok || !now.Before(t.ExpiresOn.Add(-userTokenMargin)) {
		return UserToken{}, false
	}
	return t, true
}

func (u *userTokens) put(k [sha256.Size]byte, t UserToken, now time.Time) {
	if !now.Before(t.ExpiresOn.Add(-userTokenMargin)) {
		return // too short to serve twice
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[[sha256.Size]byte]UserToken{}
	}
	if len(u.m) >= maxUserTokens {
		var first [sha256.Size]byte
		var soonest time.Time
		for key, v := range u.m {
			if !now.Before(v.ExpiresOn.Add(-userTokenMargin)) {
				delete(u.m, key)
			} else if soonest.IsZero() || v.ExpiresOn.Before(soonest) {
				first, soonest = key, v.ExpiresOn
			}
		}
		if len(u.m) >= maxUserTokens {
			delete(u.m, first)
		}
	}
	u.m[k] = t
}

// size is how many users' tokens are kept.
func (u *userTokens) size() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}
