package server

import (
	"context"
	"errors"
	"net/url"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
)

// ExplainEmbedToken implements embedgate.v1.EmbedTokenService: the same
// decision as the real call, for the same caller (or, for an admin caller,
// the one it names in as_caller), and for an allow the Power BI request that
// would be sent. Nothing is minted.
func (s *embedService) ExplainEmbedToken(ctx context.Context, req *embedgatev1.ExplainEmbedTokenRequest) (*embedgatev1.ExplainEmbedTokenResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, errorStatus(err).Err()
	}
	policy := s.policy.Current()
	if as := req.GetAsCaller(); as != "" && as != caller {
		if !policy.Admin(caller) {
			return nil, errorStatus(errExplainNotAllowed).Err()
		}
		caller = as
	}
	resp, err := Explain(ctx, policy, s.gateway, caller, req)
	if err != nil {
		return nil, errorStatus(err).Err()
	}
	return resp, nil
}

// ValidateRequest checks a request message with the rules the server
// applies to every call (the .proto's protovalidate rules), and returns the
// same INVALID_ARGUMENT status with its details; nil when it is valid. For
// tools that decide offline what the server would.
func ValidateRequest(m proto.Message) error {
	v, err := protovalidate.New()
	if err != nil {
		return err
	}
	return newValidator(v).validate(m)
}

// errExplainNotAllowed: as_caller from a caller that is not an admin.
var errExplainNotAllowed = errors.New("explaining for another caller needs admin: true for yours in the policy")

// Explain decides req for caller as ExplainEmbedToken does, with gw's view
// of Power BI (the models the token would open, the request it would
// send), or, with gw nil, the policy's decision alone: what `embedgate
// explain` answers offline. A caller the policy does not list gets the real
// call's error (a gRPC status) and nothing of the policy.
func Explain(ctx context.Context, policy *authz.Policy, gw Gateway, caller string, req *embedgatev1.ExplainEmbedTokenRequest) (*embedgatev1.ExplainEmbedTokenResponse, error) {
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
	resp.Lifetime = durationpb.New(grant.Lifetime)
	resp.LifetimeClamped = grant.LifetimeClamped
	if id := grant.Identity; id != nil {
		resp.Identity = &embedgatev1.PolicyIdentity{Username: id.Username, Roles: id.Roles, CustomData: id.CustomData}
	}
	if gw == nil {
		resp.Allowed = true
		resp.Code = code.Code_OK.String()
		resp.Message = "allowed by " + grant.Rule + " (the policy alone: Power BI was not asked about the items)"
		return resp, nil
	}
	r, _, err := decidedRequest(ctx, gw, grant)
	var p *powerbi.Plan
	if err == nil {
		p, err = gw.Plan(ctx, r)
	}
	if err != nil {
		resp.Lifetime, resp.LifetimeClamped, resp.Identity = nil, false, nil
		explainError(resp, err)
		return resp, nil
	}
	resp.Allowed = true
	resp.Code = code.Code_OK.String()
	resp.Message = "allowed by " + grant.Rule
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
