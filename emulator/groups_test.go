package emulator

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGetGroups: the workspaces the principal has a role in, with their
// capacity, filtered by $filter, then $skip, then $top.
func TestGetGroups(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	tests := []struct {
		name       string
		query      string
		profile    string
		wantStatus int
		wantIDs    []string
	}{
		{"every workspace with a role", "", "", 200, []string{wsAcme, wsAcmeFin, wsPortal, wsTrial, wsBoard, wsModels}},
		{"as the Globex profile", "", globexProf, 200, []string{wsGlobex}},
		{"the spec's example filter", "$filter=" + url.QueryEscape("contains(name,'Acme') or name eq 'Trial Sandbox'"), "", 200, []string{wsAcme, wsAcmeFin, wsTrial, wsModels}},
		{"shared capacity only", "$filter=" + url.QueryEscape("isOnDedicatedCapacity eq false"), "", 200, []string{wsTrial}},
		{"by id, any case", "$filter=" + url.QueryEscape("id eq "+strings.ToUpper(wsBoard)), "", 200, []string{wsBoard}},
		{"not, and, parentheses", "$filter=" + url.QueryEscape("not (startswith(name,'Acme') or endswith(name,'only)')) and isReadOnly eq false"), "", 200, []string{wsPortal, wsTrial}},
		{"quoted quote", "$filter=" + url.QueryEscape("name eq 'O''Brien'"), "", 200, []string{}},
		{"strings compare exactly", "$filter=" + url.QueryEscape("contains(name,'acme')"), "", 200, []string{}},
		{"top", "$top=2", "", 200, []string{wsAcme, wsAcmeFin}},
		{"skip and top", "$skip=1&$top=2", "", 200, []string{wsAcmeFin, wsPortal}},
		{"skip past the end", "$skip=9", "", 200, []string{}},
		{"top 0", "$top=0", "", 200, []string{}},
		{"bad filter", "$filter=" + url.QueryEscape("name gt 'a'"), "", 400, nil},
		{"unbalanced filter", "$filter=" + url.QueryEscape("(name eq 'a'"), "", 400, nil},
		{"negative top", "$top=-1", "", 400, nil},
		{"top not a number", "$skip=x", "", 400, nil},
		{"someone else's profile", "", "f0000000-0000-4000-8000-000000000999", 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups?"+tc.query, tok, nil, "X-PowerBI-Profile-Id", tc.profile)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantIDs == nil {
				return
			}
			value, ok := r.body["value"].([]any)
			if !ok || r.body["@odata.context"] == nil {
				t.Fatalf("body %s", r.raw)
			}
			ids := []string{}
			for _, v := range value {
				ids = append(ids, v.(map[string]any)["id"].(string))
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGetGroup: one workspace as Get Group returns it; capacity fields
// only for dedicated capacity; 401 without a role, as the item routes.
func TestGetGroup(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	g := srv.URL() + "/v1.0/myorg/groups/"
	tests := []struct {
		name       string
		ws         string
		profile    string
		wantStatus int
		want       map[string]any
	}{
		{"dedicated", wsAcme, "", 200, map[string]any{"id": wsAcme, "name": "Acme Analytics", "isOnDedicatedCapacity": true,
			"capacityId": emulatorCapacityID, "defaultDatasetStorageFormat": "Small", "isReadOnly": false}},
		{"shared", wsTrial, "", 200, map[string]any{"id": wsTrial, "isOnDedicatedCapacity": false, "capacityId": nil, "defaultDatasetStorageFormat": nil}},
		{"viewer", wsBoard, "", 200, map[string]any{"id": wsBoard}},
		{"as the profile", wsGlobex, globexProf, 200, map[string]any{"id": wsGlobex}},
		{"profile only: the app has no role", wsGlobex, "", 401, nil},
		{"no role", wsFinance, "", 401, nil},
		{"unknown", "00000000-0000-4000-8000-000000000000", "", 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "GET", g+tc.ws, tok, nil, "X-PowerBI-Profile-Id", tc.profile)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			for k, v := range tc.want {
				if r.body[k] != v {
					t.Errorf("%s = %v, want %v", k, r.body[k], v)
				}
			}
		})
	}
	// The list entry is the single GET without its @odata.context.
	list := call(t, hc, "GET", g[:len(g)-1]+"?$filter="+url.QueryEscape("id eq "+wsTrial), tok, nil)
	single := call(t, hc, "GET", g+wsTrial, tok, nil)
	delete(single.body, "@odata.context")
	if v, _ := list.body["value"].([]any); len(v) != 1 || cmp.Diff(single.body, v[0]) != "" {
		t.Errorf("list %s / single %s", list.raw, single.raw)
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()
	props := map[string]any{"name": "It's", "isOnDedicatedCapacity": true, "id": wsAcme}
	tests := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{"", true, false},
		{"name eq 'It''s'", true, false},
		{"NAME EQ 'It''s'", true, false},
		{"name ne 'It''s'", false, false},
		{"isOnDedicatedCapacity eq true and not (name eq 'x')", true, false},
		{"capacityId eq null", true, false},
		{"contains(name, 'It')", true, false},
		{"name eq 'a' or name eq 'b' and true eq true", false, false},
		{"name eq", false, true},
		{"name eq 'open", false, true},
		{"name lt 'a'", false, true},
		{"contains(name)", false, true},
		{"name eq 'a' extra", false, true},
		{"contains(name, true)", false, true},
		{"eq eq 3", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			f, err := parseFilter(tc.expr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFilter(%q) error %v, want error %v", tc.expr, err, tc.wantErr)
			}
			if err == nil && f(props) != tc.want {
				t.Errorf("%q = %v, want %v", tc.expr, !tc.want, tc.want)
			}
		})
	}
}
