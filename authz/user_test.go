package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

const (
	intranet    = "spiffe://mesh.example/ns/intranet/sa/portal" // user_owns_data only
	hub         = "spiffe://mesh.example/ns/hub/sa/hub"         // tenants and user_owns_data
	contosoTID  = "cccccccc-1111-4000-8000-000000000001"
	fabrikamTID = "cccccccc-2222-4000-8000-000000000002"
	salesWS     = "5a1e5000-0000-4000-8000-000000000001"
	hrWS        = "5a1e5000-0000-4000-8000-000000000002"
	userR1      = "aaaaaaaa-1111-4000-8000-000000000001"
	userR2      = "aaaaaaaa-1111-4000-8000-00000000000b"
)

// userPolicy: the intranet portal embeds for Contoso's users from two
// workspaces (ids written in upper case: the policy normalises them); the
// hub has a tenant and embeds for Fabrikam's users anywhere; frontend
// (decisionPolicy's) has no user_owns_data.
const userPolicy = `
callers:
  - id: ` + intranet + `
    user_owns_data:
      entra_tenants: [CCCCCCCC-1111-4000-8000-000000000001]
      workspaces: [5A1E5000-0000-4000-8000-000000000001, ` + hrWS + `]
  - id: ` + hub + `
    tenants: [acme]
    user_owns_data:
      entra_tenants: [` + fabrikamTID + `]
      workspaces: ["*"]
  - id: ` + frontend + `
    tenants: ["*"]
tenants:
  acme:
    workspace_id: ` + acmeWS + `
    reports: ["*"]
`

// TestDecideUser is the decision table of user owns data: who may ask,
// for which workspaces, and the shape of the request; then the user's
// Entra tenant.
func TestDecideUser(t *testing.T) {
	t.Parallel()
	p := mustParse(t, userPolicy)
	tests := []struct {
		name string
		req  UserRequest
		// entraTenant is then checked, when the request is granted.
		entraTenant string
		want        *UserGrant // nil: denied
		wantErr     error
		wantRule    string
		wantField   string
	}{
		{
			name:        "a listed workspace, for a user of a listed tenant",
			req:         UserRequest{Caller: intranet, WorkspaceID: strings.ToUpper(salesWS), ReportIDs: []string{strings.ToUpper(userR1), userR2}},
			entraTenant: strings.ToUpper(contosoTID),
			want:        &UserGrant{Caller: intranet, WorkspaceID: salesWS, ReportIDs: []string{userR1, userR2}, Rule: "callers[" + intranet + "].user_owns_data"},
		},
		{
			name:        "the other listed workspace",
			req:         UserRequest{Caller: intranet, WorkspaceID: hrWS, ReportIDs: []string{userR1}},
			entraTenant: contosoTID,
			want:        &UserGrant{Caller: intranet, WorkspaceID: hrWS, ReportIDs: []string{userR1}, Rule: "callers[" + intranet + "].user_owns_data"},
		},
		{
			name:        "any workspace for a caller with *",
			req:         UserRequest{Caller: hub, WorkspaceID: acmeWS, ReportIDs: []string{userR1}},
			entraTenant: fabrikamTID,
			want:        &UserGrant{Caller: hub, WorkspaceID: acmeWS, ReportIDs: []string{userR1}, Rule: "callers[" + hub + "].user_owns_data"},
		},
		{
			name:     "a caller the policy does not list",
			req:      UserRequest{Caller: "spiffe://mesh.example/ns/x/sa/stranger", WorkspaceID: salesWS, ReportIDs: []string{userR1}},
			wantErr:  ErrUnknownCaller,
			wantRule: "callers",
		},
		{
			name:     "a caller without user_owns_data",
			req:      UserRequest{Caller: frontend, WorkspaceID: salesWS, ReportIDs: []string{userR1}},
			wantErr:  ErrUserEmbeddingNotAllowed,
			wantRule: "callers[" + frontend + "].user_owns_data",
		},
		{
			name:     "a workspace the caller's block does not list",
			req:      UserRequest{Caller: intranet, WorkspaceID: acmeWS, ReportIDs: []string{userR1}},
			wantErr:  ErrUserEmbeddingNotAllowed,
			wantRule: "callers[" + intranet + "].user_owns_data.workspaces",
		},
		{
			name:        "a user of another Entra tenant",
			req:         UserRequest{Caller: intranet, WorkspaceID: salesWS, ReportIDs: []string{userR1}},
			entraTenant: fabrikamTID,
			wantErr:     ErrUserEmbeddingNotAllowed,
			wantRule:    "callers[" + intranet + "].user_owns_data.entra_tenants",
		},
		{
			name:        "a user whose token names no tenant",
			req:         UserRequest{Caller: hub, WorkspaceID: salesWS, ReportIDs: []string{userR1}},
			entraTenant: "",
			wantErr:     ErrUserEmbeddingNotAllowed,
			wantRule:    "callers[" + hub + "].user_owns_data.entra_tenants",
		},
		{
			name:      "no reports",
			req:       UserRequest{Caller: intranet, WorkspaceID: salesWS},
			wantErr:   ErrInvalidRequest,
			wantRule:  "request",
			wantField: "report_ids",
		},
		{
			name:      "a report id twice, in two cases",
			req:       UserRequest{Caller: intranet, WorkspaceID: salesWS, ReportIDs: []string{userR1, strings.ToUpper(userR1)}},
			wantErr:   ErrInvalidRequest,
			wantRule:  "request",
			wantField: "report_ids[1]",
		},
		{
			name:      "a workspace id that is not a uuid",
			req:       UserRequest{Caller: intranet, WorkspaceID: "me", ReportIDs: []string{userR1}},
			wantErr:   ErrInvalidRequest,
			wantRule:  "request",
			wantField: "workspace_id",
		},
		{
			name:      "too many reports",
			req:       UserRequest{Caller: intranet, WorkspaceID: salesWS, ReportIDs: make([]string, MaxReportIDs+1)},
			wantErr:   ErrInvalidRequest,
			wantRule:  "request",
			wantField: "report_ids",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := p.DecideUser(tc.req)
			if err == nil && tc.want == nil {
				err = g.CheckEntraTenant(tc.entraTenant)
			}
			if tc.want != nil {
				if err != nil {
					t.Fatalf("DecideUser: %v", err)
				}
				if err := g.CheckEntraTenant(tc.entraTenant); err != nil {
					t.Fatalf("CheckEntraTenant: %v", err)
				}
				if diff := cmp.Diff(*tc.want, g, cmpopts.IgnoreUnexported(UserGrant{})); diff != "" {
					t.Errorf("grant (-want +got):\n%s", diff)
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want a *Denial for %v", err, tc.wantErr)
			}
			if d.Rule != tc.wantRule || d.Field != tc.wantField {
				t.Errorf("rule %q field %q, want %q %q", d.Rule, d.Field, tc.wantRule, tc.wantField)
			}
		})
	}
}

// TestUserOwnsDataDoesNotGrantTenants: a caller with user_owns_data only
// gets no app-owns-data tenant, and user_owns_data adds nothing to a
// caller's tenants.
func TestUserOwnsDataDoesNotGrantTenants(t *testing.T) {
	t.Parallel()
	p := mustParse(t, userPolicy)
	if _, err := p.Decide(Request{Caller: intranet, Tenant: "acme", User: "alice", Items: Reports(acmeR1)}); !errors.Is(err, ErrTenantNotAllowed) {
		t.Errorf("the intranet portal asks for acme's token: %v, want ErrTenantNotAllowed", err)
	}
	if _, err := p.Decide(Request{Caller: hub, Tenant: "acme", User: "alice", Items: Reports(acmeR1)}); err != nil {
		t.Errorf("the hub asks for its own tenant: %v", err)
	}
	var zero UserGrant
	if err := zero.CheckEntraTenant(contosoTID); !errors.Is(err, ErrUserEmbeddingNotAllowed) {
		t.Errorf("the zero grant allows a tenant: %v", err)
	}
}

// TestUserOwnsDataProblems: every problem of a user_owns_data block, each
// with its key.
func TestUserOwnsDataProblems(t *testing.T) {
	t.Parallel()
	policy := `
callers:
  - id: spiffe://mesh.example/ns/a/sa/a
    user_owns_data:
      entra_tenants: [contoso.onmicrosoft.com, ` + contosoTID + `, ` + strings.ToUpper(contosoTID) + `]
      workspaces: ["*", ` + salesWS + `]
  - id: spiffe://mesh.example/ns/b/sa/b
    user_owns_data: {}
  - id: spiffe://mesh.example/ns/c/sa/c
    user_owns_data:
      entra_tenants: [` + contosoTID + `]
      workspaces: [sales, ` + salesWS + `, ` + salesWS + `]
  - id: spiffe://mesh.example/ns/d/sa/d
    user_owns_data:
      entra_tenants: [` + contosoTID + `]
      workspaces: ["*"]
      colour: blue
  - id: spiffe://mesh.example/ns/e/sa/e
`
	_, err := Parse([]byte(policy))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse: %v, want a *ValidationError", err)
	}
	want := []yamlfile.Problem{
		pr("callers[3].user_owns_data.colour", "unknown key"),
		pr("callers[0].user_owns_data.entra_tenants[0]", `"contoso.onmicrosoft.com" is not an Entra tenant id`),
		pr("callers[0].user_owns_data.entra_tenants[2]", "duplicate tenant id "+contosoTID),
		pr("callers[0].user_owns_data.workspaces[0]", `"*" must be the only entry`),
		pr("callers[1].user_owns_data.entra_tenants", "must list the Entra tenant ids"),
		pr("callers[1].user_owns_data.workspaces", `must list workspace ids, or "*"`),
		pr("callers[2].user_owns_data.workspaces[0]", `"sales" is not a workspace id`),
		pr("callers[2].user_owns_data.workspaces[2]", "duplicate workspace id "+salesWS),
		pr("callers[4].tenants", "or has user_owns_data"),
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ve.Problems), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, p := range ve.Problems {
			if p.Key == w.Key && strings.Contains(p.Message, w.Message) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem %s: %q in\n%v", w.Key, w.Message, err)
		}
	}
}
