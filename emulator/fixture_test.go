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
		{"demo", string(demoYAML), nil, 5},
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

func TestDemoFixtureContract(t *testing.T) {
	t.Parallel()
	f := DemoFixture()
	app := f.Tenants[0].Apps[0]
	if f.Tenants[0].ID != demoTenant || f.Tenants[0].Domains[0] != demoDomain || app.ClientID != demoClient ||
		app.ObjectID != demoObject || app.Secrets[0] != demoSecret || app.Name != "embedgate-dev" {
		t.Errorf("tenant %+v", f.Tenants[0])
	}
	w := newWorld(f)
	for _, id := range []string{repSales, repInventory, repInvoices, repGlobex, repPortal, repLedger} {
		if _, ok := w.reports[id]; !ok {
			t.Errorf("report %s missing", id)
		}
	}
	if w.workspace(wsGlobex).Profiles[0] != globexProf || len(w.workspace(wsFinance).Members) != 0 {
		t.Error("workspace access settings changed")
	}
	if d := w.datasets[dsPortal].item; !d.IdentityRequired || !d.RolesRequired || d.Roles[0] != "Tenant" {
		t.Errorf("portal dataset %+v", d)
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
