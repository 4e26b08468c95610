package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// TestErrorStatus is the error table (ARCHITECTURE.md), row by row, through
// the one mapping: code, ErrorInfo reason and metadata, RetryInfo and Power
// BI's RequestId.
func TestErrorStatus(t *testing.T) {
	t.Parallel()
	const rid = "4e5160e4-c39e-4da4-a794-d295aecc2122"
	api := func(status int, code string) error {
		return &powerbi.APIError{Op: "GenerateToken", Status: status, Code: code, RequestID: rid}
	}
	tests := []struct {
		name       string
		err        error
		wantCode   codes.Code
		wantReason string
		wantRetry  time.Duration
		wantRID    bool
		wantMeta   map[string]string // ErrorInfo metadata besides pbi_request_id
		wantInMsg  string            // a fragment the message must hold
	}{
		{"unknown caller", &authz.Denial{Reason: authz.ErrUnknownCaller, Message: "caller not allowed"}, codes.PermissionDenied, ReasonCallerUnknown, 0, false, nil, ""},
		{"tenant not allowed", &authz.Denial{Reason: authz.ErrTenantNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonTenantNotAllowed, 0, false, nil, ""},
		{"report not allowed", &authz.Denial{Reason: authz.ErrReportNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonReportNotAllowed, 0, false, nil, ""},
		{"dashboard not allowed", &authz.Denial{Reason: authz.ErrDashboardNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonDashboardNotAllowed, 0, false, nil, ""},
		{"edit not allowed", &authz.Denial{Reason: authz.ErrEditNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonEditNotAllowed, 0, false, nil, ""},
		{"create not allowed", &authz.Denial{Reason: authz.ErrCreateNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonCreateNotAllowed, 0, false, nil, ""},
		{"malformed by policy's reading", &authz.Denial{Reason: authz.ErrInvalidRequest, Message: "m", Field: "report_ids"}, codes.InvalidArgument, ReasonInvalidRequest, 0, false, nil, ""},
		{"a dataset read outside the tenant", &authz.Denial{Reason: authz.ErrDatasetNotAllowed, Message: "reads a dataset", Dataset: "d"}, codes.PermissionDenied, ReasonDatasetNotAllowed, 0, false, nil, "reads a dataset"},
		{"an identity that does not fit the model", &authz.Denial{Reason: authz.ErrIdentityKind, Message: "Azure Analysis Services", Dataset: "d"}, codes.FailedPrecondition, ReasonIdentityKind, 0, false, nil, "Azure Analysis Services"},
		{"a blob for a dataset without single sign-on", &authz.Denial{Reason: authz.ErrSSONotApplicable, Message: "no single sign-on", Dataset: "d"}, codes.FailedPrecondition, ReasonSSONotApplicable, 0, false, nil, "no single sign-on"},
		{"over Power BI's 50 datasets", &powerbi.LimitError{What: "datasets", Count: 63}, codes.InvalidArgument, ReasonTokenLimit, 0, false, nil, "63 datasets"},
		{"no identity", errUnauthenticated, codes.Unauthenticated, ReasonNoIdentity, 0, false, nil, ""},
		{"caller over its rate", &rateLimitedError{retryAfter: 1500 * time.Millisecond}, codes.ResourceExhausted, ReasonRateLimited, 1500 * time.Millisecond, false, nil, ""},
		{"Power BI 429", &powerbi.ThrottledError{Op: "GenerateToken", RetryAfter: 30 * time.Second, RequestID: rid}, codes.ResourceExhausted, ReasonThrottled, 30 * time.Second, true, nil, ""},
		{"Power BI 403, the trial quota", &powerbi.APIError{Op: "GenerateToken", Status: 403, Code: "Forbidden", RequestID: rid, Quota: true},
			codes.ResourceExhausted, ReasonQuotaExceeded, 0, true, map[string]string{"pbi_error_code": "Forbidden"}, "capacity"},
		{"Power BI 403, anything else", api(403, "PowerBINotAuthorizedException"), codes.FailedPrecondition, ReasonPowerBIForbidden, 0, true,
			map[string]string{"pbi_error_code": "PowerBINotAuthorizedException"}, "permission"},
		{"Power BI 401, the tenant setting", &powerbi.APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: rid, ErrorInfo: "ServicePrincipalIsNotAllowedByTenantAdminSwitch"},
			codes.FailedPrecondition, ReasonPrincipalNotAllowed, 0, true,
			map[string]string{"pbi_error_code": "PowerBINotAuthorizedException", "pbi_error_info": "ServicePrincipalIsNotAllowedByTenantAdminSwitch"}, "Service principals can use Fabric APIs"},
		{"RLS not enforced", &powerbi.PreconditionError{Kind: powerbi.ErrRLSNotEnforced, DatasetID: "d1000000-0000-4000-8000-000000000009", ReportID: "r"},
			codes.FailedPrecondition, ReasonRLSNotEnforced, 0, false, nil, "dataset d1000000-0000-4000-8000-000000000009 enforces no row-level security"},
		{"Power BI 404", api(404, "PowerBIEntityNotFound"), codes.NotFound, ReasonItemNotFound, 0, true, nil, ""},
		{"Power BI 400", api(400, "InvalidRequest"), codes.FailedPrecondition, ReasonPowerBIRejected, 0, true, nil, ""},
		{"Power BI 401", api(401, "PowerBINotAuthorizedException"), codes.FailedPrecondition, ReasonPowerBINoAccess, 0, true, nil, "member of the tenant's workspace"},
		{"RLS identity required", &powerbi.PreconditionError{Kind: powerbi.ErrIdentityRequired, DatasetID: "d"}, codes.FailedPrecondition, ReasonIdentityMismatch, 0, false, nil, ""},
		{"RLS roles required", &powerbi.PreconditionError{Kind: powerbi.ErrRolesRequired, DatasetID: "d"}, codes.FailedPrecondition, ReasonIdentityMismatch, 0, false, nil, ""},
		{"unsupported item", &powerbi.UnsupportedError{ReportID: "r", Reason: "request it alone"}, codes.FailedPrecondition, ReasonUnsupported, 0, false, nil, ""},
		{"Entra rejects the secret", &powerbi.CredentialError{Status: 401, Code: "invalid_client", ErrorCodes: []int{7000215}}, codes.Internal, ReasonCredentialRejected, 0, false, nil, "Power BI credential"},
		{"Entra refuses a data source's token", &powerbi.CredentialError{Status: 400, Code: "invalid_resource", ErrorCodes: []int{500011}, Resource: "https://database.windows.net/"},
			codes.Internal, ReasonCredentialRejected, 0, false, nil, "single sign-on data source"},
		{"Power BI 503", &powerbi.UnavailableError{Op: "GenerateToken", Status: 503, RequestID: rid}, codes.Unavailable, ReasonUpstreamDown, 0, true, nil, ""},
		{"Entra token keeps expiring", api(403, "TokenExpired"), codes.Unavailable, ReasonUpstreamDown, 0, true, nil, ""},
		{"caller's deadline", fmt.Errorf("powerbi: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", 0, false, nil, ""},
		{"caller canceled", fmt.Errorf("powerbi: %w", context.Canceled), codes.Canceled, "", 0, false, nil, ""},
		{"caller without user_owns_data", &authz.Denial{Reason: authz.ErrUserEmbeddingNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonUserEmbedding, 0, false, nil, ""},
		{"user assertion expired", &powerbi.AssertionError{Kind: powerbi.ErrAssertionExpired, Reason: "the assertion expired at T"}, codes.Unauthenticated, ReasonAssertionExpired, 0, false, nil, "expired at T"},
		{"user assertion for another API", &powerbi.AssertionError{Kind: powerbi.ErrAssertionInvalid, Reason: `audience "x" is not Embedgate's API`, ErrorCodes: []int{50013}},
			codes.Unauthenticated, ReasonAssertionInvalid, 0, false, map[string]string{"aadsts": "50013"}, `audience "x"`},
		{"user never consented", &powerbi.UserSignInError{Kind: powerbi.ErrConsentRequired, ErrorCodes: []int{65001}}, codes.FailedPrecondition, ReasonConsentRequired, 0, false,
			map[string]string{"aadsts": "65001"}, "consent"},
		{"MFA required", &powerbi.UserSignInError{Kind: powerbi.ErrInteractionRequired, ErrorCodes: []int{50076}, Claims: `{"access_token":{"polids":{"essential":true,"values":["p"]}}}`},
			codes.Unauthenticated, ReasonInteraction, 0, false, map[string]string{"aadsts": "50076", "claims": `{"access_token":{"polids":{"essential":true,"values":["p"]}}}`}, "claims challenge"},
		{"user refused by Power BI", &powerbi.UserAccessError{API: &powerbi.APIError{Op: "GetReport", Status: 401, Code: "PowerBINotAuthorizedException", RequestID: rid}},
			codes.PermissionDenied, ReasonUserNotAllowed, 0, true, map[string]string{"pbi_error_code": "PowerBINotAuthorizedException"}, "the user"},
		{"no report the user sees", &powerbi.UserAccessError{API: api(404, "PowerBIEntityNotFound").(*powerbi.APIError)}, codes.NotFound, ReasonItemNotFound, 0, true, nil, "the user can see"},
		{"anything else", errors.New("boom: internal detail"), codes.Internal, ReasonInternal, 0, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := errorStatus(tt.err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v, want %v", st.Code(), tt.wantCode)
			}
			if strings.Contains(st.Message(), "internal detail") {
				t.Errorf("the message leaks the error: %q", st.Message())
			}
			var info *errdetails.ErrorInfo
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d
				}
			}
			if info.GetReason() != tt.wantReason {
				t.Errorf("reason = %q, want %q", info.GetReason(), tt.wantReason)
			}
			if tt.wantReason != "" && info.GetDomain() != errorDomain {
				t.Errorf("domain = %q", info.GetDomain())
			}
			if got := retry.GetRetryDelay().AsDuration(); got != tt.wantRetry {
				t.Errorf("retry = %v, want %v", got, tt.wantRetry)
			}
			if got := info.GetMetadata()["pbi_request_id"]; (got == rid) != tt.wantRID {
				t.Errorf("pbi_request_id = %q, want it: %v", got, tt.wantRID)
			}
			for k, v := range tt.wantMeta {
				if got := info.GetMetadata()[k]; got != v {
					t.Errorf("metadata %s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(st.Message(), tt.wantInMsg) {
				t.Errorf("message %q lacks %q", st.Message(), tt.wantInMsg)
			}
		})
	}
}
