package authz

import "fmt"

// DecideForTenant decides r as Decide does once a caller may act for
// r.Tenant: the tenant's entry alone decides, r.Caller is not consulted.
// It is for the operator's tools, whose user holds the whole config
// (`embedgate token --config --tenant-key`), so that they reproduce exactly
// the grant a caller of the tenant would get.
func (p *Policy) DecideForTenant(r Request) (Grant, error) {
	t, ok := p.tenants[r.Tenant]
	if !ok {
		return Grant{}, &Denial{Reason: ErrTenantNotAllowed, Rule: "tenants",
			Message: fmt.Sprintf("the policy has no tenant %q", r.Tenant)}
	}
	return t.decide(r)
}
