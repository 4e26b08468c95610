package authz

import (
	"errors"
	"strings"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// The reasons a request can be denied. They are sentinels so that the server edge can
// map each one to a gRPC status with errors.Is, in one place, without parsing messages.
// Every denial returned by Policy.Decide is a *Denial wrapping exactly one of them.
var (
	// ErrUnknownCaller means the authenticated caller is not listed in the policy. Its
	// certificate was valid, so this is a policy gap rather than an attack signal;
	// operators look for it in the audit log.
	ErrUnknownCaller = errors.New("unknown caller")

	// ErrTenantNotAllowed means the tenant is unknown OR not granted to this caller. The
	// two cases are deliberately indistinguishable (same error, same message) so that a
	// caller cannot enumerate the tenants of the platform.
	ErrTenantNotAllowed = errors.New("tenant not allowed")

	// ErrReportNotAllowed means a requested report is outside the tenant's list. It never
	// says whether the report exists elsewhere.
	ErrReportNotAllowed = errors.New("report not allowed")

	// ErrDashboardNotAllowed means the requested dashboard (or the dashboard of the
	// requested tile) is outside the tenant's dashboards. Like ErrReportNotAllowed, it
	// never says whether the dashboard exists elsewhere.
	ErrDashboardNotAllowed = errors.New("dashboard not allowed")

	// ErrEditNotAllowed means the request asked for an edit token and the tenant's policy
	// does not allow edit.
	ErrEditNotAllowed = errors.New("edit not allowed")

	// ErrCreateNotAllowed means the request asked for a token that may create reports and
	// the tenant's policy does not allow create.
	ErrCreateNotAllowed = errors.New("create not allowed")

	// ErrDatasetNotAllowed means a dataset the token would open because a requested
	// report reads it (a composite model's upstream dataset, a paginated report's
	// dataset) is in none of the tenant's workspaces: granting it would hand the
	// tenant another workspace's data. The message does not name it.
	ErrDatasetNotAllowed = errors.New("dataset not allowed")

	// ErrIdentityKind means the tenant's effective identity does not fit the kind of
	// model a dataset is (an end-user username on a live connection to Azure Analysis
	// Services, which must be the service principal's; the service principal or
	// customData on SQL Server Analysis Services): Power BI would refuse it, or serve
	// the wrong rows.
	ErrIdentityKind = errors.New("identity does not fit the kind of model")

	// ErrSSONotApplicable means the policy lists a dataset or paginated report under
	// sso that has no single sign-on data source: its identity blob, an access token,
	// would go where nothing takes it.
	ErrSSONotApplicable = errors.New("single sign-on not applicable")

	// ErrInvalidRequest means the request itself is malformed (duplicate report ids,
	// both reports and a dashboard, a tile without its dashboard, an empty user, a
	// username the tenant's template would expand beyond what Power BI accepts, ...).
	// It maps to INVALID_ARGUMENT rather than PERMISSION_DENIED because the caller can
	// fix it.
	ErrInvalidRequest = errors.New("invalid request")
)

// Denial is the error Policy.Decide returns when it refuses a request. It carries what
// the server needs to answer the caller (Reason, Message, Field) and what the audit log
// needs to explain the decision (Rule), so neither has to re-derive them.
type Denial struct {
	// Reason is one of the Err* sentinels; errors.Is(denial, ErrX) matches it.
	Reason error
	// Rule is the policy entry that decided, e.g. `callers[2].tenants` or
	// `tenants.acme.reports`. It is for audit logs and operators, not for callers.
	Rule string
	// Message is short, actionable and safe to return to the caller: it only repeats
	// what the caller sent and never reveals anything about other tenants.
	Message string
	// Field names the request field at fault for ErrInvalidRequest (e.g. "report_ids",
	// "report_ids[2]", "dashboard_id", "tile_id", "allow_edit", "allow_create", "user",
	// "lifetime"): the API's field names, so the server can fill a BadRequest field
	// violation. It is empty for the other reasons.
	Field string
	// Dataset is the dataset (or paginated report) a denial of Grant.Models is about,
	// for the audit record and operators; "" for the other denials.
	Dataset string
}

// Error returns the caller-safe message.
func (d *Denial) Error() string { return d.Message }

// Unwrap exposes the Reason so errors.Is matches the sentinels.
func (d *Denial) Unwrap() error { return d.Reason }

// ValidationError reports every problem of a policy file at once, so that an operator
// fixes a file in one round trip instead of one error per `embedgate check` run.
type ValidationError struct {
	Problems []yamlfile.Problem
}

// Error lists every problem, one per line, after a header line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid policy:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Strings returns the problems as `key: message` strings: the form logged under the
// key "problems" when a reload is rejected.
func (e *ValidationError) Strings() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}
