package server

import (
	"context"

	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// TenantTokenRequest is the decision `embedgate token --config --tenant-key`
// makes: r decided by the tenant's entry of the policy, as the real call
// and ExplainEmbedToken decide it for a caller that may act for the tenant,
// then the gateway request the grant becomes, with the policy's decision on
// each dataset the token opens (decidedRequest: the same path as theirs), so
// that the operator's token is exactly the one the tenant's callers get.
func TenantTokenRequest(ctx context.Context, policy *authz.Policy, gw *powerbi.Client, r authz.Request) (authz.Grant, powerbi.TokenRequest, error) {
	g, err := policy.DecideForTenant(r)
	if err != nil {
		return authz.Grant{}, powerbi.TokenRequest{}, err
	}
	tr, _, err := decidedRequest(ctx, gw, g)
	if err != nil {
		return authz.Grant{}, powerbi.TokenRequest{}, err
	}
	return g, tr, nil
}

// StatusOf is the gRPC status a caller would get for err: the one error
// mapping (errors.go), for tools that report errors as the API does.
func StatusOf(err error) *status.Status { return errorStatus(err) }
