package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRequestsRecorded: every call of a route is recorded in arrival
// order, refused ones included, with credentials redacted; the admin
// route shows the same; ResetRequests forgets them.
func TestRequestsRecorded(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	body := v2([]string{repGlobex}, []string{dsGlobex}, nil)
	call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken?x=1", tok, body, "X-PowerBI-Profile-Id", globexProf)
	call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", "", `{"reports":[]}`, "Content-Type", "application/json")

	got := srv.Requests(RouteGenerateToken)
	if len(got) != 2 {
		t.Fatalf("%d requests recorded, want 2", len(got))
	}
	first, second := got[0], got[1]
	if first.Route != RouteGenerateToken || first.Method != "POST" || first.Path != "/v1.0/myorg/GenerateToken" ||
		first.Query.Get("x") != "1" || first.ProfileID != globexProf || first.Time.IsZero() {
		t.Errorf("first = %+v", first)
	}
	if a := first.Header.Get("Authorization"); a != "Bearer" {
		t.Errorf("Authorization recorded as %q, want the scheme only", a)
	}
	if !strings.Contains(string(first.Body), repGlobex) || string(second.Body) != `{"reports":[]}` {
		t.Errorf("bodies %s / %s", first.Body, second.Body)
	}
	if second.Header.Get("Authorization") != "" || second.ProfileID != "" {
		t.Errorf("second = %+v", second)
	}

	// Entra: the secret is in no recorded field.
	entra := srv.Requests(RouteEntraToken)
	if len(entra) != 1 {
		t.Fatalf("%d token requests", len(entra))
	}
	form, _ := url.ParseQuery(string(entra[0].Body))
	if form.Get("client_secret") != redacted || form.Get("client_id") != demoClient || strings.Contains(fmt.Sprint(entra[0]), demoSecret) {
		t.Errorf("token request recorded as %q", entra[0].Body)
	}

	admin := call(t, hc, "GET", srv.URL()+"/_emulator/requests/"+RouteGenerateToken, "", nil)
	value, _ := admin.body["value"].([]any)
	if admin.status != 200 || len(value) != 2 {
		t.Fatalf("admin: %d %s", admin.status, admin.raw)
	}
	entry := value[0].(map[string]any)
	if entry["body"] != string(first.Body) || entry["profileId"] != globexProf || entry["method"] != "POST" {
		t.Errorf("admin entry %v", entry)
	}
	if r := call(t, hc, "GET", srv.URL()+"/_emulator/requests/nope", "", nil); r.status != 400 {
		t.Errorf("unknown route: %d", r.status)
	}
	if strings.Contains(string(call(t, hc, "GET", srv.URL()+"/_emulator/requests/"+RouteEntraToken, "", nil).raw), demoSecret) {
		t.Error("the admin route shows the client secret")
	}

	if r := call(t, hc, "POST", srv.URL()+"/_emulator/requests/reset", "", nil); r.status != 204 {
		t.Errorf("reset: %d", r.status)
	}
	if n := len(srv.Requests(RouteGenerateToken)); n != 0 {
		t.Errorf("%d requests after reset", n)
	}
	call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsAcme+"/reports", tok, nil)
	srv.ResetRequests()
	if n := len(srv.Requests(RouteGetReports)); n != 0 {
		t.Errorf("%d requests after ResetRequests", n)
	}
}

// TestRecorderKeepsTheLast: the record is bounded per route and keeps the
// most recent calls in order.
func TestRecorderKeepsTheLast(t *testing.T) {
	t.Parallel()
	var rc recorder
	for i := range MaxRecorded + 5 {
		rc.add(Recorded{Route: "a", Path: fmt.Sprint(i)})
	}
	rc.add(Recorded{Route: "b"})
	got := rc.get("a")
	if len(got) != MaxRecorded || got[0].Path != "5" || got[len(got)-1].Path != fmt.Sprint(MaxRecorded+4) {
		t.Errorf("kept %d, first %s, last %s", len(got), got[0].Path, got[len(got)-1].Path)
	}
	if len(rc.get("b")) != 1 || len(rc.get("c")) != 0 {
		t.Error("routes are not kept apart")
	}
}

func TestSetAnswer(t *testing.T) {
	t.Parallel()
	const quota = `{"error":{"code":"Whatever","pbi.error":{"code":"Whatever","parameters":{},"details":[],"exceptionCulprit":1}}}`
	tests := []struct {
		name        string
		answer      Answer
		viaAdmin    string // the same answer as PUT /_emulator/answers JSON
		wantStatus  []int  // consecutive calls; 0 = dropped
		canned      int    // how many of them get the answer
		wantBody    string // of the canned calls
		wantHeader  [2]string
		noRequestID bool
	}{
		{name: "twice, then the real handler",
			answer:     Answer{Status: 403, Body: []byte(quota), Times: 2, Header: http.Header{"X-PowerBI-Error-Info": {"Something"}}},
			wantStatus: []int{403, 403, 200}, canned: 2, wantBody: quota, wantHeader: [2]string{"X-PowerBI-Error-Info", "Something"}},
		{name: "until cleared", answer: Answer{Status: 500, Body: []byte("not json")},
			wantStatus: []int{500, 500, 500}, canned: 3, wantBody: "not json"},
		{name: "own RequestId and Content-Type",
			answer:     Answer{Status: 200, Body: []byte("x"), Times: 1, Header: http.Header{"Requestid": {"rid-1"}, "content-type": {"text/plain"}}},
			wantStatus: []int{200, 200}, canned: 1, wantBody: "x", wantHeader: [2]string{"RequestId", "rid-1"}},
		{name: "no RequestId", answer: Answer{Status: 429, Times: 1, Header: http.Header{"RequestId": nil}},
			wantStatus: []int{429, 200}, canned: 1, noRequestID: true},
		{name: "dropped", answer: Answer{Drop: true, Times: 1}, wantStatus: []int{0, 200}, canned: 1},
		{name: "admin route", viaAdmin: `{"status":401,"headers":{"X-PowerBI-Error-Info":["ServicePrincipalIsNotAllowedByTenantAdminSwitch"]},"body":"{}","times":1}`,
			wantStatus: []int{401, 200}, canned: 1, wantBody: "{}", wantHeader: [2]string{"X-PowerBI-Error-Info", "ServicePrincipalIsNotAllowedByTenantAdminSwitch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Config{})
			hc := httpClient(t, srv)
			tok := entraToken(t, srv, hc)
			if tc.viaAdmin != "" {
				if r := call(t, hc, "PUT", srv.URL()+"/_emulator/answers/"+RouteGenerateToken, "", tc.viaAdmin, "Content-Type", "application/json"); r.status != 204 {
					t.Fatalf("PUT answer: %d %s", r.status, r.raw)
				}
			} else {
				srv.SetAnswer(RouteGenerateToken, tc.answer)
			}
			body := v2([]string{repInventory}, []string{dsInventory}, nil)
			for i, want := range tc.wantStatus {
				if want == 0 {
					if _, err := hc.Post(srv.URL()+"/v1.0/myorg/GenerateToken", "application/json", strings.NewReader("{}")); err == nil {
						t.Errorf("call %d: want a dropped connection", i+1)
					}
					continue
				}
				r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, body)
				if r.status != want {
					t.Fatalf("call %d: status %d, want %d: %s", i+1, r.status, want, r.raw)
				}
				if i >= tc.canned {
					checkEmbedToken(t, srv, r, KindV2)
					continue
				}
				if string(r.raw) != tc.wantBody {
					t.Errorf("call %d: body %q, want %q", i+1, r.raw, tc.wantBody)
				}
				if k := tc.wantHeader[0]; k != "" && r.header.Get(k) != tc.wantHeader[1] {
					t.Errorf("call %d: %s = %q", i+1, k, r.header.Get(k))
				}
				if _, has := r.header["Requestid"]; has == tc.noRequestID {
					t.Errorf("call %d: RequestId present = %v", i+1, has)
				}
			}
			if n := srv.Counters()[RouteGenerateToken]; n != int64(len(tc.wantStatus)) {
				t.Errorf("counted %d calls, want %d", n, len(tc.wantStatus))
			}
			if n := len(srv.Requests(RouteGenerateToken)); n != len(tc.wantStatus) {
				t.Errorf("recorded %d calls, want %d", n, len(tc.wantStatus))
			}
		})
	}
}

func TestClearAnswersAndBadAnswers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	u := srv.URL() + "/" + demoTenant + "/v2.0/.well-known/openid-configuration"
	srv.SetAnswer(RouteOIDC, Answer{Status: 503, Body: []byte(`{"error":"temporarily_unavailable"}`)})
	if r := call(t, hc, "GET", u, "", nil); r.status != 503 {
		t.Fatalf("canned Entra answer: %d", r.status)
	}
	if r := call(t, hc, "DELETE", srv.URL()+"/_emulator/answers", "", nil); r.status != 204 {
		t.Fatalf("DELETE answers: %d", r.status)
	}
	if r := call(t, hc, "GET", u, "", nil); r.status != 200 {
		t.Errorf("after clearing: %d", r.status)
	}
	srv.SetAnswer(RouteOIDC, Answer{Status: 418})
	srv.ClearAnswers()
	if r := call(t, hc, "GET", u, "", nil); r.status != 200 {
		t.Errorf("after ClearAnswers: %d", r.status)
	}
	for _, bad := range []string{`{"status":1000}`, `{"times":-1}`, `{"nope":1}`, `{"body":3}`} {
		if r := call(t, hc, "PUT", srv.URL()+"/_emulator/answers/"+RouteOIDC, "", bad, "Content-Type", "application/json"); r.status != 400 {
			t.Errorf("PUT %s: %d", bad, r.status)
		}
	}
	if r := call(t, hc, "PUT", srv.URL()+"/_emulator/answers/nope", "", `{}`, "Content-Type", "application/json"); r.status != 400 {
		t.Errorf("unknown route: %d", r.status)
	}
}

// v2JSON is a V2 GenerateToken body for one report and its dataset.
func v2JSON(report, dataset string) string {
	return `{"reports":[{"id":"` + report + `"}],"datasets":[{"id":"` + dataset + `"}]}`
}

// post sends a V2 GenerateToken without the test helpers' t.Fatal, for use
// in goroutines: the status, or an error.
func post(ctx context.Context, hc *http.Client, srv *Server, tok, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestGate: calls are counted and recorded, then held until Open; a held
// call whose client gives up leaves; an opened gate lets later calls
// through and the next Gate closes a new one.
func TestGate(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	g := srv.Gate(RouteGenerateToken)
	if srv.Gate(RouteGenerateToken) != g {
		t.Error("a second Gate on a closed route made a new gate")
	}
	done := make(chan int, 3)
	for range 3 {
		go func() {
			status, err := post(ctx, hc, srv, tok, v2JSON(repInventory, dsInventory))
			if err != nil {
				t.Error(err)
			}
			done <- status
		}()
	}
	if err := g.WaitFor(ctx, 3); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if n := g.Waiting(); n != 3 {
		t.Errorf("Waiting() = %d", n)
	}
	if n, r := srv.Counters()[RouteGenerateToken], len(srv.Requests(RouteGenerateToken)); n != 3 || r != 3 {
		t.Errorf("held calls: counted %d, recorded %d; want 3", n, r)
	}
	select {
	case s := <-done:
		t.Fatalf("a call was answered (%d) before the gate opened", s)
	default:
	}

	// A client that gives up leaves the gate.
	giveUp, stop := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, err := post(giveUp, hc, srv, tok, v2JSON(repInventory, dsInventory)); left <- err }()
	if err := g.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	for g.Waiting() != 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("the cancelled call is still held: %d waiting", g.Waiting())
		case <-time.After(5 * time.Millisecond):
		}
	}

	g.Open()
	g.Open() // idempotent
	for range 3 {
		if s := <-done; s != 200 {
			t.Errorf("released call: %d", s)
		}
	}
	if s, err := post(ctx, hc, srv, tok, v2JSON(repInventory, dsInventory)); err != nil || s != 200 {
		t.Errorf("call after Open: %d %v", s, err)
	}
	if srv.Gate(RouteGenerateToken) == g {
		t.Error("Gate after Open returned the opened gate")
	}
	srv.Gate(RouteGenerateToken).Open()
}

// TestGateAdminRoutes: PUT closes, GET shows the held calls, DELETE opens.
func TestGateAdminRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gateURL := srv.URL() + "/_emulator/gates/" + RouteGenerateToken
	if r := call(t, hc, "GET", gateURL, "", nil); r.status != 200 || r.body["closed"] != false {
		t.Fatalf("GET gate before: %d %s", r.status, r.raw)
	}
	if r := call(t, hc, "PUT", gateURL, "", nil); r.status != 204 {
		t.Fatalf("PUT gate: %d", r.status)
	}
	done := make(chan int, 1)
	go func() { s, _ := post(ctx, hc, srv, tok, v2JSON(repInventory, dsInventory)); done <- s }()
	if err := srv.Gate(RouteGenerateToken).WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if r := call(t, hc, "GET", gateURL, "", nil); r.body["closed"] != true || r.body["waiting"] != float64(1) {
		t.Errorf("GET gate: %s", r.raw)
	}
	if r := call(t, hc, "DELETE", gateURL, "", nil); r.status != 204 {
		t.Errorf("DELETE gate: %d", r.status)
	}
	if s := <-done; s != 200 {
		t.Errorf("released call: %d", s)
	}
	if r := call(t, hc, "PUT", srv.URL()+"/_emulator/gates/nope", "", nil); r.status != 400 {
		t.Errorf("unknown route: %d", r.status)
	}
}

// TestAccessTokens: every Entra access token handed out, in order, and
// nothing else.
func TestAccessTokens(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	want := []string{entraToken(t, srv, hc), entraToken(t, srv, hc)}
	call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {demoClient}, "client_secret": {"wrong"}, "scope": {pbiScope}})
	if diff := cmp.Diff(want, srv.AccessTokens()); diff != "" {
		t.Errorf("AccessTokens (-want +got):\n%s", diff)
	}
	admin := call(t, hc, "GET", srv.URL()+"/_emulator/requests/"+RouteEntraToken, "", nil)
	if slices.ContainsFunc(want, func(tok string) bool { return strings.Contains(string(admin.raw), tok) }) {
		t.Error("an access token is in the admin routes")
	}
}
