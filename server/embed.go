package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// PolicySource hands out the policy in force; authz.Store swaps it on
// reload, and a test can pass a fixed one.
type PolicySource interface {
	Current() *authz.Policy
}

// TokenIssuer mints embed tokens from a grant: powerbi.Client in service.
type TokenIssuer interface {
	GenerateToken(ctx context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error)
}

// maxRefreshLead is the most a client is told to renew ahead of expiry.
const maxRefreshLead = 10 * time.Minute

// embedService implements embedgate.v1.EmbedTokenService: ask the policy for
// a grant, hand it to Power BI, audit the decision.
type embedService struct {
	embedgatev1.UnimplementedEmbedTokenServiceServer
	policy PolicySource
	issuer TokenIssuer
	audit  *auditor
	now    func() time.Time
}

// GenerateEmbedToken implements embedgate.v1.EmbedTokenService. The request
// has passed validation; the caller is authenticated.
func (s *embedService) GenerateEmbedToken(ctx context.Context, req *embedgatev1.GenerateEmbedTokenRequest) (*embedgatev1.GenerateEmbedTokenResponse, error) {
	c := callFrom(ctx)
	c.tenant = req.GetTenant()
	areq := authz.Request{
		Caller:    c.caller,
		Tenant:    req.GetTenant(),
		User:      req.GetUser(),
		ReportIDs: req.GetReportIds(),
		AllowEdit: req.GetAllowEdit(),
		Lifetime:  req.GetLifetime().AsDuration(),
	}
	grant, err := s.policy.Current().Decide(areq)
	if err != nil {
		st := errorStatus(err)
		s.audit.denied(ctx, c, areq, st)
		return nil, st.Err()
	}
	tok, err := s.issuer.GenerateToken(ctx, tokenRequest(grant))
	if err != nil {
		st := errorStatus(err)
		c.pbiReqID = powerbi.RequestIDOf(err)
		s.audit.failed(ctx, c, areq, grant, st)
		return nil, st.Err()
	}
	c.tokenID, c.pbiReqID = tok.TokenID, tok.RequestID
	s.audit.allowed(ctx, c, areq, grant, tok)
	return s.response(tok), nil
}

func tokenRequest(g authz.Grant) powerbi.TokenRequest {
	r := powerbi.TokenRequest{
		WorkspaceID: g.WorkspaceID,
		ProfileID:   g.ProfileID,
		ReportIDs:   g.ReportIDs,
		AllowEdit:   g.AllowEdit,
		Lifetime:    g.Lifetime,
	}
	if g.Identity != nil {
		r.Identity = &powerbi.Identity{Username: g.Identity.Username, Roles: g.Identity.Roles, CustomData: g.Identity.CustomData}
	}
	return r
}

func (s *embedService) response(tok *powerbi.EmbedToken) *embedgatev1.GenerateEmbedTokenResponse {
	resp := &embedgatev1.GenerateEmbedTokenResponse{
		Token:       tok.Token,
		TokenId:     tok.TokenID,
		ExpireTime:  timestamppb.New(tok.Expiration),
		RefreshTime: timestamppb.New(refreshTime(s.now(), tok.Expiration)),
	}
	for _, r := range tok.Reports {
		resp.Reports = append(resp.Reports, &embedgatev1.EmbedReport{Id: r.ID, Name: r.Name, EmbedUrl: r.EmbedURL, DatasetId: r.DatasetID})
	}
	return resp
}

// refreshTime is when a client should renew: a quarter of the remaining
// lifetime ahead of expiry, at most maxRefreshLead ahead.
func refreshTime(now, expire time.Time) time.Time {
	lead := min(expire.Sub(now)/4, maxRefreshLead)
	if lead < 0 {
		return expire
	}
	return expire.Add(-lead)
}

// auditor writes one record per decision to the audit stream: who asked for
// what, what was granted, and the outcome. Never the token.
type auditor struct {
	log *slog.Logger
}

func (a *auditor) record(ctx context.Context, c *call, r authz.Request, outcome string, code codes.Code, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("request_id", c.requestID),
		slog.String("caller", r.Caller),
		slog.String("tenant", r.Tenant),
		slog.String("user", r.User),
		slog.Any("report_ids", r.ReportIDs),
		slog.Bool("allow_edit", r.AllowEdit),
		slog.Duration("lifetime_requested", r.Lifetime),
		slog.String("outcome", outcome),
		slog.String("code", code.String()),
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "embed decision", append(attrs, extra...)...)
}

func grantAttrs(g authz.Grant) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("rule", g.Rule),
		slog.String("workspace_id", g.WorkspaceID),
		slog.Duration("lifetime", g.Lifetime),
	}
	if g.ProfileID != "" {
		attrs = append(attrs, slog.String("profile_id", g.ProfileID))
	}
	if g.Identity != nil {
		attrs = append(attrs, slog.String("rls_username", g.Identity.Username), slog.Any("roles", g.Identity.Roles))
	}
	return attrs
}

func (a *auditor) denied(ctx context.Context, c *call, r authz.Request, st *status.Status) {
	a.record(ctx, c, r, "denied", st.Code(), slog.String("reason", st.Message()))
}

func (a *auditor) failed(ctx context.Context, c *call, r authz.Request, g authz.Grant, st *status.Status) {
	attrs := append(grantAttrs(g), slog.String("reason", st.Message()))
	if c.pbiReqID != "" {
		attrs = append(attrs, slog.String("pbi_request_id", c.pbiReqID))
	}
	a.record(ctx, c, r, "failed", st.Code(), attrs...)
}

func (a *auditor) allowed(ctx context.Context, c *call, r authz.Request, g authz.Grant, tok *powerbi.EmbedToken) {
	attrs := append(grantAttrs(g),
		slog.String("token_id", tok.TokenID),
		slog.Time("expire_time", tok.Expiration),
		slog.String("pbi_request_id", tok.RequestID))
	a.record(ctx, c, r, "allowed", codes.OK, attrs...)
}
