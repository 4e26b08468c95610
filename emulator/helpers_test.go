package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// Ids of the demo fixture and of the extra test tenant.
const (
	demoTenant   = "c0ffee00-0000-4000-8000-000000000001"
	demoDomain   = "embedgate-demo.onmicrosoft.com"
	demoClient   = "c0ffee00-0000-4000-8000-0000000000a1"
	demoObject   = "c0ffee00-0000-4000-8000-0000000000b1"
	demoSecret   = "embedgate-dev-secret"
	wsAcme       = "a0000000-0000-4000-8000-000000000001"
	wsGlobex     = "a0000000-0000-4000-8000-000000000002"
	wsPortal     = "a0000000-0000-4000-8000-000000000003"
	wsAcmeFin    = "a0000000-0000-4000-8000-000000000004"
	wsFinance    = "a0000000-0000-4000-8000-000000000009"
	repSales     = "a1000000-0000-4000-8000-000000000001"
	repInventory = "a1000000-0000-4000-8000-000000000002"
	repInvoices  = "a1000000-0000-4000-8000-000000000003"
	repGlobex    = "a2000000-0000-4000-8000-000000000001"
	repPortal    = "a3000000-0000-4000-8000-000000000001"
	repBudget    = "a4000000-0000-4000-8000-000000000001"
	repLedger    = "a9000000-0000-4000-8000-000000000001"
	dsSales      = "d1000000-0000-4000-8000-000000000001"
	dsInventory  = "d1000000-0000-4000-8000-000000000002"
	dsGlobex     = "d2000000-0000-4000-8000-000000000001"
	dsPortal     = "d3000000-0000-4000-8000-000000000001"
	dsBudget     = "d4000000-0000-4000-8000-000000000001"
	dsLedger     = "d9000000-0000-4000-8000-000000000001"
	dashAcme     = "b1000000-0000-4000-8000-000000000001"
	tileRevenue  = "b1100000-0000-4000-8000-000000000001"
	tileStock    = "b1100000-0000-4000-8000-000000000002"
	globexProf   = "f0000000-0000-4000-8000-000000000001"
	wsTrial      = "a0000000-0000-4000-8000-000000000005" // shared capacity
	repTrial     = "a5000000-0000-4000-8000-000000000001"
	dsTrial      = "d5000000-0000-4000-8000-000000000001"
	wsBoard      = "a0000000-0000-4000-8000-000000000006" // the demo app is a Viewer
	repBoard     = "a6000000-0000-4000-8000-000000000001"
	dsBoard      = "d6000000-0000-4000-8000-000000000001"
	expiredSec   = "embedgate-expired-secret"

	// Acme Models: one model of each kind.
	wsModels     = "a0000000-0000-4000-8000-000000000007"
	repAAS       = "a7000000-0000-4000-8000-000000000001"
	repSSAS      = "a7000000-0000-4000-8000-000000000002"
	repSSO       = "a7000000-0000-4000-8000-000000000003"
	repComposite = "a7000000-0000-4000-8000-000000000004"
	repStatement = "a7000000-0000-4000-8000-000000000005" // paginated, on Sales Model
	repExecutive = "a7000000-0000-4000-8000-000000000006" // paginated visual: Invoices
	dsAAS        = "d7000000-0000-4000-8000-000000000001"
	dsSSAS       = "d7000000-0000-4000-8000-000000000002"
	dsSSO        = "d7000000-0000-4000-8000-000000000003"
	dsComposite  = "d7000000-0000-4000-8000-000000000004"
	dsTargets    = "d7000000-0000-4000-8000-000000000005" // Databricks SSO
	gatewayID    = "9a7e0000-0000-4000-8000-000000000001"

	// The tenant whose admin setting keeps service principals out.
	lockedTenant = "c0ffee00-0000-4000-8000-000000000002"
	lockedClient = "c0ffee00-0000-4000-8000-0000000000a2"
	lockedSecret = "embedgate-locked-secret"

	certTenant = "7e570000-0000-4000-8000-000000000001"
	certClient = "7e570000-0000-4000-8000-0000000000a1"
	certObject = "7e570000-0000-4000-8000-0000000000b1"
	pbiScope   = "https://analysis.windows.net/powerbi/api/.default"
)

// testCert is a self-signed RSA certificate registered on the cert app.
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  string
}

var (
	certOnce  sync.Once
	certs     [2]testCert // [0] registered, [1] not registered
	sharedSrv *Server
	sharedMu  sync.Mutex
)

func testCerts(t *testing.T) [2]testCert {
	t.Helper()
	certOnce.Do(func() {
		for i := range certs {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(i + 1)),
				Subject:      pkix.Name{CommonName: "embedgate test app"},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(24 * time.Hour),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			cert, _ := x509.ParseCertificate(der)
			certs[i] = testCert{cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
		}
	})
	return certs
}

// testFixture is the demo fixture plus a tenant whose app authenticates
// with a certificate and is a member of no workspace.
func testFixture(t *testing.T) *Fixture {
	f := DemoFixture()
	f.Tenants = append(f.Tenants, Tenant{
		ID: certTenant,
		Apps: []App{{
			ClientID: certClient, ObjectID: certObject, Name: "cert-app",
			Certificates: []string{testCerts(t)[0].pem},
		}},
	})
	return f
}

// newClock is an adjustable Config.Now.
func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// startServer starts a private emulator for tests that change its state
// (faults, counters, clock).
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Fixture == nil {
		cfg.Fixture = testFixture(t)
	}
	srv, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// shared returns one emulator shared by tests that only read state.
func shared(t *testing.T) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedSrv == nil {
		srv, err := Start(context.Background(), Config{Fixture: testFixture(t)})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		sharedSrv = srv
	}
	return sharedSrv
}

// httpClient trusts only the emulator's CA.
func httpClient(t *testing.T, srv *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call sends a request; a non-nil body that is not a string or url.Values
// is sent as JSON.
func call(t *testing.T, hc *http.Client, method, u, bearer string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// entraToken gets a Power BI access token for the demo app.
func entraToken(t *testing.T, srv *Server, hc *http.Client) string {
	t.Helper()
	r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {demoClient},
		"client_secret": {demoSecret}, "scope": {pbiScope},
	})
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

// errorCode returns error.code of a Power BI error body.
func errorCode(r response) string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func errorMessage(r response) string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// appToken gets a Power BI access token for any app of the fixture.
func appToken(t *testing.T, srv *Server, hc *http.Client, tenant, client, secret string) string {
	t.Helper()
	r := call(t, hc, "POST", srv.URL()+"/"+tenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {client},
		"client_secret": {secret}, "scope": {pbiScope},
	})
	if r.status != 200 {
		t.Fatalf("token for %s: %d %s", client, r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

// pbiErrorBody is the pbi.error shape Power BI answers 401 and 404 with.
func pbiErrorBody(code string) string {
	return `{"error":{"code":"` + code + `","pbi.error":{"code":"` + code + `","details":[],"exceptionCulprit":1,"parameters":{}}}}`
}

// resourceToken gets an access token for any resource for the demo app
// (client credentials), such as an identity blob for Azure SQL.
func resourceToken(t *testing.T, srv *Server, hc *http.Client, scope string) string {
	t.Helper()
	r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {demoClient},
		"client_secret": {demoSecret}, "scope": {scope},
	})
	if r.status != 200 {
		t.Fatalf("token for %s: %d %s", scope, r.status, r.raw)
	}
	return r.body["access_token"].(string)
}
