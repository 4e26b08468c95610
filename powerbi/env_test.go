package powerbi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

// The ids of testdata/world.yaml, the emulator's world for these tests.
const (
	testTenant   = "11111111-2222-3333-4444-555555555555"
	testClientID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testSecret   = "s3cr3t-value~with.chars"
	testWS       = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
	testProfile  = "9c5ea7d4-1c1b-4b59-8a3c-2b8f0c6d7e11" // the app's profile, Member where the app is

	repSales     = "5b218778-e7a5-4d73-8187-f10824047715" // on dsRLS
	repMkt       = "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd" // on dsRLS
	repPlain     = "0d4b6e2a-7f7e-4c43-9d1e-3a5d7c8e9f01" // on dsPlain
	repPlainCopy = "0d4b6e2a-7f7e-4c43-9d1e-3a5d7c8e9f02" // on dsPlain too
	repNoRoles   = "7a1c2d3e-4f50-4617-8293-a4b5c6d7e8f9" // on dsNoRoles
	repRDL       = "c0ffee00-1234-4567-89ab-cdef01234567" // paginated, no dataset
	repShared    = "5ea1ed00-aaaa-4bbb-8ccc-dddddddddddd" // on dsShared, which lives in testSharedWS
	testSharedWS = "3e3e3e3e-0000-4000-8000-000000000000"

	dsRLS     = "cfafbeb1-8037-4d0c-896e-a46fb27ff229" // identity + roles required
	dsPlain   = "e3b0c442-98fc-4c14-9afb-f4c8996fb924" // no RLS
	dsNoRoles = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d" // identity required, roles not
	dsShared  = "5ea1ed00-dddd-4000-8000-000000000001" // no RLS, in testSharedWS

	// A second workspace of the same tenant.
	testWS2   = "2d2d2d2d-1111-4222-8333-444444444444"
	repWS2    = "a2a2a2a2-0000-4000-8000-000000000001" // in testWS2, on dsRLS2
	repWS2RDL = "a2a2a2a2-0000-4000-8000-000000000002" // in testWS2, paginated
	dsRLS2    = "d2d2d2d2-0000-4000-8000-000000000002" // in testWS2, identity + roles required

	// A dashboard in testWS and its tiles.
	dashSales   = "da5b0a2d-0000-4000-8000-000000000001"
	tileSales   = "71e00000-0000-4000-8000-000000000001" // repSales on dsRLS
	tilePlain   = "71e00000-0000-4000-8000-000000000002" // repPlain on dsPlain
	tileNoRoles = "71e00000-0000-4000-8000-000000000003" // repNoRoles on dsNoRoles
	tileText    = "71e00000-0000-4000-8000-000000000004" // a text box: no report, no dataset
	tileMkt     = "71e00000-0000-4000-8000-000000000005" // repMkt on dsRLS

	// A workspace where the app is a Viewer: it may read, not embed.
	viewWS  = "7e7e7e7e-0000-4000-8000-000000000000"
	repView = "7e7e7e7e-0000-4000-8000-000000000001"
	// A workspace on shared capacity: each token spends one of the
	// principal's two trial tokens.
	trialWS  = "a1a1a1a1-0000-4000-8000-000000000000"
	repTrial = "a1a1a1a1-0000-4000-8000-000000000001"

	// The tenant whose admin setting keeps service principals out, and its
	// app, a Member of testWS.
	lockedTenant = "22222222-3333-4444-5555-666666666666"
	lockedClient = "bbbbbbbb-cccc-dddd-eeee-ffffffffffff"
	lockedSecret = "locked-s3cr3t"
)

// testStart is when the clock of every test starts.
var testStart = time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)

// The emulator's GenerateToken routes (V2 and the V1 ones this package
// uses) and its item GETs.
var (
	mintRoutes = []string{emulator.RouteGenerateToken, emulator.RouteReportGenerateTokenInGroup,
		emulator.RouteDashboardGenerateTokenInGroup, emulator.RouteTileGenerateTokenInGroup}
	getRoutes = []string{emulator.RouteGetReport, emulator.RouteGetDataset, emulator.RouteGetDashboard,
		emulator.RouteGetTiles, emulator.RouteGetTile, emulator.RouteAvailableFeatures}
	// modelRoutes tell the kind of a model (model.go).
	modelRoutes = []string{emulator.RouteGetDatasources, emulator.RouteGetReportDatasources}
)

// testWorld returns a fresh copy of testdata/world.yaml.
func testWorld(t *testing.T) *emulator.Fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "world.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := emulator.ParseFixture(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testEnv is a Client talking over real TLS (the emulator's CA as ca_file)
// to an emulator of Entra ID and Power BI. Both read one hand-moved clock;
// there are no backoff waits.
type testEnv struct {
	emu   *emulator.Server
	c     *Client
	clock *testkit.Clock
	cfg   Config
	logs  *testkit.Buffer // the Client's
	// emuLogs are the emulator's, one record per request.
	emuLogs *testkit.Buffer
	// ahead is how far the emulator's clock runs ahead of the Client's.
	ahead atomic.Int64
}

// envSetup is what newEnv builds from; options change it.
type envSetup struct {
	cfg   Config
	emu   emulator.Config // Fixture: testWorld
	start time.Time
}

type envOption func(*envSetup)

// withoutTokenCache is for tests of what lies behind the token cache: every
// request then reaches upstream.
func withoutTokenCache(s *envSetup) { s.cfg.DisableTokenCache = true }

// withConfig changes the Client's config.
func withConfig(mutate func(*Config)) envOption { return func(s *envSetup) { mutate(&s.cfg) } }

// withWorld changes the emulator's fixture.
func withWorld(mutate func(*emulator.Fixture)) envOption {
	return func(s *envSetup) { mutate(s.emu.Fixture) }
}

// withFaults sets the emulator's faults from its start.
func withFaults(f emulator.Faults) envOption { return func(s *envSetup) { s.emu.Faults = f } }

// startingAt starts the clock at t instead of testStart.
func startingAt(t time.Time) envOption { return func(s *envSetup) { s.start = t } }

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	s := envSetup{
		cfg: Config{
			TenantID:         testTenant,
			ClientID:         testClientID,
			ClientSecretFile: writeFile(t, "secret", testSecret+"\n"),
			Timeout:          5 * time.Second,
		},
		emu:   emulator.Config{Fixture: testWorld(t)},
		start: testStart,
	}
	for _, o := range opts {
		o(&s)
	}
	e := &testEnv{clock: testkit.NewClock(s.start), logs: &testkit.Buffer{}, emuLogs: &testkit.Buffer{}}
	s.emu.Now = func() time.Time { return e.clock.Now().Add(time.Duration(e.ahead.Load())) }
	s.emu.Logger = slog.New(slog.NewJSONHandler(e.emuLogs, nil))
	emu, err := emulator.Start(context.Background(), s.emu)
	if err != nil {
		t.Fatalf("emulator.Start: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	e.emu = emu
	if s.cfg.AuthorityHost == "" {
		s.cfg.AuthorityHost = emu.URL()
	}
	if s.cfg.APIURL == "" {
		s.cfg.APIURL = emu.URL()
	}
	s.cfg.CAFile = writeFile(t, "emulator-ca.pem", string(emu.CACertPEM()))
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(s.cfg, WithClock(e.clock.Now), WithLogger(logger), func(o *options) { o.backoff = func(int) time.Duration { return 0 } })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Idle connections go first, so that the emulator's graceful Close
	// does not wait for them.
	t.Cleanup(c.hc.CloseIdleConnections)
	e.c, e.cfg = c, s.cfg
	return e
}

// upstreamAhead moves the emulator's clock (Entra's and Power BI's) d ahead
// of the Client's, as when Power BI holds a token for expired that the
// gateway does not.
func (e *testEnv) upstreamAhead(d time.Duration) { e.ahead.Store(int64(d)) }

// calls is how many calls the routes got.
func (e *testEnv) calls(routes ...string) int {
	counters := e.emu.Counters()
	n := 0
	for _, r := range routes {
		n += int(counters[r])
	}
	return n
}

// tokenPosts is how many times the Client asked Entra for a token.
func (e *testEnv) tokenPosts() int { return e.calls(emulator.RouteEntraToken) }

// generatePosts is how many GenerateToken calls Power BI got, on any route.
func (e *testEnv) generatePosts() int { return e.calls(mintRoutes...) }

// totalGets is how many item GETs Power BI got.
func (e *testEnv) totalGets() int { return e.calls(getRoutes...) }

// powerBICalls is how many calls Power BI got, on any route.
func (e *testEnv) powerBICalls() int {
	n := 0
	for route, c := range e.emu.Counters() {
		if strings.HasPrefix(route, "powerbi.") {
			n += int(c)
		}
	}
	return n
}

// recorded returns what the routes received, route by route.
func (e *testEnv) recorded(routes ...string) []emulator.Recorded {
	var out []emulator.Recorded
	for _, r := range routes {
		out = append(out, e.emu.Requests(r)...)
	}
	return out
}

// mints are the GenerateToken requests Power BI received.
func (e *testEnv) mints() []emulator.Recorded { return e.recorded(mintRoutes...) }

// gets is how many GETs of path Power BI received.
func (e *testEnv) gets(path string) int {
	n := 0
	for _, r := range e.recorded(getRoutes...) {
		if r.Path == path {
			n++
		}
	}
	return n
}

// onlyMint returns the one GenerateToken request Power BI received,
// failing t unless there was exactly one, to path.
func (e *testEnv) onlyMint(t *testing.T, path string) emulator.Recorded {
	t.Helper()
	ms := e.mints()
	if len(ms) != 1 || ms[0].Path != path {
		var paths []string
		for _, m := range ms {
			paths = append(paths, m.Path)
		}
		t.Fatalf("GenerateToken POSTs to %v; want one to %s", paths, path)
	}
	return ms[0]
}

// tokenForms are the Entra token requests' forms, credentials redacted by
// the emulator.
func (e *testEnv) tokenForms() []url.Values {
	var out []url.Values
	for _, r := range e.emu.Requests(emulator.RouteEntraToken) {
		form, _ := url.ParseQuery(string(r.Body))
		out = append(out, form)
	}
	return out
}

// requestIDs are the RequestIds the emulator answered the route with, from
// its request log.
func (e *testEnv) requestIDs(route string) []string {
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(e.emuLogs.String()), "\n") {
		var rec struct {
			Route     string `json:"route"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Route == route {
			ids = append(ids, rec.RequestID)
		}
	}
	return ids
}

// grant is what the emulator recorded for an embed token it minted, looked
// up by the token's value through its admin route.
func (e *testEnv) grant(t *testing.T, token string) (emulator.TokenInfo, bool) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.emu.CACertPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	body, _ := json.Marshal(map[string]string{"token": token})
	resp, err := hc.Post(e.emu.URL()+"/_emulator/tokens/lookup", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info emulator.TokenInfo
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
		return emulator.TokenInfo{}, false
	}
	return info, true
}

// checkNoSecretsLogged fails t if the Client's logs hold an Entra access
// token the emulator issued, the client secret, or one of more (embed
// tokens, other secrets). It never prints what it found.
func (e *testEnv) checkNoSecretsLogged(t *testing.T, more ...string) {
	t.Helper()
	logs := e.logs.String()
	if strings.TrimSpace(logs) == "" {
		t.Fatal("no logs to scan: the check would prove nothing")
	}
	for _, tok := range e.emu.AccessTokens() {
		if strings.Contains(logs, tok) {
			t.Error("the logs hold an Entra access token")
		}
	}
	for _, s := range append(more, testSecret) {
		if s != "" && strings.Contains(logs, s) {
			t.Error("the logs hold an embed token or a secret")
		}
	}
}

// writeFile writes content to a new file in a temporary folder.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// errorBody is a Power BI error body, {"error":{"code","message"}}.
func errorBody(code, message string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	return b
}

// notAuthorizedBody is Power BI's 401, in the pbi.error shape.
const notAuthorizedBody = `{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}`

// quotaMessage is how the troubleshooting docs word the trial quota's 403.
const quotaMessage = "The user has exceeded the amount of embed token that can be generated on a shared capacity."

// answer is a canned Power BI answer: status, body, and headers as
// name/value pairs.
func answer(status int, body string, header ...string) emulator.Answer {
	a := emulator.Answer{Status: status, Body: []byte(body), Header: http.Header{}}
	for i := 0; i+1 < len(header); i += 2 {
		a.Header[header[i]] = []string{header[i+1]}
	}
	return a
}

// times makes a the answer of the next n calls.
func times(n int, a emulator.Answer) emulator.Answer {
	a.Times = n
	return a
}

// dropped closes the connection of the next n calls without an answer.
func dropped(n int) emulator.Answer { return emulator.Answer{Drop: true, Times: n} }

// Embed URLs as Power BI gives them, up to their opaque config (see
// ignoreEmbedConfig).
func reportEmbedURL(ws, id string) string {
	return "https://app.powerbi.com/reportEmbed?reportId=" + id + "&groupId=" + ws
}

func rdlEmbedURL(ws, id string) string {
	return "https://app.powerbi.com/rdlEmbed?reportId=" + id + "&groupId=" + ws
}

func dashboardEmbedURL(ws, d string) string {
	return "https://app.powerbi.com/dashboardEmbed?dashboardId=" + d + "&groupId=" + ws
}

func tileEmbedURL(ws, d, t string) string {
	return "https://app.powerbi.com/embed?dashboardId=" + d + "&tileId=" + t + "&groupId=" + ws
}

// withoutEmbedConfig cuts an embed URL before "&w=": what follows is the
// cluster's opaque config, which the gateway passes on untouched.
func withoutEmbedConfig(u string) string {
	before, _, _ := strings.Cut(u, "&w=")
	return before
}

// ignoreEmbedConfig compares the EmbedURL fields of Embedded items without
// their config.
var ignoreEmbedConfig = cmp.FilterPath(func(p cmp.Path) bool {
	return p.Last().String() == ".EmbedURL"
}, cmp.Transformer("withoutEmbedConfig", withoutEmbedConfig))

// reportOf and tileOf look an item up in testdata/world.yaml, for the
// values the Client should pass on.
func reportOf(t *testing.T, id string) emulator.Report {
	t.Helper()
	for _, ws := range testWorld(t).Workspaces {
		if i := slices.IndexFunc(ws.Reports, func(r emulator.Report) bool { return r.ID == id }); i >= 0 {
			return ws.Reports[i]
		}
	}
	t.Fatalf("no report %s in the world", id)
	return emulator.Report{}
}

func tileOf(t *testing.T, id string) (tile emulator.Tile, datasetID string) {
	t.Helper()
	for _, ws := range testWorld(t).Workspaces {
		for _, d := range ws.Dashboards {
			if i := slices.IndexFunc(d.Tiles, func(x emulator.Tile) bool { return x.ID == id }); i >= 0 {
				tile = d.Tiles[i]
				if tile.ReportID != "" {
					datasetID = reportOf(t, tile.ReportID).DatasetID
				}
				return tile, datasetID
			}
		}
	}
	t.Fatalf("no tile %s in the world", id)
	return emulator.Tile{}, ""
}
