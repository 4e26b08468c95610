package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/emulator"
)

// checkBody compares a request body with the exact JSON wanted, showing a
// structural diff when they differ.
func checkBody(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	var g, w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %s: %v", want, err)
	}
	_ = json.Unmarshal([]byte(got), &g)
	t.Errorf("%s\n got %s\nwant %s\ndiff (-want +got):\n%s", what, got, want, cmp.Diff(w, g))
}

func groupPath(ws string, parts ...string) string {
	return "/v1.0/myorg/groups/" + ws + "/" + strings.Join(parts, "/")
}

func TestGenerateTokenAcrossWorkspaces(t *testing.T) {
	t.Parallel()
	both := []Item{rep(testWS, repSales), rep(testWS2, repWS2)}
	ds := func(ids ...string) string { return `"datasets":["` + strings.Join(ids, `","`) + `"]` }
	const datasets = `{"datasets":[{"id":"` + dsRLS + `"},{"id":"` + dsRLS2 + `"}],"reports":[{"id":"` + repSales + `","allowEdit":false},{"id":"` + repWS2 + `","allowEdit":false}]`
	tests := []struct {
		name string
		r    TokenRequest
		want string // the exact JSON body
	}{{
		name: "same roles everywhere: one identity for both datasets",
		r:    TokenRequest{Items: both, Identity: &Identity{Username: "alice", Roles: []string{"Customer"}}},
		want: datasets + `,"identities":[{"username":"alice","roles":["Customer"],` + ds(dsRLS, dsRLS2) + `}]}`,
	}, {
		name: "DatasetRoles gives a dataset its own identity",
		r:    TokenRequest{Items: both, Identity: &Identity{Username: "alice", CustomData: "acme", Roles: []string{"Customer"}, DatasetRoles: map[string][]string{dsRLS2: {"EU", "Reader"}}}},
		want: datasets + `,"identities":[{"username":"alice","roles":["Customer"],"customData":"acme",` + ds(dsRLS) + `},{"username":"alice","roles":["EU","Reader"],"customData":"acme",` + ds(dsRLS2) + `}]}`,
	}, {
		name: "role sets compared as sets, dataset keys case-insensitively",
		r:    TokenRequest{Items: both, Identity: &Identity{Username: "alice", Roles: []string{"A", "B"}, DatasetRoles: map[string][]string{strings.ToUpper(dsRLS2): {"B", "A"}}}},
		want: datasets + `,"identities":[{"username":"alice","roles":["A","B"],` + ds(dsRLS, dsRLS2) + `}]}`,
	}, {
		name: "a dataset needing no roles gets none when the default has none",
		r: TokenRequest{Items: append(reports(testWS, repNoRoles), both...),
			Identity: &Identity{Username: "alice", DatasetRoles: map[string][]string{dsRLS: {"Customer"}, dsRLS2: {"Customer"}}}},
		want: `{"datasets":[{"id":"` + dsNoRoles + `"},{"id":"` + dsRLS + `"},{"id":"` + dsRLS2 + `"}],"reports":[{"id":"` + repNoRoles + `","allowEdit":false},{"id":"` + repSales + `","allowEdit":false},{"id":"` + repWS2 + `","allowEdit":false}],` +
			`"identities":[{"username":"alice",` + ds(dsNoRoles) + `},{"username":"alice","roles":["Customer"],` + ds(dsRLS, dsRLS2) + `}]}`,
	}, {
		name: "target workspaces sent once each",
		r: TokenRequest{Items: both, TargetWorkspaceIDs: []string{testWS, testWS2, strings.ToUpper(testWS)}, AllowEdit: true, Lifetime: time.Hour,
			Identity: &Identity{Username: "alice", Roles: []string{"Customer"}}},
		want: `{"datasets":[{"id":"` + dsRLS + `"},{"id":"` + dsRLS2 + `"}],"reports":[{"id":"` + repSales + `","allowEdit":true},{"id":"` + repWS2 + `","allowEdit":true}],` +
			`"targetWorkspaces":[{"id":"` + testWS + `"},{"id":"` + testWS2 + `"}],"identities":[{"username":"alice","roles":["Customer"],` + ds(dsRLS, dsRLS2) + `}],"lifetimeInMinutes":60}`,
	}, {
		name: "empty, non-nil target workspaces sent as []",
		r:    TokenRequest{Items: reports(testWS, repPlain), TargetWorkspaceIDs: []string{}},
		want: `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false}],"targetWorkspaces":[]}`,
	}, {
		name: "report workspace given explicitly while it is also the primary",
		r:    TokenRequest{Items: []Item{rep(testWS, repPlain), rep(testWS2, repWS2)}, Identity: &Identity{Username: "bob", Roles: []string{"EU"}, WithoutRLS: []string{repPlain}}},
		want: `{"datasets":[{"id":"` + dsPlain + `"},{"id":"` + dsRLS2 + `"}],"reports":[{"id":"` + repPlain + `","allowEdit":false},{"id":"` + repWS2 + `","allowEdit":false}],"identities":[{"username":"bob","roles":["EU"],` + ds(dsRLS2) + `}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "body", string(e.onlyMint(t, "/v1.0/myorg/GenerateToken").Body), tt.want)
			// Each report (and its dataset) was read in its own workspace.
			for i, ref := range tt.r.Items {
				ws, world := ref.WorkspaceID, reportOf(t, ref.ID)
				if got := e.gets(groupPath(ws, "reports", ref.ID)); got != 1 {
					t.Errorf("GETs of report %s in %s = %d, want 1", ref.ID, ws, got)
				}
				if got := e.gets(groupPath(ws, "datasets", world.DatasetID)); got != 1 {
					t.Errorf("GETs of dataset of %s in %s = %d, want 1", ref.ID, ws, got)
				}
				want := Embedded{Kind: KindReport, ID: ref.ID, Name: world.Name, EmbedURL: reportEmbedURL(ws, ref.ID), WorkspaceID: ws, DatasetID: world.DatasetID}
				if diff := cmp.Diff(want, tok.Items[i], ignoreEmbedConfig); diff != "" {
					t.Errorf("report %d (-want +got):\n%s", i, diff)
				}
			}
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.want)
			if p.URL != e.emu.URL()+"/v1.0/myorg/GenerateToken" || p.Method != http.MethodPost {
				t.Errorf("plan = %s %s", p.Method, p.URL)
			}
			if diff := cmp.Diff(tok.Items, p.Items); diff != "" {
				t.Errorf("plan reports (-token +plan):\n%s", diff)
			}
		})
	}
}

func TestLonePaginatedReportUsesV1Route(t *testing.T) {
	t.Parallel()
	// Power BI may give a paginated report a dataset; its reportType
	// still marks it.
	withDataset := answer(http.StatusOK, `{"id":"`+repWS2RDL+`","reportType":"PaginatedReport","name":"Statement","datasetId":"`+dsRLS2+`","datasetWorkspaceId":"`+testWS2+`",`+
		`"embedUrl":"`+rdlEmbedURL(testWS2, repWS2RDL)+`&w=2&config=e30%3d"}`)
	tests := []struct {
		name     string
		r        TokenRequest
		report   *emulator.Answer // what Get Report answers, if not the emulator's own
		ws       string
		wantBody string
	}{{
		name:     "no identity",
		r:        req(repRDL),
		ws:       testWS,
		wantBody: `{"accessLevel":"View"}`,
	}, {
		name:     "listed twice is still alone",
		r:        req(repRDL, repRDL),
		ws:       testWS,
		wantBody: `{"accessLevel":"View"}`,
	}, {
		name: "identity names the report; roles sent when given",
		r: TokenRequest{Items: reports(testWS, repRDL), Lifetime: 15 * time.Minute,
			Identity: &Identity{Username: "alice@acme.com", Roles: []string{"Customer"}, DatasetRoles: map[string][]string{dsRLS: {"Other"}}}},
		ws:       testWS,
		wantBody: `{"accessLevel":"View","lifetimeInMinutes":15,"identities":[{"username":"alice@acme.com","roles":["Customer"],"reports":["` + repRDL + `"]}]}`,
	}, {
		name: "reportType alone marks it; other workspace; edit and targets do not apply",
		r: TokenRequest{Items: []Item{rep(testWS2, repWS2RDL)}, AllowEdit: true, TargetWorkspaceIDs: []string{testWS2},
			Identity: &Identity{Username: "alice", CustomData: "acme"}},
		report:   &withDataset,
		ws:       testWS2,
		wantBody: `{"accessLevel":"View","identities":[{"username":"alice","customData":"acme","reports":["` + repWS2RDL + `"]}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.report != nil {
				e.emu.SetAnswer(emulator.RouteGetReport, *tt.report)
			}
			tt.r.ProfileID = testProfile
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			id := tt.r.Items[0].ID
			wantPath := groupPath(tt.ws, "reports", id, "GenerateToken")
			mint := e.onlyMint(t, wantPath)
			checkBody(t, "body", string(mint.Body), tt.wantBody)
			if got := mint.Header.Get(headerProfileID); got != testProfile {
				t.Errorf("profile header = %q", got)
			}
			for i, rep := range tok.Items {
				want := Embedded{Kind: KindReport, ID: tt.r.Items[i].ID, Name: reportOf(t, id).Name, EmbedURL: rdlEmbedURL(tt.ws, id), WorkspaceID: tt.ws}
				if diff := cmp.Diff(want, rep, ignoreEmbedConfig); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
			}
			if got := e.calls(emulator.RouteGetDataset); got != 0 {
				t.Errorf("dataset GETs for a paginated report = %d, want 0", got)
			}
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.wantBody)
			if p.URL != e.emu.URL()+wantPath || p.ProfileID != testProfile {
				t.Errorf("plan URL %s profile %q", p.URL, p.ProfileID)
			}
		})
	}
}

func TestTokenPreconditionsPerDataset(t *testing.T) {
	t.Parallel()
	both := []Item{rep(testWS, repSales), rep(testWS2, repWS2)}
	tests := []struct {
		name          string
		r             TokenRequest
		wantErr       error
		wantDS, wantR string
	}{{
		name:    "DatasetRoles empties the roles a dataset requires",
		r:       TokenRequest{Items: both, Identity: &Identity{Username: "alice", Roles: []string{"Customer"}, DatasetRoles: map[string][]string{dsRLS2: {}}}},
		wantErr: ErrRolesRequired, wantDS: dsRLS2, wantR: repWS2,
	}, {
		name:    "default roles empty, only one dataset overridden",
		r:       TokenRequest{Items: both, Identity: &Identity{Username: "alice", DatasetRoles: map[string][]string{dsRLS: {"Customer"}}}},
		wantErr: ErrRolesRequired, wantDS: dsRLS2, wantR: repWS2,
	}, {
		name:    "no identity for the second workspace's RLS dataset",
		r:       TokenRequest{Items: []Item{rep(testWS, repPlain), rep(testWS2, repWS2)}},
		wantErr: ErrIdentityRequired, wantDS: dsRLS2, wantR: repWS2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := e.generatePosts(); got != 0 {
				t.Errorf("GenerateToken POSTs = %d, want 0", got)
			}
			var pe *PreconditionError
			if !errors.As(err, &pe) || pe.DatasetID != tt.wantDS || pe.ReportID != tt.wantR {
				t.Errorf("err = %#v, want a PreconditionError for dataset %s of report %s", err, tt.wantDS, tt.wantR)
			}
		})
	}
}

func TestRejectedTokenForgetsMetadataOfEveryWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := TokenRequest{Items: []Item{rep(testWS, repSales), rep(testWS2, repWS2)}, Identity: &Identity{Username: "alice", Roles: []string{"Customer"}}}
	e.emu.SetAnswer(emulator.RouteGenerateToken, times(1, answer(404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`)))
	if _, err := e.c.Issue(context.Background(), r); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, err := e.c.Issue(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{groupPath(testWS, "reports", repSales), groupPath(testWS2, "reports", repWS2), groupPath(testWS, "datasets", dsRLS), groupPath(testWS2, "datasets", dsRLS2)} {
		if got := e.gets(p); got != 2 {
			t.Errorf("GETs of %s = %d, want 2 (refetched after the 404)", p, got)
		}
	}
}
