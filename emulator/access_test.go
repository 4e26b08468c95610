package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// Ids of the roles fixture.
const (
	rolesTenant  = "10000000-0000-4000-8000-000000000001"
	appAdmin     = "1a000000-0000-4000-8000-000000000001"
	appMember    = "1a000000-0000-4000-8000-000000000002"
	appContrib   = "1a000000-0000-4000-8000-000000000003"
	appViewer    = "1a000000-0000-4000-8000-000000000004"
	objViewer    = "1b000000-0000-4000-8000-000000000004"
	appStranger  = "1a000000-0000-4000-8000-000000000005"
	profMember   = "1f000000-0000-4000-8000-000000000001" // appMember's, Member of wsRoles
	profViewer   = "1f000000-0000-4000-8000-000000000002" // appMember's, Viewer of wsRoles
	profStranger = "1f000000-0000-4000-8000-000000000003" // appAdmin's, no role anywhere
	wsRoles      = "20000000-0000-4000-8000-000000000001"
	wsOther      = "20000000-0000-4000-8000-000000000002" // holds dsOther
	repRoles     = "21000000-0000-4000-8000-000000000001" // on dsRoles
	repCross     = "21000000-0000-4000-8000-000000000002" // in wsRoles, on dsOther
	dsRoles      = "d2000000-0000-4000-8000-000000000001"
	dsOther      = "d2000000-0000-4000-8000-000000000002"
	dashRoles    = "22000000-0000-4000-8000-000000000001"
)

// rolesFixture gives one app each role in wsRoles (the viewer by its
// object id), two profiles of appMember their own roles, and wsOther a
// dataset some of them may only view.
const rolesFixture = `
tenants:
  - id: ` + rolesTenant + `
    apps:
      - {client_id: ` + appAdmin + `, object_id: 1b000000-0000-4000-8000-000000000001, secrets: [s],
         profiles: [{id: ` + profStranger + `}]}
      - client_id: ` + appMember + `
        object_id: 1b000000-0000-4000-8000-000000000002
        secrets: [s]
        profiles: [{id: ` + profMember + `, name: member}, {id: ` + profViewer + `, name: viewer}]
      - {client_id: ` + appContrib + `, object_id: 1b000000-0000-4000-8000-000000000003, secrets: [s]}
      - {client_id: ` + appViewer + `, object_id: ` + objViewer + `, secrets: [s]}
      - {client_id: ` + appStranger + `, object_id: 1b000000-0000-4000-8000-000000000005, secrets: [s]}
workspaces:
  - id: ` + wsRoles + `
    name: Roles
    access:
      - {principal: ` + appAdmin + `, role: Admin}
      - {principal: ` + appMember + `, role: member}
      - {principal: ` + appContrib + `, role: Contributor}
      - {principal: ` + objViewer + `, role: Viewer}
      - {principal: ` + profMember + `, role: Member}
      - {principal: ` + profViewer + `, role: Viewer}
    reports:
      - {id: ` + repRoles + `, name: R, dataset_id: ` + dsRoles + `}
      - {id: ` + repCross + `, name: Cross, dataset_id: ` + dsOther + `}
    datasets: [{id: ` + dsRoles + `}]
    dashboards:
      - {id: ` + dashRoles + `, tiles: [{id: 22100000-0000-4000-8000-000000000001, report_id: ` + repRoles + `}]}
  - id: ` + wsOther + `
    name: Other
    access:
      - {principal: ` + appAdmin + `, role: Member}
      - {principal: ` + appMember + `, role: Viewer}
    datasets: [{id: ` + dsOther + `}]
`

// TestWorkspaceRoles: what each role may do. Any role reads; generating
// an embed token needs Member in the workspace of every report and dataset;
// a target workspace needs Contributor. No role is 401, too low a role 403.
func TestWorkspaceRoles(t *testing.T) {
	t.Parallel()
	f, err := ParseFixture([]byte(rolesFixture))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Fixture: f})
	hc := httpClient(t, srv)
	g := "/v1.0/myorg/groups/" + wsRoles
	v2body := func(report, dataset string, target ...string) map[string]any {
		b := v2([]string{report}, []string{dataset}, nil)
		if len(target) > 0 {
			b["targetWorkspaces"] = []any{map[string]any{"id": target[0]}}
		}
		return b
	}
	calls := []struct {
		name, method, path string
		body               any
	}{
		{"get report", "GET", g + "/reports/" + repRoles, nil},
		{"get group", "GET", g, nil},
		{"V2", "POST", "/v1.0/myorg/GenerateToken", v2body(repRoles, dsRoles)},
		{"V2, dataset in another workspace", "POST", "/v1.0/myorg/GenerateToken", v2body(repCross, dsOther)},
		{"V2, target workspace", "POST", "/v1.0/myorg/GenerateToken", v2body(repRoles, dsRoles, wsOther)},
		{"V1 report", "POST", g + "/reports/" + repRoles + "/GenerateToken", map[string]any{"accessLevel": "View"}},
		{"V1 create", "POST", g + "/reports/GenerateToken", map[string]any{"accessLevel": "Create", "datasetId": dsRoles}},
		{"V1 dashboard", "POST", g + "/dashboards/" + dashRoles + "/GenerateToken", map[string]any{}},
		{"V1 report, dataset in another workspace", "POST", g + "/reports/" + repCross + "/GenerateToken", map[string]any{}},
	}
	principals := []struct {
		name, client, profile string
		want                  []int // per call above
	}{
		{"Admin", appAdmin, "", []int{200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"Member", appMember, "", []int{200, 200, 200, 403, 403, 200, 200, 200, 403}},
		{"Contributor", appContrib, "", []int{200, 200, 403, 401, 401, 403, 403, 403, 401}},
		{"Viewer, named by object id", appViewer, "", []int{200, 200, 403, 401, 401, 403, 403, 403, 401}},
		{"no role", appStranger, "", []int{401, 401, 401, 401, 401, 401, 401, 401, 401}},
		{"Member profile", appMember, profMember, []int{200, 200, 200, 401, 401, 200, 200, 200, 401}},
		{"Viewer profile", appMember, profViewer, []int{200, 200, 403, 401, 401, 403, 403, 403, 401}},
		{"profile without a role", appAdmin, profStranger, []int{401, 401, 401, 401, 401, 401, 401, 401, 401}},
		{"another app's profile", appAdmin, profMember, []int{401, 401, 401, 401, 401, 401, 401, 401, 401}},
		{"unknown profile", appMember, "1f000000-0000-4000-8000-0000000000ff", []int{401, 401, 401, 401, 401, 401, 401, 401, 401}},
	}
	for _, p := range principals {
		tok := appToken(t, srv, hc, rolesTenant, p.client, "s")
		for i, c := range calls {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				r := call(t, hc, c.method, srv.URL()+c.path, tok, c.body, "X-PowerBI-Profile-Id", p.profile)
				if r.status != p.want[i] {
					t.Fatalf("status %d, want %d: %s", r.status, p.want[i], r.raw)
				}
				switch r.status {
				case 401:
					if got := strings.TrimSpace(string(r.raw)); got != pbiErrorBody("PowerBINotAuthorizedException") {
						t.Errorf("401 body %s", got)
					}
				case 403:
					if errorCode(r) != "InsufficientPermissions" || !strings.Contains(errorMessage(r), "permission") {
						t.Errorf("403 body %s", r.raw)
					}
				case 200:
					if c.method == "POST" {
						info, _ := srv.LookupToken(r.body["tokenId"].(string))
						if info.ProfileID != p.profile || info.AppID != p.client {
							t.Errorf("token recorded for app %s profile %s", info.AppID, info.ProfileID)
						}
					}
				}
			})
		}
	}
}

// TestInsufficientRoleNamesTheItem: the 403 says which item, which
// workspace, which role the principal has and which it needs.
func TestInsufficientRoleNamesTheItem(t *testing.T) {
	t.Parallel()
	f, err := ParseFixture([]byte(rolesFixture))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Fixture: f})
	hc := httpClient(t, srv)
	tok := appToken(t, srv, hc, rolesTenant, appMember, "s")
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, v2([]string{repCross}, []string{dsOther}, nil))
	for _, want := range []string{dsOther, wsOther, "Viewer", "Member"} {
		if !strings.Contains(errorMessage(r), want) {
			t.Errorf("message %q lacks %q", errorMessage(r), want)
		}
	}
	r = call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, map[string]any{
		"reports": []any{map[string]any{"id": repRoles}}, "datasets": []any{map[string]any{"id": dsRoles}},
		"targetWorkspaces": []any{map[string]any{"id": wsOther}}})
	if !strings.Contains(errorMessage(r), "create reports in workspace "+wsOther) || !strings.Contains(errorMessage(r), "Contributor") {
		t.Errorf("target workspace: %s", r.raw)
	}
}

// TestAdminSwitch: the tenant setting "Service principals can use Fabric
// APIs" refuses every Power BI call of the principals it excludes with 401
// and X-PowerBI-Error-Info; Entra still issues their tokens.
func TestAdminSwitch(t *testing.T) {
	t.Parallel()
	const (
		inGroup  = "3a000000-0000-4000-8000-000000000001"
		outGroup = "3a000000-0000-4000-8000-000000000002"
		excepted = "3a000000-0000-4000-8000-000000000003"
		open     = "3a000000-0000-4000-8000-000000000004"
		ws       = "30000000-0000-4000-8000-000000000001"
	)
	app := func(id, groups string) string {
		return `{client_id: ` + id + `, object_id: ` + "3b" + id[2:] + `, secrets: [s], security_groups: ` + groups + `}`
	}
	f, err := ParseFixture([]byte(`
tenants:
  - id: 30000000-0000-4000-8000-0000000000a1
    service_principals: {enabled: true, security_groups: [pbi-apps], except_security_groups: [quarantine]}
    apps: [` + app(inGroup, "[PBI-Apps]") + `, ` + app(outGroup, "[other]") + `, ` + app(excepted, "[pbi-apps, quarantine]") + `]
  - id: 30000000-0000-4000-8000-0000000000a2
    apps: [` + app(open, "[]") + `]
workspaces:
  - id: ` + ws + `
    access: [{principal: ` + inGroup + `, role: Member}, {principal: ` + outGroup + `, role: Member},
             {principal: ` + excepted + `, role: Member}, {principal: ` + open + `, role: Member}]
`))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Fixture: f})
	locked := startServer(t, Config{}) // the demo fixture's locked tenant
	tests := []struct {
		name        string
		srv         *Server
		tenant, app string
		secret      string
		wantAllowed bool
	}{
		{"in the allowed group (any case)", srv, "30000000-0000-4000-8000-0000000000a1", inGroup, "s", true},
		{"outside the allowed groups", srv, "30000000-0000-4000-8000-0000000000a1", outGroup, "s", false},
		{"in an excepted group", srv, "30000000-0000-4000-8000-0000000000a1", excepted, "s", false},
		{"tenant without the setting", srv, "30000000-0000-4000-8000-0000000000a2", open, "s", true},
		{"setting off (demo tenant)", locked, lockedTenant, lockedClient, lockedSecret, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hc := httpClient(t, tc.srv)
			tok := appToken(t, tc.srv, hc, tc.tenant, tc.app, tc.secret)
			group := ws
			if tc.srv == locked {
				group = wsAcme
			}
			for _, u := range []string{"/v1.0/myorg/groups", "/v1.0/myorg/groups/" + group, "/v1.0/myorg/availableFeatures"} {
				r := call(t, hc, "GET", tc.srv.URL()+u, tok, nil)
				info := r.header.Get("X-PowerBI-Error-Info")
				if tc.wantAllowed {
					if r.status != 200 || info != "" {
						t.Errorf("%s: %d %q %s", u, r.status, info, r.raw)
					}
					continue
				}
				if r.status != 401 || info != "ServicePrincipalIsNotAllowedByTenantAdminSwitch" ||
					strings.TrimSpace(string(r.raw)) != pbiErrorBody("PowerBINotAuthorizedException") {
					t.Errorf("%s: %d %q %s", u, r.status, info, r.raw)
				}
			}
		})
	}
}

// TestProfilesLegacyFormat: the format before access and app profiles
// still means what it meant: members are Members, and a workspace listing
// profiles admits only those profiles of its members.
func TestProfilesLegacyFormat(t *testing.T) {
	t.Parallel()
	const (
		tenant = "40000000-0000-4000-8000-000000000001"
		app    = "4a000000-0000-4000-8000-000000000001"
		prof   = "4f000000-0000-4000-8000-000000000001"
		plain  = "40000000-0000-4000-8000-0000000000a1"
		byProf = "40000000-0000-4000-8000-0000000000a2"
	)
	f, err := ParseFixture([]byte(`
tenants:
  - id: ` + tenant + `
    apps: [{client_id: ` + app + `, object_id: 4b000000-0000-4000-8000-000000000001, secrets: [s]}]
workspaces:
  - {id: ` + plain + `, members: [` + app + `]}
  - {id: ` + byProf + `, members: [` + app + `], profiles: [` + prof + `]}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Fixture: f})
	hc := httpClient(t, srv)
	tok := appToken(t, srv, hc, tenant, app, "s")
	tests := []struct {
		ws, profile string
		want        int
	}{
		{plain, "", http.StatusOK},
		{plain, prof, http.StatusUnauthorized},
		{byProf, prof, http.StatusOK},
		{byProf, "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+tc.ws, tok, nil, "X-PowerBI-Profile-Id", tc.profile)
		if r.status != tc.want {
			t.Errorf("workspace %s, profile %q: %d, want %d", tc.ws, tc.profile, r.status, tc.want)
		}
	}
}
