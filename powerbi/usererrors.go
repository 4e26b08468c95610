package powerbi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The refusals of the user-owns-data path (VerifyAssertion, OnBehalfOf,
// ReportsAsUser), each matched by its typed error, so that the server maps
// them as it maps the others.
var (
	// ErrAssertionInvalid: the user's assertion is not a token Embedgate
	// accepts (not a JWT, not signed by the tenant's keys, another issuer,
	// another API's audience, an application's token), or Entra refused it
	// (AADSTS50013).
	ErrAssertionInvalid = errors.New("powerbi: user assertion invalid")
	// ErrAssertionExpired: the user's assertion has expired (or Entra said
	// so, AADSTS500133): the front end gets a new one.
	ErrAssertionExpired = errors.New("powerbi: user assertion expired")
	// ErrConsentRequired: the user (or an administrator) never consented to
	// Embedgate's app reading Power BI on the user's behalf (AADSTS65001).
	ErrConsentRequired = errors.New("powerbi: user consent required")
	// ErrInteractionRequired: a Conditional Access policy asks more of the
	// user's sign-in (multi-factor authentication, AADSTS50076, and the
	// like); UserSignInError.Claims is the claims challenge to sign in again
	// with.
	ErrInteractionRequired = errors.New("powerbi: user interaction required")
	// ErrUserNotAllowed: Power BI refused the user access to an item (401,
	// 403: no role in its workspace, no licence for it).
	ErrUserNotAllowed = errors.New("powerbi: the user may not use the item")
)

// UserSignInError is Entra refusing to exchange a user's assertion until
// the user does something: consent (ErrConsentRequired), or sign in again
// to meet a Conditional Access policy (ErrInteractionRequired, with the
// claims challenge).
type UserSignInError struct {
	// Kind is ErrConsentRequired or ErrInteractionRequired.
	Kind error
	// ErrorCodes are Entra's AADSTS codes.
	ErrorCodes []int
	// Claims is the claims challenge (JSON) to pass to the sign-in, for
	// ErrInteractionRequired.
	Claims string
	// Description is the first line of Entra's error_description.
	Description string
	// CorrelationID is Entra's correlation_id.
	CorrelationID string
}

// Error names the AADSTS codes.
func (e *UserSignInError) Error() string {
	what := "the user must consent to Embedgate's app using Power BI on their behalf"
	if e.Kind == ErrInteractionRequired {
		what = "the user must sign in again to meet a Conditional Access policy (claims challenge)"
	}
	return "powerbi: " + what + aadsts(e.ErrorCodes) + describe(e.Description)
}

// Is matches Kind.
func (e *UserSignInError) Is(target error) bool { return target == e.Kind }

// UserAccessError is Power BI refusing a signed-in user (401, 403) or not
// finding an item for them (404), on the user-owns-data path: the user's
// own rights decide, not Embedgate's service principal's. It matches
// ErrUserNotAllowed, or ErrNotFound for a 404; the Power BI answer stays
// reachable with errors.As(*APIError).
type UserAccessError struct {
	API *APIError
}

// Error names the item's operation, the status and Power BI's code.
func (e *UserAccessError) Error() string { return "powerbi: as the user: " + e.API.Error() }

// Is matches ErrUserNotAllowed (401, 403) or ErrNotFound (404).
func (e *UserAccessError) Is(target error) bool {
	switch target {
	case ErrUserNotAllowed:
		return e.API.Status == http.StatusUnauthorized || e.API.Status == http.StatusForbidden
	case ErrNotFound:
		return e.API.Status == http.StatusNotFound
	}
	return false
}

// Unwrap returns Power BI's answer.
func (e *UserAccessError) Unwrap() error { return e.API }

// aadsts is " (AADSTS65001 ...)" for codes, "" for none.
func aadsts(codes []int) string {
	if len(codes) == 0 {
		return ""
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = "AADSTS" + strconv.Itoa(c)
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// describe is ": description", "" for none.
func describe(d string) string {
	if d == "" {
		return ""
	}
	return fmt.Sprintf(": %s", d)
}
