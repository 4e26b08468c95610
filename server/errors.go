package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// errorDomain is the ErrorInfo domain of every error Embedgate returns.
const errorDomain = "embedgate"

// Reasons (google.rpc.ErrorInfo.reason) callers can branch on: the names of
// the embedgate.v1.Reason values (proto/embedgate/v1/reason.proto), which
// document what a caller should do for each. Add, never rename.
var (
	ReasonInvalidRequest      = embedgatev1.Reason_INVALID_REQUEST.String()
	ReasonNoIdentity          = embedgatev1.Reason_NO_CALLER_IDENTITY.String()
	ReasonCallerUnknown       = embedgatev1.Reason_CALLER_NOT_IN_POLICY.String()
	ReasonTenantNotAllowed    = embedgatev1.Reason_TENANT_NOT_ALLOWED.String()
	ReasonReportNotAllowed    = embedgatev1.Reason_REPORT_NOT_ALLOWED.String()
	ReasonEditNotAllowed      = embedgatev1.Reason_EDIT_NOT_ALLOWED.String()
	ReasonItemNotFound        = embedgatev1.Reason_POWERBI_ITEM_NOT_FOUND.String()
	ReasonIdentityMismatch    = embedgatev1.Reason_RLS_IDENTITY_MISMATCH.String()
	ReasonPowerBIRejected     = embedgatev1.Reason_POWERBI_REJECTED_REQUEST.String()
	ReasonPowerBINoAccess     = embedgatev1.Reason_POWERBI_NOT_AUTHORIZED.String()
	ReasonUnsupported         = embedgatev1.Reason_UNSUPPORTED_ITEM.String()
	ReasonThrottled           = embedgatev1.Reason_POWERBI_THROTTLED.String()
	ReasonQuotaExceeded       = embedgatev1.Reason_POWERBI_QUOTA_EXCEEDED.String()
	ReasonRateLimited         = embedgatev1.Reason_CALLER_RATE_LIMITED.String()
	ReasonDashboardNotAllowed = embedgatev1.Reason_DASHBOARD_NOT_ALLOWED.String()
	ReasonCreateNotAllowed    = embedgatev1.Reason_CREATE_NOT_ALLOWED.String()
	ReasonUpstreamDown        = embedgatev1.Reason_UPSTREAM_UNAVAILABLE.String()
	ReasonCredentialRejected  = embedgatev1.Reason_CREDENTIAL_REJECTED.String()
	ReasonInternal            = embedgatev1.Reason_INTERNAL.String()
	ReasonRLSNotEnforced      = embedgatev1.Reason_RLS_NOT_ENFORCED.String()
	ReasonPowerBIForbidden    = embedgatev1.Reason_POWERBI_FORBIDDEN.String()
	ReasonPrincipalNotAllowed = embedgatev1.Reason_POWERBI_PRINCIPAL_NOT_ALLOWED.String()
	ReasonOverloaded          = embedgatev1.Reason_OVERLOADED.String()
	ReasonDatasetNotAllowed   = embedgatev1.Reason_DATASET_NOT_ALLOWED.String()
	ReasonIdentityKind        = embedgatev1.Reason_IDENTITY_KIND_MISMATCH.String()
	ReasonSSONotApplicable    = embedgatev1.Reason_SSO_NOT_APPLICABLE.String()
	ReasonTokenLimit          = embedgatev1.Reason_TOKEN_LIMIT_EXCEEDED.String()
	ReasonExplainNotAllowed   = embedgatev1.Reason_EXPLAIN_NOT_ALLOWED.String()
	ReasonUserNotAllowed      = embedgatev1.Reason_USER_NOT_ALLOWED.String()
	ReasonUserEmbedding       = embedgatev1.Reason_USER_EMBEDDING_NOT_ALLOWED.String()
	ReasonAssertionExpired    = embedgatev1.Reason_USER_ASSERTION_EXPIRED.String()
	ReasonAssertionInvalid    = embedgatev1.Reason_USER_ASSERTION_INVALID.String()
	ReasonConsentRequired     = embedgatev1.Reason_USER_CONSENT_REQUIRED.String()
	ReasonInteraction         = embedgatev1.Reason_USER_INTERACTION_REQUIRED.String()
)

// errorStatus is the one place where errors become gRPC statuses (the error
// table in ARCHITECTURE.md). Messages are short, actionable and safe to show
// a caller: upstream bodies are logged, never echoed; Power BI's RequestId
// (pbi_request_id), its error code (pbi_error_code) and its
// X-PowerBI-Error-Info header (pbi_error_info) travel in the ErrorInfo
// metadata, so support can find the call.
func errorStatus(err error) *status.Status {
	if s, ok := status.FromError(err); ok {
		return s
	}
	var (
		ve        *protovalidate.ValidationError
		denial    *authz.Denial
		throttled *powerbi.ThrottledError
		limited   *rateLimitedError
		unsup     *powerbi.UnsupportedError
		pre       *powerbi.PreconditionError
		api       *powerbi.APIError
		limit     *powerbi.LimitError
		cred      *powerbi.CredentialError
		assertion *powerbi.AssertionError
		signIn    *powerbi.UserSignInError
		asUser    *powerbi.UserAccessError
	)
	meta := map[string]string{}
	if id := powerbi.RequestIDOf(err); id != "" {
		meta["pbi_request_id"] = id
	}
	if errors.As(err, &api) {
		if api.Code != "" {
			meta["pbi_error_code"] = api.Code
		}
		if api.ErrorInfo != "" {
			meta["pbi_error_info"] = api.ErrorInfo
		}
	}
	var bad *malformedError
	switch {
	case errors.As(err, &bad):
		br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: bad.field, Description: bad.msg}}}
		return withDetails(codes.InvalidArgument, "the request is not a valid message: "+bad.msg, ReasonInvalidRequest, meta, br)
	case errors.As(err, &ve):
		br := badRequest(ve)
		return withDetails(codes.InvalidArgument, violationsMessage(br), ReasonInvalidRequest, meta, br)
	case errors.Is(err, errUnauthenticated):
		return withDetails(codes.Unauthenticated, err.Error(), ReasonNoIdentity, meta)
	case errors.As(err, &denial):
		return denialStatus(denial, meta)
	case errors.Is(err, errExplainNotAllowed):
		return withDetails(codes.PermissionDenied, err.Error(), ReasonExplainNotAllowed, meta)
	case errors.As(err, &assertion):
		meta = withAADSTS(meta, assertion.ErrorCodes)
		if assertion.Kind == powerbi.ErrAssertionExpired {
			return withDetails(codes.Unauthenticated, assertion.Reason, ReasonAssertionExpired, meta)
		}
		return withDetails(codes.Unauthenticated, assertion.Reason, ReasonAssertionInvalid, meta)
	case errors.As(err, &signIn):
		meta = withAADSTS(meta, signIn.ErrorCodes)
		if signIn.Kind == powerbi.ErrConsentRequired {
			return withDetails(codes.FailedPrecondition, "the user has not consented to Embedgate's app using Power BI on their behalf: sign the user in interactively with consent for Embedgate's API (or have an administrator consent for the organization), then ask again with the new token",
				ReasonConsentRequired, meta)
		}
		if signIn.Claims != "" {
			meta["claims"] = signIn.Claims
		}
		return withDetails(codes.Unauthenticated, "a Conditional Access policy requires more of the user's sign-in (such as multi-factor authentication): sign the user in again with the claims challenge in the ErrorInfo metadata \"claims\", then ask again with the new token",
			ReasonInteraction, meta)
	case errors.Is(err, powerbi.ErrUserNotAllowed):
		return withDetails(codes.PermissionDenied, "Power BI does not let the user open a requested report (no role in its workspace, or no licence for it)", ReasonUserNotAllowed, meta)
	case errors.As(err, &asUser) && errors.Is(err, powerbi.ErrNotFound):
		return withDetails(codes.NotFound, "Power BI has no such report in the workspace, or none the user can see", ReasonItemNotFound, meta)
	case errors.Is(err, errOverloaded):
		return withDetails(codes.ResourceExhausted, err.Error(), ReasonOverloaded, meta, retryInfo(overloadRetryAfter))
	case errors.Is(err, powerbi.ErrOverloaded):
		return withDetails(codes.ResourceExhausted, "Embedgate is at its limit of requests in flight to Power BI; retry shortly", ReasonOverloaded, meta, retryInfo(overloadRetryAfter))
	case errors.As(err, &limited):
		return withDetails(codes.ResourceExhausted, limited.Error(), ReasonRateLimited, meta, retryInfo(limited.retryAfter))
	case errors.As(err, &throttled):
		return withDetails(codes.ResourceExhausted, "Power BI is throttling requests; retry later", ReasonThrottled, meta,
			retryInfo(throttled.RetryAfter))
	case errors.As(err, &limit):
		// The caller asks for fewer reports in one token.
		return withDetails(codes.InvalidArgument, fmt.Sprintf("the token would carry %d %s (counting the datasets its reports read); Power BI allows at most 50 per token: ask for fewer reports", limit.Count, limit.What),
			ReasonTokenLimit, meta, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "report_ids", Description: limit.Error()}}})
	case errors.Is(err, powerbi.ErrQuotaExceeded):
		return withDetails(codes.ResourceExhausted, "the tenant's workspace is on shared capacity and Embedgate's service principal has used up its embed trial tokens; the platform team must assign the workspace to a capacity",
			ReasonQuotaExceeded, meta)
	case errors.Is(err, powerbi.ErrRLSNotEnforced) && errors.As(err, &pre):
		return withDetails(codes.FailedPrecondition, fmt.Sprintf("dataset %s enforces no row-level security, and the tenant's policy expects it to: nothing was minted; the platform team fixes the model's roles, or lists the dataset under rls.without_rls if that is intended", pre.DatasetID),
			ReasonRLSNotEnforced, meta)
	case errors.Is(err, powerbi.ErrIdentityRequired), errors.Is(err, powerbi.ErrRolesRequired):
		return withDetails(codes.FailedPrecondition, "the tenant's policy does not satisfy the dataset's row-level security", ReasonIdentityMismatch, meta)
	case errors.Is(err, powerbi.ErrNotFound):
		return withDetails(codes.NotFound, "Power BI has no such item in the tenant's workspace", ReasonItemNotFound, meta)
	case errors.Is(err, powerbi.ErrBadRequest):
		return withDetails(codes.FailedPrecondition, "Power BI refused the request as configured for this tenant", ReasonPowerBIRejected, meta)
	case errors.Is(err, powerbi.ErrPrincipalNotAllowed):
		return withDetails(codes.FailedPrecondition, `the Power BI tenant setting "Service principals can use Fabric APIs" does not allow Embedgate's service principal; a Power BI administrator must enable it for the principal's security group`,
			ReasonPrincipalNotAllowed, meta)
	case errors.Is(err, powerbi.ErrNotAuthorized):
		return withDetails(codes.FailedPrecondition, "Embedgate's service principal (or profile) is not a member of the tenant's workspace; the platform team must add it as Member or Admin", ReasonPowerBINoAccess, meta)
	case errors.Is(err, powerbi.ErrForbidden):
		return withDetails(codes.FailedPrecondition, "Power BI refused Embedgate's service principal (403): it lacks a permission on the tenant's workspace or item; the platform team must fix its access", ReasonPowerBIForbidden, meta)
	case errors.As(err, &unsup):
		// The reason names only ids the caller sent and what to do instead.
		return withDetails(codes.FailedPrecondition, unsup.Reason, ReasonUnsupported, meta)
	case errors.Is(err, powerbi.ErrUnsupported):
		return withDetails(codes.FailedPrecondition, "this kind of item cannot be embedded", ReasonUnsupported, meta)
	case errors.As(err, &cred) && cred.Resource != "":
		return withDetails(codes.Internal, "Entra ID refused Embedgate's service principal a token for a single sign-on data source; operators have been alerted", ReasonCredentialRejected, meta)
	case errors.Is(err, powerbi.ErrCredential):
		return withDetails(codes.Internal, "Embedgate's Power BI credential was rejected; operators have been alerted", ReasonCredentialRejected, meta)
	case errors.Is(err, powerbi.ErrUnavailable), errors.Is(err, powerbi.ErrTokenExpired):
		return withDetails(codes.Unavailable, "Power BI or Entra ID is unavailable; retry with backoff", ReasonUpstreamDown, meta)
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "canceled")
	default:
		return withDetails(codes.Internal, "internal error", ReasonInternal, meta)
	}
}

// malformedError is a request the codec could not decode (see codec).
type malformedError struct {
	msg   string // the decoder's words: no byte of the request
	field string // the field at fault, "" when the decoder named none
}

func (e *malformedError) Error() string { return "malformed request: " + e.msg }

// badRequest lists each violated field for the caller.
func badRequest(ve *protovalidate.ValidationError) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, v := range ve.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	return br
}

func denialStatus(d *authz.Denial, meta map[string]string) *status.Status {
	switch {
	case errors.Is(d, authz.ErrInvalidRequest):
		var more []protoadapt.MessageV1
		if d.Field != "" {
			more = append(more, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: d.Field, Description: d.Message}}})
		}
		return withDetails(codes.InvalidArgument, d.Message, ReasonInvalidRequest, meta, more...)
	case errors.Is(d, authz.ErrUnknownCaller):
		return withDetails(codes.PermissionDenied, d.Message, ReasonCallerUnknown, meta)
	case errors.Is(d, authz.ErrTenantNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonTenantNotAllowed, meta)
	case errors.Is(d, authz.ErrReportNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonReportNotAllowed, meta)
	case errors.Is(d, authz.ErrEditNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonEditNotAllowed, meta)
	case errors.Is(d, authz.ErrDashboardNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonDashboardNotAllowed, meta)
	case errors.Is(d, authz.ErrCreateNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonCreateNotAllowed, meta)
	case errors.Is(d, authz.ErrDatasetNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonDatasetNotAllowed, meta)
	case errors.Is(d, authz.ErrIdentityKind):
		return withDetails(codes.FailedPrecondition, d.Message, ReasonIdentityKind, meta)
	case errors.Is(d, authz.ErrSSONotApplicable):
		return withDetails(codes.FailedPrecondition, d.Message, ReasonSSONotApplicable, meta)
	case errors.Is(d, authz.ErrUserEmbeddingNotAllowed):
		return withDetails(codes.PermissionDenied, d.Message, ReasonUserEmbedding, meta)
	default:
		return withDetails(codes.PermissionDenied, "permission denied", ReasonTenantNotAllowed, meta)
	}
}

func withDetails(code codes.Code, msg, reason string, meta map[string]string, more ...protoadapt.MessageV1) *status.Status {
	if len(meta) == 0 {
		meta = nil
	}
	s := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}}, more...)
	if ds, err := s.WithDetails(details...); err == nil {
		return ds
	}
	return s
}

// violationsMessage says in one line what the BadRequest lists, for people
// reading grpcurl output and logs.
func violationsMessage(br *errdetails.BadRequest) string {
	parts := make([]string, 0, len(br.GetFieldViolations()))
	for _, v := range br.GetFieldViolations() {
		if v.GetField() == "" {
			parts = append(parts, v.GetDescription())
			continue
		}
		parts = append(parts, v.GetField()+": "+v.GetDescription())
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// retryInfo tells a caller how long to wait before retrying.
func retryInfo(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

// withAADSTS adds Entra's AADSTS codes to the ErrorInfo metadata (aadsts,
// space-separated), for support cases.
func withAADSTS(meta map[string]string, codes []int) map[string]string {
	if len(codes) == 0 {
		return meta
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	meta["aadsts"] = strings.Join(parts, " ")
	return meta
}
