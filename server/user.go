package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// UserGateway is what user owns data asks of Entra ID and Power BI
// (powerbi.Client): check a user's assertion, exchange it on the user's
// behalf, read reports as the user.
type UserGateway interface {
	VerifyAssertion(ctx context.Context, raw string) (powerbi.Assertion, error)
	OnBehalfOf(ctx context.Context, assertion, tenantID string) (powerbi.UserToken, error)
	ReportsAsUser(ctx context.Context, accessToken, workspaceID string, ids []string) ([]powerbi.Embedded, error)
}

// GenerateUserEmbedConfig implements embedgate.v1.EmbedTokenService: the
// policy first (the caller, the workspace, then the user's Entra tenant as
// the assertion names it), then the assertion checked, then exchanged, then
// the reports read as the user. One audit record, whatever the outcome;
// nothing of either token is logged or audited.
func (s *embedService) GenerateUserEmbedConfig(ctx context.Context, req *embedgatev1.GenerateUserEmbedConfigRequest) (*embedgatev1.GenerateUserEmbedConfigResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, errorStatus(err).Err()
	}
	if s.users == nil {
		return nil, status.Error(codes.Unimplemented, "this server's gateway does not serve users (user owns data)")
	}
	rec := userDecision{req: authz.UserRequest{Caller: caller, WorkspaceID: req.GetWorkspaceId(), ReportIDs: req.GetReportIds()}}
	grant, err := s.policy.Current().DecideUser(rec.req)
	if err == nil {
		rec.rule = grant.Rule
		var peek powerbi.Assertion
		if peek, err = powerbi.PeekAssertion(req.GetUserAssertion()); err == nil {
			rec.entraTenant = peek.TenantID
			err = grant.CheckEntraTenant(peek.TenantID)
		}
	}
	var a powerbi.Assertion
	if err == nil {
		a, err = s.users.VerifyAssertion(ctx, req.GetUserAssertion())
		if rec.verified = err == nil; rec.verified {
			rec.userOID = a.ObjectID
		}
	}
	if err != nil {
		return nil, s.refuseUser(ctx, rec, outcomeDenied, err)
	}
	tok, err := s.users.OnBehalfOf(ctx, req.GetUserAssertion(), a.TenantID)
	if err != nil {
		return nil, s.refuseUser(ctx, rec, outcomeFailed, err)
	}
	items, err := s.users.ReportsAsUser(ctx, tok.Value, grant.WorkspaceID, grant.ReportIDs)
	if err != nil {
		return nil, s.refuseUser(ctx, rec, outcomeFailed, err)
	}
	logging.AddFields(ctx, logging.Fields{"entra_tenant", rec.entraTenant, "user_oid", rec.userOID})
	s.audit.user(ctx, rec, outcomeAllowed, statusOK, func(attrs []slog.Attr) []slog.Attr {
		return append(attrs, slog.Time("expire_time", tok.ExpiresOn))
	})
	s.metrics.decision(outcomeAllowed, codes.OK)
	resp := &embedgatev1.GenerateUserEmbedConfigResponse{
		AccessToken: tok.Value,
		ExpireTime:  timestamppb.New(tok.ExpiresOn),
		RefreshTime: timestamppb.New(powerbi.RefreshAt(tok.Issued, tok.ExpiresOn)),
	}
	for _, it := range items {
		resp.Reports = append(resp.Reports, &embedgatev1.EmbedReport{
			Id: it.ID, Name: it.Name, EmbedUrl: it.EmbedURL, DatasetId: it.DatasetID, WorkspaceId: it.WorkspaceID,
		})
	}
	return resp, nil
}

// refuseUser maps err, audits and counts the refusal, and returns the
// status error for the caller.
func (s *embedService) refuseUser(ctx context.Context, rec userDecision, outcome string, err error) error {
	st := errorStatus(err)
	var d *authz.Denial
	if errors.As(err, &d) {
		rec.rule = d.Rule
	}
	tenantKey := "claimed_entra_tenant"
	if rec.verified {
		tenantKey = "entra_tenant"
	}
	logging.AddFields(ctx, logging.Fields{tenantKey, rec.entraTenant, "user_oid", rec.userOID, "pbi_request_id", powerbi.RequestIDOf(err)})
	s.audit.user(ctx, rec, outcome, st, func(attrs []slog.Attr) []slog.Attr {
		if id := powerbi.RequestIDOf(err); id != "" {
			attrs = append(attrs, slog.String("pbi_request_id", id))
		}
		return attrs
	})
	s.metrics.decision(outcome, st.Code())
	return st.Err()
}
