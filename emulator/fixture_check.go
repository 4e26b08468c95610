package emulator

import (
	"fmt"
	"net/url"
	"strings"
)

// Validate checks references, uniqueness, credentials, access and the RLS
// settings, and returns a *FixtureError with every problem, or nil.
func (f *Fixture) Validate() error {
	var v validator
	known := v.tenants(f.Tenants)
	var list []keyedWorkspace
	for i, w := range f.Workspaces {
		list = append(list, keyedWorkspace{key: fmt.Sprintf("workspaces[%d]", i), ws: w})
	}
	for i, t := range f.Tenants {
		for j, u := range t.Users {
			if u.MyWorkspace != nil {
				list = append(list, keyedWorkspace{key: fmt.Sprintf("tenants[%d].users[%d].my_workspace", i, j),
					ws: Workspace{Reports: u.MyWorkspace.Reports, Datasets: u.MyWorkspace.Datasets}, personal: true})
			}
		}
	}
	v.workspaces(list, known)
	if len(v.problems) > 0 {
		return &FixtureError{Problems: v.problems}
	}
	return nil
}

// principalIDs are the ids a workspace's access may name, lower-cased:
// apps by client id and by object id, and profiles.
type principalIDs struct {
	apps     map[string]bool
	profiles map[string]bool
	users    map[string]bool // by object id and UPN
}

func (v *validator) tenants(tenants []Tenant) principalIDs {
	known := principalIDs{apps: map[string]bool{}, profiles: map[string]bool{}, users: map[string]bool{}}
	tenantIDs := map[string]bool{}
	apiURIs := map[string]bool{}
	for i, t := range tenants {
		key := fmt.Sprintf("tenants[%d]", i)
		v.id(key+".id", t.ID)
		v.unique(tenantIDs, key+".id", t.ID)
		for j, d := range t.Domains {
			if strings.TrimSpace(d) == "" || strings.ContainsAny(d, "/ ") {
				v.addf("%s.domains[%d]: %q is not a domain name", key, j, d)
			}
		}
		if t.TrialTokenLimit < 0 {
			v.addf("%s.trial_token_limit: negative", key)
		}
		if sp := t.ServicePrincipals; sp != nil && sp.Enabled == nil {
			v.addf("%s.service_principals.enabled: required (true or false)", key)
		}
		v.users(key, t, known)
		inTenant := map[string]bool{}
		for j, a := range t.Apps {
			akey := fmt.Sprintf("%s.apps[%d]", key, j)
			v.id(akey+".client_id", a.ClientID)
			v.unique(inTenant, akey+".client_id", a.ClientID)
			v.id(akey+".object_id", a.ObjectID)
			known.apps[strings.ToLower(a.ClientID)] = true
			known.apps[strings.ToLower(a.ObjectID)] = true
			if !a.PublicClient || len(a.Secrets)+len(a.Certificates)+len(a.FederatedCredentials) > 0 {
				v.credentials(akey, a)
			}
			v.appAPI(akey, a, apiURIs)
			for k, u := range a.ConsentedUsers {
				if t.user(u) == nil {
					v.addf("%s.consented_users[%d]: %q is no user of the tenant", akey, k, u)
				}
			}
			for k, p := range a.Profiles {
				pkey := fmt.Sprintf("%s.profiles[%d].id", akey, k)
				v.id(pkey, p.ID)
				v.unique(known.profiles, pkey, p.ID)
			}
		}
	}
	return known
}

// credentials checks an app's secrets, certificates and federated
// credentials.
func (v *validator) credentials(key string, a App) {
	if len(a.Secrets) == 0 && len(a.Certificates) == 0 && len(a.FederatedCredentials) == 0 {
		v.addf("%s: needs at least one of secrets, certificates, federated_credentials", key)
	}
	for k, s := range a.Secrets {
		if s.Value == "" {
			v.addf("%s.secrets[%d]: empty secret", key, k)
		}
	}
	for k, c := range a.Certificates {
		if _, err := parseCertPEM(c); err != nil {
			v.addf("%s.certificates[%d]: %v", key, k, err)
		}
	}
	seen := map[string]bool{}
	for k, fc := range a.FederatedCredentials {
		fkey := fmt.Sprintf("%s.federated_credentials[%d]", key, k)
		if u, err := url.Parse(fc.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
			v.addf("%s.issuer: %q is not a URL", fkey, fc.Issuer)
		}
		if fc.Subject == "" {
			v.addf("%s.subject: required", fkey)
		}
		for n, aud := range fc.Audiences {
			if aud == "" {
				v.addf("%s.audiences[%d]: empty", fkey, n)
			}
		}
		if _, err := parseKeyPEM(fc.SigningKey); err != nil {
			v.addf("%s.signing_key: %v", fkey, err)
		}
		// Entra refuses two credentials with the same issuer and subject.
		if pair := fc.Issuer + "\x00" + fc.Subject; seen[pair] {
			v.addf("%s: another credential has the same issuer and subject", fkey)
		} else {
			seen[pair] = true
		}
	}
}

// keyedWorkspace is a workspace to check and the key its problems are
// reported under; a personal one (My workspace) has items only.
type keyedWorkspace struct {
	key      string
	ws       Workspace
	personal bool
}

func (v *validator) workspaces(workspaces []keyedWorkspace, known principalIDs) {
	wsIDs := map[string]bool{}
	itemIDs := map[string]bool{}
	datasets := map[string]bool{}
	reports := map[string]Report{}
	byID := map[string]Dataset{}
	for _, kw := range workspaces {
		w := kw.ws
		for _, d := range w.Datasets {
			datasets[strings.ToLower(d.ID)] = true
			byID[strings.ToLower(d.ID)] = d
		}
		for _, r := range w.Reports {
			reports[strings.ToLower(r.ID)] = r
		}
	}
	for _, kw := range workspaces {
		key, w := kw.key, kw.ws
		if !kw.personal {
			v.id(key+".id", w.ID)
			v.unique(wsIDs, key+".id", w.ID)
			if w.Capacity != "" && w.Capacity != CapacityDedicated && w.Capacity != CapacityShared {
				v.addf("%s.capacity: %q is not %s or %s", key, w.Capacity, CapacityDedicated, CapacityShared)
			}
			v.access(key, w, known)
		}
		for j, r := range w.Reports {
			rkey := fmt.Sprintf("%s.reports[%d]", key, j)
			v.id(rkey+".id", r.ID)
			v.unique(itemIDs, rkey+".id", r.ID)
			v.reportModel(rkey, r, datasets, reports)
			switch {
			case r.Paginated && r.DatasetID != "":
				v.addf("%s.dataset_id: a paginated report has no dataset_id (list its Power BI datasets under datasets)", rkey)
			case !r.Paginated && r.DatasetID == "":
				v.addf("%s.dataset_id: required for a Power BI report (set paginated: true for RDL)", rkey)
			case r.DatasetID != "" && !datasets[strings.ToLower(r.DatasetID)]:
				v.addf("%s.dataset_id: unknown dataset %q", rkey, r.DatasetID)
			}
		}
		for j, d := range w.Datasets {
			dkey := fmt.Sprintf("%s.datasets[%d]", key, j)
			if d.ID == "" {
				v.addf("%s.id: required", dkey)
			}
			v.unique(itemIDs, dkey+".id", d.ID)
			if d.RolesRequired && !d.IdentityRequired {
				v.addf("%s.roles_required: needs identity_required", dkey)
			}
			if d.RolesRequired && len(d.Roles) == 0 {
				v.addf("%s.roles: roles_required needs at least one role", dkey)
			}
			if len(d.Roles) > 0 && !d.IdentityRequired {
				v.addf("%s.roles: a dataset with RLS roles needs identity_required", dkey)
			}
			for k, role := range d.Roles {
				if role == "" || len(role) > maxRoleLen || strings.Contains(role, ",") {
					v.addf("%s.roles[%d]: %q must be 1..%d characters without ','", dkey, k, role, maxRoleLen)
				}
			}
			v.datasetModel(dkey, d, byID, known)
		}
		for j, d := range w.Dashboards {
			dkey := fmt.Sprintf("%s.dashboards[%d]", key, j)
			v.id(dkey+".id", d.ID)
			v.unique(itemIDs, dkey+".id", d.ID)
			for k, t := range d.Tiles {
				tkey := fmt.Sprintf("%s.tiles[%d]", dkey, k)
				v.id(tkey+".id", t.ID)
				v.unique(itemIDs, tkey+".id", t.ID)
				rep, found := reports[strings.ToLower(t.ReportID)]
				switch {
				case t.ReportID != "" && !found:
					v.addf("%s.report_id: unknown report %q", tkey, t.ReportID)
				case t.DatasetID != "" && !datasets[strings.ToLower(t.DatasetID)]:
					v.addf("%s.dataset_id: unknown dataset %q", tkey, t.DatasetID)
				case found && t.DatasetID != "" && !strings.EqualFold(t.DatasetID, rep.DatasetID):
					// The dashboard's RLS rules apply to its tiles'
					// datasets: a tile reads the dataset of its report.
					v.addf("%s.dataset_id: %q is not the dataset of report %q (%q)", tkey, t.DatasetID, rep.ID, rep.DatasetID)
				}
			}
		}
	}
}

// access checks who may use a workspace: every principal is known and has
// one role.
func (v *validator) access(key string, w Workspace, known principalIDs) {
	listed := map[string]bool{}
	for j, m := range w.Members {
		mkey := fmt.Sprintf("%s.members[%d]", key, j)
		if !known.apps[strings.ToLower(m)] {
			v.addf("%s: no app with client_id %q in any tenant", mkey, m)
		}
		v.unique(listed, mkey, m)
	}
	for j, p := range w.Profiles {
		v.id(fmt.Sprintf("%s.profiles[%d]", key, j), p)
	}
	if len(w.Profiles) > 0 && len(w.Access) > 0 {
		v.addf("%s.profiles: cannot be combined with access (list the profiles there)", key)
	}
	if len(w.Profiles) > 0 && len(w.Members) == 0 {
		for j, p := range w.Profiles {
			if !known.profiles[strings.ToLower(p)] {
				v.addf("%s.profiles[%d]: %q belongs to no app (declare it under an app's profiles, or list the app in members)", key, j, p)
			}
		}
	}
	for j, a := range w.Access {
		akey := fmt.Sprintf("%s.access[%d]", key, j)
		id := strings.ToLower(a.Principal)
		if !known.has(id) {
			v.addf("%s.principal: %q is no app (client or object id), profile or user (UPN or object id)", akey, a.Principal)
		}
		if _, ok := parseRole(string(a.Role)); !ok {
			v.addf("%s.role: %q is not Admin, Member, Contributor or Viewer", akey, a.Role)
		}
		v.unique(listed, akey+".principal", a.Principal)
	}
}

type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) id(key, id string) {
	if id == "" {
		v.addf("%s: required", key)
		return
	}
	if !isUUID(id) {
		v.addf("%s: %q is not a uuid", key, id)
	}
}

func (v *validator) unique(seen map[string]bool, key, id string) {
	if id == "" {
		return
	}
	k := strings.ToLower(id)
	if seen[k] {
		v.addf("%s: duplicate id %q", key, id)
	}
	seen[k] = true
}
