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
)

// canned is one injected upstream answer.
type canned struct {
	status int
	body   string
	header map[string]string
	hang   bool // close the connection without answering
}

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
	genHeaders  []http.Header
	metaHeaders []http.Header
	inject      map[string][]canned // route -> answers to give first
	tokenGate   chan struct{}       // if set, token POSTs wait for it
	reportGate  chan struct{}       // if set, report GETs wait for it
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
	mux.HandleFunc("POST /v1.0/myorg/GenerateToken", f.generate)
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

var fakeReports = map[string]struct{ name, dataset, datasetWS string }{
	repSales:   {"SalesMarketing", dsRLS, ""},
	repMkt:     {"Marketing", dsRLS, ""},
	repPlain:   {"Plain", dsPlain, ""},
	repNoRoles: {"NoRoles", dsNoRoles, ""},
	repRDL:     {"Invoice", "", ""},
	repShared:  {"Shared", dsPlain, testSharedWS},
}

func embedURLFor(ws, id string) string {
	return "https://app.powerbi.com/reportEmbed?reportId=" + id + "&groupId=" + ws +
		"&w=2&config=eyJjbHVzdGVyVXJsIjoiaHR0cHM6Ly9XQUJJLVNPVVRILUVBU1QtQVNJQS1CLVBSSU1BUlktcmVkaXJlY3QuYW5hbHlzaXMud2luZG93cy5uZXQiLCJlbWJlZEZlYXR1cmVzIjp7Im1vZGVybkVtYmVkIjp0cnVlfX0%3d"
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
	if ws != testWS {
		f.pbiError(w, 401, notAuthorizedBody)
		return
	}
	rep, ok := fakeReports[id]
	if !ok {
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
	} else {
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
	id := r.PathValue("id")
	var body string
	switch id {
	case dsRLS:
		body = `{"id":"` + id + `","name":"SalesMarketing","addRowsAPIEnabled":false,"configuredBy":"john@contoso.com","isRefreshable":true,"isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true,"isOnPremGatewayRequired":false,"targetStorageMode":"Abf"}`
	case dsPlain:
		body = `{"id":"` + id + `","name":"Plain","isRefreshable":true,"isEffectiveIdentityRequired":false,"isEffectiveIdentityRolesRequired":false,"isOnPremGatewayRequired":false,"targetStorageMode":"Abf"}`
	case dsNoRoles:
		body = `{"id":"` + id + `","name":"AAS","IsEffectiveIdentityRequired":true,"IsEffectiveIdentityRolesRequired":false,"IsOnPremGatewayRequired":false}`
	default:
		f.pbiError(w, 404, `{"error":{"code":"PowerBIEntityNotFound","message":"Get dataset failed"}}`)
		return
	}
	w.Header().Set("RequestId", f.requestID())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, body)
}

func (f *fake) generate(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.genBodies = append(f.genBodies, string(b))
	f.genHeaders = append(f.genHeaders, r.Header.Clone())
	f.mu.Unlock()
	if f.pop(w, "generate") || !f.authorize(w, r) {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.pbiError(w, 415, `{"error":{"code":"UnsupportedMediaType","message":"The request contains an entity body but no Content-Type header. The inferred media type 'application/octet-stream' is not supported for this resource."}}`)
		return
	}
	var req struct {
		Datasets []struct {
			ID string `json:"id"`
		} `json:"datasets"`
		Reports []struct {
			ID string `json:"id"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(b, &req); err != nil || len(req.Reports) == 0 {
		f.pbiError(w, 400, `{"error":{"code":"InvalidRequest","message":"bad body"}}`)
		return
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
