package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
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

// Gateway mints embed tokens from grants, and says what it would send
// without minting (Explain): powerbi.Client in service.
type Gateway interface {
	GenerateToken(ctx context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error)
	GenerateItemToken(ctx context.Context, r powerbi.ItemRequest) (*powerbi.EmbedToken, error)
	Plan(ctx context.Context, r powerbi.TokenRequest) (*powerbi.Plan, error)
	PlanItem(ctx context.Context, r powerbi.ItemRequest) (*powerbi.Plan, error)
}

// embedService implements embedgate.v1.EmbedTokenService: ask the policy for
// a grant, hand it to Power BI, audit the decision.
type embedService struct {
	embedgatev1.UnimplementedEmbedTokenServiceServer
	policy  PolicySource
	gateway Gateway
	audit   *auditor
	metrics *Metrics // nil = none
	now     func() time.Time
}

// GenerateEmbedToken implements embedgate.v1.EmbedTokenService. The request
// has passed validation; the caller is authenticated.
func (s *embedService) GenerateEmbedToken(ctx context.Context, req *embedgatev1.GenerateEmbedTokenRequest) (*embedgatev1.GenerateEmbedTokenResponse, error) {
	areq := reportRequest(callFrom(ctx).caller, req)
	grant, tok, err := s.issue(ctx, areq, func(g authz.Grant) (*powerbi.EmbedToken, error) {
		return s.gateway.GenerateToken(ctx, tokenRequest(g))
	})
	if err != nil {
		return nil, err
	}
	resp := &embedgatev1.GenerateEmbedTokenResponse{
		Token:       tok.Token,
		TokenId:     tok.TokenID,
		ExpireTime:  timestamppb.New(tok.Expiration),
		RefreshTime: timestamppb.New(s.refreshTime(tok)),
	}
	for i, r := range tok.Reports {
		er := &embedgatev1.EmbedReport{Id: r.ID, Name: r.Name, EmbedUrl: r.EmbedURL, DatasetId: r.DatasetID}
		if i < len(grant.Reports) {
			er.WorkspaceId = grant.Reports[i].WorkspaceID
		}
		resp.Reports = append(resp.Reports, er)
	}
	return resp, nil
}

// GenerateDashboardEmbedToken implements embedgate.v1.EmbedTokenService.
func (s *embedService) GenerateDashboardEmbedToken(ctx context.Context, req *embedgatev1.GenerateDashboardEmbedTokenRequest) (*embedgatev1.GenerateDashboardEmbedTokenResponse, error) {
	areq := dashboardRequest(callFrom(ctx).caller, req)
	grant, tok, err := s.issue(ctx, areq, func(g authz.Grant) (*powerbi.EmbedToken, error) {
		return s.gateway.GenerateItemToken(ctx, itemRequest(g))
	})
	if err != nil {
		return nil, err
	}
	resp := &embedgatev1.GenerateDashboardEmbedTokenResponse{
		Token:       tok.Token,
		TokenId:     tok.TokenID,
		ExpireTime:  timestamppb.New(tok.Expiration),
		RefreshTime: timestamppb.New(s.refreshTime(tok)),
		Dashboard:   &embedgatev1.EmbedDashboard{Id: grant.Dashboard.ID},
	}
	if d := tok.Dashboard; d != nil {
		resp.Dashboard = &embedgatev1.EmbedDashboard{Id: d.ID, Name: d.Name, EmbedUrl: d.EmbedURL}
	}
	if t := tok.Tile; t != nil {
		resp.Tile = &embedgatev1.EmbedTile{Id: t.ID, Title: t.Title, EmbedUrl: t.EmbedURL, ReportId: t.ReportID, DatasetId: t.DatasetID}
	}
	return resp, nil
}

// issue is the path every token takes: decide, mint, audit, map errors.
func (s *embedService) issue(ctx context.Context, areq authz.Request, mint func(authz.Grant) (*powerbi.EmbedToken, error)) (authz.Grant, *powerbi.EmbedToken, error) {
	c := callFrom(ctx)
	grant, err := s.policy.Current().Decide(areq)
	if err != nil {
		st := errorStatus(err)
		s.audit.denied(ctx, c, areq, err, st)
		s.metrics.decision(outcomeDenied, st.Code())
		return grant, nil, st.Err()
	}
	tok, err := mint(grant)
	if err != nil {
		st := errorStatus(err)
		c.pbiReqID = powerbi.RequestIDOf(err)
		s.audit.failed(ctx, c, areq, grant, st)
		s.metrics.decision(outcomeFailed, st.Code())
		return grant, nil, st.Err()
	}
	c.tokenID, c.pbiReqID = tok.TokenID, tok.RequestID
	s.audit.allowed(ctx, c, areq, grant, tok)
	s.metrics.decision(outcomeAllowed, codes.OK)
	s.metrics.token(tok.Cached)
	return grant, tok, nil
}

func reportRequest(caller string, req *embedgatev1.GenerateEmbedTokenRequest) authz.Request {
	return authz.Request{
		Caller:      caller,
		Tenant:      req.GetTenant(),
		User:        req.GetUser(),
		ReportIDs:   req.GetReportIds(),
		AllowEdit:   req.GetAllowEdit(),
		AllowCreate: req.GetAllowCreate(),
		Lifetime:    req.GetLifetime().AsDuration(),
	}
}

func dashboardRequest(caller string, req *embedgatev1.GenerateDashboardEmbedTokenRequest) authz.Request {
	return authz.Request{
		Caller:      caller,
		Tenant:      req.GetTenant(),
		User:        req.GetUser(),
		DashboardID: req.GetDashboardId(),
		TileID:      req.GetTileId(),
		Lifetime:    req.GetLifetime().AsDuration(),
	}
}

func tokenRequest(g authz.Grant) powerbi.TokenRequest {
	r := powerbi.TokenRequest{
		WorkspaceID:        g.WorkspaceID,
		ProfileID:          g.ProfileID,
		TargetWorkspaceIDs: g.TargetWorkspaceIDs,
		AllowEdit:          g.AllowEdit,
		Lifetime:           g.Lifetime,
		Identity:           identity(g.Identity),
	}
	for _, it := range g.Reports {
		r.Reports = append(r.Reports, powerbi.ReportRef{ID: it.ID, WorkspaceID: it.WorkspaceID})
	}
	return r
}

func itemRequest(g authz.Grant) powerbi.ItemRequest {
	return powerbi.ItemRequest{
		WorkspaceID: g.Dashboard.WorkspaceID,
		ProfileID:   g.ProfileID,
		DashboardID: g.Dashboard.ID,
		TileID:      g.TileID,
		Lifetime:    g.Lifetime,
		Identity:    identity(g.Identity),
	}
}

func identity(id *authz.Identity) *powerbi.Identity {
	if id == nil {
		return nil
	}
	return &powerbi.Identity{Username: id.Username, Roles: id.Roles, CustomData: id.CustomData, DatasetRoles: id.DatasetRoles}
}

// refreshTime is when a client should renew: when the gateway's token cache
// stops handing out this token (powerbi.RefreshAt), to the second.
func (s *embedService) refreshTime(tok *powerbi.EmbedToken) time.Time {
	issued := tok.Issued
	if issued.IsZero() {
		issued = s.now()
	}
	return powerbi.RefreshAt(issued, tok.Expiration).Truncate(time.Second)
}
