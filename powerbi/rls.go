package powerbi

import (
	"slices"
	"strings"
)

// identitiesFor applies the RLS rules to datasets, before anything is minted:
//
//   - a dataset that requires an effective identity (isEffectiveIdentityRequired)
//     gets one, with roles where it requires roles; without an identity, or
//     without roles, the request fails with ErrIdentityRequired or
//     ErrRolesRequired;
//   - a dataset that enforces no RLS gets no identity (Power BI rejects one); but
//     if the request carries an identity (the tenant has RLS), such a dataset is
//     refused with ErrRLSNotEnforced unless Identity.WithoutRLS names it or every
//     requested report (or tile's report) on it: RLS fails closed.
//
// Datasets whose roles (Identity.rolesFor) are the same set share one identity;
// identities come in the order of their first dataset. refs name the report (or
// tile's report) on each dataset, for errors and the WithoutRLS rule.
func identitiesFor(id *Identity, datasets []datasetMeta, refs []datasetAt) ([]effectiveIdentity, error) {
	var out []effectiveIdentity
	bySet := map[string]int{} // role set -> index in out
	for _, d := range datasets {
		owners := ownersOf(refs, d.ID)
		if !d.IsEffectiveIdentityRequired {
			if id != nil && !exempt(id, d.ID, owners) {
				return nil, &PreconditionError{Kind: ErrRLSNotEnforced, DatasetID: d.ID, ReportID: first(owners)}
			}
			continue
		}
		if id == nil || id.Username == "" {
			return nil, &PreconditionError{Kind: ErrIdentityRequired, DatasetID: d.ID, ReportID: first(owners)}
		}
		roles := id.rolesFor(d.ID)
		if d.IsEffectiveIdentityRolesRequired && len(roles) == 0 {
			return nil, &PreconditionError{Kind: ErrRolesRequired, DatasetID: d.ID, ReportID: first(owners)}
		}
		set := slices.Compact(slices.Sorted(slices.Values(roles)))
		key := strings.Join(set, "\x00")
		if i, ok := bySet[key]; ok {
			out[i].Datasets = append(out[i].Datasets, d.ID)
			continue
		}
		bySet[key] = len(out)
		out = append(out, effectiveIdentity{Username: id.Username, Roles: roles, CustomData: id.CustomData, Datasets: []string{d.ID}})
	}
	return out, nil
}

// exempt reports whether the policy says a dataset without RLS may be embedded
// for an RLS tenant: the dataset itself, or every report on it, is WithoutRLS.
func exempt(id *Identity, datasetID string, owners []string) bool {
	if id.withoutRLS(datasetID) {
		return true
	}
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		if !id.withoutRLS(o) {
			return false
		}
	}
	return true
}

// ownersOf lists the reports (or tiles' reports) of refs on a dataset, each once.
func ownersOf(refs []datasetAt, datasetID string) []string {
	var out []string
	for _, ref := range refs {
		if strings.EqualFold(ref.id, datasetID) && ref.owner != "" && !slices.Contains(out, ref.owner) {
			out = append(out, ref.owner)
		}
	}
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
