package powerbi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors classify every error this package returns, so that the server can
// map them to gRPC codes in one switch of errors.Is checks without knowing the
// concrete types. Each typed error below matches exactly one (or, for 5xx, two)
// of these through its Is method; the concrete types carry the details (Power BI
// RequestId, Retry-After, AADSTS codes) for logs and RetryInfo.
var (
	// ErrNotFound: Power BI answered 404 (PowerBIEntityNotFound): the workspace,
	// report, dashboard, tile or dataset is unknown or invisible to the service
	// principal.
	ErrNotFound = errors.New("powerbi: not found")
	// ErrNotAuthorized: Power BI answered 401 (PowerBINotAuthorizedException):
	// the service principal (or its profile) is not a member of the workspace,
	// or the workspace id is wrong.
	ErrNotAuthorized = errors.New("powerbi: not authorized")
	// ErrPrincipalNotAllowed: Power BI answered 401 with X-PowerBI-Error-Info
	// ServicePrincipalIsNotAllowedByTenantAdminSwitch: the tenant setting that
	// lets service principals use the APIs is off, or excludes this principal's
	// security group.
	ErrPrincipalNotAllowed = errors.New("powerbi: service principals are not allowed by the tenant setting")
	// ErrTokenExpired: Power BI kept rejecting the Entra token as expired (403
	// TokenExpired) even after one retry with a freshly acquired token.
	ErrTokenExpired = errors.New("powerbi: entra token expired")
	// ErrBadRequest: Power BI answered 400 (InvalidRequest), e.g. its own RLS
	// checks rejected the identities.
	ErrBadRequest = errors.New("powerbi: bad request")
	// ErrQuotaExceeded: Power BI refused to mint (403) because the principal
	// used up the embed trial tokens of shared capacity ("The user has exceeded
	// the amount of embed token that can be generated on a shared capacity",
	// Troubleshoot REST APIs): told apart from other 403s by its message or by
	// availableFeatures(embedTrial) reporting 100% usage.
	ErrQuotaExceeded = errors.New("powerbi: embed trial token quota exceeded")
	// ErrForbidden: Power BI answered 403 for any other reason than an expired
	// Entra token or the quota: the principal is not a member or admin of the
	// workspace, or lacks a permission on the item (Troubleshoot REST APIs).
	// APIError.Code carries Power BI's code.
	ErrForbidden = errors.New("powerbi: forbidden")
	// ErrThrottled: Power BI answered 429; see ThrottledError.RetryAfter.
	ErrThrottled = errors.New("powerbi: throttled")
	// ErrOverloaded: Config.MaxConcurrency requests were already in flight
	// to the upstream host; this one was not sent.
	ErrOverloaded = errors.New("powerbi: too many requests in flight upstream")
	// ErrUnavailable: Entra or Power BI could not be reached, timed out, or
	// answered 5xx (after the retries this package makes).
	ErrUnavailable = errors.New("powerbi: upstream unavailable")
	// ErrCredential: Entra rejected the service principal (bad secret, unknown
	// app or tenant, bad certificate or assertion) or its credential file could
	// not be used. Operators must act; callers cannot.
	ErrCredential = errors.New("powerbi: service principal credential rejected")
	// ErrIdentityRequired: a dataset of the request requires an effective
	// identity (isEffectiveIdentityRequired) and the request has none (or one
	// without a username), or a paginated report was asked for with an
	// identity without a username. Raised before GenerateToken is called.
	ErrIdentityRequired = errors.New("powerbi: effective identity required")
	// ErrRLSNotEnforced: the request carries an RLS identity (the tenant has
	// row-level security) and a dataset, per Power BI, enforces none
	// (isEffectiveIdentityRequired false), and the policy does not say that this
	// dataset or report carries no RLS (Identity.WithoutRLS). Raised before
	// GenerateToken is called: minting would show every row.
	ErrRLSNotEnforced = errors.New("powerbi: dataset enforces no row-level security")
	// ErrRolesRequired: a dataset requires roles in the effective identity
	// (isEffectiveIdentityRolesRequired) and the identity has none. Raised before
	// GenerateToken is called.
	ErrRolesRequired = errors.New("powerbi: effective identity roles required")
	// ErrUnsupported: the request needs something this gateway does not do:
	// a tile whose datasets need more than one identity (V1 tokens other
	// than a dashboard's carry one), identity blobs in datasourceIdentities
	// for a dashboard or tile (only V2 carries them), or a service principal
	// whose Entra token has no object id.
	ErrUnsupported = errors.New("powerbi: unsupported")
	// ErrInvalidRequest: the TokenRequest itself is malformed (no workspace,
	// no reports, no dashboard, negative lifetime, a dataset read by another
	// without a policy decision). The server validates requests first, so
	// this signals a programming error.
	ErrInvalidRequest = errors.New("powerbi: invalid token request")
	// ErrTokenLimit: the token would exceed one of Power BI's limits for a
	// V2 token, 50 reports, 50 datasets (counting the datasets that
	// composite models and paginated reports read) and 50 target
	// workspaces; see LimitError. Raised before GenerateToken is called.
	ErrTokenLimit = errors.New("powerbi: token over Power BI's limits")
)

// LimitError names the limit of a V2 token a request would exceed.
type LimitError struct {
	// What is "reports", "datasets" or "target workspaces".
	What string
	// Count is how many the token would carry.
	Count int
}

// Error names the limit.
func (e *LimitError) Error() string {
	return fmt.Sprintf("powerbi: the token would carry %d %s; Power BI allows at most %d per token", e.Count, e.What, maxItems)
}

// Is matches ErrTokenLimit.
func (e *LimitError) Is(target error) bool { return target == ErrTokenLimit }

// APIError is a non-2xx answer of the Power BI REST API. It keeps the RequestId
// Microsoft support asks for, and the error code from either body shape
// ({"error":{"code","message"}} or {"error":{"code","pbi.error":{...}}}).
type APIError struct {
	Op        string // operation: GetReport, GetDataset, GetDashboard, GetTiles, GetTile, GenerateToken (V2), GenerateReportToken, GenerateDashboardToken, GenerateTileToken
	Status    int    // HTTP status
	Code      string // Power BI error code, e.g. PowerBIEntityNotFound
	Message   string // Power BI error message (may be empty)
	RequestID string // Power BI RequestId response header
	// ErrorInfo is the X-PowerBI-Error-Info response header, which names some
	// causes (ServicePrincipalIsNotAllowedByTenantAdminSwitch).
	ErrorInfo string
	// Quota is set on a 403 found to be the embed trial quota (see do).
	Quota bool
}

// errorInfoPrincipalSwitch is Power BI's X-PowerBI-Error-Info when the tenant
// setting blocks service principals.
const errorInfoPrincipalSwitch = "ServicePrincipalIsNotAllowedByTenantAdminSwitch"

// Error quotes the RequestId so that a log line is enough for a support ticket.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "powerbi: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (RequestId " + e.RequestID + ")")
	}
	return b.String()
}

// Is classifies the error by status, code and X-PowerBI-Error-Info; see the
// Err* sentinels. Each APIError matches exactly one of them (a 5xx also
// ErrUnavailable through UnavailableError).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrNotAuthorized:
		return e.Status == http.StatusUnauthorized && !e.principalSwitch()
	case ErrPrincipalNotAllowed:
		return e.Status == http.StatusUnauthorized && e.principalSwitch()
	case ErrTokenExpired:
		return e.tokenExpired()
	case ErrQuotaExceeded:
		return e.Status == http.StatusForbidden && e.Quota
	case ErrForbidden:
		return e.Status == http.StatusForbidden && !e.tokenExpired() && !e.Quota
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}

func (e *APIError) principalSwitch() bool {
	return strings.EqualFold(strings.TrimSpace(e.ErrorInfo), errorInfoPrincipalSwitch)
}

// refusesToken reports whether Power BI refused the Entra token the call was
// made with, so that a fresh one may succeed: 401, or a 403 (an expired token,
// a principal whose membership changed since the token was issued).
func (e *APIError) refusesToken() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// quotaMessage reports whether a 403's text names the trial quota.
func (e *APIError) quotaMessage() bool {
	m := strings.ToLower(e.Code + " " + e.Message)
	return strings.Contains(m, "quota") || (strings.Contains(m, "exceeded") && strings.Contains(m, "embed token"))
}

// NotFound reports whether Power BI said the item does not exist (404).
func (e *APIError) NotFound() bool { return e.Is(ErrNotFound) }

// NotAuthorized reports whether Power BI refused the service principal (401).
func (e *APIError) NotAuthorized() bool { return e.Is(ErrNotAuthorized) }

func (e *APIError) tokenExpired() bool {
	return e.Status == http.StatusForbidden && strings.EqualFold(e.Code, "TokenExpired")
}

// ThrottledError is a Power BI 429. It is never retried here: the caller gets
// RetryAfter so that the server can pass it on as RetryInfo.
type ThrottledError struct {
	Op         string
	RetryAfter time.Duration // from Retry-After (seconds or HTTP date); 30s when absent
	RequestID  string
}

// Error includes the delay Power BI asked for.
func (e *ThrottledError) Error() string {
	s := fmt.Sprintf("powerbi: %s: throttled (HTTP 429), retry after %s", e.Op, e.RetryAfter)
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	return s
}

// Is matches ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// CredentialError means Entra ID refused to issue a token to the service
// principal, or the credential file could not be turned into a credential. It
// carries what an operator needs (AADSTS codes, the OAuth error, Entra's
// correlation id) and never the secret, key or assertion.
type CredentialError struct {
	Status        int    // HTTP status from Entra; 0 if Entra was not reached
	Code          string // OAuth error, e.g. invalid_client
	ErrorCodes    []int  // AADSTS codes, e.g. 7000215
	Description   string // first line of error_description, or the local cause
	CorrelationID string // Entra correlation_id
	// Hint says what the operator does about it (for the AADSTS codes a
	// service principal most often meets); "" when there is nothing to add.
	Hint string
	// Resource is the data source resource (audience) of a refused identity
	// blob (single sign-on); "" when Entra refused the token for Power BI.
	Resource string
}

// Error names the AADSTS codes operators look up; it never holds the credential.
func (e *CredentialError) Error() string {
	var b strings.Builder
	b.WriteString("powerbi: entra rejected the service principal")
	if e.Resource != "" {
		b.WriteString(" for data source resource " + e.Resource)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	for _, c := range e.ErrorCodes {
		b.WriteString(" AADSTS" + strconv.Itoa(c))
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.CorrelationID != "" {
		b.WriteString(" (correlation id " + e.CorrelationID + ")")
	}
	if e.Hint != "" {
		b.WriteString(". " + e.Hint)
	}
	return b.String()
}

// Is matches ErrCredential.
func (e *CredentialError) Is(target error) bool { return target == ErrCredential }

// UnavailableError means Entra or Power BI could not be used right now: a
// network error, a timeout, or a 5xx after retries. Err is the cause (an
// *APIError for a Power BI 5xx, so its RequestId stays reachable via errors.As).
type UnavailableError struct {
	Op        string
	Status    int // HTTP status, 0 for network errors and timeouts
	RequestID string
	Err       error
}

// Error keeps the cause for logs; callers only need errors.Is(err, ErrUnavailable).
func (e *UnavailableError) Error() string {
	s := "powerbi: " + e.Op + ": upstream unavailable"
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// PreconditionError is raised before calling GenerateToken when the request
// and a dataset's RLS flags disagree. Kind is ErrIdentityRequired,
// ErrRolesRequired or ErrRLSNotEnforced.
type PreconditionError struct {
	Kind      error
	DatasetID string // "" for a paginated report
	ReportID  string // the report on the dataset (for a dashboard, of its first tile on it); "" if none
}

// Error names the report and dataset whose RLS rules the request cannot meet.
func (e *PreconditionError) Error() string {
	what := "an effective identity"
	switch e.Kind {
	case ErrRolesRequired:
		what = "roles in the effective identity"
	case ErrRLSNotEnforced:
		what = "no effective identity: it enforces no row-level security, and the tenant's policy does not list it (or its report) under rls.without_rls"
	}
	var subject string
	switch {
	case e.DatasetID == "":
		subject = "report " + e.ReportID
	case e.ReportID == "":
		subject = "dataset " + e.DatasetID
	default:
		subject = "dataset " + e.DatasetID + " of report " + e.ReportID
	}
	return fmt.Sprintf("powerbi: %s requires %s", subject, what)
}

// Is matches e.Kind.
func (e *PreconditionError) Is(target error) bool { return target == e.Kind }

// UnsupportedError names the report (for a tile, the tile's report; "" if
// none) this gateway cannot mint a token for and why.
type UnsupportedError struct {
	ReportID string
	Reason   string
}

// Error names the report and what is missing.
func (e *UnsupportedError) Error() string {
	if e.ReportID == "" {
		return "powerbi: unsupported: " + e.Reason
	}
	return fmt.Sprintf("powerbi: report %s: unsupported: %s", e.ReportID, e.Reason)
}

// Is matches ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// RequestIDOf returns the Power BI RequestId carried by err, or "" if none.
// Handy for logs and audit records without a type switch.
func RequestIDOf(err error) string {
	var a *APIError
	if errors.As(err, &a) {
		return a.RequestID
	}
	var t *ThrottledError
	if errors.As(err, &t) {
		return t.RequestID
	}
	var u *UnavailableError
	if errors.As(err, &u) {
		return u.RequestID
	}
	return ""
}

// invalidRequest wraps ErrInvalidRequest with a reason.
func invalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
