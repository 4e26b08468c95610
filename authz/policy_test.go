package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// tenantYAML is a valid tenant block the parse cases extend or break.
const tenantYAML = `
tenants:
  acme:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
`

// withTenant returns a policy whose acme tenant has the given extra lines (indented
// for the tenant block).
func withTenant(extra string) string {
	return tenantYAML + extra
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
	}{
		{"empty file", ""},
		{"only a comment", "# nothing yet\n"},
		{"no callers", tenantYAML},
		{"no tenants", "callers: []\ntenants: {}\n"},
		{"caller with wildcard", `
callers:
  - id: spiffe://mesh.example/ns/web/sa/frontend
    tenants: ["*"]
    rate_limit: {per_second: 0.5, burst: 1}
` + tenantYAML},
		{"every tenant field", withTenant(`    profile_id: 22222222-2222-2222-2222-22222222222A
    rls:
      roles: [Customer, "Region Manager"]
      username: "{user}@{tenant}"
      custom_data: "tenant={tenant}; user={user}"
    allow_edit: true
    max_lifetime: 24h
    default_lifetime: 1m
`)},
		{"every kind of model: per-dataset identities, the service principal, single sign-on", withTenant(`    rls:
      roles: [Customer]
      username: service_principal
      custom_data: "{user}"
      dataset_roles:
        ffffffff-0000-0000-0000-000000000001: [Region]
      datasets:
        ffffffff-0000-0000-0000-000000000002: {username: 'CORP\{user}', custom_data: "", roles: []}
        ffffffff-0000-0000-0000-000000000003: {roles: [Reader]}
        ffffffff-0000-0000-0000-000000000004: {username: service_principal}
    sso: ["*"]
`)},
		{"sso by id", withTenant("    sso: [ffffffff-0000-0000-0000-000000000001, FFFFFFFF-0000-0000-0000-000000000002]\n")},
		{"tenant key edge shapes", `
tenants:
  a:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
  a.b_c-d9:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
  ` + strings.Repeat("x", 63) + `:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
`},
		{"fifty roles, one of fifty characters", withTenant("    rls: {roles: [" + strings.Repeat("r", 50) + manyRoles(49) + "]}\n")},
		{"anchors and merge keys", `
callers:
  - {id: "spiffe://mesh.example/a", tenants: &all [acme, globex]}
  - {id: "spiffe://mesh.example/b", tenants: *all}
tenants:
  acme: &base
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
    rls: {roles: [Customer]}
  globex:
    <<: *base
    workspace_id: 22222222-2222-2222-2222-222222222222
`},
		{"rls with default username", withTenant("    rls: {roles: [Customer]}\n")},
		{"full tenant model", withTenant(`    dashboards: ["*"]
    workspaces:
      - id: 22222222-2222-2222-2222-222222222222
        reports: [aaaaaaaa-0000-0000-0000-000000000001, AAAAAAAA-0000-0000-0000-000000000002]
        dashboards: [cccccccc-0000-0000-0000-000000000001]
      - id: 33333333-3333-3333-3333-333333333333
        dashboards: [cccccccc-0000-0000-0000-000000000002]
    rls:
      roles: [Customer]
      dataset_roles:
        ffffffff-0000-0000-0000-000000000001: [Region, Customer]
        FFFFFFFF-0000-0000-0000-000000000002: [Region]
    allow_create: true
    create_workspace_id: 33333333-3333-3333-3333-333333333333
`)},
		{"create workspace defaults to the primary workspace", withTenant("    allow_create: true\n")},
		{"create workspace is the primary workspace in another case", withTenant(
			"    allow_create: true\n    create_workspace_id: 11111111-1111-1111-1111-111111111111\n")},
		{"an additional workspace that is only the create workspace, ids in different cases", withTenant(`    workspaces: [{id: 22222222-2222-2222-2222-22222222222A}]
    allow_create: true
    create_workspace_id: 22222222-2222-2222-2222-22222222222a
`)},
		{"dashboards only, reports omitted", `
tenants:
  acme:
    workspace_id: 11111111-1111-1111-1111-111111111111
    dashboards: [cccccccc-0000-0000-0000-000000000001]
`},
		{"additional workspace items only, reports empty", `
tenants:
  acme:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: []
    workspaces: [{id: 22222222-2222-2222-2222-222222222222, reports: [aaaaaaaa-0000-0000-0000-000000000001]}]
`},
		{"empty dashboards and dataset_roles", withTenant("    dashboards: []\n    rls: {roles: [C], dataset_roles: {}}\n")},
		{"custom data without placeholders", withTenant("    rls: {roles: [C], custom_data: gold}\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse([]byte(tt.yaml)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

// manyRoles returns n distinct roles as flow-sequence entries, each preceded by ", ".
func manyRoles(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ", role%d", i)
	}
	return b.String()
}

func TestParseProblems(t *testing.T) {
	t.Parallel()
	const frontend = "spiffe://mesh.example/ns/web/sa/frontend"
	tests := []struct {
		name string
		yaml string
		// want lists every problem: the exact key and a fragment of the message.
		want []yamlfile.Problem
	}{
		{"syntax error", "callers: [\n", []yamlfile.Problem{pr("", "did not find expected")}},
		{"two documents", tenantYAML + "---\ncallers: []\n", []yamlfile.Problem{pr("", "only one YAML document")}},
		{"unknown top-level key", "caller: []\n", []yamlfile.Problem{pr("caller", "unknown key (line 1)")}},
		{"unknown nested key", withTenant("    rls:\n      rolez: [x]\n      roles: [x]\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.rolez", "unknown key (line 7)")}},
		{"unknown caller key", "callers:\n  - id: " + frontend + "\n    tenant: [acme]\n    tenants: [acme]\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].tenant", "unknown key (line 3)")}},
		{"unknown key in a flow mapping", "callers:\n  - {id: " + frontend + ", tenants: [acme], colour: blue}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].colour", "unknown key (line 2)")}},
		{"unknown key in a one-line document", "tenants: {acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*'], edit: true}}\n",
			[]yamlfile.Problem{pr("tenants.acme.edit", "unknown key (line 1)")}},
		{"duplicate tenant key", tenantYAML + "  acme:\n    workspace_id: 11111111-1111-1111-1111-111111111111\n    reports: [\"*\"]\n",
			[]yamlfile.Problem{pr("tenants.acme", "duplicate key")}},
		{"duplicate field", withTenant("    allow_edit: true\n    allow_edit: false\n"),
			[]yamlfile.Problem{pr("tenants.acme.allow_edit", "duplicate key")}},
		{"a duplicate key does not hide the rest of its mapping", `
callers:
  - {id: "spiffe://mesh.example/a", tenants: [acme]}
tenants:
  acme:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: ["*"]
    max_lifetime: 60
    colour: blue
  acme:
    reports: ["*"]
`, []yamlfile.Problem{
			pr("tenants.acme.max_lifetime", `want a duration such as 30s or 5m, got "60" (line 8)`),
			pr("tenants.acme.colour", "unknown key (line 9)"),
			pr("tenants.acme", "duplicate key (first at line 5) (line 10)"),
		}},
		{"unknown key inside an anchor", "tenants:\n  acme: &base {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*'], tier: gold}\n  globex: {<<: *base}\n",
			[]yamlfile.Problem{pr("tenants.acme.tier", "unknown key (line 2)")}},
		{"wrong type is reported once", "tenants:\n  acme:\n    workspace_id: [a]\n    reports: [\"*\"]\n",
			[]yamlfile.Problem{pr("tenants.acme.workspace_id", "want a string, got a list (line 3)")}},
		{"lifetime as a bare number", withTenant("    max_lifetime: 60\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "want a duration such as 30s or 5m")}},
		{"lifetime not a duration", withTenant("    max_lifetime: an hour\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "want a duration such as 30s or 5m")}},

		{"caller without id", "callers:\n  - tenants: [acme]\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].id", "is required")}},
		{"null caller", "callers:\n  -\n" + tenantYAML, []yamlfile.Problem{pr("callers[0]", "empty caller entry")}},
		{"caller id not spiffe", "callers:\n  - {id: 'https://mesh.example/web', tenants: [acme]}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].id", "not a valid SPIFFE ID")}},
		{"caller id upper-case trust domain", "callers:\n  - {id: 'spiffe://Mesh.example/web', tenants: [acme]}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].id", "not a valid SPIFFE ID")}},
		{"caller id trailing slash", "callers:\n  - {id: 'spiffe://mesh.example/web/', tenants: [acme]}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].id", "not a valid SPIFFE ID")}},
		{"duplicate caller ids", "callers:\n  - {id: " + frontend + ", tenants: [acme]}\n  - {id: " + frontend + ", tenants: ['*']}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[1].id", "duplicate caller id (also callers[0])")}},
		{"caller names an undefined tenant", "callers:\n  - {id: " + frontend + ", tenants: [acme, acme-eu]}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].tenants[1]", `tenant "acme-eu" is not defined`)}},
		{"caller with no tenants", "callers:\n  - {id: " + frontend + ", tenants: []}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].tenants", "at least one tenant")}},
		{"caller wildcard mixed", "callers:\n  - {id: " + frontend + ", tenants: [acme, '*']}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].tenants[1]", `"*" must be the only entry`)}},
		{"caller duplicate tenant", "callers:\n  - {id: " + frontend + ", tenants: [acme, acme]}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].tenants[1]", `duplicate tenant "acme"`)}},
		{"rate limit zero", "callers:\n  - {id: " + frontend + ", tenants: [acme], rate_limit: {per_second: 0, burst: 0}}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].rate_limit.per_second", "> 0"), pr("callers[0].rate_limit.burst", ">= 1")}},
		{"rate limit negative", "callers:\n  - {id: " + frontend + ", tenants: [acme], rate_limit: {per_second: -1, burst: -5}}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].rate_limit.per_second", "> 0"), pr("callers[0].rate_limit.burst", ">= 1")}},
		{"rate limit infinite", "callers:\n  - {id: " + frontend + ", tenants: [acme], rate_limit: {per_second: .inf, burst: 1}}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].rate_limit.per_second", "finite")}},
		{"rate limit NaN", "callers:\n  - {id: " + frontend + ", tenants: [acme], rate_limit: {per_second: .nan, burst: 1}}\n" + tenantYAML,
			[]yamlfile.Problem{pr("callers[0].rate_limit.per_second", "finite")}},

		{"tenant key upper case", "tenants:\n  Acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.Acme", "must match")}},
		{"tenant key leading dash", "tenants:\n  -acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.-acme", "must match")}},
		{"tenant key trailing dot", "tenants:\n  acme.: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.acme.", "must match")}},
		{"tenant key too long", "tenants:\n  " + strings.Repeat("x", 64) + ": {workspace_id: 11111111-1111-1111-1111-111111111111, reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants."+strings.Repeat("x", 64), "must match")}},
		{"null tenant", "tenants:\n  acme:\n",
			[]yamlfile.Problem{pr("tenants.acme.workspace_id", "is required"), pr("tenants.acme.reports", "must list report ids")}},
		{"missing workspace", "tenants:\n  acme: {reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.acme.workspace_id", "is required")}},
		{"workspace not a uuid", "tenants:\n  acme: {workspace_id: 11111111111111111111111111111111, reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.acme.workspace_id", "is not a uuid")}},
		{"workspace braced uuid", "tenants:\n  acme: {workspace_id: '{11111111-1111-1111-1111-111111111111}', reports: ['*']}\n",
			[]yamlfile.Problem{pr("tenants.acme.workspace_id", "is not a uuid")}},
		{"profile not a uuid", withTenant("    profile_id: acme-profile\n"),
			[]yamlfile.Problem{pr("tenants.acme.profile_id", "is not a uuid")}},
		{"no reports", "tenants:\n  acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: []}\n",
			[]yamlfile.Problem{pr("tenants.acme.reports", "must list report ids")}},
		{"report not a uuid", "tenants:\n  acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: [sales]}\n",
			[]yamlfile.Problem{pr("tenants.acme.reports[0]", `"sales" is not a uuid`)}},
		{"report wildcard mixed", "tenants:\n  acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: [aaaaaaaa-0000-0000-0000-000000000001, '*']}\n",
			[]yamlfile.Problem{pr("tenants.acme.reports[1]", `"*" must be the only entry`)}},
		{"duplicate report ids differing in case", "tenants:\n  acme: {workspace_id: 11111111-1111-1111-1111-111111111111, reports: [aaaaaaaa-0000-0000-0000-000000000001, AAAAAAAA-0000-0000-0000-000000000001]}\n",
			[]yamlfile.Problem{pr("tenants.acme.reports[1]", "duplicate report id (also reports[0])")}},

		{"rls without roles", withTenant("    rls: {username: '{user}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles", "must list 1 to 50 roles")}},
		{"rls empty roles", withTenant("    rls: {roles: []}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles", "must list 1 to 50 roles")}},
		{"rls too many roles", withTenant("    rls: {roles: [r" + manyRoles(50) + "]}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles", "lists 51 roles")}},
		{"role too long", withTenant("    rls: {roles: [ok, " + strings.Repeat("é", 51) + "]}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles[1]", "is 51 characters")}},
		{"role with comma", withTenant("    rls: {roles: [ok, ok2, 'a,b']}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles[2]", "must not contain ','")}},
		{"empty role", withTenant("    rls: {roles: ['', ' ']}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles[0]", "must not be empty"), pr("tenants.acme.rls.roles[1]", "must not be empty")}},
		{"duplicate role", withTenant("    rls: {roles: [a, a]}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.roles[1]", `duplicate role "a"`)}},
		{"unknown placeholder", withTenant("    rls: {roles: [a], username: '{usr}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "only {user} and {tenant}")}},
		{"unclosed placeholder", withTenant("    rls: {roles: [a], username: '{user'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "only {user} and {tenant}")}},
		{"stray closing brace", withTenant("    rls: {roles: [a], custom_data: '{tenant}}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.custom_data", "only {user} and {tenant}")}},
		{"doubled braces", withTenant("    rls: {roles: [a], custom_data: '{{user}}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.custom_data", "only {user} and {tenant}")}},
		{"placeholder built from pieces", withTenant("    rls: {roles: [a], username: '{us{user}er}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "only {user} and {tenant}")}},
		{"empty username template", withTenant("    rls: {roles: [a], username: ''}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "must not be empty")}},
		{"username template too long", withTenant("    rls: {roles: [a], username: '{tenant}" + strings.Repeat("x", 253) + "'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "expands to more than 256")}},
		{"username template with whitespace", withTenant("    rls: {roles: [a], username: '{tenant} {user}'}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.username", "whitespace")}},

		// The full tenant model: workspaces, dashboards, dataset roles, create.
		{"no items anywhere", "tenants:\n  acme: {workspace_id: 11111111-1111-1111-1111-111111111111, dashboards: []}\n",
			[]yamlfile.Problem{pr("tenants.acme.reports", "at least one report or dashboard")}},
		{"dashboard not a uuid", withTenant("    dashboards: [sales]\n"),
			[]yamlfile.Problem{pr("tenants.acme.dashboards[0]", `"sales" is not a uuid`)}},
		{"dashboard wildcard mixed", withTenant("    dashboards: [cccccccc-0000-0000-0000-000000000001, '*']\n"),
			[]yamlfile.Problem{pr("tenants.acme.dashboards[1]", `"*" must be the only entry`)}},
		{"duplicate dashboard ids differing in case", withTenant("    dashboards: [cccccccc-0000-0000-0000-00000000000a, CCCCCCCC-0000-0000-0000-00000000000A]\n"),
			[]yamlfile.Problem{pr("tenants.acme.dashboards[1]", "duplicate dashboard id (also dashboards[0])")}},
		{"unknown key in a workspace", withTenant("    workspaces:\n      - id: 22222222-2222-2222-2222-222222222222\n        report: [aaaaaaaa-0000-0000-0000-000000000001]\n        reports: [aaaaaaaa-0000-0000-0000-000000000001]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0].report", "unknown key (line 8)")}},
		{"null workspace", withTenant("    workspaces:\n      -\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0]", "empty workspace entry")}},
		{"workspace without id", withTenant("    workspaces: [{reports: [aaaaaaaa-0000-0000-0000-000000000001]}]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0].id", "is required")}},
		{"workspace id not a uuid", withTenant("    workspaces: [{id: eu, reports: [aaaaaaaa-0000-0000-0000-000000000001]}]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0].id", `"eu" is not a uuid`)}},
		{"workspace that grants nothing", withTenant("    workspaces: [{id: 22222222-2222-2222-2222-222222222222, reports: []}]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0]", "grants nothing")}},
		{"additional workspace is the primary one", withTenant("    workspaces: [{id: 11111111-1111-1111-1111-111111111111, reports: [aaaaaaaa-0000-0000-0000-000000000001]}]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0].id", "duplicate workspace id (also workspace_id)")}},
		{"same additional workspace twice", withTenant(`    workspaces:
      - {id: 22222222-2222-2222-2222-22222222222a, reports: [aaaaaaaa-0000-0000-0000-000000000001]}
      - {id: 22222222-2222-2222-2222-22222222222A, reports: [aaaaaaaa-0000-0000-0000-000000000002]}
`), []yamlfile.Problem{pr("tenants.acme.workspaces[1].id", "duplicate workspace id (also workspaces[0].id)")}},
		{"wildcard in an additional workspace", withTenant("    workspaces: [{id: 22222222-2222-2222-2222-222222222222, reports: ['*'], dashboards: ['*']}]\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.workspaces[0].reports[0]", `"*" is allowed only in the primary workspace's reports`),
				pr("tenants.acme.workspaces[0].dashboards[0]", `"*" is allowed only in the primary workspace's dashboards`),
			}},
		{"additional workspace report not a uuid", withTenant("    workspaces: [{id: 22222222-2222-2222-2222-222222222222, reports: [sales]}]\n"),
			[]yamlfile.Problem{pr("tenants.acme.workspaces[0].reports[0]", `"sales" is not a uuid`)}},
		{"report in the primary and an additional workspace, differing in case", `
tenants:
  acme:
    workspace_id: 11111111-1111-1111-1111-111111111111
    reports: [aaaaaaaa-0000-0000-0000-00000000000a]
    workspaces:
      - id: 22222222-2222-2222-2222-222222222222
        reports: [AAAAAAAA-0000-0000-0000-00000000000A]
`, []yamlfile.Problem{pr("tenants.acme.workspaces[0].reports[0]", "duplicate report id (also reports[0])")}},
		{"report in two additional workspaces", withTenant(`    workspaces:
      - {id: 22222222-2222-2222-2222-222222222222, reports: [aaaaaaaa-0000-0000-0000-000000000001, aaaaaaaa-0000-0000-0000-000000000002]}
      - {id: 33333333-3333-3333-3333-333333333333, reports: [aaaaaaaa-0000-0000-0000-000000000002]}
`), []yamlfile.Problem{pr("tenants.acme.workspaces[1].reports[0]", "duplicate report id (also workspaces[0].reports[1])")}},
		{"dashboard in the primary and an additional workspace", withTenant(`    dashboards: [cccccccc-0000-0000-0000-000000000001]
    workspaces:
      - {id: 22222222-2222-2222-2222-222222222222, dashboards: [CCCCCCCC-0000-0000-0000-000000000001]}
`), []yamlfile.Problem{pr("tenants.acme.workspaces[0].dashboards[0]", "duplicate dashboard id (also dashboards[0])")}},
		{"dataset_roles key not a uuid", withTenant("    rls: {roles: [C], dataset_roles: {sales: [Region]}}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.dataset_roles.sales", `dataset id "sales" is not a uuid`)}},
		{"dataset_roles without roles", withTenant("    rls:\n      roles: [C]\n      dataset_roles:\n        ffffffff-0000-0000-0000-000000000001: []\n        ffffffff-0000-0000-0000-000000000002:\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001", "must list 1 to 50 roles"),
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000002", "must list 1 to 50 roles"),
			}},
		{"dataset_roles too many roles", withTenant("    rls: {roles: [C], dataset_roles: {ffffffff-0000-0000-0000-000000000001: [r" + manyRoles(50) + "]}}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001", "lists 51 roles")}},
		{"dataset_roles bad roles", withTenant("    rls: {roles: [C], dataset_roles: {ffffffff-0000-0000-0000-000000000001: [a, 'a,b', '', a, " + strings.Repeat("r", 51) + "]}}\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001[1]", "must not contain ','"),
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001[2]", "must not be empty"),
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001[3]", `duplicate role "a"`),
				pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-000000000001[4]", "is 51 characters"),
			}},
		{"dataset_roles duplicate dataset ids differing in case", withTenant("    rls: {roles: [C], dataset_roles: {ffffffff-0000-0000-0000-00000000000a: [R], FFFFFFFF-0000-0000-0000-00000000000A: [S]}}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.dataset_roles.ffffffff-0000-0000-0000-00000000000a",
				"duplicate dataset id (also dataset_roles.FFFFFFFF-0000-0000-0000-00000000000A)")}},
		{"without_rls entries must be distinct uuids", withTenant("    rls: {roles: [C], without_rls: [report-1, AAAAAAAA-0000-0000-0000-000000000001, aaaaaaaa-0000-0000-0000-000000000001]}\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.rls.without_rls[0]", `"report-1" is not a uuid`),
				pr("tenants.acme.rls.without_rls[2]", "duplicate id aaaaaaaa-0000-0000-0000-000000000001"),
			}},
		{"per-dataset identities: each key and value checked", withTenant(`    rls:
      roles: [C]
      dataset_roles: {ffffffff-0000-0000-0000-000000000005: [R]}
      datasets:
        sales: {roles: [R]}
        ffffffff-0000-0000-0000-000000000001:
        ffffffff-0000-0000-0000-000000000002: {}
        ffffffff-0000-0000-0000-000000000003: {username: "", custom_data: "{usr}", roles: ['a,b']}
        ffffffff-0000-0000-0000-000000000004: {username: "alice smith"}
        ffffffff-0000-0000-0000-000000000005: {roles: [S]}
        FFFFFFFF-0000-0000-0000-000000000004: {username: "{tenant}"}
`), []yamlfile.Problem{
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000001", "sets nothing"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000002", "sets nothing"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000003.username", "must not be empty"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000003.custom_data", "only {user} and {tenant} are placeholders"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000003.roles[0]", "must not contain ','"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000004", "duplicate dataset id (also datasets.FFFFFFFF-0000-0000-0000-000000000004)"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000004.username", "must not contain whitespace"),
			pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000005.roles", "dataset_roles gives this dataset roles too"),
			pr("tenants.acme.rls.datasets.sales", `dataset id "sales" is not a uuid`),
		}},
		{"an unknown key in a per-dataset identity", withTenant("    rls:\n      roles: [C]\n      datasets:\n        ffffffff-0000-0000-0000-000000000001: {username: service_principal, kind: aas}\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.datasets.ffffffff-0000-0000-0000-000000000001.kind", "unknown key")}},
		{"sso entries: uuids, distinct, the wildcard alone", withTenant("    sso: [orders, ffffffff-0000-0000-0000-000000000001, FFFFFFFF-0000-0000-0000-000000000001, \"*\"]\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.sso[0]", `"orders" is not a uuid`),
				pr("tenants.acme.sso[2]", "duplicate id ffffffff-0000-0000-0000-000000000001"),
				pr("tenants.acme.sso[3]", `"*" must be the only entry`),
			}},
		{"dataset_roles not a mapping", withTenant("    rls:\n      roles: [C]\n      dataset_roles: [R]\n"),
			[]yamlfile.Problem{pr("tenants.acme.rls.dataset_roles", "want a mapping of keys to values, got a list")}},
		{"create workspace without allow_create", withTenant("    create_workspace_id: 11111111-1111-1111-1111-111111111111\n"),
			[]yamlfile.Problem{pr("tenants.acme.create_workspace_id", "allow_create is false")}},
		{"create workspace not one of the tenant's", withTenant("    allow_create: true\n    create_workspace_id: 22222222-2222-2222-2222-222222222222\n"),
			[]yamlfile.Problem{pr("tenants.acme.create_workspace_id", "is not one of the tenant's workspaces")}},
		{"create workspace not a uuid", withTenant("    allow_create: true\n    create_workspace_id: reports\n"),
			[]yamlfile.Problem{pr("tenants.acme.create_workspace_id", `"reports" is not a uuid`)}},
		{"create workspace without allow_create and not the tenant's", withTenant("    create_workspace_id: 22222222-2222-2222-2222-222222222222\n"),
			[]yamlfile.Problem{
				pr("tenants.acme.create_workspace_id", "allow_create is false"),
				pr("tenants.acme.create_workspace_id", "is not one of the tenant's workspaces"),
			}},

		{"max lifetime zero", withTenant("    max_lifetime: 0s\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "outside 1m0s..24h0m0s")}},
		{"max lifetime too long", withTenant("    max_lifetime: 25h\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "outside")}},
		{"max lifetime under a minute", withTenant("    max_lifetime: 30s\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "outside")}},
		{"max lifetime not whole minutes", withTenant("    max_lifetime: 90s\n"),
			[]yamlfile.Problem{pr("tenants.acme.max_lifetime", "not a whole number of minutes")}},
		{"default lifetime not whole minutes", withTenant("    default_lifetime: 10m30s\n"),
			[]yamlfile.Problem{pr("tenants.acme.default_lifetime", "not a whole number of minutes")}},
		{"default lifetime negative", withTenant("    default_lifetime: -5m\n"),
			[]yamlfile.Problem{pr("tenants.acme.default_lifetime", "outside")}},
		{"default above explicit max", withTenant("    max_lifetime: 30m\n    default_lifetime: 45m\n"),
			[]yamlfile.Problem{pr("tenants.acme.default_lifetime", "exceeds max_lifetime 30m0s")}},
		{"default above default max", withTenant("    default_lifetime: 2h\n"),
			[]yamlfile.Problem{pr("tenants.acme.default_lifetime", "exceeds max_lifetime 1h0m0s")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml))
			assertProblems(t, err, tt.want)
		})
	}
}

// pr is a wanted problem: its key and a fragment of its message.
func pr(key, msg string) yamlfile.Problem { return yamlfile.Problem{Key: key, Message: msg} }

// assertProblems checks that err is a *ValidationError with exactly the wanted keys,
// in order, each message containing the wanted fragment.
func assertProblems(t *testing.T, err error, want []yamlfile.Problem) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *ValidationError", err, err)
	}
	keys := func(ps []yamlfile.Problem) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.Key
		}
		return out
	}
	if diff := cmp.Diff(keys(want), keys(ve.Problems)); diff != "" {
		t.Fatalf("problem keys (-want +got):\n%s\nall problems:\n%s", diff, err)
	}
	for i, w := range want {
		if got := ve.Problems[i].Message; !strings.Contains(got, w.Message) {
			t.Errorf("problem %s: message %q does not contain %q", w.Key, got, w.Message)
		}
	}
}

// TestParseReportsEveryProblem is the operator's promise: one run lists everything.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	const policy = `
callers:
  - id: spiffe://mesh.example/ns/web/sa/frontend
    tenants: [acme, nowhere]
    rate_limit: {per_second: 0, burst: 1}
  - id: spiffe://mesh.example/ns/web/sa/frontend
    tenants: ["*", acme]
  - id: not-a-spiffe-id
    tenants: [acme]
    color: blue
tenants:
  acme:
    workspace_id: nope
    profile_id: "also-nope"
    reports: [aaaaaaaa-0000-0000-0000-000000000001, "*", AAAAAAAA-0000-0000-0000-000000000001]
    rls:
      roles: [ok, "a,b", ""]
      username: "{tenant}:{email}"
      custom_data: "{user"
    max_lifetime: 48h
    default_lifetime: 90s
  Bad_Key:
    reports: []
  hooli:
    workspace_id: 66666666-6666-6666-6666-666666666666
    dashboards: [cccccccc-0000-0000-0000-000000000001]
    workspaces:
      - id: 66666666-6666-6666-6666-666666666666
        reports: ["*"]
        dashboards: [CCCCCCCC-0000-0000-0000-000000000001]
      - id: nope
    rls:
      roles: [C]
      dataset_roles:
        sales: [""]
    create_workspace_id: 77777777-7777-7777-7777-777777777777
`
	_, err := Parse([]byte(policy))
	assertProblems(t, err, []yamlfile.Problem{
		pr("callers[2].color", "unknown key (line 10)"),
		pr("callers[0].tenants[1]", `tenant "nowhere" is not defined`),
		pr("callers[0].rate_limit.per_second", "> 0"),
		pr("callers[1].id", "duplicate caller id (also callers[0])"),
		pr("callers[1].tenants[0]", `"*" must be the only entry`),
		pr("callers[2].id", "not a valid SPIFFE ID"),
		pr("tenants.Bad_Key", "must match"),
		pr("tenants.Bad_Key.workspace_id", "is required"),
		pr("tenants.Bad_Key.reports", "must list report ids"),
		pr("tenants.acme.workspace_id", "is not a uuid"),
		pr("tenants.acme.profile_id", "is not a uuid"),
		pr("tenants.acme.reports[1]", `"*" must be the only entry`),
		pr("tenants.acme.reports[2]", "duplicate report id"),
		pr("tenants.acme.rls.roles[1]", "must not contain ','"),
		pr("tenants.acme.rls.roles[2]", "must not be empty"),
		pr("tenants.acme.rls.username", "only {user} and {tenant}"),
		pr("tenants.acme.rls.custom_data", "only {user} and {tenant}"),
		pr("tenants.acme.max_lifetime", "outside"),
		pr("tenants.acme.default_lifetime", "not a whole number of minutes"),
		pr("tenants.hooli.workspaces[0].id", "duplicate workspace id (also workspace_id)"),
		pr("tenants.hooli.workspaces[0].reports[0]", `"*" is allowed only in the primary workspace's reports`),
		pr("tenants.hooli.workspaces[0].dashboards[0]", "duplicate dashboard id (also dashboards[0])"),
		pr("tenants.hooli.workspaces[1].id", `"nope" is not a uuid`),
		pr("tenants.hooli.workspaces[1]", "grants nothing"),
		pr("tenants.hooli.rls.dataset_roles.sales", "is not a uuid"),
		pr("tenants.hooli.rls.dataset_roles.sales[0]", "must not be empty"),
		pr("tenants.hooli.create_workspace_id", "allow_create is false"),
		pr("tenants.hooli.create_workspace_id", "not one of the tenant's workspaces"),
	})
	// Error() lists every problem, one per line.
	if got, want := strings.Count(err.Error(), "\n"), 28; got != want {
		t.Errorf("Error() has %d problem lines, want %d:\n%s", got, want, err)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte(tenantYAML))
	p, err := Parse([]byte(tenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Version(), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Version() = %q, want %q", got, want)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
callers:
  - {id: "spiffe://mesh.example/a", tenants: [acme], rate_limit: {per_second: 2.5, burst: 5}}
  - {id: "spiffe://mesh.example/b", tenants: [acme]}
` + tenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		caller string
		want   RateLimit
		wantOK bool
	}{
		{"spiffe://mesh.example/a", RateLimit{PerSecond: 2.5, Burst: 5}, true},
		{"spiffe://mesh.example/b", RateLimit{}, false},
		{"spiffe://mesh.example/c", RateLimit{}, false},
	}
	for _, tt := range tests {
		got, ok := p.RateLimit(tt.caller)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("RateLimit(%q) = %v, %v; want %v, %v", tt.caller, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestAdminCallers: admin: true makes a caller an admin (Explain on behalf
// of others), with or without tenants of its own; it grants no tenant, and
// no other caller is one.
func TestAdminCallers(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`callers:
  - id: spiffe://mesh.example/ns/ops/sa/policy-console
    admin: true
  - id: spiffe://mesh.example/ns/web/sa/frontend
    tenants: [acme]
` + tenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Admin("spiffe://mesh.example/ns/ops/sa/policy-console") || p.Admin("spiffe://mesh.example/ns/web/sa/frontend") || p.Admin("spiffe://mesh.example/ns/x/sa/unknown") {
		t.Error("Admin() does not follow admin: true")
	}
	_, err = p.Decide(Request{Caller: "spiffe://mesh.example/ns/ops/sa/policy-console", Tenant: "acme", User: "u", Items: Reports("11111111-1111-1111-1111-111111111112")})
	if !errors.Is(err, ErrTenantNotAllowed) {
		t.Errorf("an admin without tenants got %v for acme, want ErrTenantNotAllowed", err)
	}
	if _, err := Parse([]byte("callers:\n  - id: spiffe://mesh.example/ns/web/sa/frontend\n" + tenantYAML)); err == nil {
		t.Error("a caller with neither tenants nor admin parsed")
	}
}
