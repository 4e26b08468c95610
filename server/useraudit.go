package server

import (
	"context"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/authz"
)

// modeUserOwnsData marks the audit records of GenerateUserEmbedConfig.
const modeUserOwnsData = "user_owns_data"

// userDecision is what the audit record of a user-owns-data call says:
// the request, and as far as the call got, the policy's rule, the user's
// Entra tenant (as the assertion names it: claimed until the assertion is
// verified, since until then the caller wrote it) and object id (once
// verified). Never the assertion or the user's token.
type userDecision struct {
	req         authz.UserRequest
	rule        string
	entraTenant string
	verified    bool // the assertion's signature and claims checked out
	userOID     string
}

// user writes the record of one user-owns-data decision (docs/audit.md,
// "User owns data"); more appends the outcome's own fields.
func (a *auditor) user(ctx context.Context, d userDecision, outcome string, st *status.Status, more func([]slog.Attr) []slog.Attr) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.Int("schema_version", auditSchemaVersion),
		slog.String("request_id", requestIDFrom(ctx)),
		slog.String("mode", modeUserOwnsData),
		slog.String("caller", d.req.Caller),
		slog.String("workspace_id", d.req.WorkspaceID),
		slog.Any("report_ids", d.req.ReportIDs),
	)
	switch {
	case d.entraTenant != "" && d.verified:
		attrs = append(attrs, slog.String("entra_tenant", d.entraTenant))
	case d.entraTenant != "":
		attrs = append(attrs, slog.String("claimed_entra_tenant", d.entraTenant))
	}
	if d.userOID != "" {
		attrs = append(attrs, slog.String("user_oid", d.userOID))
	}
	if d.rule != "" {
		attrs = append(attrs, slog.String("rule", d.rule))
	}
	attrs = append(attrs, slog.String("outcome", outcome), slog.String("code", code.Code(st.Code()).String()))
	if st.Code() != codes.OK {
		attrs = append(attrs, slog.String("reason", reasonOf(st)), slog.String("message", st.Message()))
	}
	logAttrs(ctx, a.log, slog.LevelInfo, "embed decision", more(attrs)...)
}
