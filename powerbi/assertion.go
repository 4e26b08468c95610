package powerbi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// User owns data: a caller holds an end user's Entra access token for
// Embedgate's API (the assertion) and asks for what the user's browser
// needs to embed Power BI items as the user. Embedgate checks the
// assertion itself before it is exchanged (VerifyAssertion), so that a
// token meant for another API, from another tenant, expired or forged never
// reaches Entra on Embedgate's behalf: the checks Microsoft asks of a web
// API that validates the tokens it receives ("Microsoft identity platform
// access tokens": signature with the tenant's published keys, issuer,
// audience, lifetime).

// Assertion is what Embedgate learned from a user's access token: who the
// user is, for audit records, and when the token expires. Never the token.
type Assertion struct {
	// TenantID is the tid claim: the user's Entra tenant.
	TenantID string
	// ObjectID is the oid claim: the user's object id, the one user
	// identifier Embedgate records.
	ObjectID string
	// Audience is the aud claim that matched Embedgate's API.
	Audience string
	// Expires is the exp claim.
	Expires time.Time
}

// assertionSkew is the clock skew tolerated on exp and nbf, as Microsoft's
// token validation libraries allow by default (five minutes).
const assertionSkew = 5 * time.Minute

// maxAssertion is the longest assertion read: Entra's access tokens are a
// few kilobytes (the API allows 16 KiB).
const maxAssertion = 16 << 10

// assertionClaimsOf are the claims Embedgate reads.
type assertionClaimsOf struct {
	jwt.RegisteredClaims
	TenantID string `json:"tid"`
	ObjectID string `json:"oid"`
	Scope    string `json:"scp"`
	IDType   string `json:"idtyp"`
}

// PeekAssertion reads the tenant and user of an assertion without checking
// it, so that the policy can decide whether to look further (which tenant's
// keys to fetch). Nothing it returns may be trusted before VerifyAssertion
// has checked the same token.
func PeekAssertion(raw string) (Assertion, error) {
	if len(raw) > maxAssertion {
		return Assertion{}, assertionInvalid("the assertion is longer than %d bytes", maxAssertion)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return Assertion{}, assertionInvalid("the assertion is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Assertion{}, assertionInvalid("the assertion is not a JWT")
	}
	var c assertionClaimsOf
	if err := json.Unmarshal(payload, &c); err != nil {
		return Assertion{}, assertionInvalid("the assertion's claims are not JSON")
	}
	if !uuidRE.MatchString(c.TenantID) {
		return Assertion{}, assertionInvalid("the assertion has no tenant (tid claim): it is not an Entra ID access token")
	}
	return Assertion{TenantID: strings.ToLower(c.TenantID), ObjectID: c.ObjectID}, nil
}

// VerifyAssertion checks a user's access token for Embedgate's API, with no
// call to Entra beyond its tenant's OpenID metadata and signing keys
// (cached, see tenantkeys.go): an RS256 signature by one of the tenant's
// keys, exp and nbf within five minutes of the Client's clock, an audience
// that is Embedgate's (its client id, api://<client id>, or app_id_uri), a
// user's token (scp), not an app's, and the tenant's issuer (v2.0, or v1.0
// where Entra publishes it). A refusal is an *AssertionError
// matching ErrAssertionExpired or ErrAssertionInvalid; an unreachable Entra
// is an *UnavailableError.
func (cl *Client) VerifyAssertion(ctx context.Context, raw string) (Assertion, error) {
	peek, err := PeekAssertion(raw)
	if err != nil {
		return Assertion{}, err
	}
	keys, err := cl.tenantKeys(ctx, peek.TenantID)
	if err != nil {
		return Assertion{}, err
	}
	var c assertionClaimsOf
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithLeeway(assertionSkew),
		jwt.WithTimeFunc(cl.now), jwt.WithExpirationRequired())
	_, err = parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return cl.signingKey(ctx, peek.TenantID, keys, kid)
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		exp := "its exp"
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return Assertion{}, &AssertionError{Kind: ErrAssertionExpired, Reason: "the assertion expired at " + exp + ": get a new access token for the user"}
	case errors.Is(err, errUnknownKey):
		return Assertion{}, assertionInvalid("the assertion is not signed by a key tenant %s publishes", peek.TenantID)
	case errors.Is(err, ErrUnavailable):
		return Assertion{}, err
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return Assertion{}, assertionInvalid("the assertion is not valid yet (nbf)")
	case err != nil:
		return Assertion{}, assertionInvalid("the assertion's signature or claims do not verify (%s)", jwtProblem(err))
	}
	aud, ok := cl.ourAudience(c.Audience)
	if !ok {
		return Assertion{}, assertionInvalid("audience %q is not Embedgate's API (want %s): the front end must ask Entra ID for a token for Embedgate's API",
			strings.Join(c.Audience, ","), strings.Join(cl.audiences(), " or "))
	}
	if strings.TrimSpace(c.Scope) == "" || strings.EqualFold(c.IDType, "app") {
		return Assertion{}, assertionInvalid("an application's token (no scp claim): the assertion must be a user's access token")
	}
	if !slices.Contains(keys.issuers, c.Issuer) {
		return Assertion{}, assertionInvalid("issuer %q is not tenant %s's", c.Issuer, peek.TenantID)
	}
	if c.ObjectID == "" {
		return Assertion{}, assertionInvalid("the assertion names no user (oid claim)")
	}
	return Assertion{TenantID: peek.TenantID, ObjectID: c.ObjectID, Audience: aud, Expires: c.ExpiresAt.Time}, nil
}

// audiences are the aud values of tokens for Embedgate's API: the client
// id and the Application ID URI (the default api://<client id>, and
// app_id_uri when set).
func (cl *Client) audiences() []string {
	out := []string{cl.cfg.ClientID, "api://" + cl.cfg.ClientID}
	if u := strings.TrimRight(cl.cfg.AppIDURI, "/"); u != "" && !slices.Contains(out, u) {
		out = append(out, u)
	}
	return out
}

// ourAudience returns the first of auds that is Embedgate's API.
func (cl *Client) ourAudience(auds []string) (string, bool) {
	ours := cl.audiences()
	for _, a := range auds {
		for _, o := range ours {
			if strings.EqualFold(strings.TrimRight(a, "/"), o) {
				return a, true
			}
		}
	}
	return "", false
}

// jwtProblem names what golang-jwt found wrong, in words safe to return
// (they never hold the token).
func jwtProblem(err error) string {
	for _, e := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenInvalidClaims} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "not a valid JWT"
}

// AssertionError is a user's assertion that Embedgate (or Entra, when it
// is exchanged) refused. Reason says why, in words safe to return to the
// caller: never the token.
type AssertionError struct {
	// Kind is ErrAssertionExpired or ErrAssertionInvalid.
	Kind error
	// Reason says what is wrong and what to do.
	Reason string
	// ErrorCodes are Entra's AADSTS codes, when Entra refused it.
	ErrorCodes []int
}

// Error says why.
func (e *AssertionError) Error() string { return "powerbi: user assertion refused: " + e.Reason }

// Is matches Kind.
func (e *AssertionError) Is(target error) bool { return target == e.Kind }

func assertionInvalid(format string, args ...any) *AssertionError {
	return &AssertionError{Kind: ErrAssertionInvalid, Reason: fmt.Sprintf(format, args...)}
}
