package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// The demo fixture's Acme Models workspace: one model of each kind.
const (
	modelsWS       = "a0000000-0000-4000-8000-000000000007"
	aasReport      = "a7000000-0000-4000-8000-000000000001" // on aasDataset, Azure Analysis Services
	ssasReport     = "a7000000-0000-4000-8000-000000000002" // on ssasDataset, SSAS through a gateway
	ssoReport      = "a7000000-0000-4000-8000-000000000003" // on ssoDataset, Azure SQL with SSO
	compReport     = "a7000000-0000-4000-8000-000000000004" // on compDataset: invDataset and targetsDataset
	statements     = "a7000000-0000-4000-8000-000000000005" // paginated, on salesDataset
	summaryReport  = "a7000000-0000-4000-8000-000000000006" // on invDataset, a paginated visual of invoices
	aasDataset     = "d7000000-0000-4000-8000-000000000001"
	ssasDataset    = "d7000000-0000-4000-8000-000000000002"
	ssoDataset     = "d7000000-0000-4000-8000-000000000003"
	compDataset    = "d7000000-0000-4000-8000-000000000004"
	targetsDataset = "d7000000-0000-4000-8000-000000000005" // Databricks with SSO
	appObjectID    = "c0ffee00-0000-4000-8000-0000000000b1" // the demo app's service principal
	azureSQL       = "https://database.windows.net/"
	databricks     = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
)

// modelsPolicy serves the Acme Models workspace to one tenant that mixes
// kinds of model, and has one tenant per way a policy can get a kind wrong.
const modelsPolicy = `
callers:
  - id: ` + frontend + `
    tenants: ["*"]
tenants:
  models:
    workspace_id: ` + modelsWS + `
    reports: ["*"]
    workspaces:
      - id: ` + acmeWorkspace + `     # the datasets the composite model and the paginated report read
        reports: [` + invoices + `]
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      datasets:
        ` + aasDataset + `: {username: service_principal, custom_data: "{user}", roles: [SalesReader]}
        ` + ssasDataset + `: {custom_data: "", roles: []}
        ` + ssoDataset + `: {roles: []}
      without_rls: [` + compReport + `, ` + summaryReport + `]
    sso: ["*"]
  aas-per-user:         # an identity the same for every user, but a dataset's own one per user
    workspace_id: ` + modelsWS + `
    reports: [` + aasReport + `]
    rls:
      username: service_principal
      custom_data: "{tenant}"
      roles: [SalesReader]
      datasets:
        ` + aasDataset + `: {username: service_principal, custom_data: "{user}", roles: [SalesReader]}
  aas-end-user:         # the end user as the username of an AAS model
    workspace_id: ` + modelsWS + `
    reports: [` + aasReport + `]
    rls: {roles: [SalesReader], username: "{user}", custom_data: "{tenant}"}
  ssas-custom-data:     # customData on an SSAS model
    workspace_id: ` + modelsWS + `
    reports: [` + ssasReport + `]
    rls:
      roles: [Customer]
      custom_data: "{tenant}"
      datasets: {` + ssasDataset + `: {roles: []}}
  sso-not-sso:          # an identity blob for a dataset without single sign-on
    workspace_id: ` + acmeWorkspace + `
    reports: [` + invReport + `]
    sso: [` + invDataset + `]
  composite-outside:    # a composite model reading a dataset of a workspace the tenant lacks
    workspace_id: ` + modelsWS + `
    reports: [` + compReport + `]
    sso: ["*"]
  paginated-outside:    # a paginated report on a dataset of a workspace the tenant lacks
    workspace_id: ` + modelsWS + `
    reports: [` + statements + `]
    rls: {roles: [Customer]}
  sso-not-allowed:      # a single sign-on model, and no identity blob allowed
    workspace_id: ` + modelsWS + `
    reports: [` + ssoReport + `]
    rls:
      roles: [Customer]
      datasets: {` + ssoDataset + `: {roles: []}}
`

// blobGrant is what the emulator says an identity blob was: its audience and
// whom it represents, never its value.
type blobGrant struct{ Audience, ObjectID string }

type modelGrant struct {
	Reports    []emulator.TokenReport
	Datasets   []emulator.TokenDataset
	Identities []modelIdentity
	Sources    []blobGrant // datasourceIdentities
}

type modelIdentity struct {
	Username   string
	Roles      []string
	CustomData string
	Datasets   []string
	Reports    []string
	Blob       *blobGrant
}

func lookupModels(t *testing.T, emu *emulator.Server, tokenID string) modelGrant {
	t.Helper()
	info, ok := emu.LookupToken(tokenID)
	if !ok {
		t.Fatalf("the emulator minted no token %s", tokenID)
	}
	g := modelGrant{Reports: info.Reports, Datasets: info.Datasets}
	for _, id := range info.Identities {
		mi := modelIdentity{Username: id.Username, Roles: id.Roles, CustomData: id.CustomData, Datasets: id.Datasets, Reports: id.Reports}
		if b := id.IdentityBlob; b != nil {
			mi.Blob = &blobGrant{b.Audience, b.ObjectID}
		}
		g.Identities = append(g.Identities, mi)
	}
	for _, di := range info.DatasourceIdentities {
		g.Sources = append(g.Sources, blobGrant{di.IdentityBlob.Audience, di.IdentityBlob.ObjectID})
	}
	return g
}

// TestEveryKindOfModel mints a token for each kind of model, through the
// real server against the emulator, and checks with the emulator's token
// lookup the identities, identity blobs, upstream datasets and
// xmlaPermissions that reached Power BI.
func TestEveryKindOfModel(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{policy: modelsPolicy})
	readOnly := func(id string, upstream ...string) emulator.TokenDataset {
		return emulator.TokenDataset{ID: id, XmlaPermissions: "ReadOnly", UpstreamDatasets: upstream}
	}
	off := func(id string) emulator.TokenDataset { return emulator.TokenDataset{ID: id, XmlaPermissions: "Off"} }
	view := func(ids ...string) []emulator.TokenReport {
		out := make([]emulator.TokenReport, len(ids))
		for i, id := range ids {
			out[i] = emulator.TokenReport{ID: id}
		}
		return out
	}
	tests := []struct {
		name    string
		reports []string
		want    modelGrant
	}{{
		name:    "Azure Analysis Services: the service principal's object id, the end user in customData",
		reports: []string{aasReport},
		want: modelGrant{Reports: view(aasReport), Datasets: []emulator.TokenDataset{off(aasDataset)},
			Identities: []modelIdentity{{Username: appObjectID, Roles: []string{"SalesReader"}, CustomData: "alice@acme.example", Datasets: []string{aasDataset}}}},
	}, {
		name:    "SQL Server Analysis Services: the end user's account, no customData",
		reports: []string{ssasReport},
		want: modelGrant{Reports: view(ssasReport), Datasets: []emulator.TokenDataset{off(ssasDataset)},
			Identities: []modelIdentity{{Username: "alice@acme.example", Datasets: []string{ssasDataset}}}},
	}, {
		name:    "single sign-on: the identity carries a blob for Azure SQL, acquired by the service principal",
		reports: []string{ssoReport},
		want: modelGrant{Reports: view(ssoReport), Datasets: []emulator.TokenDataset{off(ssoDataset)},
			Identities: []modelIdentity{{Username: "alice@acme.example", CustomData: "models", Datasets: []string{ssoDataset},
				Blob: &blobGrant{azureSQL, appObjectID}}}},
	}, {
		name:    "a composite model: every dataset it reads, ReadOnly, and the Databricks blob",
		reports: []string{compReport},
		want: modelGrant{Reports: view(compReport),
			Datasets: []emulator.TokenDataset{readOnly(compDataset, invDataset, targetsDataset), readOnly(invDataset), readOnly(targetsDataset)},
			Sources:  []blobGrant{{databricks, appObjectID}}},
	}, {
		name:    "a paginated report on a Power BI dataset: V2, the dataset ReadOnly, its RLS identity",
		reports: []string{statements},
		want: modelGrant{Reports: view(statements), Datasets: []emulator.TokenDataset{readOnly(salesDataset)},
			Identities: []modelIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "models", Datasets: []string{salesDataset}}}},
	}, {
		name:    "a report with a paginated visual, with its paginated report",
		reports: []string{summaryReport, invoices},
		want: modelGrant{Reports: view(summaryReport, invoices), Datasets: []emulator.TokenDataset{off(invDataset)},
			Identities: []modelIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "models", Reports: []string{invoices}}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
				Tenant: "models", User: "alice@acme.example", ReportIds: tt.reports})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, lookupModels(t, s.emu, resp.GetTokenId()), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the token grants (-want +got):\n%s", diff)
			}
		})
	}

	// Explain shows each dataset's kind and what is sent for it, a blob by its
	// audience only.
	resp, err := s.client.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{
		Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: &embedgatev1.GenerateEmbedTokenRequest{
			Tenant: "models", User: "alice@acme.example", ReportIds: []string{aasReport, ssoReport, compReport}}}})
	if err != nil || !resp.GetAllowed() {
		t.Fatalf("explain = %v, %v", resp, err)
	}
	type shown struct {
		ID, Kind, ReadBy, Xmla, Username, CustomData string
		Roles, Audiences, SSO                        []string
	}
	var got []shown
	for _, m := range resp.GetModels() {
		got = append(got, shown{ID: m.GetId(), Kind: m.GetKind(), ReadBy: m.GetReadBy(), Xmla: m.GetXmlaPermissions(),
			Username: m.GetIdentity().GetUsername(), CustomData: m.GetIdentity().GetCustomData(), Roles: m.GetIdentity().GetRoles(),
			Audiences: m.GetIdentityBlobAudiences(), SSO: m.GetSsoDatasources()})
	}
	want := []shown{
		{ID: aasDataset, Kind: "aas", Username: appObjectID, CustomData: "alice@acme.example", Roles: []string{"SalesReader"}},
		{ID: ssoDataset, Kind: "cloud", Username: "alice@acme.example", CustomData: "models", Audiences: []string{azureSQL}, SSO: []string{"Sql acme-orders.database.windows.net/Orders"}},
		{ID: compDataset, Kind: "cloud", Xmla: "ReadOnly"},
		{ID: invDataset, Kind: "cloud", ReadBy: compDataset, Xmla: "ReadOnly"},
		{ID: targetsDataset, Kind: "cloud", ReadBy: compDataset, Xmla: "ReadOnly", Audiences: []string{databricks},
			SSO: []string{"Extension adb-1234567890123456.7.azuredatabricks.net;/sql/1.0/warehouses/acme"}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("explained models (-want +got):\n%s", diff)
	}
	body := resp.GetPowerbiRequest().GetBody()
	if strings.Count(body, `"[redacted]"`) != 2 {
		t.Errorf("the explained body should show both blobs redacted: %s", body)
	}
	for _, tok := range s.emu.AccessTokens() {
		if strings.Contains(body, tok) {
			t.Error("the explained body holds an access token")
		}
	}
	// The identity blobs are among the Entra tokens the leak scan looks for.
	blobs := 0
	for _, tok := range s.emu.AccessTokens() {
		if aud := audienceOf(tok); aud == azureSQL || aud == databricks {
			blobs++
			watchForLeaks(nil, tok)
		}
	}
	if blobs == 0 {
		t.Error("no identity blob was issued: the leak scan would not cover them")
	}
}

// audienceOf reads the aud claim of a JWT, unverified.
func audienceOf(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Aud string `json:"aud"`
	}
	_ = json.Unmarshal(payload, &c)
	return c.Aud
}

// TestModelMisconfigurations: each way a policy can get a kind of model
// wrong is refused with its own reason, and nothing is minted.
func TestModelMisconfigurations(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{policy: modelsPolicy})
	tests := []struct {
		tenant     string
		reports    []string
		wantCode   codes.Code
		wantReason string
		wantInMsg  string
		calledPBI  bool // Power BI was asked (and refused): the gateway cannot tell
	}{
		{"aas-end-user", []string{aasReport}, codes.FailedPrecondition, "IDENTITY_KIND_MISMATCH", "service_principal", false},
		{"ssas-custom-data", []string{ssasReport}, codes.FailedPrecondition, "IDENTITY_KIND_MISMATCH", "customData", false},
		{"sso-not-sso", []string{invReport}, codes.FailedPrecondition, "SSO_NOT_APPLICABLE", invDataset, false},
		{"composite-outside", []string{compReport}, codes.PermissionDenied, "DATASET_NOT_ALLOWED", compReport, false},
		{"paginated-outside", []string{statements}, codes.PermissionDenied, "DATASET_NOT_ALLOWED", statements, false},
		{"sso-not-allowed", []string{ssoReport}, codes.FailedPrecondition, "POWERBI_REJECTED_REQUEST", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			before := s.emu.Counters()[emulator.RouteGenerateToken]
			minted := mintedTokens(t, s.emu)
			_, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
				Tenant: tt.tenant, User: "alice@acme.example", ReportIds: tt.reports})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("err = %v, want %v", err, tt.wantCode)
			}
			checkDetails(t, err, tt.wantReason, "")
			if !strings.Contains(status.Convert(err).Message(), tt.wantInMsg) {
				t.Errorf("message %q lacks %q", status.Convert(err).Message(), tt.wantInMsg)
			}
			if tt.wantReason == "DATASET_NOT_ALLOWED" && strings.Contains(status.Convert(err).Message(), invDataset+salesDataset) {
				t.Errorf("the message names what is outside the tenant: %q", status.Convert(err).Message())
			}
			if n := mintedTokens(t, s.emu); n != minted {
				t.Errorf("%d token(s) minted", n-minted)
			}
			if called := s.emu.Counters()[emulator.RouteGenerateToken] != before; called != tt.calledPBI {
				t.Errorf("GenerateToken called: %v, want %v", called, tt.calledPBI)
			}
		})
	}
	// The audit record names the dataset of a refusal; the caller's message
	// does not when it is outside the tenant.
	if !logged(s, `"reason":"DATASET_NOT_ALLOWED"`) || !logged(s, `"dataset_id":"`+invDataset+`"`) {
		t.Errorf("the audit records do not name the refused dataset:\n%s", s.logs.String())
	}
	if doc, err := os.ReadFile("../docs/audit.md"); err != nil || !strings.Contains(string(doc), "| `dataset_id` |") {
		t.Errorf("docs/audit.md does not document the field dataset_id (%v)", err)
	}
}

// logged reports whether the stack logged fragment (the audit is in its log).
func logged(s *stack, fragment string) bool {
	return strings.Contains(s.logs.String(), fragment)
}

// mintedTokens is how many embed tokens the emulator has minted, from its
// admin route.
func mintedTokens(t *testing.T, emu *emulator.Server) int {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(emu.CACertPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get(emu.URL() + "/_emulator/tokens")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return len(list.Value)
}

// TestModelsWarmPath: with the metadata cached, a new grant on any kind of
// model costs one Power BI call, GenerateToken, and no Entra call: the
// identity blobs are cached like the Power BI token.
func TestModelsWarmPath(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{policy: modelsPolicy})
	mint := func(user string, reports ...string) {
		t.Helper()
		if _, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
			Tenant: "models", User: user, ReportIds: reports}); err != nil {
			t.Fatal(err)
		}
	}
	all := [][]string{{aasReport}, {ssasReport}, {ssoReport}, {compReport}, {statements}, {summaryReport, invoices}}
	for _, r := range all {
		mint("alice@acme.example", r...)
	}
	s.emu.ResetCounters()
	for _, r := range all {
		mint("ACME\\bob", r...) // a new grant each
	}
	for route, n := range s.emu.Counters() {
		want := int64(0)
		if route == emulator.RouteGenerateToken {
			want = int64(len(all))
		}
		if n != want {
			t.Errorf("%s calls = %d, want %d", route, n, want)
		}
	}
}

// TestEachUserHisOwnModelIdentity: where a tenant's identity is the same
// for every user but a dataset's own identity carries the user, two users
// get two tokens, each with their own identity on that dataset: nothing
// cached for one (the models' decisions, the token) is served to the other.
func TestEachUserHisOwnModelIdentity(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{policy: modelsPolicy})
	tokens := map[string]string{}
	for _, user := range []string{"alice@acme.example", "bob@acme.example", "alice@acme.example"} {
		resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{Tenant: "aas-per-user", User: user, ReportIds: []string{aasReport}})
		if err != nil {
			t.Fatal(err)
		}
		if prev, seen := tokens[user]; seen && prev != resp.GetTokenId() {
			t.Errorf("%s's second call got another token", user)
		}
		tokens[user] = resp.GetTokenId()
		g := lookupModels(t, s.emu, resp.GetTokenId())
		if len(g.Identities) != 1 || g.Identities[0].CustomData != user {
			t.Errorf("%s's token carries %+v, want the user in customData", user, g.Identities)
		}
	}
	if tokens["alice@acme.example"] == tokens["bob@acme.example"] {
		t.Error("alice and bob were handed the same token")
	}
}
