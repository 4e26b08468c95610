package emulator

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// TestCloudAudiences: Entra issues tokens for the Power BI resource of any
// cloud; the Power BI side accepts only its own cloud's.
func TestCloudAudiences(t *testing.T) {
	t.Parallel()
	for _, played := range clouds {
		t.Run(played.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Config{Cloud: played.name})
			hc := httpClient(t, srv)
			for _, c := range clouds {
				r := call(t, hc, "POST", srv.URL()+"/"+demoTenant+"/oauth2/v2.0/token", "", url.Values{
					"grant_type": {"client_credentials"}, "client_id": {demoClient},
					"client_secret": {demoSecret}, "scope": {c.resource + "/.default"}})
				if r.status != 200 {
					t.Fatalf("token for %s: %d %s", c.name, r.status, r.raw)
				}
				tok, _ := r.body["access_token"].(string)
				if jwt, _ := parseJWT(tok); jwt == nil || jwt.claimString("aud") != c.resource {
					t.Errorf("token for %s has the wrong audience", c.name)
				}
				got := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsAcme, tok, nil)
				want := 403
				if c.name == played.name {
					want = 200
				}
				if got.status != want {
					t.Errorf("%s token on the %s cloud: %d, want %d: %s", c.name, played.name, got.status, want, got.raw)
				}
				if want == 403 && !strings.Contains(errorMessage(got), played.resource) {
					t.Errorf("403 message %q does not name the audience expected", errorMessage(got))
				}
			}
		})
	}
}

func TestUnknownCloud(t *testing.T) {
	t.Parallel()
	if _, err := Start(context.Background(), Config{Cloud: "germany"}); err == nil || !strings.Contains(err.Error(), "germany") {
		t.Errorf("Start with an unknown cloud: %v", err)
	}
}
