package server

import (
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// TenantTokenRequest is the decision `embedgate token --config --tenant-key`
// makes: r decided by the tenant's entry of the policy, as
// ExplainEmbedToken and the real call decide it for a caller that may act
// for the tenant, and the gateway request the grant becomes (the same
// mapping as theirs), so that the operator's token is exactly the one the
// tenant's callers get.
func TenantTokenRequest(policy *authz.Policy, r authz.Request) (authz.Grant, powerbi.TokenRequest, error) {
	g, err := policy.DecideForTenant(r)
	if err != nil {
		return authz.Grant{}, powerbi.TokenRequest{}, err
	}
	return g, tokenRequest(g), nil
}

// StatusOf is the gRPC status a caller would get for err: the one error
// mapping (errors.go), for tools that report errors as the API does.
func StatusOf(err error) *status.Status { return errorStatus(err) }
