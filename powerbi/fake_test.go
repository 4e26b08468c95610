package powerbi

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixture ids, written as Power BI returns them.
const (
	testTenant   = "11111111-2222-3333-4444-555555555555"
	testClientID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testSecret   = "s3cr3t-value~with.chars"
	testWS       = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
	testProfile  = "9c5ea7d4-1c1b-4b59-8a3c-2b8f0c6d7e11"

	repSales     = "5b218778-e7a5-4d73-8187-f10824047715" // on dsRLS
	repMkt       = "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd" // on dsRLS
	repPlain     = "0d4b6e2a-7f7e-4c43-9d1e-3a5d7c8e9f01" // on dsPlain
	repNoRoles   = "7a1c2d3e-4f50-4617-8293-a4b5c6d7e8f9" // on dsNoRoles
	repRDL       = "c0ffee00-1234-4567-89ab-cdef01234567" // paginated, no dataset
	repShared    = "5ea1ed00-aaaa-4bbb-8ccc-dddddddddddd" // on dsPlain, which lives in testSharedWS
	testSharedWS = "3e3e3e3e-0000-4000-8000-000000000000"

	dsRLS     = "cfafbeb1-8037-4d0c-896e-a46fb27ff229" // identity + roles required
	dsPlain   = "e3b0c442-98fc-4c14-9afb-f4c8996fb924" // no RLS
	dsNoRoles = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d" // identity required, roles not (capital-I keys)

	// A second workspace of the same tenant.
	testWS2   = "2d2d2d2d-1111-4222-8333-444444444444"
	repWS2    = "a2a2a2a2-0000-4000-8000-000000000001" // in testWS2, on dsRLS2
	repWS2RDL = "a2a2a2a2-0000-4000-8000-000000000002" // in testWS2, paginated (reportType only, with a datasetId)
	dsRLS2    = "d2d2d2d2-0000-4000-8000-000000000002" // in testWS2, identity + roles required

	// A dashboard in testWS and its tiles.
	dashSales   = "da5b0a2d-0000-4000-8000-000000000001"
	tileSales   = "71e00000-0000-4000-8000-000000000001" // repSales on dsRLS
	tilePlain   = "71e00000-0000-4000-8000-000000000002" // repPlain on dsPlain
	tileNoRoles = "71e00000-0000-4000-8000-000000000003" // repNoRoles on dsNoRoles
	tileText    = "71e00000-0000-4000-8000-000000000004" // a text box: no report, no dataset
	tileMkt     = "71e00000-0000-4000-8000-000000000005" // repMkt on dsRLS
)

// canned is one injected upstream answer.
type canned struct {
	status int
	body   string
	header map[string]string
	hang   bool // close the connection without answering
}

// quota403 is the trial quota's refusal as the troubleshooting docs word it
// (the code is undocumented).
var quota403 = canned{status: 403, body: `{"error":{"code":"Forbidden","message":"The user has exceeded the amount of embed token that can be generated on a shared capacity."}}`}

// fake is Entra ID + Power BI on one httptest TLS server, written from
// shared/reference/powerbi-api.md: OIDC document, token endpoint with the real
// error body, Get Report/Get Dataset In Group, V2 GenerateToken, the
// {"error":{...}} and pbi.error shapes, RequestId on every Power BI answer.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	secret      string // the secret Entra accepts
	expiresIn   int
	sameToken   bool // issue the same access token string every time
	issued      []string
	expired     map[string]bool // tokens Power BI treats as expired
	tokenForms  []map[string]string
	oidcGets    int
	gets        map[string]int // path -> count
	genBodies   []string
	genPaths    []string // URL path of each GenerateToken POST (V2 or V1)
	genHeaders  []http.Header
	metaHeaders []http.Header
	inject      map[string][]canned // route -> answers to give first
	tokenGate   chan struct{}       // if set, token POSTs wait for it
	reportGate  chan struct{}       // if set, report GETs wait for it
	genGate     chan struct{}       // if set, GenerateToken POSTs wait for it (after being counted)
	reqSeq      int
	entraInject []canned
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, secret: testSecret, expiresIn: 3599, expired: map[string]bool{}, gets: map[string]int{}, inject: map[string][]canned{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.oidc)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("GET /v1.0/myorg/groups/{ws}/reports/{id}", f.getReport)
	mux.HandleFunc("GET /v1.0/myorg/groups/{ws}/datasets/{id}", f.getDataset)
	mux.HandleFunc("GET /v1.0/myorg/groups/{ws}/dashboards/{d}", f.getDashboard)
	mux.HandleFunc("GET /v1.0/myorg/groups/{ws}/dashboards/{d}/tiles", f.getTiles)
	mux.HandleFunc("GET /v1.0/myorg/groups/{ws}/dashboards/{d}/tiles/{t}", f.getTile)
	mux.HandleFunc("POST /v1.0/myorg/GenerateToken", f.generate)
	mux.HandleFunc("POST /v1.0/myorg/groups/{ws}/reports/{id}/GenerateToken", f.generate)
	mux.HandleFunc("POST /v1.0/myorg/groups/{ws}/dashboards/{d}/GenerateToken", f.generate)
	mux.HandleFunc("POST /v1.0/myorg/groups/{ws}/dashboards/{d}/tiles/{t}/GenerateToken", f.generate)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// caFile writes the fake's certificate as a PEM file (for ca_file).
func (f *fake) caFile() string {
	p := filepath.Join(f.t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fake) push(route string, c ...canned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[route] = append(f.inject[route], c...)
}

// pop returns an injected answer for route, if any, and writes it.
func (f *fake) pop(w http.ResponseWriter, route string) bool {
	f.mu.Lock()
	q := f.inject[route]
	if len(q) == 0 {
		f.mu.Unlock()
		return false
	}
	c := q[0]
	f.inject[route] = q[1:]
	f.mu.Unlock()
	if c.hang {
		hj, ok := w.(http.Hijacker)
		if !ok {
			f.t.Error("fake: cannot hijack")
			return true
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
	for k, v := range c.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("RequestId") == "" && !strings.Contains(route, "token") {
		w.Header().Set("RequestId", f.requestID())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(c.status)
	io.WriteString(w, c.body)
	return true
}

func (f *fake) requestID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqSeq++
	return fmt.Sprintf("rid-%04d", f.reqSeq)
}

func (f *fake) oidc(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.oidcGets++
	f.mu.Unlock()
	base := f.srv.URL + "/" + r.PathValue("tenant")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                base + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              f.srv.URL + "/common/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
	})
}

func (f *fake) entraError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0f1e2d3c-0000-0000-0000-000000000000\r\nCorrelation ID: 99999999-8888-7777-6666-555555555555\r\nTimestamp: 2026-01-09 02:02:12Z", aadsts, msg),
		"error_codes":       []int{aadsts},
		"timestamp":         "2026-01-09 02:02:12Z",
		"trace_id":          "0f1e2d3c-0000-0000-0000-000000000000",
		"correlation_id":    "99999999-8888-7777-6666-555555555555",
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.entraError(w, 400, "invalid_request", 900144, "bad form")
		return
	}
	form := map[string]string{}
	for k := range r.PostForm {
		form[k] = r.PostForm.Get(k)
	}
	f.mu.Lock()
	f.tokenForms = append(f.tokenForms, form)
	gate := f.tokenGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if f.pop(w, "token") {
		return
	}
	switch {
	case form["grant_type"] != "client_credentials":
		f.entraError(w, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	case form["client_id"] != testClientID:
		f.entraError(w, 400, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", form["client_id"], r.PathValue("tenant")))
		return
	case !strings.Contains(form["scope"], "/.default"):
		f.entraError(w, 400, "invalid_scope", 1002012, "Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	if a := form["client_assertion"]; a != "" {
		if form["client_assertion_type"] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || strings.Count(a, ".") != 2 {
			f.entraError(w, 400, "invalid_client", 50027, "JWT token is invalid or malformed.")
			return
		}
	} else {
		f.mu.Lock()
		ok := form["client_secret"] == f.secret
		f.mu.Unlock()
		if !ok {
			f.entraError(w, 401, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", testClientID))
			return
		}
	}
	f.mu.Lock()
	tok := fmt.Sprintf("eyJ0eXAiOiJKV1QifQ.access-%d.sig", len(f.issued)+1)
	if f.sameToken {
		tok = "eyJ0eXAiOiJKV1QifQ.access-same.sig"
	}
	f.issued = append(f.issued, tok)
	exp := f.expiresIn
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": exp, "ext_expires_in": exp, "access_token": tok})
}

// authorize checks the bearer like Power BI: unknown tokens are 403 (bad
// Authorization header), expired ones 403 TokenExpired.
func (f *fake) authorize(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	known := false
	for _, t := range f.issued {
		known = known || t == tok
	}
	expired := f.expired[tok]
	f.mu.Unlock()
	switch {
	case !ok || !known:
		f.pbiError(w, 403, `{"error":{"code":"InvalidAuthorizationHeader","message":"bad bearer"}}`)
		return false
	case expired:
		f.pbiError(w, 403, `{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}`)
		return false
	}
	return true
}

func (f *fake) pbiError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("RequestId", f.requestID())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

const notAuthorizedBody = `{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}`

func (f *fake) countGet(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[r.URL.Path]++
	f.metaHeaders = append(f.metaHeaders, r.Header.Clone())
}

// fakeWorkspaces are the workspaces the service principal is a member of;
// any other group id gets 401 PowerBINotAuthorizedException.
var fakeWorkspaces = map[string]bool{testWS: true, testWS2: true, testSharedWS: true}

// fakeReports: a paginated report has no dataset, or (repWS2RDL, to check
// that reportType alone is honoured) a dataset and reportType PaginatedReport.
var fakeReports = map[string]struct {
	ws, name, dataset, datasetWS string
	paginated                    bool
}{
	repSales:   {testWS, "SalesMarketing", dsRLS, "", false},
	repMkt:     {testWS, "Marketing", dsRLS, "", false},
	repPlain:   {testWS, "Plain", dsPlain, "", false},
	repNoRoles: {testWS, "NoRoles", dsNoRoles, "", false},
	repRDL:     {testWS, "Invoice", "", "", true},
	repShared:  {testWS, "Shared", dsPlain, testSharedWS, false},
	repWS2:     {testWS2, "Europe", dsRLS2, "", false},
	repWS2RDL:  {testWS2, "Statement", dsRLS2, "", true},
}

// fakeDatasets: the workspaces each dataset is visible in, its RLS flags and
// its Get Dataset In Group body.
var fakeDatasets = map[string]struct {
	ws             []string
	rls, rolesReqd bool
	body           string
}{
	dsRLS:     {[]string{testWS}, true, true, `{"id":"` + dsRLS + `","name":"SalesMarketing","addRowsAPIEnabled":false,"configuredBy":"john@contoso.com","isRefreshable":true,"isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true,"isOnPremGatewayRequired":false,"targetStorageMode":"Abf"}`},
	dsPlain:   {[]string{testWS, testSharedWS}, false, false, `{"id":"` + dsPlain + `","name":"Plain","isRefreshable":true,"isEffectiveIdentityRequired":false,"isEffectiveIdentityRolesRequired":false,"isOnPremGatewayRequired":false,"targetStorageMode":"Abf"}`},
	dsNoRoles: {[]string{testWS}, true, false, `{"id":"` + dsNoRoles + `","name":"AAS","IsEffectiveIdentityRequired":true,"IsEffectiveIdentityRolesRequired":false,"IsOnPremGatewayRequired":false}`},
	dsRLS2:    {[]string{testWS2}, true, true, `{"id":"` + dsRLS2 + `","name":"Europe","isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true,"isOnPremGatewayRequired":false,"targetStorageMode":"Abf"}`},
}

// fakeDashboards: dashboard id -> workspace, name, tiles in order.
var fakeDashboards = map[string]struct {
	ws, name string
	tiles    []string
}{
	dashSales: {testWS, "Sales overview", []string{tileSales, tilePlain, tileNoRoles, tileText, tileMkt}},
}

var fakeTiles = map[string]struct{ title, report, dataset string }{
	tileSales:   {"Revenue", repSales, dsRLS},
	tilePlain:   {"Headcount", repPlain, dsPlain},
	tileNoRoles: {"Audit", repNoRoles, dsNoRoles},
	tileText:    {"Read me", "", ""},
	tileMkt:     {"Campaigns", repMkt, dsRLS},
}

// embedConfig is the opaque suffix real embed URLs carry.
const embedConfig = "&w=2&config=eyJjbHVzdGVyVXJsIjoiaHR0cHM6Ly9XQUJJLVNPVVRILUVBU1QtQVNJQS1CLVBSSU1BUlktcmVkaXJlY3QuYW5hbHlzaXMud2luZG93cy5uZXQiLCJlbWJlZEZlYXR1cmVzIjp7Im1vZGVybkVtYmVkIjp0cnVlfX0%3d"

func dashboardEmbedURL(ws, d string) string {
	return "https://app.powerbi.com/dashboardEmbed?dashboardId=" + d + "&groupId=" + ws + embedConfig
}

func tileEmbedURL(ws, d, t string) string {
	return "https://app.powerbi.com/embed?dashboardId=" + d + "&tileId=" + t + "&groupId=" + ws + embedConfig
}

func embedURLFor(ws, id string) string {
	return "https://app.powerbi.com/reportEmbed?reportId=" + id + "&groupId=" + ws + embedConfig
}

func (f *fake) getReport(w http.ResponseWriter, r *http.Request) {
	f.countGet(r)
	f.mu.Lock()
	gate := f.reportGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if f.pop(w, "report") || !f.authorize(w, r) {
		return
	}
	ws, id := r.PathValue("ws"), r.PathValue("id")
	if !fakeWorkspaces[ws] {
		f.pbiError(w, 401, notAuthorizedBody)
		return
	}
	rep, ok := fakeReports[id]
	if !ok || rep.ws != ws {
		f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`)
		return
	}
	m := map[string]any{
		"@odata.context": "http://wabi-north-europe-redirect.analysis.windows.net/v1.0/myorg/groups/" + ws + "/$metadata#reports/$entity",
		"id":             id,
		"reportType":     "PowerBIReport",
		"name":           rep.name,
		"webUrl":         "https://app.powerbi.com/groups/" + ws + "/reports/" + id,
		"embedUrl":       embedURLFor(ws, id),
		"isFromPbix":     true,
		"isOwnedByMe":    false,
		"users":          []any{},
		"subscriptions":  []any{},
	}
	if rep.dataset != "" {
		m["datasetId"] = rep.dataset
		m["datasetWorkspaceId"] = ws
		if rep.datasetWS != "" {
			m["datasetWorkspaceId"] = rep.datasetWS
		}
	}
	if rep.paginated {
		m["reportType"] = "PaginatedReport"
	}
	w.Header().Set("RequestId", f.requestID())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(m)
}

func (f *fake) getDataset(w http.ResponseWriter, r *http.Request) {
	f.countGet(r)
	if f.pop(w, "dataset") || !f.authorize(w, r) {
		return
	}
	ds, ok := fakeDatasets[r.PathValue("id")]
	if !ok || !slices.Contains(ds.ws, r.PathValue("ws")) {
		f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get dataset failed"}}`)
		return
	}
	f.writeJSON(w, ds.body)
}

func (f *fake) writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("RequestId", f.requestID())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, body)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dashboardGet counts a GET under a dashboard and returns the dashboard, or
// writes an injected answer or Power BI's error.
func (f *fake) dashboardGet(w http.ResponseWriter, r *http.Request, route string) (ws string, tiles []string, ok bool) {
	f.countGet(r)
	if f.pop(w, route) || !f.authorize(w, r) {
		return "", nil, false
	}
	return f.dashboardAt(w, r)
}

// dashboardAt returns the dashboard, or writes Power BI's error.
func (f *fake) dashboardAt(w http.ResponseWriter, r *http.Request) (ws string, tiles []string, ok bool) {
	ws = r.PathValue("ws")
	d, ok := fakeDashboards[r.PathValue("d")]
	switch {
	case !fakeWorkspaces[ws]:
		f.pbiError(w, 401, notAuthorizedBody)
		return "", nil, false
	case !ok || d.ws != ws:
		f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get dashboard failed"}}`)
		return "", nil, false
	}
	return ws, d.tiles, true
}

func (f *fake) tileJSON(ws, d, t string) map[string]any {
	ft := fakeTiles[t]
	m := map[string]any{"id": t, "title": ft.title, "embedUrl": tileEmbedURL(ws, d, t), "embedData": "{}", "rowSpan": 0, "colSpan": 0}
	if ft.report != "" {
		m["reportId"], m["datasetId"] = ft.report, ft.dataset
	}
	return m
}

func (f *fake) getDashboard(w http.ResponseWriter, r *http.Request) {
	ws, _, ok := f.dashboardGet(w, r, "dashboard")
	if !ok {
		return
	}
	d := r.PathValue("d")
	f.writeJSON(w, mustJSON(map[string]any{
		"@odata.context": "http://wabi-north-europe-redirect.analysis.windows.net/v1.0/myorg/groups/" + ws + "/$metadata#dashboards/$entity",
		"id":             d, "displayName": fakeDashboards[d].name, "isReadOnly": false,
		"embedUrl": dashboardEmbedURL(ws, d), "webUrl": "https://app.powerbi.com/groups/" + ws + "/dashboards/" + d,
	}))
}

func (f *fake) getTiles(w http.ResponseWriter, r *http.Request) {
	ws, tiles, ok := f.dashboardGet(w, r, "tiles")
	if !ok {
		return
	}
	value := []any{}
	for _, t := range tiles {
		value = append(value, f.tileJSON(ws, r.PathValue("d"), t))
	}
	f.writeJSON(w, mustJSON(map[string]any{"value": value}))
}

func (f *fake) getTile(w http.ResponseWriter, r *http.Request) {
	ws, tiles, ok := f.dashboardGet(w, r, "tile")
	if !ok {
		return
	}
	if !slices.Contains(tiles, r.PathValue("t")) {
		f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get tile failed"}}`)
		return
	}
	f.writeJSON(w, mustJSON(f.tileJSON(ws, r.PathValue("d"), r.PathValue("t"))))
}

// generateBody is GenerateTokenRequest V1 and V2 together, parsed leniently
// as Power BI does (any case of accessLevel).
type generateBody struct {
	AccessLevel string `json:"accessLevel"`
	Datasets    []struct {
		ID string `json:"id"`
	} `json:"datasets"`
	Reports []struct {
		ID string `json:"id"`
	} `json:"reports"`
	TargetWorkspaces []struct {
		ID string `json:"id"`
	} `json:"targetWorkspaces"`
	Identities []struct {
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
		Datasets []string `json:"datasets"`
		Reports  []string `json:"reports"`
	} `json:"identities"`
}

// generate is V2 GenerateToken and the V1 report, dashboard and tile routes.
// It applies the RLS rules of the reference (§1, §4) to the datasets the
// token covers: the body's for V2, the item's for V1.
func (f *fake) generate(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.genBodies = append(f.genBodies, string(b))
	f.genPaths = append(f.genPaths, r.URL.Path)
	f.genHeaders = append(f.genHeaders, r.Header.Clone())
	gate := f.genGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if f.pop(w, "generate") || !f.authorize(w, r) {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.pbiError(w, 415, `{"error":{"code":"UnsupportedMediaType","message":"The request contains an entity body but no Content-Type header. The inferred media type 'application/octet-stream' is not supported for this resource."}}`)
		return
	}
	bad := func(msg string) {
		f.pbiError(w, 400, mustJSON(map[string]any{"error": map[string]string{"code": "InvalidRequest", "message": msg}}))
	}
	var req generateBody
	if err := json.Unmarshal(b, &req); err != nil {
		bad("bad body")
		return
	}
	var datasets []string // what the token covers
	v1, paginated := r.PathValue("ws") != "", ""
	switch {
	case !v1:
		if len(req.Reports) == 0 || len(req.Reports) > 50 || len(req.Datasets) > 50 || len(req.TargetWorkspaces) > 50 {
			bad("bad body")
			return
		}
		for _, d := range req.Datasets {
			datasets = append(datasets, d.ID)
		}
	case !strings.EqualFold(req.AccessLevel, "View"):
		bad("unexpected accessLevel " + req.AccessLevel)
		return
	case r.PathValue("id") != "": // report route
		rep, ok := fakeReports[r.PathValue("id")]
		if !ok || rep.ws != r.PathValue("ws") {
			f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get report failed"}}`)
			return
		}
		if rep.paginated {
			paginated = r.PathValue("id")
		} else {
			datasets = []string{rep.dataset}
		}
	default: // dashboard or tile route
		_, tiles, ok := f.dashboardAt(w, r)
		if !ok {
			return
		}
		if t := r.PathValue("t"); t != "" {
			tiles = []string{t}
		}
		for _, t := range tiles {
			if ds := fakeTiles[t].dataset; ds != "" && !slices.Contains(datasets, ds) {
				datasets = append(datasets, ds)
			}
		}
	}
	if (r.PathValue("id") != "" || r.PathValue("t") != "") && len(req.Identities) > 1 {
		bad("Creating embed token with multiple identities is not supported")
		return
	}
	covered := map[string][]string{} // dataset -> roles
	for _, id := range req.Identities {
		if id.Username == "" {
			bad("identity without username")
			return
		}
		if paginated != "" {
			if !slices.Equal(id.Reports, []string{paginated}) || len(id.Datasets) > 0 {
				bad("paginated identity must name the report")
				return
			}
			continue
		}
		if len(id.Datasets) == 0 {
			bad("identity without datasets")
			return
		}
		for _, ds := range id.Datasets {
			if _, dup := covered[ds]; dup || !slices.Contains(datasets, ds) {
				bad("identity names dataset " + ds + " twice or outside the token")
				return
			}
			covered[ds] = id.Roles
		}
	}
	for _, ds := range datasets {
		roles, ok := covered[ds]
		switch fd := fakeDatasets[ds]; {
		case !fd.rls && ok:
			bad("Creating embed token for accessing dataset " + ds + " shouldn't have effective identity")
			return
		case fd.rls && !ok:
			bad("Creating embed token for accessing dataset " + ds + " requires effective identity to be provided")
			return
		case fd.rolesReqd && len(roles) == 0:
			bad("Creating embed token for accessing dataset " + ds + " requires roles to be included in provided effective identity")
			return
		}
	}
	f.mu.Lock()
	n := len(f.genBodies)
	f.mu.Unlock()
	w.Header().Set("RequestId", f.requestID())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, `{"token":"H4sIAAAAAAAEAB2Wtw6EVhRE-%d-AAA=","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c8%d","expiration":"2026-07-29T17:58:19Z"}`, n, n%10)
}

// counters, read under the lock.
func (f *fake) tokenPosts() int    { f.mu.Lock(); defer f.mu.Unlock(); return len(f.tokenForms) }
func (f *fake) generatePosts() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.genBodies) }
func (f *fake) getCount(kind, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets["/v1.0/myorg/groups/"+testWS+"/"+kind+"/"+id]
}
func (f *fake) totalGets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.gets {
		n += c
	}
	return n
}
func (f *fake) lastBody() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.genBodies[len(f.genBodies)-1]
}
func (f *fake) lastPath() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.genPaths[len(f.genPaths)-1]
}
func (f *fake) getsOf(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[path]
}

// fakeClock is a settable clock for TTLs and the credential recheck.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testEnv is a Client wired to a fake over real TLS (ca_file), with a fake
// clock and no backoff waits.
type testEnv struct {
	f     *fake
	c     *Client
	clock *fakeClock
	cfg   Config
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withoutTokenCache is a newEnv mutation for tests of what lies behind the
// token cache: every request then reaches upstream.
func withoutTokenCache(c *Config) { c.DisableTokenCache = true }

func newEnv(t *testing.T, mutate ...func(*Config)) *testEnv {
	t.Helper()
	f := newFake(t)
	cfg := Config{
		AuthorityHost:    f.srv.URL,
		APIURL:           f.srv.URL,
		CAFile:           f.caFile(),
		TenantID:         testTenant,
		ClientID:         testClientID,
		ClientSecretFile: writeFile(t, "secret", testSecret+"\n"),
		Timeout:          5 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	return newEnvWith(t, f, cfg)
}

func newEnvWith(t *testing.T, f *fake, cfg Config) *testEnv {
	t.Helper()
	clock := newFakeClock()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg, WithClock(clock.Now), WithLogger(logger), func(o *options) { o.backoff = func(int) time.Duration { return 0 } })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{f: f, c: c, clock: clock, cfg: cfg, logs: logs}
}
