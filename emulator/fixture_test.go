package emulator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFixture(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		doc       string
		wantErrs  []string
		wantTotal int // workspaces, when valid
	}{
		{"demo", string(demoYAML), nil, 8},
		{"json", `{"tenants":[{"id":"11111111-1111-4111-8111-111111111111","apps":[{"client_id":"21111111-1111-4111-8111-111111111111","object_id":"31111111-1111-4111-8111-111111111111","secrets":["s"]}]}],
		  "workspaces":[{"id":"41111111-1111-4111-8111-111111111111","members":["21111111-1111-4111-8111-111111111111"]}]}`, nil, 1},
		{"tile on another dataset than its report", `
tenants: []
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    reports: [{id: 51111111-1111-4111-8111-111111111111, dataset_id: d1}]
    datasets: [{id: d1}, {id: d2}]
    dashboards:
      - id: 61111111-1111-4111-8111-111111111111
        tiles: [{id: 71111111-1111-4111-8111-111111111111, report_id: 51111111-1111-4111-8111-111111111111, dataset_id: d2}]
`, []string{`workspaces[0].dashboards[0].tiles[0].dataset_id: "d2" is not the dataset of report`}, 0},
		{"unknown key", "tenants: []\nworkspace: []\n", []string{"workspace"}, 0},
		{"users, public clients, APIs, Conditional Access", `
tenants:
  - id: 11111111-1111-4111-8111-111111111111
    device_code_interval: -1
    users:
      - {upn: a@x.example, object_id: 31111111-1111-4111-8111-111111111111, license: enterprise}
      - {upn: not-an-upn, object_id: a1}
      - {upn: A@X.EXAMPLE, object_id: 31111111-1111-4111-8111-111111111112,
         my_workspace: {reports: [{id: 51111111-1111-4111-8111-111111111111, dataset_id: gone}]}}
    conditional_access:
      - {id: p1, users: [nobody@x.example], resources: [""]}
    apps:
      - {client_id: 21111111-1111-4111-8111-111111111111, object_id: 21111111-1111-4111-8111-111111111112, public_client: true,
         consented_users: [a@x.example, stranger@x.example]}
      - {client_id: 21111111-1111-4111-8111-111111111113, object_id: 21111111-1111-4111-8111-111111111114, secrets: [s],
         api: {identifier_uri: "no scheme", scopes: ["a b"], access_token_version: 3}}
      - {client_id: 21111111-1111-4111-8111-111111111115, object_id: 21111111-1111-4111-8111-111111111116, secrets: [s], api: {}}
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    access: [{principal: a@x.example, role: Viewer}, {principal: ghost@x.example, role: Viewer}]
`, []string{
			"tenants[0].device_code_interval: negative",
			`tenants[0].users[0].license: "enterprise" is not free, pro or ppu`,
			`tenants[0].users[1].upn: "not-an-upn" is not a user principal name`,
			`tenants[0].users[1].object_id: "a1" is not a uuid`,
			`tenants[0].users[2].upn: duplicate id "A@X.EXAMPLE"`,
			`tenants[0].conditional_access[0].id: "p1" is not a uuid`,
			`tenants[0].conditional_access[0].users[0]: "nobody@x.example" is no user of the tenant`,
			"tenants[0].conditional_access[0].resources[0]: empty",
			`tenants[0].apps[0].consented_users[1]: "stranger@x.example" is no user of the tenant`,
			`tenants[0].apps[1].api.identifier_uri: "no scheme" is not a URI`,
			`tenants[0].apps[1].api.scopes[0]: "a b" is not a scope name`,
			"tenants[0].apps[1].api.access_token_version: 3 is not 1 or 2",
			"tenants[0].apps[2].api.scopes: at least one scope",
			`tenants[0].users[2].my_workspace.reports[0].dataset_id: unknown dataset "gone"`,
			`workspaces[0].access[1].principal: "ghost@x.example" is no app`,
		}, 0},
		{"models: live connections, SSO, composite, paginated", `
tenants: []
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    reports:
      - {id: 51111111-1111-4111-8111-111111111111, dataset_id: d1, datasets: [d2], datasources: [{type: Sql}], paginated_visuals: [51111111-1111-4111-8111-111111111112]}
      - {id: 51111111-1111-4111-8111-111111111112, paginated: true, datasets: [nope], paginated_visuals: [51111111-1111-4111-8111-111111111111],
         datasources: [{type: AnalysisServices, server: "asazure://x/y", sso: true, audience: a}]}
    datasets:
      - {id: d1, datasources: [{type: AnalysisServices, server: "asazure://x/y"}]}
      - id: d2
        identity_required: true
        datasources:
          - {type: AnalysisServices, server: onprem}
          - {type: Oracle, sso: true}
          - {server: s}
          - {type: AnalysisServices, server: ssas, gateway: {id: g, datasource_id: 91111111-1111-4111-8111-111111111111, admins: [someone]}}
      - {id: d3, upstream_datasets: [d3, d4, missing]}
      - {id: d4, upstream_datasets: [d3]}
`, []string{
			"workspaces[0].reports[0].datasets: only a paginated report lists datasets",
			"workspaces[0].reports[0].datasources: only a paginated report has its own data sources",
			`workspaces[0].reports[1].paginated_visuals[0]: "51111111-1111-4111-8111-111111111111" is not a paginated report`,
			`workspaces[0].reports[1].datasets[0]: unknown dataset "nope"`,
			"workspaces[0].reports[1].paginated_visuals: only a Power BI report",
			"workspaces[0].reports[1].datasources[0].sso: a paginated report cannot be embedded with SSO to Analysis Services",
			"workspaces[0].datasets[0].identity_required: a live connection to Analysis Services always requires an effective identity",
			"workspaces[0].datasets[1].datasources: a live connection to Analysis Services is the model's only source",
			"workspaces[0].datasets[1].datasources[0]: an Analysis Services server is either in Azure",
			`workspaces[0].datasets[1].datasources[1].audience: required for an SSO source of type "Oracle"`,
			"workspaces[0].datasets[1].datasources[2].type: required",
			`workspaces[0].datasets[1].datasources[3].gateway.id: "g" is not a uuid`,
			`workspaces[0].datasets[1].datasources[3].gateway.admins[0]: "someone" is no app, profile or user`,
			"workspaces[0].datasets[2].upstream_datasets[0]: a dataset cannot read itself",
			`workspaces[0].datasets[2].upstream_datasets[1]: "d4" reads "d3" back (a cycle)`,
			`workspaces[0].datasets[2].upstream_datasets[2]: unknown dataset "missing"`,
			`workspaces[0].datasets[3].upstream_datasets[0]: "d3" reads "d4" back (a cycle)`,
		}, 0},
		{"secrets, profiles, federated credentials, roles and capacity", `
tenants:
  - id: 11111111-1111-4111-8111-111111111111
    service_principals: {enabled: true, security_groups: [g]}
    trial_token_limit: 5
    apps:
      - client_id: 21111111-1111-4111-8111-111111111111
        object_id: 31111111-1111-4111-8111-111111111111
        secrets: [plain, {value: dated, expires: 2030-01-01T00:00:00Z}]
        profiles: [{id: 81111111-1111-4111-8111-111111111111, name: p}]
      - client_id: 22111111-1111-4111-8111-111111111111
        object_id: 32111111-1111-4111-8111-111111111111
        federated_credentials:
          - issuer: https://issuer.example
            subject: s
            signing_key: |
` + indent(testCerts(t)[0].pem, "              ") + `
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    capacity: shared
    members: [21111111-1111-4111-8111-111111111111]
    access:
      - {principal: 32111111-1111-4111-8111-111111111111, role: viewer}
      - {principal: 81111111-1111-4111-8111-111111111111, role: Admin}
`, nil, 1},
		{"a secret's unknown key", `
tenants:
  - id: 11111111-1111-4111-8111-111111111111
    apps: [{client_id: 21111111-1111-4111-8111-111111111111, object_id: 31111111-1111-4111-8111-111111111111, secrets: [{value: v, expiry: 2030-01-01}]}]
`, []string{"expiry"}, 0},
		{"every access problem listed", `
tenants:
  - id: 11111111-1111-4111-8111-111111111111
    service_principals: {security_groups: [g]}
    trial_token_limit: -1
    apps:
      - client_id: 21111111-1111-4111-8111-111111111111
        object_id: 31111111-1111-4111-8111-111111111111
        secrets: [{value: ""}]
        profiles: [{id: 81111111-1111-4111-8111-111111111111}, {id: 81111111-1111-4111-8111-111111111111}, {id: nope}]
        federated_credentials:
          - {issuer: not a url, signing_key: nope}
          - {issuer: https://i.example, subject: s, audiences: [""], signing_key: nope}
          - {issuer: https://i.example, subject: s, signing_key: nope}
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    capacity: premium
    members: [21111111-1111-4111-8111-111111111111, 21111111-1111-4111-8111-111111111111]
    profiles: [81111111-1111-4111-8111-111111111111]
    access:
      - {principal: 99111111-1111-4111-8111-111111111111, role: Member}
      - {principal: 81111111-1111-4111-8111-111111111111, role: Owner}
  - id: 42111111-1111-4111-8111-111111111111
    profiles: [89111111-1111-4111-8111-111111111111]
`, []string{
			"tenants[0].trial_token_limit: negative",
			"tenants[0].service_principals.enabled: required",
			"tenants[0].apps[0].secrets[0]: empty secret",
			"tenants[0].apps[0].profiles[1].id: duplicate id",
			`tenants[0].apps[0].profiles[2].id: "nope" is not a uuid`,
			`tenants[0].apps[0].federated_credentials[0].issuer: "not a url" is not a URL`,
			"tenants[0].apps[0].federated_credentials[0].subject: required",
			"tenants[0].apps[0].federated_credentials[0].signing_key: no PEM block",
			"tenants[0].apps[0].federated_credentials[1].audiences[0]: empty",
			"tenants[0].apps[0].federated_credentials[1].signing_key",
			"tenants[0].apps[0].federated_credentials[2].signing_key",
			"tenants[0].apps[0].federated_credentials[2]: another credential has the same issuer and subject",
			`workspaces[0].capacity: "premium" is not dedicated or shared`,
			"workspaces[0].members[1]: duplicate id",
			"workspaces[0].profiles: cannot be combined with access",
			`workspaces[0].access[0].principal: "99111111-1111-4111-8111-111111111111" is no app`,
			`workspaces[0].access[1].role: "Owner" is not`,
			`workspaces[1].profiles[0]: "89111111-1111-4111-8111-111111111111" belongs to no app`,
		}, 0},
		{"empty", "", []string{"empty"}, 0},
		{"every problem listed", `
tenants:
  - id: not-a-uuid
    apps:
      - client_id: 21111111-1111-4111-8111-111111111111
        object_id: 31111111-1111-4111-8111-111111111111
        certificates: ["not pem"]
workspaces:
  - id: 41111111-1111-4111-8111-111111111111
    members: [99999999-1111-4111-8111-111111111111]
    reports:
      - {id: 51111111-1111-4111-8111-111111111111, dataset_id: nope}
      - {id: 51111111-1111-4111-8111-111111111111, paginated: true, dataset_id: d1}
      - {id: 52111111-1111-4111-8111-111111111111}
    datasets:
      - {id: d1, roles_required: true}
      - {id: d2, roles: ["a,b"], identity_required: true}
    dashboards:
      - id: 61111111-1111-4111-8111-111111111111
        tiles: [{id: 71111111-1111-4111-8111-111111111111, report_id: 00000000-1111-4111-8111-111111111111}]
`, []string{
			`tenants[0].id: "not-a-uuid" is not a uuid`,
			"tenants[0].apps[0].certificates[0]",
			"workspaces[0].members[0]",
			`workspaces[0].reports[0].dataset_id: unknown dataset "nope"`,
			"workspaces[0].reports[1].id: duplicate id",
			"workspaces[0].reports[1].dataset_id: a paginated report has no dataset",
			"workspaces[0].reports[2].dataset_id: required",
			"workspaces[0].datasets[0].roles_required: needs identity_required",
			"workspaces[0].datasets[0].roles: roles_required needs at least one role",
			"workspaces[0].datasets[1].roles[0]",
			"workspaces[0].dashboards[0].tiles[0].report_id: unknown report",
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFixture([]byte(tc.doc))
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("ParseFixture: %v", err)
				}
				if len(f.Workspaces) != tc.wantTotal {
					t.Errorf("%d workspaces", len(f.Workspaces))
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			var fe *FixtureError
			if len(tc.wantErrs) > 1 && (!errors.As(err, &fe) || len(fe.Problems) != len(tc.wantErrs)) {
				t.Errorf("want %d problems, got: %v", len(tc.wantErrs), err)
			}
		})
	}
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

func TestDemoFixtureContract(t *testing.T) {
	t.Parallel()
	f := DemoFixture()
	app := f.Tenants[0].Apps[0]
	if f.Tenants[0].ID != demoTenant || f.Tenants[0].Domains[0] != demoDomain || app.ClientID != demoClient ||
		app.ObjectID != demoObject || app.Secrets[0].Value != demoSecret || app.Name != "embedgate-dev" {
		t.Errorf("tenant %+v", f.Tenants[0])
	}
	w := newWorld(f)
	for _, id := range []string{repSales, repInventory, repInvoices, repGlobex, repPortal, repLedger, repTrial, repBoard,
		repAAS, repSSAS, repSSO, repComposite, repStatement, repExecutive} {
		if _, ok := w.reports[id]; !ok {
			t.Errorf("report %s missing", id)
		}
	}
	app1, app2 := &f.Tenants[0].Apps[0], &f.Tenants[1].Apps[0]
	roles := []struct {
		ws        string
		principal string
		want      Role
	}{
		{wsAcme, appKey(app1), RoleMember},
		{wsAcme, appKey(app2), RoleMember},
		{wsAcmeFin, appKey(app1), RoleMember},
		{wsGlobex, appKey(app1), ""},
		{wsGlobex, profileKey(globexProf), RoleMember},
		{wsPortal, appKey(app1), RoleMember},
		{wsTrial, appKey(app1), RoleMember},
		{wsBoard, appKey(app1), RoleViewer},
		{wsFinance, appKey(app1), ""},
	}
	for _, r := range roles {
		if got := w.roles[w.workspace(r.ws)][r.principal]; got != r.want {
			t.Errorf("role of %s in %s = %q, want %q", r.principal, r.ws, got, r.want)
		}
	}
	if !w.ownsProfile(app1, globexProf) || w.ownsProfile(app2, globexProf) {
		t.Error("the Globex profile is not the demo app's alone")
	}
	for _, ws := range f.Workspaces {
		if want := ws.ID == wsTrial; ws.shared() != want || ws.Capacity == "" {
			t.Errorf("workspace %s capacity %q", ws.ID, ws.Capacity)
		}
	}
	if f.Tenants[0].servicePrincipalsAllowed(app1) == f.Tenants[1].servicePrincipalsAllowed(app2) {
		t.Error("the tenant admin switch of the demo tenants changed")
	}
	if d := w.datasets[dsPortal].item; !d.IdentityRequired || !d.RolesRequired || d.Roles[0] != "Tenant" {
		t.Errorf("portal dataset %+v", d)
	}
	kinds := map[string]liveKind{dsAAS: liveAAS, dsSSAS: liveSSAS, dsSSO: notLive, dsComposite: notLive, dsSales: notLive}
	for id, want := range kinds {
		if got, _ := w.datasets[id].item.live(); got != want {
			t.Errorf("dataset %s live kind %d, want %d", id, got, want)
		}
	}
	if len(ssoSources(w.datasets[dsSSO].item.Datasources)) != 1 || len(ssoSources(w.datasets[dsTargets].item.Datasources)) != 1 ||
		len(w.upstreamClosure(w.datasets[dsComposite].item)) != 2 {
		t.Error("the demo's SSO and composite models changed")
	}
	users := []struct {
		upn      string
		licensed bool
		acme     Role
	}{{aliceUPN, true, RoleMember}, {bobUPN, false, RoleViewer}, {carolUPN, true, RoleViewer}}
	for _, u := range users {
		got := w.user(u.upn)
		if got == nil || got.licensed() != u.licensed || w.roles[w.workspace(wsAcme)][userKey(got)] != u.acme {
			t.Errorf("user %s: %+v", u.upn, got)
		}
	}
	cli := f.Tenants[0].app(cliClient)
	if cli == nil || !cli.PublicClient || !cli.AdminConsent || app.apiURI() != "api://"+demoClient ||
		w.consented(&f.Tenants[0].Apps[0], w.user(bobUPN)) || !w.consented(&f.Tenants[0].Apps[0], w.user(carolUPN)) {
		t.Error("the demo's apps for user flows changed")
	}
	if p := f.Tenants[0].ConditionalAccess; len(p) != 1 || p[0].ID != caPolicy || p[0].Users[0] != carolUPN {
		t.Errorf("conditional access %+v", p)
	}
	if tl := w.dashboards[dashAcme].item.tile(tileRevenue); tl == nil || tl.ReportID != repSales || tl.DatasetID != dsSales {
		t.Errorf("tile %+v", tl)
	}
}

func TestLoadFixtureAndCertsDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fixture.yaml")
	if err := os.WriteFile(path, demoYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := LoadFixture(path)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	a := startServer(t, Config{Fixture: f, CertsDir: certs})
	pem, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil || string(pem) != string(a.CACertPEM()) {
		t.Fatalf("ca.pem not written: %v", err)
	}
	b := startServer(t, Config{CertsDir: certs})
	if string(b.CACertPEM()) != string(a.CACertPEM()) {
		t.Error("second start did not reuse the CA")
	}
	call(t, httpClient(t, a), "GET", b.URL()+"/_emulator/counters", "", nil) // a's CA trusts b
	if _, err := LoadFixture(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
	if err := os.Remove(filepath.Join(certs, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), Config{CertsDir: certs}); err == nil {
		t.Error("half a CA: no error")
	}
}
