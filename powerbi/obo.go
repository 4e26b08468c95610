package powerbi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// OnBehalfOf exchanges a user's verified assertion (VerifyAssertion) for
// the user's access token for Power BI: the On-Behalf-Of flow ("Microsoft
// identity platform and OAuth 2.0 On-Behalf-Of flow"), made by MSAL with
// Embedgate's own credential. MSAL keeps the tokens per user (its cache is
// partitioned by a hash of the assertion), so that a user's token is only
// ever handed back for that user's assertion, and a repeated request within
// the token's life makes no call to Entra.
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
	ctx, cancel := context.WithTimeout(ctx, 3*cl.cfg.Timeout)
	defer cancel()
	var opts []confidential.AcquireOnBehalfOfOption
	if tenantID != "" && !strings.EqualFold(tenantID, cl.cfg.TenantID) {
		opts = append(opts, confidential.WithTenantID(tenantID))
	}
	ctx, span := cl.tracer.Start(ctx, spanEntraToken)
	ar, err := cl.cred.app.Load().client.AcquireTokenOnBehalfOf(ctx, assertion, []string{cl.cfg.scope}, opts...)
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
	}
	return classifyEntra(err, cl.cred.kind, cl.cred.path)
}
