package emulator

import (
	"fmt"
	"strings"
)

// identityRules says how identities are checked against one request.
type identityRules struct {
	// datasets are the datasets the token covers, in request order.
	datasets []*Dataset
	// paginated are the paginated reports of the request: the only
	// reports identities[].reports may name.
	paginated []*Report
	// v1Defaults applies an identity without datasets to every dataset of
	// the request, and one without datasets or reports to the paginated
	// report of the request (V1, where the item implies both).
	v1Defaults bool
	// sources are the V2 datasourceIdentities.
	sources []datasourceIdentity
}

// identityCheck is one request's identities under review.
type identityCheck struct {
	s     *Server
	c     *caller
	rules identityRules
	ids   []effectiveIdentity
	out   []TokenIdentity
	// covering lists, per dataset, the identities that apply to it (by
	// index into ids and out).
	covering map[*Dataset][]int
	// blobs are the verified identity blobs, by identity index.
	blobs map[int]BlobInfo
}

// checkIdentities applies the effective-identity rules (RLS, and per kind
// of model: live connections, SSO) and returns the identities and
// datasource identities as recorded in the token.
func (s *Server) checkIdentities(c *caller, ids []effectiveIdentity, rules identityRules) ([]TokenIdentity, []TokenDatasourceIdentity, *apiError) {
	ic := &identityCheck{s: s, c: c, rules: rules, ids: ids, covering: map[*Dataset][]int{}, blobs: map[int]BlobInfo{}}
	if apiErr := ic.shapes(); apiErr != nil {
		return nil, nil, apiErr
	}
	for _, d := range rules.datasets {
		if apiErr := ic.dataset(d); apiErr != nil {
			return nil, nil, apiErr
		}
	}
	sources, apiErr := ic.datasourceIdentities()
	if apiErr != nil {
		return nil, nil, apiErr
	}
	if apiErr := ic.ssoCovered(); apiErr != nil {
		return nil, nil, apiErr
	}
	return ic.out, sources, nil
}

// shapes checks each identity on its own and finds the datasets it
// covers.
func (ic *identityCheck) shapes() *apiError {
	inRequest := map[string]*Dataset{}
	for _, d := range ic.rules.datasets {
		inRequest[strings.ToLower(d.ID)] = d
	}
	var paginatedIDs []string
	for _, r := range ic.rules.paginated {
		paginatedIDs = append(paginatedIDs, r.ID)
	}
	ic.out = make([]TokenIdentity, 0, len(ic.ids))
	for i := range ic.ids {
		id := &ic.ids[i]
		username := ""
		if id.Username != nil {
			username = *id.Username
		}
		switch {
		case username == "" && !id.hasBlob():
			// [unk] message; the schema marks username required and the
			// C# SDK refuses a null one. It may be omitted with identityBlob.
			return invalidRequest("Effective identity username must be provided.")
		case len(username) > maxUsernameLen:
			return invalidRequest(fmt.Sprintf("Effective identity username must be at most %d characters.", maxUsernameLen))
		case strings.ContainsAny(username, " \t\r\n"):
			return invalidRequest("Effective identity username must not contain spaces.")
		case len(id.Roles) > maxRoles:
			return invalidRequest(fmt.Sprintf("Effective identity can have at most %d roles.", maxRoles))
		}
		for _, role := range id.Roles {
			if role == "" || len(role) > maxRoleLen || strings.Contains(role, ",") {
				return invalidRequest(fmt.Sprintf("Effective identity role '%s' is invalid: a role has 1 to %d characters and no ','.", role, maxRoleLen))
			}
		}
		for _, rid := range id.Reports {
			if !containsFold(paginatedIDs, rid) {
				// [unk] message; the schema says identities[].reports is
				// for paginated reports only.
				return invalidRequest(fmt.Sprintf("Effective identity report %s is not one of the paginated reports of the request.", rid))
			}
		}
		datasets, reports := id.Datasets, id.Reports
		if len(datasets) == 0 {
			switch {
			case ic.rules.v1Defaults:
				for _, d := range ic.rules.datasets {
					datasets = append(datasets, d.ID)
				}
				if len(datasets) == 0 && len(reports) == 0 {
					reports = paginatedIDs
				}
			case len(id.Reports) == 0:
				// [unk] message; the troubleshooting page says datasets
				// is mandatory in any identity.
				return invalidRequest("Effective identity datasets must be provided.")
			}
		}
		if id.hasBlob() && len(datasets) == 0 && !ic.reportsHaveSSO(reports) {
			// [unk] message; paginated reports take their SSO blobs in
			// datasourceIdentities ("Embed Power BI paginated reports").
			return invalidRequest("Effective identity identityBlob is supported only for single sign-on data sources, and the reports of this identity have none.")
		}
		for _, dsID := range datasets {
			d, ok := inRequest[strings.ToLower(dsID)]
			if !ok {
				// [unk] message.
				return invalidRequest(fmt.Sprintf("Effective identity dataset %s is not one of the datasets of the request.", dsID))
			}
			ic.covering[d] = append(ic.covering[d], i)
		}
		ti := TokenIdentity{Username: username, Roles: nonNil(id.Roles), Datasets: nonNil(datasets), Reports: reports, HasIdentityBlob: id.hasBlob()}
		if id.CustomData != nil {
			ti.CustomData = *id.CustomData
		}
		if id.hasBlob() {
			value := id.blobValue()
			if value == "" {
				// [unk] message; IdentityBlob.value is required.
				return invalidRequest("Effective identity identityBlob must be an object with a string value.")
			}
			info, problem := ic.s.readBlob(value)
			if problem != "" {
				// [unk] message.
				return invalidRequest(fmt.Sprintf("Effective identity identityBlob %s.", problem))
			}
			ic.blobs[i] = info
			ti.IdentityBlob = &info
		}
		ic.out = append(ic.out, ti)
	}
	return nil
}

// reportsHaveSSO reports whether any of the paginated reports named has
// an SSO data source.
func (ic *identityCheck) reportsHaveSSO(ids []string) bool {
	for _, r := range ic.rules.paginated {
		if containsFold(ids, r.ID) && len(ssoSources(r.Datasources)) > 0 {
			return true
		}
	}
	return false
}

// dataset applies the RLS rules of one dataset to the identities that
// cover it, then the rules of its kind.
func (ic *identityCheck) dataset(d *Dataset) *apiError {
	got := ic.covering[d]
	switch {
	case d.IdentityRequired && len(got) == 0 && !ic.c.mayOmitIdentity(d):
		return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s requires effective identity to be provided", d.ID))
	case !d.IdentityRequired && len(got) > 0:
		return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s shouldn't have effective identity", d.ID))
	}
	for _, i := range got {
		id := &ic.ids[i]
		if d.RolesRequired && len(id.Roles) == 0 {
			return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s requires roles to be included in provided effective identity", d.ID))
		}
		for _, role := range id.Roles {
			if !containsFold(d.Roles, role) {
				// [unk] the real message for a role the model does not define.
				return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s failed: role '%s' is not defined on the dataset", d.ID, role))
			}
		}
		if id.hasBlob() && len(ssoSources(d.Datasources)) == 0 {
			// [unk] message; the schema: identityBlob is "Only supported
			// for datasets with a DirectQuery connection to Azure SQL".
			return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s failed: identityBlob is supported only for datasets with a DirectQuery connection with single sign-on.", d.ID))
		}
		if apiErr := ic.liveRules(d, &ic.out[i]); apiErr != nil {
			return apiErr
		}
	}
	return nil
}

// liveRules applies the rules of Analysis Services live connections to
// one identity.
func (ic *identityCheck) liveRules(d *Dataset, id *TokenIdentity) *apiError {
	kind, src := d.live()
	switch kind {
	case liveAAS:
		// "The username must be same as API caller, in this case, the
		// Service principal ObjectId or Service principal profile
		// ObjectId" (Embed a report with an Azure Analysis Services
		// database); the message is the one recorded in
		// github.com/MicrosoftDocs/powerbi-docs/issues/910, typo included.
		// [unk] status and code.
		if !strings.EqualFold(id.Username, ic.c.principalName()) {
			return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s requries effective identity username to be identical to the caller's principal name", d.ID))
		}
	case liveSSAS:
		g := src.Gateway
		if !ic.c.isAny(g.Admins) && !ic.c.isAny(g.ReadOverrideEffectiveIdentity) {
			// [unk] status, code and message; the requirement is in
			// "Embed a report on an on-premises SQL Server Analysis
			// Services (SSAS)".
			return &apiError{status: 403, code: "InsufficientPermissions", message: fmt.Sprintf(
				"Creating embed token for accessing dataset %s failed: the caller is not an admin of gateway %s and has no ReadOverrideEffectiveIdentity permission on its data source %s, so it cannot set the effective identity.",
				d.ID, g.ID, g.DatasourceID)}
		}
		switch {
		case !onPremUsernameOK(id.Username):
			// [unk] message; the rule is the schema's.
			return invalidRequest(`Effective identity username for an on-premises model may contain only letters, digits and . - _ ! # ^ ~ \ @.`)
		case !containsFold(g.Users, id.Username):
			// [unk] message.
			return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s failed: the effective identity username is not a user of data source %s.", d.ID, src.label()))
		case id.CustomData != "":
			// [unk] message; the schema: customData is "Supported for live
			// connection to Azure Analysis Services models and cloud
			// models only".
			return invalidRequest(fmt.Sprintf("Creating embed token for accessing dataset %s failed: customData is supported only for live connections to Azure Analysis Services and cloud models.", d.ID))
		}
	}
	return nil
}

// datasourceIdentities checks the V2 datasourceIdentities: each names SSO
// sources of the request and carries a blob this Entra ID issued for
// them.
func (ic *identityCheck) datasourceIdentities() ([]TokenDatasourceIdentity, *apiError) {
	var out []TokenDatasourceIdentity
	for _, di := range ic.rules.sources {
		if strings.TrimSpace(di.IdentityBlob) == "" || len(di.Datasources) == 0 {
			// [unk] message; both are required by the schema.
			return nil, invalidRequest("A datasourceIdentities entry needs an identityBlob and at least one data source.")
		}
		info, problem := ic.s.readBlob(di.IdentityBlob)
		if problem != "" {
			// [unk] message.
			return nil, invalidRequest(fmt.Sprintf("The identityBlob of datasourceIdentities %s.", problem))
		}
		entry := TokenDatasourceIdentity{IdentityBlob: info}
		for i := range di.Datasources {
			sel := &di.Datasources[i]
			src := ic.findSource(sel)
			if src == nil {
				// [unk] message.
				return nil, invalidRequest(fmt.Sprintf("datasourceIdentities names data source %s %s, which is not a single sign-on data source of the request.",
					sel.DatasourceType, sel.ConnectionDetails.Server))
			}
			if !sameResource(info.Audience, src.audience()) {
				return nil, wrongAudience("the request", src, info.Audience)
			}
			entry.Datasources = append(entry.Datasources, TokenDatasource{DatasourceType: src.Type,
				Server: src.Server, Database: src.Database, URL: src.URL, Path: src.Path, Kind: src.Kind})
		}
		out = append(out, entry)
	}
	return out, nil
}

// findSource finds the SSO data source of the request a selector names.
func (ic *identityCheck) findSource(sel *datasourceSelector) *Datasource {
	for _, list := range ic.sourceLists() {
		for _, src := range ssoSources(list) {
			if sel.matches(src) {
				return src
			}
		}
	}
	return nil
}

func (ic *identityCheck) sourceLists() [][]Datasource {
	var lists [][]Datasource
	for _, d := range ic.rules.datasets {
		lists = append(lists, d.Datasources)
	}
	for _, r := range ic.rules.paginated {
		lists = append(lists, r.Datasources)
	}
	return lists
}

// viaDatasourceIdentity reports whether a datasourceIdentities entry
// names src (its blob was checked already).
func (ic *identityCheck) viaDatasourceIdentity(src *Datasource) bool {
	for _, di := range ic.rules.sources {
		for i := range di.Datasources {
			if di.Datasources[i].matches(src) {
				return true
			}
		}
	}
	return false
}

// ssoCovered requires an identity blob for every SSO data source of the
// request, from datasourceIdentities or from an identity covering the
// dataset (or naming the paginated report), issued for the source's
// audience.
func (ic *identityCheck) ssoCovered() *apiError {
	for _, d := range ic.rules.datasets {
		for _, src := range ssoSources(d.Datasources) {
			if apiErr := ic.blobFor("dataset "+d.ID, src, ic.covering[d], ic.c.mayOmitIdentity(d)); apiErr != nil {
				return apiErr
			}
		}
	}
	for _, r := range ic.rules.paginated {
		var naming []int
		for i, ti := range ic.out {
			if containsFold(ti.Reports, r.ID) {
				naming = append(naming, i)
			}
		}
		for _, src := range ssoSources(r.Datasources) {
			if apiErr := ic.blobFor("report "+r.ID, src, naming, false); apiErr != nil {
				return apiErr
			}
		}
	}
	return nil
}

// blobFor finds the blob for one SSO source of an item.
func (ic *identityCheck) blobFor(item string, src *Datasource, identities []int, mayOmit bool) *apiError {
	if ic.viaDatasourceIdentity(src) {
		return nil
	}
	for _, i := range identities {
		if info, ok := ic.blobs[i]; ok {
			if !sameResource(info.Audience, src.audience()) {
				return wrongAudience(item, src, info.Audience)
			}
			return nil
		}
	}
	if mayOmit && len(identities) == 0 {
		return nil
	}
	// [unk] message; "Service principals must always provide ... for an
	// SSO dataset, an effective RLS identity with the contextual (SSO)
	// identity defined" (Generate an embed token).
	return invalidRequest(fmt.Sprintf("Creating embed token for accessing %s requires an identity blob for its single sign-on data source %s.", item, src.label()))
}

// wrongAudience is the refusal of a blob issued for another resource.
// [unk] message.
func wrongAudience(item string, src *Datasource, got string) *apiError {
	return invalidRequest(fmt.Sprintf("Creating embed token for accessing %s failed: the identity blob for data source %s is an access token for '%s', not for '%s'.",
		item, src.label(), got, src.audience()))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
