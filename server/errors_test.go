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

// TestErrorStatus is the DESIGN.md error table, row by row, through the one
// mapping: code, ErrorInfo reason, RetryInfo and Power BI's RequestId.
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
	}{
		{"unknown caller", &authz.Denial{Reason: authz.ErrUnknownCaller, Message: "caller not allowed"}, codes.PermissionDenied, ReasonCallerUnknown, 0, false},
		{"tenant not allowed", &authz.Denial{Reason: authz.ErrTenantNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonTenantNotAllowed, 0, false},
		{"report not allowed", &authz.Denial{Reason: authz.ErrReportNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonReportNotAllowed, 0, false},
		{"dashboard not allowed", &authz.Denial{Reason: authz.ErrDashboardNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonDashboardNotAllowed, 0, false},
		{"edit not allowed", &authz.Denial{Reason: authz.ErrEditNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonEditNotAllowed, 0, false},
		{"create not allowed", &authz.Denial{Reason: authz.ErrCreateNotAllowed, Message: "m"}, codes.PermissionDenied, ReasonCreateNotAllowed, 0, false},
		{"malformed by policy's reading", &authz.Denial{Reason: authz.ErrInvalidRequest, Message: "m", Field: "report_ids"}, codes.InvalidArgument, ReasonInvalidRequest, 0, false},
		{"no identity", errUnauthenticated, codes.Unauthenticated, ReasonNoIdentity, 0, false},
		{"caller over its rate", &rateLimitedError{retryAfter: 1500 * time.Millisecond}, codes.ResourceExhausted, ReasonRateLimited, 1500 * time.Millisecond, false},
		{"Power BI 429", &powerbi.ThrottledError{Op: "GenerateToken", RetryAfter: 30 * time.Second, RequestID: rid}, codes.ResourceExhausted, ReasonThrottled, 30 * time.Second, true},
		{"Power BI 403 quota", api(403, "TokenGenerationQuotaExceeded"), codes.ResourceExhausted, ReasonQuotaExceeded, 0, true},
		{"Power BI 404", api(404, "PowerBIEntityNotFound"), codes.NotFound, ReasonItemNotFound, 0, true},
		{"Power BI 400", api(400, "InvalidRequest"), codes.FailedPrecondition, ReasonPowerBIRejected, 0, true},
		{"Power BI 401", api(401, "PowerBINotAuthorizedException"), codes.FailedPrecondition, ReasonPowerBINoAccess, 0, true},
		{"RLS identity required", &powerbi.PreconditionError{Kind: powerbi.ErrIdentityRequired, DatasetID: "d"}, codes.FailedPrecondition, ReasonIdentityMismatch, 0, false},
		{"RLS roles required", &powerbi.PreconditionError{Kind: powerbi.ErrRolesRequired, DatasetID: "d"}, codes.FailedPrecondition, ReasonIdentityMismatch, 0, false},
		{"unsupported item", &powerbi.UnsupportedError{ReportID: "r", Reason: "request it alone"}, codes.FailedPrecondition, ReasonUnsupported, 0, false},
		{"Entra rejects the secret", &powerbi.CredentialError{Status: 401, Code: "invalid_client", ErrorCodes: []int{7000215}}, codes.Internal, ReasonCredentialRejected, 0, false},
		{"Power BI 503", &powerbi.UnavailableError{Op: "GenerateToken", Status: 503, RequestID: rid}, codes.Unavailable, ReasonUpstreamDown, 0, true},
		{"Entra token keeps expiring", api(403, "TokenExpired"), codes.Unavailable, ReasonUpstreamDown, 0, true},
		{"caller's deadline", fmt.Errorf("powerbi: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", 0, false},
		{"caller canceled", fmt.Errorf("powerbi: %w", context.Canceled), codes.Canceled, "", 0, false},
		{"anything else", errors.New("boom: internal detail"), codes.Internal, ReasonInternal, 0, false},
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
		})
	}
}
