package emulator

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// trialFixture is the demo fixture with a trial limit of 3 per principal,
// the Globex profile also a Member of the shared workspace.
func trialFixture(t *testing.T) *Fixture {
	t.Helper()
	f := DemoFixture()
	f.Tenants[0].TrialTokenLimit = 3
	for i := range f.Workspaces {
		if f.Workspaces[i].ID == wsTrial {
			f.Workspaces[i].Access = append(f.Workspaces[i].Access, Access{Principal: globexProf, Role: RoleMember})
		}
	}
	return f
}

// usage reads the caller's embedTrial usage.
func usage(t *testing.T, srv *Server, tok string, headers ...string) any {
	t.Helper()
	r := call(t, httpClient(t, srv), "GET", srv.URL()+"/v1.0/myorg/availableFeatures(featureName='embedTrial')", tok, nil, headers...)
	info, _ := r.body["additionalInfo"].(map[string]any)
	return info["usage"]
}

// TestTrialTokens: tokens for a shared-capacity workspace spend the
// caller's trial tokens, V1 and V2 alike; past the limit every such call
// answers 403; availableFeatures reports the usage; dedicated capacity
// and other principals are not affected.
func TestTrialTokens(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{Fixture: trialFixture(t)})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	v2Trial := v2([]string{repTrial}, []string{dsTrial}, nil)
	v1Trial := "/v1.0/myorg/groups/" + wsTrial + "/reports/" + repTrial + "/GenerateToken"
	steps := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantUsage  float64 // after the call
	}{
		{"V2 on shared capacity", "POST", "/v1.0/myorg/GenerateToken", v2Trial, 200, 33},
		{"dedicated capacity costs nothing", "POST", "/v1.0/myorg/GenerateToken", v2([]string{repInventory}, []string{dsInventory}, nil), 200, 33},
		{"a refused call costs nothing", "POST", "/v1.0/myorg/GenerateToken", v2([]string{repTrial}, nil, nil), 400, 33},
		{"V1 on shared capacity", "POST", v1Trial, map[string]any{}, 200, 66},
		{"V2 with a shared dataset", "POST", "/v1.0/myorg/GenerateToken", v2(nil, []string{dsTrial}, nil), 200, 100},
		{"V2 past the limit", "POST", "/v1.0/myorg/GenerateToken", v2Trial, 403, 100},
		{"V1 past the limit", "POST", v1Trial, map[string]any{}, 403, 100},
		{"a target workspace on shared capacity", "POST", "/v1.0/myorg/GenerateToken", map[string]any{
			"reports": []any{map[string]any{"id": repInventory}}, "datasets": []any{map[string]any{"id": dsInventory}},
			"targetWorkspaces": []any{map[string]any{"id": wsTrial}}}, 403, 100},
		{"dedicated capacity still works", "POST", "/v1.0/myorg/groups/" + wsAcme + "/reports/" + repInventory + "/GenerateToken", map[string]any{}, 200, 100},
		{"reading is not minting", "GET", "/v1.0/myorg/groups/" + wsTrial + "/reports/" + repTrial, nil, 200, 100},
	}
	for _, st := range steps {
		r := call(t, hc, st.method, srv.URL()+st.path, tok, st.body)
		if r.status != st.wantStatus {
			t.Fatalf("%s: status %d, want %d: %s", st.name, r.status, st.wantStatus, r.raw)
		}
		if r.status == 403 && (errorCode(r) != "TokenGenerationQuotaExceeded" ||
			!strings.Contains(errorMessage(r), "exceeded the amount of embed token that can be generated on a shared capacity")) {
			t.Errorf("%s: %s", st.name, r.raw)
		}
		if got := usage(t, srv, tok); got != st.wantUsage {
			t.Errorf("%s: usage %v, want %v", st.name, got, st.wantUsage)
		}
	}
	// The profile is a principal of its own, with its own trial tokens.
	if got := usage(t, srv, tok, "X-PowerBI-Profile-Id", globexProf); got != float64(0) {
		t.Errorf("profile usage %v", got)
	}
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, v2Trial, "X-PowerBI-Profile-Id", globexProf)
	if r.status != 200 || usage(t, srv, tok, "X-PowerBI-Profile-Id", globexProf) != float64(33) {
		t.Errorf("profile: %d %s", r.status, r.raw)
	}
}

// TestTrialTokensConcurrent: the limit holds under concurrent calls.
func TestTrialTokensConcurrent(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{Fixture: trialFixture(t)})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := srv.Gate(RouteGenerateToken)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Go(func() {
			s, err := post(ctx, hc, srv, tok, v2JSON(repTrial, dsTrial))
			if err != nil {
				t.Error(err)
			}
			statuses <- s
		})
	}
	if err := g.WaitFor(ctx, 8); err != nil {
		t.Fatal(err)
	}
	g.Open()
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != 3 || count[403] != 5 {
		t.Errorf("statuses %v, want 3×200 and 5×403", count)
	}
}

// TestTrialFaults: Faults.TrialExhausted refuses every token, dedicated
// capacity included, and reports usage 100; Faults.TrialUsage raises the
// reported usage.
func TestTrialFaults(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{Fixture: trialFixture(t)})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	srv.SetFaults(Faults{TrialUsage: 40})
	if got := usage(t, srv, tok); got != float64(40) {
		t.Errorf("usage with TrialUsage 40: %v", got)
	}
	for range 2 { // 66% counted beats 40% set
		call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, v2([]string{repTrial}, []string{dsTrial}, nil))
	}
	if got := usage(t, srv, tok); got != float64(66) {
		t.Errorf("usage after two tokens: %v", got)
	}
	srv.SetFaults(Faults{TrialExhausted: true})
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, v2([]string{repInventory}, []string{dsInventory}, nil))
	if r.status != 403 || errorCode(r) != "TokenGenerationQuotaExceeded" || usage(t, srv, tok) != float64(100) {
		t.Errorf("TrialExhausted: %d %s", r.status, r.raw)
	}
}
