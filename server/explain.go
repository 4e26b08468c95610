package server

import (
	"context"
	"errors"
	"net/url"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// ExplainEmbedToken implements embedgate.v1.EmbedTokenService: the same
// decision as the real call, for the same caller, and for an allow the
// Power BI request that would be sent. Nothing is minted.
func (s *embedService) ExplainEmbedToken(ctx context.Context, req *embedgatev1.ExplainEmbedTokenRequest) (*embedgatev1.ExplainEmbedTokenResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, errorStatus(err).Err()
	}
	var areq authz.Request
	switch r := req.GetRequest().(type) {
	case *embedgatev1.ExplainEmbedTokenRequest_EmbedToken:
		areq = reportRequest(r.EmbedToken)
	case *embedgatev1.ExplainEmbedTokenRequest_DashboardEmbedToken:
		areq = dashboardRequest(r.DashboardEmbedToken)
	default: // protovalidate requires the oneof; this is defence in depth
		return nil, status.Error(codes.InvalidArgument, "request: one of embed_token or dashboard_embed_token is required")
	}
	areq.Caller = caller
	logging.AddFields(ctx, logging.Fields{"tenant", areq.Tenant})
	policy := s.policy.Current()
	grant, err := decide(ctx, policy, areq)
	var d *authz.Denial
	if errors.As(err, &d) && errors.Is(d.Reason, authz.ErrUnknownCaller) {
		// A caller the policy does not list learns what the real call
		// would tell it, and nothing of the policy.
		return nil, errorStatus(err).Err()
	}
	resp := &embedgatev1.ExplainEmbedTokenResponse{Caller: caller, PolicyVersion: policy.Version()}
	if err != nil {
		explainError(resp, err)
		return resp, nil
	}
	resp.Rule = grant.Rule
	r, _, err := decidedRequest(ctx, s.gateway, grant)
	var p *powerbi.Plan
	if err == nil {
		p, err = s.gateway.Plan(ctx, r)
	}
	if err != nil {
		explainError(resp, err)
		return resp, nil
	}
	resp.Allowed = true
	resp.Code = code.Code_OK.String()
	resp.Message = "allowed by " + grant.Rule
	resp.Lifetime = durationpb.New(grant.Lifetime)
	resp.LifetimeClamped = grant.LifetimeClamped
	resp.PowerbiRequest = &embedgatev1.PowerBIRequest{Method: p.Method, Url: apiPath(p.URL), ProfileId: p.ProfileID, Body: string(p.Body)}
	resp.Models = explainedModels(p.Datasets)
	return resp, nil
}

// explainError fills resp with what the real call would have answered.
func explainError(resp *embedgatev1.ExplainEmbedTokenResponse, err error) {
	st := errorStatus(err)
	resp.Code = code.Code(st.Code()).String()
	resp.Message = st.Message()
	resp.Reason = reasonOf(st)
	var d *authz.Denial
	if errors.As(err, &d) {
		resp.Rule = d.Rule
	}
}

// apiPath is the request's path under the Power BI API's root: the host
// Embedgate reaches (a private endpoint, a proxy) is not the caller's to know.
func apiPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}
