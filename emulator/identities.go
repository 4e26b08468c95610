package emulator

import (
	"fmt"
	"strings"
)

// identityRules says how identities are checked against one request.
type identityRules struct {
	// datasets are the datasets the token covers, in request order.
	datasets []*Dataset
	// paginatedIDs are the paginated reports of the request: the only
	// reports identities[].reports may name.
	paginatedIDs []string
	// v1Defaults applies an identity without datasets to every dataset of
	// the request, and one without datasets or reports to the paginated
	// report of the request (V1, where the item implies both).
	v1Defaults bool
}

// checkIdentities applies the effective-identity (RLS) rules and returns
// the identities as recorded in the token.
func checkIdentities(ids []effectiveIdentity, rules identityRules) ([]TokenIdentity, *apiError) {
	inRequest := map[string]*Dataset{}
	for _, d := range rules.datasets {
		inRequest[strings.ToLower(d.ID)] = d
	}
	out := make([]TokenIdentity, 0, len(ids))
	covering := map[*Dataset][]*effectiveIdentity{}
	for i := range ids {
		id := &ids[i]
		username := ""
		if id.Username != nil {
			username = *id.Username
		}
		switch {
		case username == "" && !id.hasBlob():
			// [unk] message; the schema marks username required and the
			// C# SDK refuses a null one. It may be omitted with identityBlob.
			return nil, invalidRequest("Effective identity username must be provided.")
		case len(username) > maxUsernameLen:
			return nil, invalidRequest(fmt.Sprintf("Effective identity username must be at most %d characters.", maxUsernameLen))
		case strings.ContainsAny(username, " \t\r\n"):
			return nil, invalidRequest("Effective identity username must not contain spaces.")
		case len(id.Roles) > maxRoles:
			return nil, invalidRequest(fmt.Sprintf("Effective identity can have at most %d roles.", maxRoles))
		}
		for _, role := range id.Roles {
			if role == "" || len(role) > maxRoleLen || strings.Contains(role, ",") {
				return nil, invalidRequest(fmt.Sprintf("Effective identity role '%s' is invalid: a role has 1 to %d characters and no ','.", role, maxRoleLen))
			}
		}
		for _, rid := range id.Reports {
			if !containsFold(rules.paginatedIDs, rid) {
				// [unk] message; the schema says identities[].reports is
				// for paginated reports only.
				return nil, invalidRequest(fmt.Sprintf("Effective identity report %s is not one of the paginated reports of the request.", rid))
			}
		}
		datasets, reports := id.Datasets, id.Reports
		if len(datasets) == 0 {
			switch {
			case rules.v1Defaults:
				for _, d := range rules.datasets {
					datasets = append(datasets, d.ID)
				}
				if len(datasets) == 0 && len(reports) == 0 {
					reports = rules.paginatedIDs
				}
			case len(id.Reports) == 0:
				// [unk] message; the troubleshooting page says datasets
				// is mandatory in any identity.
				return nil, invalidRequest("Effective identity datasets must be provided.")
			}
		}
		for _, dsID := range datasets {
			d, ok := inRequest[strings.ToLower(dsID)]
			if !ok {
				// [unk] message.
				return nil, invalidRequest(fmt.Sprintf("Effective identity dataset %s is not one of the datasets of the request.", dsID))
			}
			covering[d] = append(covering[d], id)
		}
		ti := TokenIdentity{Username: username, Roles: nonNil(id.Roles), Datasets: nonNil(datasets), Reports: reports, HasIdentityBlob: id.hasBlob()}
		if id.CustomData != nil {
			ti.CustomData = *id.CustomData
		}
		out = append(out, ti)
	}
	for _, d := range rules.datasets {
		got := covering[d]
		switch {
		case d.IdentityRequired && len(got) == 0:
			return nil, invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s requires effective identity to be provided", d.ID))
		case !d.IdentityRequired && len(got) > 0:
			return nil, invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s shouldn't have effective identity", d.ID))
		}
		for _, id := range got {
			if d.RolesRequired && len(id.Roles) == 0 {
				return nil, invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s requires roles to be included in provided effective identity", d.ID))
			}
			for _, role := range id.Roles {
				if !containsFold(d.Roles, role) {
					// [unk] the real message for a role the model does not define.
					return nil, invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s failed: role '%s' is not defined on the dataset", d.ID, role))
				}
			}
		}
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
