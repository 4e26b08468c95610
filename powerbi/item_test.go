package powerbi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/embedgate/embedgate/emulator"
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
			checkBody(t, "body", string(e.onlyMint(t, wantPath).Body), tt.wantBody)
			want := []Embedded{{Kind: KindDashboard, ID: dashSales, Name: "Sales overview", EmbedURL: dashboardEmbedURL(testWS, dashSales), WorkspaceID: testWS}}
			if diff := cmp.Diff(want, tok.Items, ignoreEmbedConfig); diff != "" {
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
				if got := e.gets(p); got != 1 {
					t.Errorf("GETs of %s = %d, want 1", p, got)
				}
			}
			for _, c := range append(e.recorded(getRoutes...), e.mints()...) {
				if got := c.Header.Get(headerProfileID); got != testProfile {
					t.Errorf("%s %s: profile header = %q", c.Route, c.Path, got)
				}
			}
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.wantBody)
			if p.Method != http.MethodPost || p.URL != e.emu.URL()+wantPath || p.ProfileID != testProfile || len(p.Items) != 1 {
				t.Errorf("plan = %+v", p)
			}
			if e.totalGets() != 5 || e.generatePosts() != 1 {
				t.Errorf("Plan made calls: %d GETs, %d POSTs (metadata is cached)", e.totalGets(), e.generatePosts())
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
			checkBody(t, "body", string(e.onlyMint(t, wantPath).Body), tt.wantBody)
			tile, dataset := tileOf(t, tt.tile)
			want := []Embedded{{Kind: KindTile, ID: tt.tile, Name: tile.Title, EmbedURL: tileEmbedURL(testWS, dashSales, tt.tile), WorkspaceID: testWS,
				ReportID: tile.ReportID, DatasetID: dataset, DashboardID: dashSales}}
			if diff := cmp.Diff(want, tok.Items, ignoreEmbedConfig); diff != "" {
				t.Errorf("tile (-want +got):\n%s", diff)
			}
			if got := e.gets(groupPath(testWS, "dashboards", dashSales, "tiles", tt.tile)); got != 1 {
				t.Errorf("tile GETs = %d, want 1", got)
			}
			if got := e.totalGets(); got != 1+tt.wantDS {
				t.Errorf("GETs = %d, want the tile and %d dataset(s)", got, tt.wantDS)
			}
			p, err := e.c.Plan(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, "plan body", string(p.Body), tt.wantBody)
			if p.URL != e.emu.URL()+wantPath {
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
		route   string           // emulator route answering answer
		answer  *emulator.Answer // nil: the emulator's own answer
		wantIs  error
		wantAPI *APIError // RequestID aside
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
		wantAPI: &APIError{Op: "GetDashboard", Status: 404, Code: "PowerBIEntityNotFound"},
	}, {
		name:    "unknown tile",
		r:       TokenRequest{Items: tileItem(testWS, dashSales, "00000000-0000-4000-8000-0000000000ff")},
		wantIs:  ErrNotFound,
		wantAPI: &APIError{Op: "GetTile", Status: 404, Code: "PowerBIEntityNotFound"},
	}, {
		name:    "workspace not authorized",
		r:       TokenRequest{Items: dashItem("00000000-0000-4000-8000-0000000000ee", dashSales)},
		wantIs:  ErrNotAuthorized,
		wantAPI: &APIError{Op: "GetDashboard", Status: 401, Code: "PowerBINotAuthorizedException"},
	}, {
		name:  "tiles throttled",
		r:     TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{dsPlain}}},
		route: emulator.RouteGetTiles, answer: new(times(1, answer(429, "", "Retry-After", "9"))),
		wantIs: ErrThrottled,
	}, {
		name:  "Power BI rejects the dashboard token",
		r:     TokenRequest{Items: dashItem(testWS, dashSales), Identity: &Identity{Username: "a", Roles: []string{"r"}, WithoutRLS: []string{dsPlain}}},
		route: emulator.RouteDashboardGenerateTokenInGroup, answer: new(times(1, answer(400, `{"error":{"code":"InvalidRequest","message":"Creating embed token with multiple identities is not supported"}}`))),
		wantIs:  ErrBadRequest,
		wantAPI: &APIError{Op: "GenerateDashboardToken", Status: 400, Code: "InvalidRequest", Message: "Creating embed token with multiple identities is not supported"},
		wantGen: 1,
	}, {
		name:  "tile token 403, again with a fresh Entra token, is forbidden",
		r:     TokenRequest{Items: tileItem(testWS, dashSales, tilePlain)},
		route: emulator.RouteTileGenerateTokenInGroup, answer: new(times(2, answer(403, ""))),
		wantIs:  ErrForbidden,
		wantAPI: &APIError{Op: "GenerateTileToken", Status: 403},
		wantGen: 2,
	}, {
		name:  "tile token 403 naming the trial quota",
		r:     TokenRequest{Items: tileItem(testWS, dashSales, tilePlain)},
		route: emulator.RouteTileGenerateTokenInGroup, answer: new(times(2, answer(403, string(errorBody("Forbidden", quotaMessage))))),
		wantIs:  ErrQuotaExceeded,
		wantAPI: &APIError{Op: "GenerateTileToken", Status: 403, Code: "Forbidden", Message: quotaMessage, Quota: true},
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
			if tt.answer != nil {
				e.emu.SetAnswer(tt.route, *tt.answer)
			}
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if got := e.generatePosts(); got != tt.wantGen {
				t.Errorf("GenerateToken POSTs = %d, want %d", got, tt.wantGen)
			}
			if tt.wantAPI != nil {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err %T is not an *APIError", err)
				}
				if ae.RequestID == "" {
					t.Errorf("no RequestId in %v", err)
				}
				if diff := cmp.Diff(tt.wantAPI, ae, cmpopts.IgnoreFields(APIError{}, "RequestID")); diff != "" {
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
			if _, perr := e.c.Plan(context.Background(), tt.r); tt.answer == nil && !errors.Is(perr, tt.wantIs) {
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
	if got := e.gets(tiles); got != 1 {
		t.Errorf("tile list GETs = %d, want 1 (cached)", got)
	}
	// A rejected token drops what it was built from.
	e.emu.SetAnswer(emulator.RouteDashboardGenerateTokenInGroup, times(1, answer(400, `{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset x requires effective identity to be provided"}}`)))
	if _, err := e.c.Issue(ctx, r); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.Issue(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tiles, groupPath(testWS, "dashboards", dashSales), groupPath(testWS, "datasets", dsRLS)} {
		if got := e.gets(p); got != 2 {
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
	if got := e.gets(groupPath(testWS, "dashboards", dashSales, "tiles", tileSales)); got != 2 {
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
	e.checkNoSecretsLogged(t, tok.Token)
}
