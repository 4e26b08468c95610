package embedgateclient

import embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"

// Action is what a caller does about an error, by its reason.
type Action int

const (
	// ActionReport: the policy, the Power BI setup or Embedgate's own
	// credential needs the platform team; retrying does not help. Also the
	// action for a reason this client does not know.
	ActionReport Action = iota
	// ActionFixRequest: the request (or the caller's own identity) is wrong;
	// the same request fails the same way.
	ActionFixRequest
	// ActionRetry: retry after RetryInfo's delay when there is one, else
	// with exponential backoff.
	ActionRetry
)

// String returns "report", "fix the request" or "retry".
func (a Action) String() string {
	switch a {
	case ActionFixRequest:
		return "fix the request"
	case ActionRetry:
		return "retry"
	default:
		return "report"
	}
}

// actions is the Action of every reason: the first advice of each value's
// comment in proto/embedgate/v1/reason.proto.
var actions = map[embedgatev1.Reason]Action{
	embedgatev1.Reason_INVALID_REQUEST:               ActionFixRequest, // BadRequest lists the fields
	embedgatev1.Reason_NO_CALLER_IDENTITY:            ActionFixRequest, // the workload's certificate
	embedgatev1.Reason_CALLER_NOT_IN_POLICY:          ActionReport,
	embedgatev1.Reason_TENANT_NOT_ALLOWED:            ActionReport,
	embedgatev1.Reason_REPORT_NOT_ALLOWED:            ActionFixRequest, // or report, if the tenant should have it
	embedgatev1.Reason_EDIT_NOT_ALLOWED:              ActionFixRequest, // ask without edit, or report
	embedgatev1.Reason_POWERBI_ITEM_NOT_FOUND:        ActionFixRequest, // or report
	embedgatev1.Reason_RLS_IDENTITY_MISMATCH:         ActionReport,
	embedgatev1.Reason_POWERBI_REJECTED_REQUEST:      ActionReport,
	embedgatev1.Reason_POWERBI_NOT_AUTHORIZED:        ActionReport,
	embedgatev1.Reason_UNSUPPORTED_ITEM:              ActionFixRequest, // as the message says
	embedgatev1.Reason_POWERBI_THROTTLED:             ActionRetry,      // after RetryInfo
	embedgatev1.Reason_POWERBI_QUOTA_EXCEEDED:        ActionReport,
	embedgatev1.Reason_CALLER_RATE_LIMITED:           ActionRetry, // after RetryInfo
	embedgatev1.Reason_DASHBOARD_NOT_ALLOWED:         ActionFixRequest,
	embedgatev1.Reason_CREATE_NOT_ALLOWED:            ActionFixRequest, // ask without create, or report
	embedgatev1.Reason_UPSTREAM_UNAVAILABLE:          ActionRetry,      // with backoff
	embedgatev1.Reason_CREDENTIAL_REJECTED:           ActionReport,
	embedgatev1.Reason_INTERNAL:                      ActionReport, // with the x-request-id response header
	embedgatev1.Reason_RLS_NOT_ENFORCED:              ActionReport,
	embedgatev1.Reason_POWERBI_FORBIDDEN:             ActionReport,
	embedgatev1.Reason_POWERBI_PRINCIPAL_NOT_ALLOWED: ActionReport,
	embedgatev1.Reason_OVERLOADED:                    ActionRetry, // after RetryInfo, with jitter
	embedgatev1.Reason_DATASET_NOT_ALLOWED:           ActionReport,
	embedgatev1.Reason_IDENTITY_KIND_MISMATCH:        ActionReport,
	embedgatev1.Reason_SSO_NOT_APPLICABLE:            ActionReport,
	embedgatev1.Reason_TOKEN_LIMIT_EXCEEDED:          ActionFixRequest, // fewer reports in one token
	embedgatev1.Reason_EXPLAIN_NOT_ALLOWED:           ActionFixRequest, // explain as yourself
	embedgatev1.Reason_USER_EMBEDDING_NOT_ALLOWED:    ActionReport,
	embedgatev1.Reason_USER_ASSERTION_EXPIRED:        ActionFixRequest, // a new token for the user
	embedgatev1.Reason_USER_ASSERTION_INVALID:        ActionFixRequest, // a token for Embedgate's API
	embedgatev1.Reason_USER_CONSENT_REQUIRED:         ActionFixRequest, // the user consents, then a new token
	embedgatev1.Reason_USER_INTERACTION_REQUIRED:     ActionFixRequest, // sign in again with the claims
	embedgatev1.Reason_USER_NOT_ALLOWED:              ActionFixRequest, // without that report, or the user gets access
}

// ActionOf returns what a caller does about an error of this reason.
func ActionOf(r embedgatev1.Reason) Action {
	return actions[r]
}
