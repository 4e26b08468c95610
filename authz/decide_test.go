package authz

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	frontend = "spiffe://mesh.example/ns/web/sa/frontend" // every tenant
	billing  = "spiffe://mesh.example/ns/billing/sa/reports"
	portal   = "spiffe://mesh.example/ns/eu/sa/portal"

	acmeWS    = "11111111-1111-1111-1111-111111111111"
	acmeEUWS  = "22222222-2222-2222-2222-22222222222a"
	acmeEUPro = "33333333-3333-3333-3333-33333333333c"
	globexWS  = "44444444-4444-4444-4444-444444444444"
	initechWS = "55555555-5555-5555-5555-555555555555"

	acmeR1   = "aaaaaaaa-0000-0000-0000-000000000001"
	acmeR2   = "aaaaaaaa-0000-0000-0000-00000000000b"
	globexR1 = "bbbbbbbb-0000-0000-0000-000000000001"
	otherR   = "dddddddd-0000-0000-0000-000000000001"

	// hooli spreads its items over three workspaces.
	hooliWS   = "66666666-6666-6666-6666-666666666666" // primary: reports "*", dashboard D1
	hooliWS2  = "77777777-7777-7777-7777-77777777777a" // report R1, dashboard D2
	hooliWS3  = "88888888-8888-8888-8888-888888888888" // report R2; the create workspace
	hooliR1   = "eeeeeeee-0000-0000-0000-00000000000a"
	hooliR2   = "eeeeeeee-0000-0000-0000-000000000002"
	hooliD1   = "cccccccc-0000-0000-0000-00000000000c"
	hooliD2   = "cccccccc-0000-0000-0000-000000000002"
	hooliDS   = "ffffffff-0000-0000-0000-00000000000a" // dataset with its own roles
	otherDash = "dddddddd-0000-0000-0000-0000000000d0"
	tile      = "99999999-0000-0000-0000-00000000000f"
)

// decisionPolicy is the policy of the decision table. Upper-case uuids in it check
// that the policy normalizes them.
const decisionPolicy = `
callers:
  - id: ` + frontend + `
    tenants: ["*"]
    rate_limit: {per_second: 10, burst: 20}
  - id: ` + billing + `
    tenants: [acme]
  - id: ` + portal + `
    tenants: [acme-eu, globex]
tenants:
  acme:
    workspace_id: ` + acmeWS + `
    reports: [AAAAAAAA-0000-0000-0000-000000000001, aaaaaaaa-0000-0000-0000-00000000000B]
    rls:
      roles: [Customer, Viewer]
      username: "{user}"
      custom_data: "{tenant}"
      without_rls: [AAAAAAAA-0000-0000-0000-00000000000B]   # its model has no RLS on purpose
    max_lifetime: 60m
    default_lifetime: 30m
  acme-eu:
    workspace_id: 22222222-2222-2222-2222-22222222222A
    profile_id: 33333333-3333-3333-3333-33333333333C
    reports: ["*"]
    rls:
      roles: [EU]
      username: "{tenant}/{user}"
      custom_data: "region=eu;tenant={tenant};user={user}"
    allow_edit: true
    dashboards: ["*"]
    allow_create: true
    max_lifetime: 2h
  globex:
    workspace_id: ` + globexWS + `
    reports: [` + globexR1 + `]
    max_lifetime: 10m
  initech:
    workspace_id: ` + initechWS + `
    reports: ["*"]
  hooli:
    workspace_id: ` + hooliWS + `
    reports: ["*"]
    dashboards: [CCCCCCCC-0000-0000-0000-00000000000C]
    workspaces:
      - id: 77777777-7777-7777-7777-77777777777A
        reports: [EEEEEEEE-0000-0000-0000-00000000000A]
        dashboards: [` + hooliD2 + `]
      - id: ` + hooliWS3 + `
        reports: [` + hooliR2 + `]
    rls:
      roles: [Customer]
      dataset_roles:
        FFFFFFFF-0000-0000-0000-00000000000A: [Region, Customer]
    allow_create: true
    create_workspace_id: ` + hooliWS3 + `
`

func mustParse(t testing.TB, policy string) *Policy {
	t.Helper()
	p, err := Parse([]byte(policy))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// acmeGrant is the grant of a plain request by frontend for acme, user alice, report 1.
func acmeGrant(mod func(*Grant)) Grant {
	g := Grant{
		Caller:      frontend,
		Tenant:      "acme",
		WorkspaceID: acmeWS,
		Items:       []Item{report(acmeR1, acmeWS)},
		Identity: &Identity{Username: "alice@acme.com", Roles: []string{"Customer", "Viewer"}, CustomData: "acme",
			WithoutRLS: []string{acmeR2}},
		Lifetime:   30 * time.Minute,
		Rule:       "tenants.acme",
		Workspaces: []string{acmeWS},
	}
	if mod != nil {
		mod(&g)
	}
	return g
}

// euGrant is the grant of a plain request by portal for acme-eu, user bob, report 1.
func euGrant(mod func(*Grant)) Grant {
	g := Grant{
		Caller:      portal,
		Tenant:      "acme-eu",
		WorkspaceID: acmeEUWS,
		ProfileID:   acmeEUPro,
		Items:       []Item{report(otherR, acmeEUWS)},
		Identity:    &Identity{Username: "acme-eu/bob", Roles: []string{"EU"}, CustomData: "region=eu;tenant=acme-eu;user=bob"},
		Lifetime:    2 * time.Hour,
		Rule:        "tenants.acme-eu",
		Workspaces:  []string{acmeEUWS},
	}
	if mod != nil {
		mod(&g)
	}
	return g
}

// hooliGrant is the grant of a request by frontend for hooli, user dan, with no items:
// each case sets its own.
func hooliGrant(mod func(*Grant)) Grant {
	g := Grant{
		Caller:      frontend,
		Tenant:      "hooli",
		WorkspaceID: hooliWS,
		Identity: &Identity{Username: "dan", Roles: []string{"Customer"},
			DatasetRoles: map[string][]string{hooliDS: {"Region", "Customer"}}},
		Lifetime:   time.Hour,
		Rule:       "tenants.hooli",
		Workspaces: []string{hooliWS, hooliWS2, hooliWS3},
	}
	if mod != nil {
		mod(&g)
	}
	return g
}

// report is a granted report.
func report(id, ws string) Item { return Item{Kind: KindReport, ID: id, WorkspaceID: ws} }

// dash is the items of a dashboard request.
func dash(id string) []ItemRef { return []ItemRef{{Kind: KindDashboard, ID: id}} }

// tileOf is the items of a tile request.
func tileOf(dashboard, tile string) []ItemRef {
	return []ItemRef{{Kind: KindTile, ID: tile, Parent: dashboard}}
}

// uuids returns n distinct report uuids.
func uuids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dddddddd-0000-0000-0000-%012d", i)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	p := mustParse(t, decisionPolicy)

	acme := func(mod func(*Request)) Request {
		r := Request{Caller: frontend, Tenant: "acme", User: "alice@acme.com", Items: Reports(acmeR1)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	eu := func(mod func(*Request)) Request {
		r := Request{Caller: portal, Tenant: "acme-eu", User: "bob", Items: Reports(otherR)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	hooli := func(mod func(*Request)) Request {
		r := Request{Caller: frontend, Tenant: "hooli", User: "dan"}
		if mod != nil {
			mod(&r)
		}
		return r
	}

	tests := []struct {
		name      string
		req       Request
		want      Grant
		wantErr   error
		wantRule  string // for denials; checked when set
		wantField string // for invalid requests; checked when set
	}{
		// Grants.
		{name: "plain request gets the default lifetime and the rls identity",
			req: acme(nil), want: acmeGrant(nil)},
		{name: "report ids in any case are normalized",
			req:  acme(func(r *Request) { r.Items = Reports(strings.ToUpper(acmeR1)) }),
			want: acmeGrant(nil)},
		{name: "several reports keep request order",
			req:  acme(func(r *Request) { r.Items = Reports(strings.ToUpper(acmeR2), acmeR1) }),
			want: acmeGrant(func(g *Grant) { g.Items = []Item{report(acmeR2, acmeWS), report(acmeR1, acmeWS)} })},
		{name: "caller granted one tenant",
			req:  acme(func(r *Request) { r.Caller = billing }),
			want: acmeGrant(func(g *Grant) { g.Caller = billing })},
		{name: "wildcard report list allows any report, profile and workspace lower case",
			req: eu(nil), want: euGrant(nil)},
		{name: "wildcard caller reaches a tenant nobody else has",
			req: Request{Caller: frontend, Tenant: "initech", User: "u", Items: Reports(otherR)},
			want: Grant{Caller: frontend, Tenant: "initech", WorkspaceID: initechWS, Items: []Item{report(otherR, initechWS)},
				Lifetime: time.Hour, Rule: "tenants.initech", Workspaces: []string{initechWS}}},
		{name: "tenant without rls has no identity and default = max lifetime",
			req: Request{Caller: portal, Tenant: "globex", User: "carol", Items: Reports(globexR1)},
			want: Grant{Caller: portal, Tenant: "globex", WorkspaceID: globexWS, Items: []Item{report(globexR1, globexWS)},
				Lifetime: 10 * time.Minute, Rule: "tenants.globex", Workspaces: []string{globexWS}}},
		{name: "whitespace in the user is refused even without rls",
			req:     Request{Caller: portal, Tenant: "globex", User: "carol smith", Items: Reports(globexR1)},
			wantErr: ErrInvalidRequest, wantRule: "request", wantField: "user"},
		{name: "edit where allowed",
			req:  eu(func(r *Request) { r.AllowEdit = true }),
			want: euGrant(func(g *Grant) { g.AllowEdit = true })},
		{name: "lifetime within max is kept",
			req:  acme(func(r *Request) { r.Lifetime = 45 * time.Minute }),
			want: acmeGrant(func(g *Grant) { g.Lifetime = 45 * time.Minute })},
		{name: "lifetime exactly max is not clamped",
			req:  acme(func(r *Request) { r.Lifetime = time.Hour }),
			want: acmeGrant(func(g *Grant) { g.Lifetime = time.Hour })},
		{name: "lifetime above max is clamped",
			req:  acme(func(r *Request) { r.Lifetime = 3 * time.Hour }),
			want: acmeGrant(func(g *Grant) { g.Lifetime, g.LifetimeClamped = time.Hour, true })},
		{name: "lifetime above a short max is clamped",
			req: Request{Caller: portal, Tenant: "globex", User: "carol", Items: Reports(globexR1), Lifetime: 11 * time.Minute},
			want: Grant{Caller: portal, Tenant: "globex", WorkspaceID: globexWS, Items: []Item{report(globexR1, globexWS)},
				Lifetime: 10 * time.Minute, LifetimeClamped: true, Rule: "tenants.globex", Workspaces: []string{globexWS}}},
		{name: "lifetime truncated to whole minutes",
			req:  acme(func(r *Request) { r.Lifetime = 90 * time.Second }),
			want: acmeGrant(func(g *Grant) { g.Lifetime = time.Minute })},
		{name: "user trying {tenant} is taken literally",
			req:  acme(func(r *Request) { r.User = "{tenant}" }),
			want: acmeGrant(func(g *Grant) { g.Identity.Username = "{tenant}" })},
		{name: "user trying {tenant} in a template with both placeholders",
			req: eu(func(r *Request) { r.User = "{tenant}" }),
			want: euGrant(func(g *Grant) {
				g.Identity.Username = "acme-eu/{tenant}"
				g.Identity.CustomData = "region=eu;tenant=acme-eu;user={tenant}"
			})},
		{name: "user trying {user} is not re-expanded",
			req: eu(func(r *Request) { r.User = "{user}{user}" }),
			want: euGrant(func(g *Grant) {
				g.Identity.Username = "acme-eu/{user}{user}"
				g.Identity.CustomData = "region=eu;tenant=acme-eu;user={user}{user}"
			})},
		{name: "user with braces reversed",
			req: eu(func(r *Request) { r.User = "}{tenant}{" }),
			want: euGrant(func(g *Grant) {
				g.Identity.Username = "acme-eu/}{tenant}{"
				g.Identity.CustomData = "region=eu;tenant=acme-eu;user=}{tenant}{"
			})},
		{name: "user trying to close the custom data and add a field",
			req: eu(func(r *Request) { r.User = "x;tenant=acme" }),
			want: euGrant(func(g *Grant) {
				g.Identity.Username = "acme-eu/x;tenant=acme"
				g.Identity.CustomData = "region=eu;tenant=acme-eu;user=x;tenant=acme"
			})},
		{name: "username at the length limit",
			req:  acme(func(r *Request) { r.User = strings.Repeat("é", 256) }),
			want: acmeGrant(func(g *Grant) { g.Identity.Username = strings.Repeat("é", 256) })},

		// Callers: exact SPIFFE ID only.
		{name: "unknown caller", req: acme(func(r *Request) { r.Caller = "spiffe://mesh.example/ns/web/sa/other" }),
			wantErr: ErrUnknownCaller, wantRule: "callers"},
		{name: "caller with trailing slash", req: acme(func(r *Request) { r.Caller = frontend + "/" }),
			wantErr: ErrUnknownCaller},
		{name: "caller in different case", req: acme(func(r *Request) { r.Caller = strings.ToUpper(frontend) }),
			wantErr: ErrUnknownCaller},
		{name: "caller path in different case", req: acme(func(r *Request) { r.Caller = "spiffe://mesh.example/ns/web/sa/Frontend" }),
			wantErr: ErrUnknownCaller},
		{name: "caller with extra path segment", req: acme(func(r *Request) { r.Caller = frontend + "/x" }),
			wantErr: ErrUnknownCaller},
		{name: "caller that is a prefix of a listed one", req: acme(func(r *Request) { r.Caller = "spiffe://mesh.example/ns/web/sa/front" }),
			wantErr: ErrUnknownCaller},
		{name: "caller of another trust domain", req: acme(func(r *Request) { r.Caller = "spiffe://evil.example/ns/web/sa/frontend" }),
			wantErr: ErrUnknownCaller},
		{name: "empty caller", req: acme(func(r *Request) { r.Caller = "" }), wantErr: ErrUnknownCaller},

		// Tenants: exact keys only, unknown and not granted look the same.
		{name: "tenant not granted", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "initech" }),
			wantErr: ErrTenantNotAllowed, wantRule: "callers[" + billing + "].tenants"},
		{name: "unknown tenant", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "umbrella" }),
			wantErr: ErrTenantNotAllowed, wantRule: "callers[" + billing + "].tenants"},
		{name: "unknown tenant for the wildcard caller", req: acme(func(r *Request) { r.Tenant = "umbrella" }),
			wantErr: ErrTenantNotAllowed, wantRule: "callers[" + frontend + "].tenants"},
		{name: "granted key is a prefix of the requested one", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "acme-eu" }),
			wantErr: ErrTenantNotAllowed},
		{name: "requested key is a prefix of a granted one", req: eu(func(r *Request) { r.Tenant = "acme" }),
			wantErr: ErrTenantNotAllowed},
		{name: "tenant key shortened", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "acm" }),
			wantErr: ErrTenantNotAllowed},
		{name: "tenant key in upper case", req: acme(func(r *Request) { r.Tenant = "ACME" }),
			wantErr: ErrTenantNotAllowed},
		{name: "tenant key with trailing space", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "acme " }),
			wantErr: ErrTenantNotAllowed},
		{name: "wildcard as a tenant by a caller without it", req: acme(func(r *Request) { r.Caller, r.Tenant = billing, "*" }),
			wantErr: ErrTenantNotAllowed},
		{name: "wildcard as a tenant by the wildcard caller", req: acme(func(r *Request) { r.Tenant = "*" }),
			wantErr: ErrTenantNotAllowed},
		{name: "empty tenant", req: acme(func(r *Request) { r.Tenant = "" }), wantErr: ErrTenantNotAllowed},
		{name: "a malformed request to a tenant not granted is still tenant not allowed",
			req:     acme(func(r *Request) { r.Caller, r.Tenant, r.User, r.Items = billing, "initech", "", nil }),
			wantErr: ErrTenantNotAllowed},

		// Reports and edit.
		{name: "report of another tenant", req: acme(func(r *Request) { r.Items = Reports(acmeR1, globexR1) }),
			wantErr: ErrReportNotAllowed, wantRule: "tenants.acme.reports"},
		{name: "report that exists nowhere", req: acme(func(r *Request) { r.Items = Reports(otherR) }),
			wantErr: ErrReportNotAllowed, wantRule: "tenants.acme.reports"},
		{name: "wildcard as a report id", req: acme(func(r *Request) { r.Items = Reports("*") }),
			wantErr: ErrInvalidRequest},
		{name: "edit not granted", req: acme(func(r *Request) { r.AllowEdit = true }),
			wantErr: ErrEditNotAllowed, wantRule: "tenants.acme.allow_edit"},
		{name: "edit not granted on a tenant without rls",
			req:     Request{Caller: portal, Tenant: "globex", User: "carol", Items: Reports(globexR1), AllowEdit: true},
			wantErr: ErrEditNotAllowed},

		// Workspaces: each report resolves to the one workspace that lists it, else to
		// the primary workspace when its list is "*".
		{name: "report listed in an additional workspace resolves there",
			req:  hooli(func(r *Request) { r.Items = Reports(hooliR2) }),
			want: hooliGrant(func(g *Grant) { g.Items = []Item{report(hooliR2, hooliWS3)} })},
		{name: "report listed nowhere resolves to the primary workspace's wildcard",
			req:  hooli(func(r *Request) { r.Items = Reports(otherR) }),
			want: hooliGrant(func(g *Grant) { g.Items = []Item{report(otherR, hooliWS)} })},
		{name: "reports across three workspaces in one request keep request order",
			req: hooli(func(r *Request) { r.Items = Reports(hooliR2, otherR, hooliR1) }),
			want: hooliGrant(func(g *Grant) {
				g.Items = []Item{report(hooliR2, hooliWS3), report(otherR, hooliWS), report(hooliR1, hooliWS2)}
			})},
		{name: "ids differing in case across policy and request resolve to one workspace",
			req: hooli(func(r *Request) {
				r.Items = Reports(strings.ToUpper(hooliR1), strings.ToUpper(hooliR2))
			}),
			want: hooliGrant(func(g *Grant) { g.Items = []Item{report(hooliR1, hooliWS2), report(hooliR2, hooliWS3)} })},
		{name: "another tenant's explicit listing does not move a report of a wildcard tenant",
			req:  eu(func(r *Request) { r.Items = Reports(hooliR1) }),
			want: euGrant(func(g *Grant) { g.Items = []Item{report(hooliR1, acmeEUWS)} })},
		{name: "report of an additional workspace of another tenant",
			req:     acme(func(r *Request) { r.Items = Reports(acmeR1, hooliR2) }),
			wantErr: ErrReportNotAllowed, wantRule: "tenants.acme.reports"},
		{name: "fifty reports", req: eu(func(r *Request) { r.Items = Reports(uuids(50)...) }),
			want: euGrant(func(g *Grant) {
				g.Items = nil
				for _, id := range uuids(50) {
					g.Items = append(g.Items, report(id, acmeEUWS))
				}
			})},
		{name: "fifty-one reports", req: eu(func(r *Request) { r.Items = Reports(uuids(51)...) }),
			wantErr: ErrInvalidRequest, wantField: "report_ids"},

		{name: "dataset roles are carried into the identity, dataset ids lower case",
			req:  hooli(func(r *Request) { r.Items, r.User = Reports(otherR), "erin" }),
			want: hooliGrant(func(g *Grant) { g.Items, g.Identity.Username = []Item{report(otherR, hooliWS)}, "erin" })},

		// Dashboards and tiles: view only, and a granted dashboard grants its tiles.
		{name: "dashboard listed in the primary workspace",
			req:  hooli(func(r *Request) { r.Items = dash(strings.ToUpper(hooliD1)) }),
			want: hooliGrant(func(g *Grant) { g.Items = []Item{{Kind: KindDashboard, ID: hooliD1, WorkspaceID: hooliWS}} })},
		{name: "dashboard listed in an additional workspace resolves there",
			req:  hooli(func(r *Request) { r.Items = dash(hooliD2) }),
			want: hooliGrant(func(g *Grant) { g.Items = []Item{{Kind: KindDashboard, ID: hooliD2, WorkspaceID: hooliWS2}} })},
		{name: "wildcard dashboards allow any dashboard of the primary workspace",
			req:  eu(func(r *Request) { r.Items = dash(otherDash) }),
			want: euGrant(func(g *Grant) { g.Items = []Item{{Kind: KindDashboard, ID: otherDash, WorkspaceID: acmeEUWS}} })},
		{name: "dashboard not listed by a tenant without a wildcard",
			req:     hooli(func(r *Request) { r.Items = dash(otherDash) }),
			wantErr: ErrDashboardNotAllowed, wantRule: "tenants.hooli.dashboards"},
		{name: "dashboard of a tenant with no dashboards key",
			req:     acme(func(r *Request) { r.Items = dash(hooliD1) }),
			wantErr: ErrDashboardNotAllowed, wantRule: "tenants.acme.dashboards"},
		{name: "a report id is not a dashboard id",
			req:     hooli(func(r *Request) { r.Items = dash(hooliR1) }),
			wantErr: ErrDashboardNotAllowed},
		{name: "tile of an allowed dashboard",
			req: hooli(func(r *Request) { r.Items = tileOf(hooliD2, strings.ToUpper(tile)) }),
			want: hooliGrant(func(g *Grant) {
				g.Items = []Item{{Kind: KindTile, ID: tile, WorkspaceID: hooliWS2, Parent: hooliD2}}
			})},
		{name: "tile of a dashboard not allowed",
			req:     hooli(func(r *Request) { r.Items = tileOf(otherDash, tile) }),
			wantErr: ErrDashboardNotAllowed, wantRule: "tenants.hooli.dashboards"},
		{name: "tile without a dashboard",
			req:     hooli(func(r *Request) { r.Items = tileOf("", tile) }),
			wantErr: ErrInvalidRequest, wantRule: "request", wantField: "tile_id"},
		{name: "tile with reports and no dashboard",
			req:     acme(func(r *Request) { r.Items = append(r.Items, tileOf("", tile)...) }),
			wantErr: ErrInvalidRequest, wantField: "tile_id"},
		{name: "both reports and a dashboard",
			req:     acme(func(r *Request) { r.Items = append(r.Items, dash(hooliD1)...) }),
			wantErr: ErrInvalidRequest, wantField: "dashboard_id"},
		{name: "neither reports nor a dashboard",
			req:     hooli(nil),
			wantErr: ErrInvalidRequest, wantField: "report_ids"},
		{name: "dashboard id not a uuid",
			req:     hooli(func(r *Request) { r.Items = dash("sales") }),
			wantErr: ErrInvalidRequest, wantField: "dashboard_id"},
		{name: "tile id not a uuid",
			req:     hooli(func(r *Request) { r.Items = tileOf(hooliD1, "*") }),
			wantErr: ErrInvalidRequest, wantField: "tile_id"},
		{name: "edit token for a dashboard, even where edit is allowed",
			req:     eu(func(r *Request) { r.Items, r.AllowEdit = dash(otherDash), true }),
			wantErr: ErrInvalidRequest, wantField: "allow_edit"},
		{name: "create token for a tile, even where create is allowed",
			req:     hooli(func(r *Request) { r.Items, r.AllowCreate = tileOf(hooliD2, tile), true }),
			wantErr: ErrInvalidRequest, wantField: "allow_create"},

		// Create: the token's target workspace is the policy's, never the caller's.
		{name: "create goes to the tenant's create workspace",
			req: hooli(func(r *Request) { r.Items, r.AllowCreate = Reports(hooliR1), true }),
			want: hooliGrant(func(g *Grant) {
				g.Items, g.TargetWorkspaceIDs = []Item{report(hooliR1, hooliWS2)}, []string{hooliWS3}
			})},
		{name: "create without a create workspace goes to the primary workspace",
			req:  eu(func(r *Request) { r.AllowCreate = true }),
			want: euGrant(func(g *Grant) { g.TargetWorkspaceIDs = []string{acmeEUWS} })},
		{name: "create and edit together",
			req: eu(func(r *Request) { r.AllowCreate, r.AllowEdit = true, true }),
			want: euGrant(func(g *Grant) {
				g.TargetWorkspaceIDs, g.AllowEdit = []string{acmeEUWS}, true
			})},
		{name: "create not allowed",
			req:     acme(func(r *Request) { r.AllowCreate = true }),
			wantErr: ErrCreateNotAllowed, wantRule: "tenants.acme.allow_create"},
		{name: "create not allowed on a tenant without rls",
			req:     Request{Caller: portal, Tenant: "globex", User: "carol", Items: Reports(globexR1), AllowCreate: true},
			wantErr: ErrCreateNotAllowed, wantRule: "tenants.globex.allow_create"},
		{name: "a report outside the tenant is denied before create",
			req:     acme(func(r *Request) { r.Items, r.AllowCreate = Reports(otherR), true }),
			wantErr: ErrReportNotAllowed},

		// Malformed requests.
		{name: "duplicate report ids", req: acme(func(r *Request) { r.Items = Reports(acmeR1, acmeR1) }),
			wantErr: ErrInvalidRequest, wantRule: "request"},
		{name: "duplicate report ids differing in case", req: acme(func(r *Request) { r.Items = Reports(acmeR1, acmeR2, strings.ToUpper(acmeR1)) }),
			wantErr: ErrInvalidRequest},
		{name: "report id not a uuid", req: acme(func(r *Request) { r.Items = Reports("sales") }),
			wantErr: ErrInvalidRequest},
		{name: "no report ids", req: acme(func(r *Request) { r.Items = nil }), wantErr: ErrInvalidRequest, wantField: "report_ids"},
		{name: "empty user", req: acme(func(r *Request) { r.User = "" }), wantErr: ErrInvalidRequest},
		{name: "user with a newline", req: acme(func(r *Request) { r.User = "alice\nadmin" }), wantErr: ErrInvalidRequest},
		{name: "user not UTF-8", req: acme(func(r *Request) { r.User = "al\xffice" }), wantErr: ErrInvalidRequest},
		{name: "user too long", req: acme(func(r *Request) { r.User = strings.Repeat("a", 257) }), wantErr: ErrInvalidRequest},
		{name: "user with whitespace", req: acme(func(r *Request) { r.User = "alice smith" }),
			wantErr: ErrInvalidRequest, wantRule: "request", wantField: "user"},
		{name: "user with a zero-width space", req: acme(func(r *Request) { r.User = "alice\u200b@acme.com" }),
			wantErr: ErrInvalidRequest, wantField: "user"},
		{name: "user with a right-to-left override", req: acme(func(r *Request) { r.User = "alice\u202emoc.emca@" }),
			wantErr: ErrInvalidRequest, wantField: "user"},
		{name: "user with a byte order mark", req: acme(func(r *Request) { r.User = "\ufeffalice" }),
			wantErr: ErrInvalidRequest, wantField: "user"},
		{name: "user with a line separator", req: acme(func(r *Request) { r.User = "alice\u2028bob" }),
			wantErr: ErrInvalidRequest, wantField: "user"},
		{name: "user with a private-use character", req: acme(func(r *Request) { r.User = "alice\ue000" }),
			wantErr: ErrInvalidRequest, wantField: "user"},
		{name: "user in another script is fine", req: acme(func(r *Request) { r.User = "アリス@例え.jp" }),
			want: acmeGrant(func(g *Grant) { g.Identity.Username = "アリス@例え.jp" })},
		{name: "user with a non-breaking space", req: acme(func(r *Request) { r.User = "alice\u00a0smith" }),
			wantErr: ErrInvalidRequest},
		{name: "expanded username too long", req: eu(func(r *Request) { r.User = strings.Repeat("a", 250) }),
			wantErr: ErrInvalidRequest, wantRule: "tenants.acme-eu.rls.username"},
		{name: "negative lifetime", req: acme(func(r *Request) { r.Lifetime = -time.Minute }), wantErr: ErrInvalidRequest},
		{name: "lifetime under a minute", req: acme(func(r *Request) { r.Lifetime = 30 * time.Second }), wantErr: ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Decide(tt.req)
			if tt.wantErr != nil {
				var d *Denial
				if !errors.As(err, &d) || !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decide() error = %v (%T), want a *Denial for %v; grant %+v", err, err, tt.wantErr, got)
				}
				if tt.wantRule != "" && d.Rule != tt.wantRule {
					t.Errorf("Denial.Rule = %q, want %q", d.Rule, tt.wantRule)
				}
				if tt.wantField != "" && d.Field != tt.wantField {
					t.Errorf("Denial.Field = %q, want %q", d.Field, tt.wantField)
				}
				if (d.Field != "") != (tt.wantErr == ErrInvalidRequest) {
					t.Errorf("Denial.Field = %q: set exactly for invalid requests", d.Field)
				}
				if d.Message == "" {
					t.Error("Denial.Message is empty")
				}
				if diff := cmp.Diff(Grant{}, got); diff != "" {
					t.Errorf("a denial came with a grant:\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide() grant (-want +got):\n%s", diff)
			}
		})
	}
}

// The models of the models decision table: datasets of each kind, in the contoso
// tenant's two workspaces or elsewhere.
const (
	contosoWS  = "c0c0c0c0-0000-4000-8000-000000000001" // primary: reports "*"
	contosoWS2 = "c0c0c0c0-0000-4000-8000-000000000002" // shared models, one report listed
	elsewhere  = "e1e1e1e1-0000-4000-8000-000000000001" // another tenant's workspace
	cRep       = "c0c0c0c0-aaaa-4000-8000-000000000001" // the requested report
	cRep2      = "c0c0c0c0-aaaa-4000-8000-000000000002" // in contosoWS2
	cOrders    = "c0c0c0c0-aaaa-4000-8000-000000000003" // a paginated report with an SSO source
	dsCloud    = "c0c0c0c0-dddd-4000-8000-000000000001" // imported, RLS
	dsRegion   = "c0c0c0c0-dddd-4000-8000-000000000002" // imported, RLS, roles named differently
	dsAAS      = "c0c0c0c0-dddd-4000-8000-000000000003" // Azure Analysis Services
	dsAAS2     = "c0c0c0c0-dddd-4000-8000-000000000004" // another AAS model, no rls.datasets entry
	dsSSAS     = "c0c0c0c0-dddd-4000-8000-000000000005" // SSAS, the end user's account
	dsSSAS2    = "c0c0c0c0-dddd-4000-8000-000000000006" // SSAS, a fixed account
	dsSSO      = "c0c0c0c0-dddd-4000-8000-000000000007" // Azure SQL with SSO, identity required
	dsTargets  = "c0c0c0c0-dddd-4000-8000-000000000008" // Databricks with SSO, no RLS
	dsPlain    = "c0c0c0c0-dddd-4000-8000-000000000009" // imported, no RLS
	dsComp     = "c0c0c0c0-dddd-4000-8000-00000000000a" // a composite model
)

// modelsPolicy is the policy of the models decision table.
var modelsPolicy = `
callers:
  - id: ` + frontend + `
    tenants: ["*"]
tenants:
  contoso:        # one tenant mixing kinds of model: per-dataset identities
    workspace_id: ` + contosoWS + `
    reports: ["*"]
    workspaces:
      - id: ` + contosoWS2 + `
        reports: [` + cRep2 + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      dataset_roles: {` + dsRegion + `: [Region]}
      datasets:
        ` + strings.ToUpper(dsAAS) + `: {username: service_principal, custom_data: "{user}", roles: [SalesReader]}
        ` + dsSSAS + `: {username: 'CORP\{user}', custom_data: ""}
        ` + dsSSAS2 + `: {username: 'CORP\embed-reader', custom_data: "", roles: []}
        ` + dsSSO + `: {roles: []}
    sso: [` + dsSSO + `, ` + strings.ToUpper(dsTargets) + `, ` + cOrders + `, ` + dsPlain + `]
  aas:            # every model a live connection to AAS: the service principal for all
    workspace_id: ` + contosoWS + `
    reports: ["*"]
    rls:
      roles: [Reader]
      username: service_principal
      custom_data: "{user}"
  wrong-aas:      # the end user as the username of an AAS model
    workspace_id: ` + contosoWS + `
    reports: ["*"]
    rls:
      roles: [Reader]
  wrong-ssas:     # the service principal on an SSAS model
    workspace_id: ` + contosoWS + `
    reports: ["*"]
    rls:
      roles: [Reader]
      username: service_principal
  sso-all:        # every single sign-on source gets its blob; no rls
    workspace_id: ` + contosoWS + `
    reports: ["*"]
    sso: ["*"]
  plain:          # no rls, no sso
    workspace_id: ` + contosoWS + `
    reports: ["*"]
`

// TestDecideModels is the decision table of Grant.Models: what each kind of model
// gets from the policy, and the ways a policy can get a kind wrong, each refused.
func TestDecideModels(t *testing.T) {
	t.Parallel()
	p := mustParse(t, modelsPolicy)
	cloud := func(id string, mod func(*Model)) Model {
		m := Model{ID: id, WorkspaceID: contosoWS, Kind: ModelCloud, IdentityRequired: true, Reports: []string{cRep}}
		if mod != nil {
			mod(&m)
		}
		return m
	}
	of := func(kind ModelKind) func(*Model) { return func(m *Model) { m.Kind = kind } }
	sso := func(m *Model) { m.SSO = true }
	noRLS := func(m *Model) { m.IdentityRequired = false }
	readBy := func(by, ws string) func(*Model) {
		return func(m *Model) { m.ReadBy, m.WorkspaceID, m.IdentityRequired = by, ws, false }
	}
	both := func(fs ...func(*Model)) func(*Model) {
		return func(m *Model) {
			for _, f := range fs {
				f(m)
			}
		}
	}
	id := func(sp bool, username, customData string, roles ...string) *DatasetIdentity {
		if roles == nil {
			roles = []string{}
		}
		return &DatasetIdentity{ServicePrincipal: sp, Username: username, CustomData: customData, Roles: roles}
	}
	tests := []struct {
		name      string
		tenant    string
		user      string // default alice
		models    []Model
		want      []ModelGrant
		wantErr   error
		wantRule  string
		wantField string
	}{
		// Cloud models: the rls block's identity (nil: the gateway applies it with
		// dataset_roles and without_rls), or the dataset's own.
		{name: "cloud model with RLS: the rls block's identity", tenant: "contoso",
			models: []Model{cloud(dsCloud, nil)}, want: []ModelGrant{{ID: dsCloud}}},
		{name: "cloud model without RLS: no identity", tenant: "contoso",
			models: []Model{cloud(dsCloud, noRLS)}, want: []ModelGrant{{ID: dsCloud}}},
		{name: "a tenant without rls: nothing to decide", tenant: "plain",
			models: []Model{cloud(dsCloud, nil)}, want: []ModelGrant{{ID: dsCloud}}},
		{name: "the service principal as username of a cloud model is the rls block's", tenant: "aas",
			models: []Model{cloud(dsCloud, nil)}, want: []ModelGrant{{ID: dsCloud}}},

		// Azure Analysis Services: the service principal, the end user in customData.
		{name: "AAS: its rls.datasets entry, ids in any case", tenant: "contoso",
			models: []Model{cloud(dsAAS, of(ModelAAS))},
			want:   []ModelGrant{{ID: dsAAS, Identity: id(true, "", "alice@contoso.com", "SalesReader")}}},
		{name: "AAS: a tenant whose username is the service principal", tenant: "aas",
			models: []Model{cloud(dsAAS2, of(ModelAAS))},
			want:   []ModelGrant{{ID: dsAAS2, Identity: id(true, "", "alice@contoso.com", "Reader")}}},
		{name: "AAS: the end user as username is refused", tenant: "wrong-aas",
			models:  []Model{cloud(dsAAS2, of(ModelAAS))},
			wantErr: ErrIdentityKind, wantRule: "tenants.wrong-aas.rls.username"},
		{name: "AAS: a model the rls.datasets entries miss gets the end user, refused", tenant: "contoso",
			models:  []Model{cloud(dsCloud, nil), cloud(dsAAS2, of(ModelAAS))},
			wantErr: ErrIdentityKind, wantRule: "tenants.contoso.rls.username"},
		{name: "AAS without RLS flags needs no identity", tenant: "wrong-aas",
			models: []Model{cloud(dsAAS2, both(of(ModelAAS), noRLS))}, want: []ModelGrant{{ID: dsAAS2}}},

		// SQL Server Analysis Services: a user the server knows, no customData.
		{name: "SSAS: the end user's account, no customData", tenant: "contoso",
			models: []Model{cloud(dsSSAS, of(ModelSSAS))},
			want:   []ModelGrant{{ID: dsSSAS, Identity: id(false, `CORP\alice@contoso.com`, "", "Customer")}}},
		{name: "SSAS: a fixed account without roles", tenant: "contoso",
			models: []Model{cloud(dsSSAS2, of(ModelSSAS))},
			want:   []ModelGrant{{ID: dsSSAS2, Identity: id(false, `CORP\embed-reader`, "")}}},
		{name: "SSAS: the service principal is refused", tenant: "wrong-ssas",
			models:  []Model{cloud(dsSSAS, of(ModelSSAS))},
			wantErr: ErrIdentityKind, wantRule: "tenants.wrong-ssas.rls.username"},
		{name: "SSAS: customData is refused", tenant: "contoso",
			models:  []Model{cloud(dsAAS2, of(ModelSSAS))},
			wantErr: ErrIdentityKind, wantRule: "tenants.contoso.rls.custom_data"},
		{name: "SSAS: a user an on-premises model cannot take", tenant: "contoso", user: "alice+eu@contoso.com",
			models:  []Model{cloud(dsSSAS, of(ModelSSAS))},
			wantErr: ErrInvalidRequest, wantRule: "tenants.contoso.rls.datasets." + dsSSAS + ".username", wantField: "user"},

		// Single sign-on: a blob where the tenant's sso list says so, never elsewhere.
		{name: "SSO: a listed dataset gets its blob, and its own identity", tenant: "contoso",
			models: []Model{cloud(dsSSO, sso)},
			want:   []ModelGrant{{ID: dsSSO, SSO: true, Identity: id(false, "alice@contoso.com", "contoso")}}},
		{name: "SSO: a composite model's upstream dataset, listed in another case", tenant: "contoso",
			models: []Model{cloud(dsComp, noRLS), cloud(dsTargets, both(sso, readBy(dsComp, contosoWS)))},
			want:   []ModelGrant{{ID: dsComp}, {ID: dsTargets, SSO: true}}},
		{name: "SSO: a paginated report's own source", tenant: "contoso",
			models: []Model{{ID: cOrders, WorkspaceID: contosoWS, Paginated: true, SSO: true, Reports: []string{cOrders}}},
			want:   []ModelGrant{{ID: cOrders, SSO: true}}},
		{name: "SSO: every source of a tenant with the wildcard, and no blob for others", tenant: "sso-all",
			models: []Model{cloud(dsSSO, sso), cloud(dsCloud, noRLS)},
			want:   []ModelGrant{{ID: dsSSO, SSO: true}, {ID: dsCloud}}},
		{name: "SSO: not listed, no blob", tenant: "plain",
			models: []Model{cloud(dsSSO, sso)}, want: []ModelGrant{{ID: dsSSO}}},
		{name: "SSO: a blob for a dataset without single sign-on is refused", tenant: "contoso",
			models:  []Model{cloud(dsPlain, noRLS)},
			wantErr: ErrSSONotApplicable, wantRule: "tenants.contoso.sso"},

		// Datasets a report reads: only from the tenant's workspaces.
		{name: "composite: upstream datasets in the tenant's workspaces", tenant: "contoso",
			models: []Model{cloud(dsComp, noRLS), cloud(dsCloud, readBy(dsComp, contosoWS2)), cloud(dsRegion, readBy(dsComp, strings.ToUpper(contosoWS)))},
			want:   []ModelGrant{{ID: dsComp}, {ID: dsCloud}, {ID: dsRegion}}},
		{name: "composite: an upstream dataset in another workspace is denied", tenant: "contoso",
			models:  []Model{cloud(dsComp, noRLS), cloud(dsCloud, readBy(dsComp, elsewhere))},
			wantErr: ErrDatasetNotAllowed, wantRule: "tenants.contoso.workspaces"},
		{name: "paginated: its dataset found in none of the tenant's workspaces is denied", tenant: "sso-all",
			models:  []Model{cloud(dsCloud, readBy(cOrders, "")), {ID: cOrders, WorkspaceID: contosoWS, Paginated: true, Reports: []string{cOrders}}},
			wantErr: ErrDatasetNotAllowed, wantRule: "tenants.sso-all.workspaces"},
		{name: "a requested report's own dataset elsewhere is the report's binding", tenant: "contoso",
			models: []Model{cloud(dsCloud, func(m *Model) { m.WorkspaceID = elsewhere })}, want: []ModelGrant{{ID: dsCloud}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := tt.user
			if user == "" {
				user = "alice@contoso.com"
			}
			g, err := p.Decide(Request{Caller: frontend, Tenant: tt.tenant, User: user, Items: Reports(cRep)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Models(tt.models)
			if tt.wantErr != nil {
				var d *Denial
				if !errors.As(err, &d) || !errors.Is(err, tt.wantErr) {
					t.Fatalf("Models() = %+v, %v; want a *Denial for %v", got, err, tt.wantErr)
				}
				if d.Rule != tt.wantRule {
					t.Errorf("Denial.Rule = %q, want %q", d.Rule, tt.wantRule)
				}
				if d.Field != tt.wantField {
					t.Errorf("Denial.Field = %q, want %q", d.Field, tt.wantField)
				}
				if d.Dataset == "" || d.Message == "" {
					t.Errorf("Denial = %+v: it names no dataset, or says nothing", d)
				}
				if errors.Is(err, ErrDatasetNotAllowed) && (strings.Contains(d.Message, d.Dataset) || strings.Contains(d.Message, elsewhere)) {
					t.Errorf("Denial.Message %q names what is outside the tenant", d.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Models() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Models() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideUnknownTenantLooksLikeNotGranted: a caller cannot tell a tenant that
// exists (but is not its) from one that does not exist.
func TestDecideUnknownTenantLooksLikeNotGranted(t *testing.T) {
	t.Parallel()
	p := mustParse(t, decisionPolicy)
	req := Request{Caller: billing, User: "u", Items: Reports(acmeR1)}
	deny := func(tenant string) *Denial {
		r := req
		r.Tenant = tenant
		_, err := p.Decide(r)
		var d *Denial
		if !errors.As(err, &d) {
			t.Fatalf("Decide(%q) error = %v, want a *Denial", tenant, err)
		}
		// Compare everything but the tenant key the caller itself sent.
		d.Message = strings.ReplaceAll(d.Message, tenant, "TENANT")
		return d
	}
	exists, missing := deny("initech"), deny("umbrella")
	if diff := cmp.Diff(*exists, *missing, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("unknown tenant and tenant not granted differ (-exists +missing):\n%s", diff)
	}
}

// TestDecideMessagesDoNotLeak: denial messages repeat only what the caller sent.
func TestDecideMessagesDoNotLeak(t *testing.T) {
	t.Parallel()
	p := mustParse(t, decisionPolicy)
	reqs := []Request{
		{Caller: billing, Tenant: "initech", User: "u", Items: Reports(acmeR1)},
		{Caller: frontend, Tenant: "acme", User: "u", Items: Reports(globexR1)},
		{Caller: frontend, Tenant: "acme", User: "u", Items: Reports(acmeR1), AllowEdit: true},
		{Caller: "spiffe://mesh.example/x", Tenant: "acme", User: "u", Items: Reports(acmeR1)},
		{Caller: frontend, Tenant: "acme", User: "u", Items: Reports(hooliR1)},
		{Caller: frontend, Tenant: "acme", User: "u", Items: dash(hooliD1)},
		{Caller: frontend, Tenant: "hooli", User: "u", Items: tileOf(otherDash, tile)},
		{Caller: frontend, Tenant: "acme", User: "u", Items: Reports(acmeR1), AllowCreate: true},
		{Caller: frontend, Tenant: "hooli", User: "u", Items: dash(hooliD1), AllowCreate: true},
	}
	secrets := []string{acmeWS, acmeEUWS, acmeEUPro, globexWS, initechWS, hooliWS, hooliWS2, hooliWS3, hooliDS,
		"globex", "Customer", "Region", "acme-eu", "callers"}
	for _, r := range reqs {
		_, err := p.Decide(r)
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Decide(%+v) message %q reveals %q", r, err, s)
			}
		}
	}
}

// TestDecideGrantsDoNotAlias: a grant's slices belong to the caller of Decide.
func TestDecideGrantsDoNotAlias(t *testing.T) {
	t.Parallel()
	p := mustParse(t, decisionPolicy)
	req := Request{Caller: frontend, Tenant: "acme", User: "alice", Items: Reports(acmeR1)}
	g, err := p.Decide(req)
	if err != nil {
		t.Fatal(err)
	}
	g.Identity.Roles[0] = "Admin"
	g2, err := p.Decide(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := g2.Identity.Roles[0]; got != "Customer" {
		t.Errorf("second grant's first role = %q: the first grant aliased the policy", got)
	}

	req = Request{Caller: frontend, Tenant: "hooli", User: "dan", Items: Reports(hooliR1), AllowCreate: true}
	g, err = p.Decide(req)
	if err != nil {
		t.Fatal(err)
	}
	g.Identity.DatasetRoles[hooliDS][0] = "Admin"
	g.Identity.DatasetRoles[otherR] = []string{"Admin"}
	g.TargetWorkspaceIDs[0] = otherR
	g2, err = p.Decide(req)
	if err != nil {
		t.Fatal(err)
	}
	want := hooliGrant(func(g *Grant) {
		g.Items, g.TargetWorkspaceIDs = []Item{report(hooliR1, hooliWS2)}, []string{hooliWS3}
	})
	if diff := cmp.Diff(want, g2); diff != "" {
		t.Errorf("second grant changed: the first grant aliased the policy (-want +got):\n%s", diff)
	}
}

func TestEmptyPolicyDeniesEverything(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"", "callers: []\n", tenantYAML} {
		p := mustParse(t, policy)
		_, err := p.Decide(Request{Caller: frontend, Tenant: "acme", User: "u", Items: Reports(acmeR1)})
		if !errors.Is(err, ErrUnknownCaller) {
			t.Errorf("policy %q: Decide error = %v, want ErrUnknownCaller", policy, err)
		}
	}
}
