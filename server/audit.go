package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// auditor writes one record per token decision to the audit stream: who
// asked for what on whose behalf, what the policy granted, and the outcome
// with Power BI's ids. Never the token, never a secret. docs/audit.md
// documents every field: keep the two in step.
type auditor struct {
	log *slog.Logger
}

// auditSchemaVersion is the version of the audit record's fields
// (schema_version). Adding a field keeps it; renaming or removing one, or
// changing what a value means, bumps it.
const auditSchemaVersion = 1

// Outcomes of a decision in the audit stream.
const (
	outcomeAllowed = "allowed" // a token was minted
	outcomeDenied  = "denied"  // the policy refused
	outcomeFailed  = "failed"  // the policy allowed, Power BI did not mint
)

// record writes the record of one decision; st is its status (OK for an
// allowed one). code is the canonical name (PERMISSION_DENIED), as the
// API's error table spells it; reason is the embedgate.v1.Reason of a
// refusal, message its prose. more appends the outcome's own fields.
func (a *auditor) record(ctx context.Context, r authz.Request, outcome string, st *status.Status, more func([]slog.Attr) []slog.Attr) {
	buf := attrPool.Get().(*[]slog.Attr)
	attrs := (*buf)[:0]
	defer func() {
		clear(attrs[:cap(attrs)]) // keeps no value of this call alive
		*buf = attrs[:0]
		attrPool.Put(buf)
	}()
	attrs = append(attrs,
		slog.Int("schema_version", auditSchemaVersion),
		slog.String("request_id", requestIDFrom(ctx)),
		slog.String("caller", r.Caller),
		slog.String("tenant", r.Tenant),
		slog.String("user", r.User),
	)
	var reports []string
	for _, it := range r.Items {
		switch it.Kind {
		case authz.KindReport:
			reports = append(reports, it.ID)
		case authz.KindDashboard:
			attrs = append(attrs, slog.String("dashboard_id", it.ID))
		case authz.KindTile:
			attrs = append(attrs, slog.String("dashboard_id", it.Parent), slog.String("tile_id", it.ID))
		}
	}
	if len(reports) > 0 {
		attrs = append(attrs, slog.Any("report_ids", reports))
	}
	attrs = append(attrs,
		slog.Bool("allow_edit", r.AllowEdit),
		slog.Bool("allow_create", r.AllowCreate),
		slog.String("lifetime_requested", r.Lifetime.String()),
		slog.String("outcome", outcome),
		slog.String("code", code.Code(st.Code()).String()),
	)
	if st.Code() != codes.OK {
		attrs = append(attrs, slog.String("reason", reasonOf(st)), slog.String("message", st.Message()))
	}
	attrs = more(attrs)
	logAttrs(ctx, a.log, slog.LevelInfo, "embed decision", attrs...)
}

// attrPool holds the attribute lists of audit records, which more() may
// grow: a record has up to thirty, too many to build afresh on every call.
var attrPool = sync.Pool{New: func() any { s := make([]slog.Attr, 0, 32); return &s }}

// appendGrant appends what the policy granted.
func appendGrant(attrs []slog.Attr, g authz.Grant) []slog.Attr {
	attrs = append(attrs,
		slog.String("rule", g.Rule),
		slog.String("workspace_id", g.WorkspaceID),
		slog.String("lifetime", g.Lifetime.String()),
		slog.Bool("lifetime_clamped", g.LifetimeClamped),
	)
	if g.ProfileID != "" {
		attrs = append(attrs, slog.String("profile_id", g.ProfileID))
	}
	if len(g.TargetWorkspaceIDs) > 0 {
		attrs = append(attrs, slog.Any("target_workspace_ids", g.TargetWorkspaceIDs))
	}
	if g.Identity != nil {
		attrs = append(attrs, slog.String("rls_username", g.Identity.Username), slog.Any("roles", g.Identity.Roles))
		if len(g.Identity.DatasetRoles) > 0 {
			attrs = append(attrs, slog.Any("dataset_roles", g.Identity.DatasetRoles))
		}
	}
	return attrs
}

func (a *auditor) denied(ctx context.Context, r authz.Request, err error, st *status.Status) {
	a.record(ctx, r, outcomeDenied, st, func(attrs []slog.Attr) []slog.Attr {
		var d *authz.Denial
		if errors.As(err, &d) {
			attrs = append(attrs, slog.String("rule", d.Rule))
			if d.Dataset != "" {
				attrs = append(attrs, slog.String("dataset_id", d.Dataset))
			}
		}
		return attrs
	})
}

func (a *auditor) failed(ctx context.Context, r authz.Request, g authz.Grant, err error, st *status.Status) {
	a.record(ctx, r, outcomeFailed, st, func(attrs []slog.Attr) []slog.Attr {
		attrs = appendGrant(attrs, g)
		if id := powerbi.RequestIDOf(err); id != "" {
			attrs = append(attrs, slog.String("pbi_request_id", id))
		}
		return attrs
	})
}

// statusOK is the status of every allowed decision.
var statusOK = status.New(codes.OK, "")

func (a *auditor) allowed(ctx context.Context, r authz.Request, g authz.Grant, tok *powerbi.EmbedToken) {
	a.record(ctx, r, outcomeAllowed, statusOK, func(attrs []slog.Attr) []slog.Attr {
		attrs = append(appendGrant(attrs, g),
			slog.String("token_id", tok.TokenID),
			slog.Bool("token_cached", tok.Cached),
			slog.Time("expire_time", tok.Expiration),
			slog.String("pbi_request_id", tok.RequestID))
		if d := tok.Shortfall(); d > 0 {
			// Power BI cut the token short (its Entra token would not
			// outlive it): the caller got less than the policy granted.
			attrs = append(attrs, slog.String("lifetime_shortfall", d.String()))
		}
		return attrs
	})
}

// reasonOf is the ErrorInfo reason of a status (the embedgate.v1.Reason
// name), "" when it has none.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
