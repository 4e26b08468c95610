package emulator

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPowerBIFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     Faults
		wantStatus []int // statuses of consecutive calls; 0 = dropped
		check      func(t *testing.T, r response)
	}{
		{"throttle every 2nd", Faults{ThrottleEvery: 2, RetryAfterSeconds: 7}, []int{200, 429, 200, 429}, func(t *testing.T, r response) {
			if r.status == 429 && (r.header.Get("Retry-After") != "7" || errorCode(r) != "TooManyRequests") {
				t.Errorf("429: Retry-After %q %s", r.header.Get("Retry-After"), r.raw)
			}
		}},
		{"throttle all", Faults{ThrottleRate: 1}, []int{429, 429}, nil},
		{"5xx every 3rd", Faults{ServerErrorEvery: 3}, []int{200, 200, 503}, nil},
		{"5xx status", Faults{ServerErrorRate: 1, ServerErrorStatus: 500}, []int{500}, nil},
		{"drop every 2nd", Faults{DropEvery: 2}, []int{200, 0, 200}, nil},
		{"trial exhausted", Faults{TrialExhausted: true}, []int{403}, func(t *testing.T, r response) {
			if errorCode(r) != "TokenGenerationQuotaExceeded" {
				t.Errorf("%s", r.raw)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Config{})
			hc := httpClient(t, srv)
			tok := entraToken(t, srv, hc)
			srv.SetFaults(tc.faults)
			for i, want := range tc.wantStatus {
				req := v2([]string{repInventory}, []string{dsInventory}, nil)
				if want == 0 {
					if _, err := hc.Post(srv.URL()+"/v1.0/myorg/GenerateToken", "application/json", strings.NewReader("{}")); err == nil {
						t.Errorf("call %d: want a dropped connection", i+1)
					}
					continue
				}
				r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, req)
				if r.status != want {
					t.Errorf("call %d: status %d, want %d: %s", i+1, r.status, want, r.raw)
				}
				if !isUUID(r.header.Get("RequestId")) {
					t.Errorf("call %d: no RequestId", i+1)
				}
				if tc.check != nil {
					tc.check(t, r)
				}
			}
			if got := srv.Counters()[RouteGenerateToken]; got != int64(len(tc.wantStatus)) {
				t.Errorf("counter %d, want %d (refused calls count)", got, len(tc.wantStatus))
			}
		})
	}
}

func TestEntraFaults(t *testing.T) {
	t.Parallel()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {demoClient},
		"client_secret": {demoSecret}, "scope": {pbiScope}}
	t.Run("5xx every 2nd token call", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, Config{Faults: Faults{EntraServerErrorEvery: 2}})
		hc := httpClient(t, srv)
		for i, want := range []int{200, 503, 200} {
			r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", form)
			if r.status != want {
				t.Errorf("call %d: %d, want %d", i+1, r.status, want)
			}
			if want == 503 && r.body["error"] != "temporarily_unavailable" {
				t.Errorf("%s", r.raw)
			}
		}
	})
	t.Run("drop", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, Config{Faults: Faults{EntraDropRate: 1}})
		if _, err := httpClient(t, srv).PostForm(srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", form); err == nil {
			t.Error("want a dropped connection")
		}
	})
	t.Run("short lifetime", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, Config{Faults: Faults{TokenLifetime: 2 * time.Minute}})
		r := call(t, httpClient(t, srv), "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", form)
		if r.body["expires_in"] != float64(120) || r.body["ext_expires_in"] != float64(120) {
			t.Errorf("%s", r.raw)
		}
	})
	t.Run("random lifetime, 60 to 90 minutes", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, Config{Faults: Faults{RandomTokenLifetime: true}})
		hc := httpClient(t, srv)
		seen := map[float64]bool{}
		for range 20 {
			r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", form)
			secs, _ := r.body["expires_in"].(float64)
			if secs < 3600 || secs > 5400 || r.body["ext_expires_in"] != secs {
				t.Fatalf("expires_in %v: %s", secs, r.raw)
			}
			tok, _ := parseJWT(r.body["access_token"].(string))
			iat, _ := tok.claimUnix("iat")
			if exp, _ := tok.claimUnix("exp"); float64(exp-iat) != secs {
				t.Errorf("exp - iat = %d, expires_in %v", exp-iat, secs)
			}
			seen[secs] = true
		}
		if len(seen) < 2 {
			t.Errorf("20 tokens, %d lifetime(s): not random", len(seen))
		}
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, Config{Faults: Faults{EntraLatency: 150 * time.Millisecond}})
		start := time.Now()
		call(t, httpClient(t, srv), "GET", srv.URL()+"/"+demoTenant+"/v2.0/.well-known/openid-configuration", "", nil)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("answered in %s, want >= 150ms", d)
		}
	})
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)

	put := call(t, hc, "PUT", srv.URL()+"/_emulator/faults", "", map[string]any{
		"powerbi_latency": "1ms", "throttle_every": 5, "trial_exhausted": true, "token_lifetime": "10m"})
	if r := call(t, hc, "PUT", srv.URL()+"/_emulator/faults", "", map[string]any{"random_token_lifetime": true}); r.status != 200 || !srv.Faults().RandomTokenLifetime {
		t.Fatalf("PUT random_token_lifetime: %d %s", r.status, r.raw)
	}
	put = call(t, hc, "PUT", srv.URL()+"/_emulator/faults", "", map[string]any{
		"powerbi_latency": "1ms", "throttle_every": 5, "trial_exhausted": true, "token_lifetime": "10m"})
	if put.status != 200 {
		t.Fatalf("PUT faults: %d %s", put.status, put.raw)
	}
	got := srv.Faults()
	if got.PowerBILatency != time.Millisecond || got.ThrottleEvery != 5 || !got.TrialExhausted || got.TokenLifetime != 10*time.Minute {
		t.Errorf("faults %+v", got)
	}
	if r := call(t, hc, "GET", srv.URL()+"/_emulator/faults", "", nil); r.body["powerbi_latency"] != "1ms" || r.body["throttle_every"] != float64(5) {
		t.Errorf("GET faults %s", r.raw)
	}
	for _, bad := range []string{`{"throttle_rate":2}`, `{"nope":1}`, `{"powerbi_latency":"soon"}`} {
		if r := call(t, hc, "PUT", srv.URL()+"/_emulator/faults", "", bad, "Content-Type", "application/json"); r.status != 400 {
			t.Errorf("PUT %s: %d", bad, r.status)
		}
	}
	r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/availableFeatures(featureName='embedTrial')", tok, nil)
	if info, _ := r.body["additionalInfo"].(map[string]any); info["usage"] != float64(100) {
		t.Errorf("availableFeatures with exhausted trial: %s", r.raw)
	}

	srv.SetFaults(Faults{})
	srv.ResetCounters()
	call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsFinance+"/reports/"+repLedger, tok, nil) // refused, still counted
	call(t, hc, "GET", srv.URL()+"/v1.0/myorg/availableFeatures", tok, nil)
	c := call(t, hc, "GET", srv.URL()+"/_emulator/counters", "", nil)
	if c.body[RouteGetReport] != float64(1) || c.body[RouteAvailableFeatures] != float64(1) || c.body[RouteEntraToken] != float64(0) {
		t.Errorf("counters %s", c.raw)
	}
	if r := call(t, hc, "POST", srv.URL()+"/_emulator/counters/reset", "", nil); r.status != 204 {
		t.Errorf("reset: %d", r.status)
	}
	if n := srv.Counters()[RouteGetReport]; n != 0 {
		t.Errorf("after reset %d", n)
	}
	if r := call(t, hc, "GET", srv.URL()+"/_emulator/ca.pem", "", nil); string(r.raw) != string(srv.CACertPEM()) {
		t.Error("ca.pem differs")
	}
}

func TestFaultsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		f       Faults
		wantErr string
	}{
		{"zero", Faults{}, ""},
		{"all set", Faults{ThrottleRate: 0.5, ServerErrorStatus: 502, TrialUsage: 65, TokenLifetime: time.Minute}, ""},
		{"rate", Faults{DropRate: 1.5}, "drop_rate"},
		{"negative every", Faults{ThrottleEvery: -1}, "throttle_every"},
		{"status", Faults{ServerErrorStatus: 404}, "server_error_status"},
		{"usage", Faults{TrialUsage: 101}, "trial_usage"},
		{"lifetime", Faults{TokenLifetime: time.Millisecond}, "token_lifetime"},
		{"random and fixed lifetime", Faults{TokenLifetime: time.Hour, RandomTokenLifetime: true}, "random_token_lifetime"},
		{"random lifetime", Faults{RandomTokenLifetime: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.f.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
