package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/server"
)

// preflightPolicy has one tenant per problem the preflight must name, and one
// tenant that is fine, all over the emulator's demo fixture.
const preflightPolicy = `
tenants:
  acme:        # fine: its one dataset without RLS is listed as such
    workspace_id: ` + acmeWorkspace + `
    reports: [` + salesReport + `, ` + invReport + `]
    rls: {roles: [Customer], without_rls: [` + invReport + `]}
  finance:     # the service principal has no role in the workspace
    workspace_id: a0000000-0000-4000-8000-000000000009
    reports: ["*"]
  sandbox:     # a workspace on shared capacity: trial tokens only
    workspace_id: a0000000-0000-4000-8000-000000000005
    reports: [a5000000-0000-4000-8000-000000000001]
  moved:       # a report that is not (or no longer) there
    workspace_id: ` + acmeWorkspace + `
    reports: [a1000000-0000-4000-8000-0000000000ff]
  leaky:       # RLS tenant on a model without RLS
    workspace_id: ` + acmeWorkspace + `
    reports: [` + invReport + `]
    rls: {roles: [Customer]}
  open:        # no RLS block on a model that requires an identity
    workspace_id: ` + acmeWorkspace + `
    reports: [` + salesReport + `]
`

// TestPreflight: each problem of a production setup is found before any
// caller meets it, named by tenant and id, and nothing is minted.
func TestPreflight(t *testing.T) {
	t.Parallel()
	emu, err := emulator.Start(context.Background(), emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	policy, err := authz.Parse([]byte(preflightPolicy))
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, tenant, clientID, secret string) []string {
		t.Helper()
		dir := t.TempDir()
		writeFile(t, dir, "ca.pem", string(emu.CACertPEM()))
		writeFile(t, dir, "secret", secret)
		gw, err := powerbi.New(powerbi.Config{AuthorityHost: emu.URL(), APIURL: emu.URL(), CAFile: filepath.Join(dir, "ca.pem"),
			TenantID: tenant, ClientID: clientID, ClientSecretFile: filepath.Join(dir, "secret")})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, f := range server.Preflight(context.Background(), policy, gw) {
			lines = append(lines, f.String())
		}
		return lines
	}

	emu.ResetCounters()
	got := check(t, entraTenant, clientID, clientSecret)
	want := []string{
		"tenant finance: workspace a0000000-0000-4000-8000-000000000009: Embedgate's service principal has no role in it, or it does not exist: add it as Member or Admin",
		"tenant leaky: dataset " + invDataset + " of report " + invReport + ": enforces no row-level security, and the tenant has an rls block: calls are refused (RLS_NOT_ENFORCED); restore the model's roles, or list it under rls.without_rls",
		"tenant moved: report a1000000-0000-4000-8000-0000000000ff: not found in its workspace (moved or deleted?)",
		"tenant open: dataset " + salesDataset + " of report " + salesReport + ": requires an effective identity (row-level security), and the tenant has no rls block: calls are refused",
		"tenant sandbox: workspace a0000000-0000-4000-8000-000000000005: is not on a dedicated capacity: only a limited number of trial embed tokens can be minted (0% used); assign it to a Power BI Embedded or Fabric capacity",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	minted := 0
	for route, n := range emu.Counters() {
		if strings.Contains(route, "GenerateToken") {
			minted += int(n)
		}
	}
	if minted != 0 {
		t.Errorf("the preflight minted %d token(s)", minted)
	}

	t.Run("the tenant setting blocks service principals", func(t *testing.T) {
		got := check(t, "c0ffee00-0000-4000-8000-000000000002", "c0ffee00-0000-4000-8000-0000000000a2", "embedgate-locked-secret")
		if len(got) == 0 || !strings.HasPrefix(got[0], `tenant setting: Power BI's tenant setting "Service principals can use Fabric APIs"`) {
			t.Fatalf("findings = %q, want the tenant setting first", got)
		}
		if n := countPrefix(got, "tenant setting"); n != 1 {
			t.Errorf("the tenant setting was named %d times, want once", n)
		}
	})
	t.Run("Entra rejects the secret", func(t *testing.T) {
		got := check(t, entraTenant, clientID, "the-secret-id-not-its-value")
		if len(got) != 1 || !strings.HasPrefix(got[0], "sign-in: ") || !strings.Contains(got[0], "AADSTS7000215") || !strings.Contains(got[0], "not its Secret ID") {
			t.Errorf("findings = %q, want one sign-in finding naming AADSTS7000215 and the secret's Value", got)
		}
	})
}

func countPrefix(lines []string, prefix string) int {
	return len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, prefix) }))
}

// TestCheckOnline: the CLI's path reads the config's credential and policy.
func TestCheckOnline(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	cfg, err := server.LoadConfig(filepath.Join(s.dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	findings, err := server.CheckOnline(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// testPolicy's finance tenant is the one the demo app has no role in;
	// leaky's model enforces no RLS.
	var got []string
	for _, f := range findings {
		got = append(got, fmt.Sprint(f))
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "tenant finance: workspace a0000000-0000-4000-8000-000000000009") ||
		!strings.HasPrefix(got[1], "tenant leaky: dataset "+invDataset) {
		t.Errorf("findings = %q, want the finance workspace and leaky's dataset", got)
	}
}

// TestCheckOnlineModels: `check --online` reports a policy that does not fit
// a dataset's kind of model, each with what to change, and nothing for the
// tenant whose identities fit every kind.
func TestCheckOnlineModels(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{policy: modelsPolicy})
	cfg, err := server.LoadConfig(filepath.Join(s.dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	findings, err := server.CheckOnline(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	want := []string{
		"tenant aas-end-user: report " + aasReport + ": dataset " + aasDataset + " of report " + aasReport + " is a live connection to Azure Analysis Services: Power BI requires the service principal's object id as the username, and the tenant's policy sends another; set its username to service_principal (the end user goes in custom_data): calls are refused (IDENTITY_KIND_MISMATCH, tenants.aas-end-user.rls.username)",
		"tenant composite-outside: dataset " + invDataset + " of report " + compReport + `: read by ` + compDataset + `, is in workspace "` + acmeWorkspace + `", none of the tenant's: calls are refused (DATASET_NOT_ALLOWED); if that workspace is the tenant's, list it under workspaces, else fix the model`,
		"tenant paginated-outside: dataset " + salesDataset + " of report " + statements + `: read by ` + statements + `, is in workspace "", none of the tenant's: calls are refused (DATASET_NOT_ALLOWED); if that workspace is the tenant's, list it under workspaces, else fix the model`,
		"tenant ssas-custom-data: report " + ssasReport + ": dataset " + ssasDataset + " of report " + ssasReport + ` is a live connection to SQL Server Analysis Services, which takes no customData: set its custom_data to "": calls are refused (IDENTITY_KIND_MISMATCH, tenants.ssas-custom-data.rls.datasets.` + ssasDataset + `.custom_data)`,
		"tenant sso-not-sso: report " + invReport + ": dataset " + invDataset + " of report " + invReport + " has no single sign-on data source (Azure SQL Database, Azure Databricks): the tenant's sso list must not name it: calls are refused (SSO_NOT_APPLICABLE, tenants.sso-not-sso.sso)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
