package powerbi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDashboardToken(t *testing.T) {
	t.Parallel()
	// The Plain tile's dataset has no RLS: the policy says so through its report.
	alice := func(roles map[string][]string) *Identity {
		return &Identity{Username: "alice", Roles: []string{"Customer"}, DatasetRoles: roles, WithoutRLS: []string{repPlain}}
	}
	tests := []struct {
		name     string
		r        TokenRequest
		wantBody string
	}{{
		name:     "one identity for the RLS datasets sharing the default roles",
		r:        TokenRequest{Items: dashItem(testWS, dashSales), Identity: alice(nil)},
		wantBody: `{"accessLevel":"View","identities":[{"username":"alice","roles":["Customer"],"datasets":["` + dsRLS + `","` + dsNoRoles + `"]}]}`,
	}, {
		name:     "one identity per role set",
		r:        TokenRequest{Items: dashItem(testWS, dashSales), Lifetime: 20 * time.Minute, Identity: alice(map[string][]string{dsNoRoles: {"Auditor"}, dsPlain: {"Ignored"}})},
		wantBody: `{"accessLevel":"View","lifetimeInMinutes":20,"identities":[{"username":"alice","roles":["Customer"],"datasets":["` + dsRLS + `"]},{"username":"alice","roles":["Auditor"],"datasets":["` + dsNoRoles + `"]}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tt.r.ProfileID = testProfile
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			wantPath := groupPath(testWS, "dashboards", dashSales, "GenerateToken")
			checkOnePost(t, e.f, wantPath)
			checkBody(t, "body", e.f.lastBody(), tt.wantBody)
			want := []Embedded{{Kind: KindDashboard, ID: dashSales, Name: "Sales overview", EmbedURL: dashboardEmbedURL(testWS, dashSales), WorkspaceID: testWS}}
			if diff := cmp.Diff(want, tok.Items); diff != "" {
				t.Errorf("dashboard (-want +got):\n%s", diff)
			}
			if tok.TokenID == "" || tok.RequestID == "" {
				t.Errorf("token = %+v", tok)
			}
			// Tiles listed once; each distinct dataset read once.
			for _, p := range []string{
				groupPath(testWS, "dashboards", dashSales), groupPath(testWS, "dashboards", dashSales, "tiles"),
				groupPath(testWS, "datasets", dsRLS), groupPath(testWS, "datasets", dsPlain), groupPath(testWS, "datasets", dsNoRoles),
			} {
				if got := e.f.getsOf(p); got != 1 {
					t.Errorf("GETs of %s = %d, want 1", p, got)
				}
			}
			for i, h := range append(e.f.metaHeaders, e.f.genHeaders...) {
				if got := h.Get(headerProfileID); got != testProfile {
					t.Errorf("call %d: profile header = %q", i, got)
				}
			}
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.wantBody)
			if p.Method != http.MethodPost || p.URL != e.f.srv.URL+wantPath || p.ProfileID != testProfile || len(p.Items) != 1 {
				t.Errorf("plan = %+v", p)
			}
			if e.f.totalGets() != 5 || e.f.generatePosts() != 1 {
				t.Errorf("PlanItem made calls: %d GETs, %d POSTs (metadata is cached)", e.f.totalGets(), e.f.generatePosts())
			}
		})
	}
}

func TestTileToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		tile     string
		identity *Identity
		wantBody string
		wantDS   int // dataset GETs
	}{{
		name:     "RLS tile: one identity with the default roles",
		tile:     tileSales,
		identity: &Identity{Username: "alice", Roles: []string{"Customer"}, CustomData: "acme"},
		wantBody: `{"accessLevel":"View","identities":[{"username":"alice","roles":["Customer"],"customData":"acme","datasets":["` + dsRLS + `"]}]}`,
		wantDS:   1,
	}, {
		name:     "DatasetRoles override the default",
		tile:     tileMkt,
		identity: &Identity{Username: "alice", Roles: []string{"Customer"}, DatasetRoles: map[string][]string{dsRLS: {"Manager"}}},
		wantBody: `{"accessLevel":"View","identities":[{"username":"alice","roles":["Manager"],"datasets":["` + dsRLS + `"]}]}`,
		wantDS:   1,
	}, {
		name:     "no identity for a dataset the policy says has no RLS",
		tile:     tilePlain,
		identity: &Identity{Username: "alice", Roles: []string{"Customer"}, WithoutRLS: []string{strings.ToUpper(dsPlain)}},
		wantBody: `{"accessLevel":"View"}`,
		wantDS:   1,
	}, {
		name:     "tile without data",
		tile:     tileText,
		identity: &Identity{Username: "alice"},
		wantBody: `{"accessLevel":"View"}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := TokenRequest{Items: tileItem(testWS, dashSales, tt.tile), Identity: tt.identity}
			tok, err := e.c.Issue(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			wantPath := groupPath(testWS, "dashboards", dashSales, "tiles", tt.tile, "GenerateToken")
			checkOnePost(t, e.f, wantPath)
			checkBody(t, "body", e.f.lastBody(), tt.wantBody)
			ft := fakeTiles[tt.tile]
			want := []Embedded{{Kind: KindTile, ID: tt.tile, Name: ft.title, EmbedURL: tileEmbedURL(testWS, dashSales, tt.tile), WorkspaceID: testWS,
				ReportID: ft.report, DatasetID: ft.dataset, DashboardID: dashSales}}
			if diff := cmp.Diff(want, tok.Items); diff != "" {
				t.Errorf("tile (-want +got):\n%s", diff)
			}
			if got := e.f.getsOf(groupPath(testWS, "dashboards", dashSales, "tiles", tt.tile)); got != 1 {
				t.Errorf("tile GETs = %d, want 1", got)
			}
			if got := e.f.totalGets(); got != 1+tt.wantDS {
				t.Errorf("GETs = %d, want the tile and %d dataset(s)", got, tt.wantDS)
			}
			p, err := e.c.Plan(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.wantBody)
			if p.URL != e.f.srv.URL+wantPath {
				t.Errorf("plan URL = %s", p.URL)
			}
		})
	}
}

func TestItemTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		r       TokenRequest
		route   string   // fake route to inject into, "" for none
		answer  []canned // what it answers, in turn
		wantIs  error
		wantAPI *APIError
		wantPE  *PreconditionError
		wantGen int
	}{{
		name:   "no identity for the dashboard's RLS dataset",
		r:      TokenRequest{Items: dashItem(testWS, dashSales)},
		wantIs: ErrIdentityRequired, wantPE: &PreconditionError{Kind: ErrIdentityRequired, DatasetID: dsRLS, ReportID: repSales},
	}, {
		name:   "tile: roles required, none given",
		r:      TokenRequest{Items: tileItem(testWS, dashSales, tileMkt), Identity: &Identity{Username: "alice"}},
		wantIs: ErrRolesRequired, wantPE: &PreconditionError{Kind: ErrRolesRequired, DatasetID: dsRLS, ReportID: repMkt},
	}, {
		name:    "unknown dashboard",
		r:       TokenRequest{Items: dashItem(testWS, "00000000-0000-4000-8000-0000000000ff")},
		wantIs:  ErrNotFound,
		wantAPI: &APIError{Op: "GetDashboard", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get dashboard failed"},
	}, {
		name:    "unknown tile",
		r:       TokenRequest{Items: tileItem(testWS, dashSales, "00000000-0000-4000-8000-0000000000ff")},
		wantIs:  ErrNotFound,
		wantAPI: &APIError{Op: "GetTile", Status: 404, Code: "PowerBIEntityNotFound", Message: "Get tile failed"},
	}, {
		name:    "workspace not authorized",
		r:       TokenRequest{Items: dashItem("00000000-0000-4000-8000-0000000000ee", dashSales)},
		wantIs:  ErrNotAuthorized,
		wantAPI: &APIError{Op: "GetDashboard", Status: 401, Code: "PowerBINotAuthorizedException"},
	}, {
		name:  "tiles throttled",
		r:     TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{dsPlain}}},
		route: "tiles", answer: []canned{{status: 429, header: map[string]string{"Retry-After": "9"}}},
		wantIs: ErrThrottled,
	}, {
		name:  "Power BI rejects the dashboard token",
		r:     TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{dsPlain}}},
		route: "generate", answer: []canned{{status: 400, body: `{"error":{"code":"InvalidRequest","message":"Creating embed token with multiple identities is not supported"}}`}},
		wantIs:  ErrBadRequest,
		wantAPI: &APIError{Op: "GenerateDashboardToken", Status: 400, Code: "InvalidRequest", Message: "Creating embed token with multiple identities is not supported"},
		wantGen: 1,
	}, {
		name:  "tile token 403, again with a fresh Entra token, is forbidden",
		r:     TokenRequest{Items: tileItem(testWS, dashSales, tilePlain)},
		route: "generate", answer: []canned{{status: 403}, {status: 403}},
		wantIs:  ErrForbidden,
		wantAPI: &APIError{Op: "GenerateTileToken", Status: 403},
		wantGen: 2,
	}, {
		name:  "tile token 403 naming the trial quota",
		r:     TokenRequest{Items: tileItem(testWS, dashSales, tilePlain)},
		route: "generate", answer: []canned{quota403, quota403},
		wantIs:  ErrQuotaExceeded,
		wantAPI: &APIError{Op: "GenerateTileToken", Status: 403, Code: "Forbidden", Message: "The user has exceeded the amount of embed token that can be generated on a shared capacity.", Quota: true},
		wantGen: 2,
	}, {
		name:   "an RLS tenant on a tile whose dataset enforces no RLS",
		r:      TokenRequest{Items: tileItem(testWS, dashSales, tilePlain), Identity: &Identity{Username: "a", Roles: []string{"r"}}},
		wantIs: ErrRLSNotEnforced, wantPE: &PreconditionError{Kind: ErrRLSNotEnforced, DatasetID: dsPlain, ReportID: repPlain},
	}, {
		name:   "no workspace",
		r:      TokenRequest{Items: dashItem("", dashSales)},
		wantIs: ErrInvalidRequest,
	}, {
		name:   "no dashboard",
		r:      TokenRequest{Items: tileItem(testWS, "", tileSales)},
		wantIs: ErrInvalidRequest,
	}, {
		name:   "negative lifetime",
		r:      TokenRequest{Items: dashItem(testWS, dashSales), Lifetime: -time.Second},
		wantIs: ErrInvalidRequest,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.route != "" {
				e.f.push(tt.route, tt.answer...)
			}
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if got := e.f.generatePosts(); got != tt.wantGen {
				t.Errorf("GenerateToken POSTs = %d, want %d", got, tt.wantGen)
			}
			if tt.wantAPI != nil {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err %T is not an *APIError", err)
				}
				ae.RequestID = ""
				if diff := cmp.Diff(tt.wantAPI, ae); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
			}
			if tt.wantPE != nil {
				var pe *PreconditionError
				if !errors.As(err, &pe) {
					t.Fatalf("err %T is not a *PreconditionError", err)
				}
				if *pe != *tt.wantPE {
					t.Errorf("PreconditionError = %+v, want %+v", pe, tt.wantPE)
				}
			}
			if tt.wantIs == ErrThrottled {
				var te *ThrottledError
				if !errors.As(err, &te) || te.RetryAfter != 9*time.Second || te.Op != "GetTiles" {
					t.Errorf("err = %#v", err)
				}
			}
			if _, perr := e.c.Plan(context.Background(), tt.r); tt.route == "" && !errors.Is(perr, tt.wantIs) {
				t.Errorf("Plan err = %v, want %v", perr, tt.wantIs)
			}
		})
	}
}

func TestItemMetadataCachedAndForgotten(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache) // repeated identical requests must reach upstream
	ctx := context.Background()
	r := TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "alice", Roles: []string{"Customer"}, WithoutRLS: []string{repPlain}}}
	for range 2 {
		if _, err := e.c.Issue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tiles := groupPath(testWS, "dashboards", dashSales, "tiles")
	if got := e.f.getsOf(tiles); got != 1 {
		t.Errorf("tile list GETs = %d, want 1 (cached)", got)
	}
	// A rejected token drops what it was built from.
	e.f.push("generate", canned{status: 400, body: `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset x requires effective identity to be provided"}}`})
	if _, err := e.c.Issue(ctx, r); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tiles, groupPath(testWS, "dashboards", dashSales), groupPath(testWS, "datasets", dsRLS)} {
		if got := e.f.getsOf(p); got != 2 {
			t.Errorf("GETs of %s = %d, want 2", p, got)
		}
	}
	// After the TTL a tile is fetched again.
	rt := r
	rt.Items = tileItem(testWS, dashSales, tileSales)
	for range 2 {
		if _, err := e.c.Issue(ctx, rt); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(DefaultMetadataTTL)
	}
	if got := e.f.getsOf(groupPath(testWS, "dashboards", dashSales, "tiles", tileSales)); got != 2 {
		t.Errorf("tile GETs = %d, want 2", got)
	}
}

func TestItemLogsNeverHoldTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, err := e.c.Issue(context.Background(), TokenRequest{Items: tileItem(testWS, dashSales, tilePlain)})
	if err != nil {
		t.Fatal(err)
	}
	if logs := e.logs.String(); strings.Contains(logs, tok.Token) || strings.Contains(logs, "eyJ0eXAiOiJKV1QifQ") {
		t.Errorf("logs hold a token:\n%s", logs)
	}
}
