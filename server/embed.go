package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
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

// Gateway mints embed tokens from grants, says what a token would open
// (Models, for the policy to decide on each dataset's kind) and what it would
// send without minting (Explain): powerbi.Client in service.
type Gateway interface {
	Models(ctx context.Context, r powerbi.TokenRequest) ([]powerbi.Model, error)
	Issue(ctx context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error)
	Plan(ctx context.Context, r powerbi.TokenRequest) (*powerbi.Plan, error)
}

// embedService implements embedgate.v1.EmbedTokenService: ask the policy for
// a grant, hand it to Power BI, audit the decision. Every RPC takes the same
// path (issue or explain); they differ only in how they read their request
// into items and write the embedded items into their response.
type embedService struct {
	embedgatev1.UnimplementedEmbedTokenServiceServer
	policy   PolicySource
	gateway  Gateway
	users    UserGateway // nil: GenerateUserEmbedConfig is unimplemented
	audit    *auditor
	metrics  *Metrics // nil = none
	log      *slog.Logger
	upstream *upstreamHealth
	decided  *decidedCache // the grants of recent requests, with the models' decisions
}

// GenerateEmbedToken implements embedgate.v1.EmbedTokenService. The request
// has passed validation; the caller is authenticated.
func (s *embedService) GenerateEmbedToken(ctx context.Context, req *embedgatev1.GenerateEmbedTokenRequest) (*embedgatev1.GenerateEmbedTokenResponse, error) {
	tok, err := s.issue(ctx, reportRequest(req))
	if err != nil {
		return nil, err
	}
	resp := &embedgatev1.GenerateEmbedTokenResponse{
		Token:       tok.Token,
		TokenId:     tok.TokenID,
		ExpireTime:  timestamppb.New(tok.Expiration),
		RefreshTime: timestamppb.New(tok.RefreshAt),
	}
	for _, it := range tok.Items {
		resp.Reports = append(resp.Reports, &embedgatev1.EmbedReport{
			Id: it.ID, Name: it.Name, EmbedUrl: it.EmbedURL, DatasetId: it.DatasetID, WorkspaceId: it.WorkspaceID,
		})
	}
	return resp, nil
}

// GenerateDashboardEmbedToken implements embedgate.v1.EmbedTokenService.
func (s *embedService) GenerateDashboardEmbedToken(ctx context.Context, req *embedgatev1.GenerateDashboardEmbedTokenRequest) (*embedgatev1.GenerateDashboardEmbedTokenResponse, error) {
	tok, err := s.issue(ctx, dashboardRequest(req))
	if err != nil {
		return nil, err
	}
	resp := &embedgatev1.GenerateDashboardEmbedTokenResponse{
		Token:       tok.Token,
		TokenId:     tok.TokenID,
		ExpireTime:  timestamppb.New(tok.Expiration),
		RefreshTime: timestamppb.New(tok.RefreshAt),
	}
	for _, it := range tok.Items {
		switch it.Kind {
		case powerbi.KindDashboard:
			resp.Dashboard = &embedgatev1.EmbedDashboard{Id: it.ID, Name: it.Name, EmbedUrl: it.EmbedURL}
		case powerbi.KindTile:
			resp.Dashboard = &embedgatev1.EmbedDashboard{Id: it.DashboardID}
			resp.Tile = &embedgatev1.EmbedTile{Id: it.ID, Title: it.Name, EmbedUrl: it.EmbedURL, ReportId: it.ReportID, DatasetId: it.DatasetID}
		}
	}
	return resp, nil
}

// issue is the path every token takes: decide, learn the models the token
// opens and decide on them, mint, audit, map errors.
func (s *embedService) issue(ctx context.Context, areq authz.Request) (*powerbi.EmbedToken, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, errorStatus(err).Err()
	}
	areq.Caller = caller
	// The request passed validation: its tenant may join the call record.
	grant, r, key, err := s.decided.request(ctx, s.gateway, s.policy.Current(), areq)
	var tok *powerbi.EmbedToken
	if err == nil {
		if tok, err = s.gateway.Issue(ctx, r); err != nil {
			s.decided.forget(key)
		}
	}
	var denial *authz.Denial
	if errors.As(err, &denial) {
		return nil, s.deny(ctx, areq, err)
	}
	if err != nil {
		st := errorStatus(err)
		logging.AddFields(ctx, logging.Fields{"tenant", areq.Tenant, "pbi_request_id", powerbi.RequestIDOf(err)})
		s.audit.failed(ctx, areq, grant, err, st)
		s.metrics.decision(outcomeFailed, st.Code())
		if errors.Is(err, powerbi.ErrOverloaded) {
			s.metrics.shed("upstream")
		}
		if refusesToken(err) {
			s.upstream.nudge()
		}
		return nil, st.Err()
	}
	if s.upstream.failing.Load() && !tok.Cached {
		s.upstream.nudge() // Power BI took our token: readiness may recover now
	}
	logging.AddFields(ctx, logging.Fields{"tenant", areq.Tenant, "token_id", tok.TokenID, "pbi_request_id", tok.RequestID})
	s.audit.allowed(ctx, areq, grant, tok)
	s.metrics.decision(outcomeAllowed, codes.OK)
	s.metrics.token(tok)
	return tok, nil
}

// deny audits and counts a refusal of the policy, and returns its status.
func (s *embedService) deny(ctx context.Context, areq authz.Request, err error) error {
	st := errorStatus(err)
	logging.AddFields(ctx, logging.Fields{"tenant", areq.Tenant})
	s.audit.denied(ctx, areq, err, st)
	s.metrics.decision(outcomeDenied, st.Code())
	return st.Err()
}

// reportRequest reads a report request into items.
func reportRequest(req *embedgatev1.GenerateEmbedTokenRequest) authz.Request {
	return authz.Request{
		Tenant:      req.GetTenant(),
		User:        req.GetUser(),
		Items:       authz.Reports(req.GetReportIds()...),
		AllowEdit:   req.GetAllowEdit(),
		AllowCreate: req.GetAllowCreate(),
		Lifetime:    req.GetLifetime().AsDuration(),
	}
}

// dashboardRequest reads a dashboard or tile request into its one item.
func dashboardRequest(req *embedgatev1.GenerateDashboardEmbedTokenRequest) authz.Request {
	item := authz.ItemRef{Kind: authz.KindDashboard, ID: req.GetDashboardId()}
	if req.GetTileId() != "" {
		item = authz.ItemRef{Kind: authz.KindTile, ID: req.GetTileId(), Parent: req.GetDashboardId()}
	}
	return authz.Request{
		Tenant:   req.GetTenant(),
		User:     req.GetUser(),
		Items:    []authz.ItemRef{item},
		Lifetime: req.GetLifetime().AsDuration(),
	}
}

// tokenRequest turns a grant into the gateway's request: the same items,
// in Power BI's terms (the policy's decisions on the models the token opens
// come after, decidedRequest).
func tokenRequest(g authz.Grant) powerbi.TokenRequest {
	r := powerbi.TokenRequest{
		ProfileID:          g.ProfileID,
		TargetWorkspaceIDs: g.TargetWorkspaceIDs,
		AllowEdit:          g.AllowEdit,
		Lifetime:           g.Lifetime,
		Items:              make([]powerbi.Item, len(g.Items)),
		Workspaces:         g.Workspaces,
	}
	for i, it := range g.Items {
		r.Items[i] = powerbi.Item{Kind: powerbiKind(it.Kind), ID: it.ID, WorkspaceID: it.WorkspaceID, DashboardID: it.Parent}
	}
	if id := g.Identity; id != nil {
		r.Identity = &powerbi.Identity{Username: id.Username, ServicePrincipal: id.ServicePrincipal, Roles: id.Roles,
			CustomData: id.CustomData, DatasetRoles: id.DatasetRoles, WithoutRLS: id.WithoutRLS}
	}
	return r
}

// powerbiKind maps the policy's item kinds to the gateway's.
func powerbiKind(k authz.Kind) powerbi.Kind {
	switch k {
	case authz.KindDashboard:
		return powerbi.KindDashboard
	case authz.KindTile:
		return powerbi.KindTile
	default:
		return powerbi.KindReport
	}
}
