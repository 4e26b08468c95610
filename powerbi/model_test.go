package powerbi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/emulator"
)

// The Models workspace of testdata/world.yaml: one model of each kind.
const (
	modelsWS        = "6d6d6d6d-0000-4000-8000-000000000000"
	repAAS          = "6d6d6d6d-0000-4000-8000-000000000001" // on dsAAS
	repSSAS         = "6d6d6d6d-0000-4000-8000-000000000002" // on dsSSAS
	repSSO          = "6d6d6d6d-0000-4000-8000-000000000003" // on dsSSO
	repComposite    = "6d6d6d6d-0000-4000-8000-000000000004" // on dsComposite
	repStatements   = "6d6d6d6d-0000-4000-8000-000000000005" // paginated, reads dsRLS (testWS)
	repSummary      = "6d6d6d6d-0000-4000-8000-000000000006" // on dsPlain, a paginated visual of repRDL
	repOrdersRDL    = "6d6d6d6d-0000-4000-8000-000000000007" // paginated, its own Azure SQL source with SSO
	dsAAS           = "6d6d6d6d-dddd-4000-8000-000000000001" // Azure Analysis Services, role Reader
	dsSSAS          = "6d6d6d6d-dddd-4000-8000-000000000002" // SSAS through a gateway
	dsSSO           = "6d6d6d6d-dddd-4000-8000-000000000003" // Azure SQL with SSO, identity required
	dsComposite     = "6d6d6d6d-dddd-4000-8000-000000000004" // reads dsPlain and dsTargets
	dsTargets       = "6d6d6d6d-dddd-4000-8000-000000000005" // Databricks with SSO, no RLS
	testAppObjectID = "aaaaaaaa-bbbb-cccc-dddd-0000000000b1"
)

var (
	ordersSQL = Datasource{Type: "Sql", Server: "contoso-orders.database.windows.net", Database: "Orders", Audience: audienceAzureSQL}
	targetsDB = Datasource{Type: "Extension", Path: "adb-1.7.azuredatabricks.net;/sql/1.0/warehouses/w", Kind: "Databricks", Audience: audienceDatabricks}
)

func TestModels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    TokenRequest
		want []Model
	}{{
		name: "a cloud model with RLS",
		r:    req(repSales),
		want: []Model{{ID: dsRLS, WorkspaceID: testWS, Kind: ModelCloud, IdentityRequired: true, RolesRequired: true, Reports: []string{repSales}}},
	}, {
		name: "a live connection to Azure Analysis Services",
		r:    TokenRequest{Items: reports(modelsWS, repAAS)},
		want: []Model{{ID: dsAAS, WorkspaceID: modelsWS, Kind: ModelAAS, IdentityRequired: true, Reports: []string{repAAS}}},
	}, {
		name: "a live connection to SQL Server Analysis Services through a gateway",
		r:    TokenRequest{Items: reports(modelsWS, repSSAS)},
		want: []Model{{ID: dsSSAS, WorkspaceID: modelsWS, Kind: ModelSSAS, IdentityRequired: true, Reports: []string{repSSAS}}},
	}, {
		name: "DirectQuery to Azure SQL: its source can take an identity blob",
		r:    TokenRequest{Items: reports(modelsWS, repSSO)},
		want: []Model{{ID: dsSSO, WorkspaceID: modelsWS, Kind: ModelCloud, IdentityRequired: true, SSO: []Datasource{ordersSQL}, Reports: []string{repSSO}}},
	}, {
		name: "a composite model and the datasets it reads, each in its workspace",
		r:    TokenRequest{Items: reports(modelsWS, repComposite)},
		want: []Model{
			{ID: dsComposite, WorkspaceID: modelsWS, Kind: ModelCloud, Upstream: []string{dsPlain, dsTargets}, Reports: []string{repComposite}, XMLA: true},
			{ID: dsPlain, WorkspaceID: testWS, Kind: ModelCloud, ReadBy: dsComposite, Reports: []string{repComposite}, XMLA: true},
			{ID: dsTargets, WorkspaceID: modelsWS, Kind: ModelCloud, SSO: []Datasource{targetsDB}, ReadBy: dsComposite, Reports: []string{repComposite}, XMLA: true},
		},
	}, {
		name: "a dataset both requested and read by a composite model is the report's own",
		r:    TokenRequest{Items: []Item{rep(testWS, repPlain), rep(modelsWS, repComposite)}},
		want: []Model{
			{ID: dsPlain, WorkspaceID: testWS, Kind: ModelCloud, Reports: []string{repPlain, repComposite}, XMLA: true},
			{ID: dsComposite, WorkspaceID: modelsWS, Kind: ModelCloud, Upstream: []string{dsPlain, dsTargets}, Reports: []string{repComposite}, XMLA: true},
			{ID: dsTargets, WorkspaceID: modelsWS, Kind: ModelCloud, SSO: []Datasource{targetsDB}, ReadBy: dsComposite, Reports: []string{repComposite}, XMLA: true},
		},
	}, {
		name: "a paginated report's dataset, found in the tenant's workspaces",
		r:    TokenRequest{Items: reports(modelsWS, repStatements), Workspaces: []string{modelsWS, testWS}},
		want: []Model{
			{ID: dsRLS, WorkspaceID: testWS, Kind: ModelCloud, IdentityRequired: true, RolesRequired: true, ReadBy: repStatements, Reports: []string{repStatements}, XMLA: true},
			{ID: repStatements, WorkspaceID: modelsWS, Paginated: true, Upstream: []string{dsRLS}, Reports: []string{repStatements}},
		},
	}, {
		name: "a paginated report's dataset in none of the tenant's workspaces",
		r:    TokenRequest{Items: reports(modelsWS, repStatements), Workspaces: []string{modelsWS, testWS2}},
		want: []Model{
			{ID: dsRLS, ReadBy: repStatements, Reports: []string{repStatements}, XMLA: true},
			{ID: repStatements, WorkspaceID: modelsWS, Paginated: true, Upstream: []string{dsRLS}, Reports: []string{repStatements}},
		},
	}, {
		name: "a paginated report's own single sign-on source",
		r:    TokenRequest{Items: reports(modelsWS, repOrdersRDL)},
		want: []Model{{ID: repOrdersRDL, WorkspaceID: modelsWS, Paginated: true, SSO: []Datasource{ordersSQL}, Reports: []string{repOrdersRDL}}},
	}, {
		name: "the tiles' datasets of a dashboard",
		r:    TokenRequest{Items: dashItem(testWS, dashSales)},
		want: []Model{
			{ID: dsRLS, WorkspaceID: testWS, Kind: ModelCloud, IdentityRequired: true, RolesRequired: true, Reports: []string{repSales, repMkt}},
			{ID: dsPlain, WorkspaceID: testWS, Kind: ModelCloud, Reports: []string{repPlain}},
			{ID: dsNoRoles, WorkspaceID: testWS, Kind: ModelCloud, IdentityRequired: true, Reports: []string{repNoRoles}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			got, err := e.c.Models(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Models (-want +got):\n%s", diff)
			}
			if n := e.generatePosts(); n != 0 {
				t.Errorf("Models minted %d tokens", n)
			}
			// Learned once: the second time comes from the metadata cache.
			before := e.powerBICalls()
			if _, err := e.c.Models(context.Background(), tt.r); err != nil {
				t.Fatal(err)
			}
			if n := e.powerBICalls() - before; n != 0 {
				t.Errorf("Models with the metadata cached made %d Power BI calls", n)
			}
		})
	}
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %s: %v", want, err)
	}
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s: bad JSON %s: %v", what, got, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s\n got %s\nwant %s\ndiff (-want +got):\n%s", what, got, want, diff)
	}
}

// blobInfo is what the emulator recorded about an identity blob.
type blobInfo struct{ audience, objectID string }

// TestModelTokens mints a token for each kind of model, with the policy's
// decisions, and checks the body Power BI received (identity blobs redacted
// by the emulator's record, as Plan redacts them) and what the emulator says
// the token grants.
func TestModelTokens(t *testing.T) {
	t.Parallel()
	alice := &Identity{Username: "alice@contoso.com", Roles: []string{"Customer"}, CustomData: "contoso"}
	tests := []struct {
		name    string
		r       TokenRequest
		want    string              // the body, blobs redacted
		blobs   map[string]blobInfo // by dataset id (identity blob) or audience (datasourceIdentities)
		planned []PlannedModel
	}{{
		name: "Azure Analysis Services: the service principal's object id, the end user in customData",
		r: TokenRequest{Items: reports(modelsWS, repAAS), Identity: alice,
			Models: []ModelGrant{{ID: dsAAS, Identity: &ModelIdentity{ServicePrincipal: true, CustomData: "alice@contoso.com", Roles: []string{"Reader"}}}}},
		want: `{"datasets":[{"id":"` + dsAAS + `"}],"reports":[{"id":"` + repAAS + `","allowEdit":false}],` +
			`"identities":[{"username":"` + testAppObjectID + `","roles":["Reader"],"customData":"alice@contoso.com","datasets":["` + dsAAS + `"]}]}`,
		planned: []PlannedModel{{Model: Model{ID: dsAAS, WorkspaceID: modelsWS, Kind: ModelAAS, IdentityRequired: true, Reports: []string{repAAS}},
			Identity: &PlannedIdentity{Username: testAppObjectID, Roles: []string{"Reader"}, CustomData: "alice@contoso.com"}}},
	}, {
		name: "Azure Analysis Services through a profile: the profile's id",
		r: TokenRequest{ProfileID: testProfile, Items: reports(modelsWS, repAAS), Identity: alice,
			Models: []ModelGrant{{ID: dsAAS, Identity: &ModelIdentity{ServicePrincipal: true, CustomData: "alice@contoso.com"}}}},
		want: `{"datasets":[{"id":"` + dsAAS + `"}],"reports":[{"id":"` + repAAS + `","allowEdit":false}],` +
			`"identities":[{"username":"` + testProfile + `","customData":"alice@contoso.com","datasets":["` + dsAAS + `"]}]}`,
	}, {
		name: "SQL Server Analysis Services: a user the server knows, no customData",
		r: TokenRequest{Items: reports(modelsWS, repSSAS), Identity: alice,
			Models: []ModelGrant{{ID: dsSSAS, Identity: &ModelIdentity{Username: `CONTOSO\alice`}}}},
		want: `{"datasets":[{"id":"` + dsSSAS + `"}],"reports":[{"id":"` + repSSAS + `","allowEdit":false}],` +
			`"identities":[{"username":"CONTOSO\\alice","datasets":["` + dsSSAS + `"]}]}`,
	}, {
		name: "single sign-on: the identity carries the blob, and no username without an rls block",
		r:    TokenRequest{Items: reports(modelsWS, repSSO), Lifetime: 30 * time.Minute, Models: []ModelGrant{{ID: dsSSO, SSO: true}}},
		want: `{"datasets":[{"id":"` + dsSSO + `"}],"reports":[{"id":"` + repSSO + `","allowEdit":false}],` +
			`"identities":[{"datasets":["` + dsSSO + `"],"identityBlob":"[redacted]"}],"lifetimeInMinutes":30}`,
		blobs: map[string]blobInfo{dsSSO: {audienceAzureSQL, testAppObjectID}},
		planned: []PlannedModel{{Model: Model{ID: dsSSO, WorkspaceID: modelsWS, Kind: ModelCloud, IdentityRequired: true, SSO: []Datasource{ordersSQL}, Reports: []string{repSSO}},
			Identity: &PlannedIdentity{}, BlobAudiences: []string{audienceAzureSQL}}},
	}, {
		name: "single sign-on and the tenant's username",
		r: TokenRequest{Items: reports(modelsWS, repSSO), Identity: alice,
			Models: []ModelGrant{{ID: dsSSO, SSO: true, Identity: &ModelIdentity{Username: "alice@contoso.com", CustomData: "contoso"}}}},
		want: `{"datasets":[{"id":"` + dsSSO + `"}],"reports":[{"id":"` + repSSO + `","allowEdit":false}],` +
			`"identities":[{"username":"alice@contoso.com","customData":"contoso","datasets":["` + dsSSO + `"],"identityBlob":"[redacted]"}]}`,
		blobs: map[string]blobInfo{dsSSO: {audienceAzureSQL, testAppObjectID}},
	}, {
		name: "a composite model: every dataset ReadOnly, the upstream's blob in datasourceIdentities",
		r: TokenRequest{Items: reports(modelsWS, repComposite),
			Models: []ModelGrant{{ID: dsComposite}, {ID: dsPlain}, {ID: dsTargets, SSO: true}}},
		want: `{"datasets":[{"id":"` + dsComposite + `","xmlaPermissions":"ReadOnly"},{"id":"` + dsPlain + `","xmlaPermissions":"ReadOnly"},{"id":"` + dsTargets + `","xmlaPermissions":"ReadOnly"}],` +
			`"reports":[{"id":"` + repComposite + `","allowEdit":false}],` +
			`"datasourceIdentities":[{"identityBlob":"[redacted]","datasources":[{"datasourceType":"Extension","connectionDetails":{"path":"adb-1.7.azuredatabricks.net;/sql/1.0/warehouses/w","kind":"Databricks"}}]}]}`,
		blobs: map[string]blobInfo{audienceDatabricks: {audienceDatabricks, testAppObjectID}},
	}, {
		name: "a paginated report on a Power BI dataset: V2, the dataset ReadOnly, never editable",
		r: TokenRequest{Items: reports(modelsWS, repStatements), Identity: alice, AllowEdit: true, Workspaces: []string{modelsWS, testWS},
			Models: []ModelGrant{{ID: dsRLS}, {ID: repStatements}}},
		want: `{"datasets":[{"id":"` + dsRLS + `","xmlaPermissions":"ReadOnly"}],"reports":[{"id":"` + repStatements + `","allowEdit":false}],` +
			`"identities":[{"username":"alice@contoso.com","roles":["Customer"],"customData":"contoso","datasets":["` + dsRLS + `"]}]}`,
	}, {
		name: "a report with a paginated visual and its paginated report, in one V2 token",
		r: TokenRequest{Items: []Item{rep(modelsWS, repSummary), rep(testWS, repRDL)}, AllowEdit: true,
			Identity: &Identity{Username: "alice@contoso.com", Roles: []string{"Customer"}, WithoutRLS: []string{repSummary}}},
		want: `{"datasets":[{"id":"` + dsPlain + `"}],"reports":[{"id":"` + repSummary + `","allowEdit":true},{"id":"` + repRDL + `","allowEdit":false}],` +
			`"identities":[{"username":"alice@contoso.com","roles":["Customer"],"reports":["` + repRDL + `"]}]}`,
	}, {
		name: "a paginated report's own single sign-on source: V2",
		r:    TokenRequest{Items: reports(modelsWS, repOrdersRDL), Models: []ModelGrant{{ID: repOrdersRDL, SSO: true}}},
		want: `{"datasets":[],"reports":[{"id":"` + repOrdersRDL + `","allowEdit":false}],` +
			`"datasourceIdentities":[{"identityBlob":"[redacted]","datasources":[{"datasourceType":"Sql","connectionDetails":{"server":"contoso-orders.database.windows.net","database":"Orders"}}]}]}`,
		blobs: map[string]blobInfo{audienceAzureSQL: {audienceAzureSQL, testAppObjectID}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok, err := e.c.Issue(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, "body received", string(e.onlyMint(t, "/v1.0/myorg/GenerateToken").Body), tt.want)
			p, err := e.c.Plan(context.Background(), tt.r)
			if err != nil {
				t.Fatal(err)
			}
			// The emulator records a blob as "[redacted]"; the plan keeps the
			// wire's shape, {"value":"[redacted]"} in an identity.
			sameJSON(t, "plan body", string(p.Body), strings.ReplaceAll(tt.want, `"identityBlob":"[redacted]"}`, `"identityBlob":{"value":"[redacted]"}}`))
			if tt.planned != nil {
				if diff := cmp.Diff(tt.planned, p.Datasets); diff != "" {
					t.Errorf("planned (-want +got):\n%s", diff)
				}
			}
			info, ok := e.grant(t, tok.Token)
			if !ok {
				t.Fatal("the emulator does not know the token")
			}
			got := map[string]blobInfo{}
			for _, id := range info.Identities {
				if id.IdentityBlob != nil {
					got[id.Datasets[0]] = blobInfo{id.IdentityBlob.Audience, id.IdentityBlob.ObjectID}
				}
			}
			for _, di := range info.DatasourceIdentities {
				got[di.IdentityBlob.Audience] = blobInfo{di.IdentityBlob.Audience, di.IdentityBlob.ObjectID}
			}
			if len(tt.blobs) == 0 {
				tt.blobs = map[string]blobInfo{}
			}
			if diff := cmp.Diff(tt.blobs, got, cmp.AllowUnexported(blobInfo{})); diff != "" {
				t.Errorf("identity blobs granted (-want +got):\n%s", diff)
			}
			e.checkNoSecretsLogged(t, tok.Token)
			for _, b := range []string{string(p.Body)} {
				for _, at := range e.emu.AccessTokens() {
					if strings.Contains(b, at) {
						t.Error("the plan holds an access token")
					}
				}
			}
		})
	}
}

// TestIdentityBlobsAreCachedLikeThePowerBIToken: the blob of an audience is
// acquired once, with scope <audience>/.default, and serves every later
// token that it outlives; it is renewed, as the Power BI token, when it
// would not outlive the embed token.
func TestIdentityBlobsAreCachedLikeThePowerBIToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache)
	r := TokenRequest{Items: reports(modelsWS, repSSO), Lifetime: 30 * time.Minute, Models: []ModelGrant{{ID: dsSSO, SSO: true}}}
	scopes := func() map[string]int {
		n := map[string]int{}
		for _, f := range e.tokenForms() {
			n[strings.Fields(f.Get("scope"))[0]]++
		}
		return n
	}
	for range 3 {
		if _, err := e.c.Issue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"https://analysis.windows.net/powerbi/api/.default": 1, "https://database.windows.net//.default": 1}
	if diff := cmp.Diff(want, scopes()); diff != "" {
		t.Errorf("Entra token requests by scope (-want +got):\n%s", diff)
	}
	// 40 minutes on, neither token outlives a 30-minute embed token: each
	// is renewed once.
	e.clock.Advance(40 * time.Minute)
	e.upstreamAhead(0)
	if _, err := e.c.Issue(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{"https://analysis.windows.net/powerbi/api/.default": 2, "https://database.windows.net//.default": 2}
	if diff := cmp.Diff(want, scopes()); diff != "" {
		t.Errorf("after 40 minutes, Entra token requests by scope (-want +got):\n%s", diff)
	}
	e.checkNoSecretsLogged(t)
}

// TestModelsFailClosed: what the policy did not decide is not opened, what
// Power BI would refuse is refused before minting, and a refused blob is
// the data source's, not the Power BI credential's.
func TestModelsFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		r       TokenRequest
		world   func(*emulator.Fixture)
		wantErr error
		wantMsg string
	}{{
		name:    "a composite model's upstream dataset without a policy decision",
		r:       TokenRequest{Items: reports(modelsWS, repComposite), Models: []ModelGrant{{ID: dsComposite}, {ID: dsTargets}}},
		wantErr: ErrInvalidRequest, wantMsg: dsPlain,
	}, {
		name:    "a paginated report's dataset without a policy decision",
		r:       TokenRequest{Items: reports(modelsWS, repStatements), Workspaces: []string{testWS}, Identity: &Identity{Username: "a", Roles: []string{"Customer"}}},
		wantErr: ErrInvalidRequest, wantMsg: dsRLS,
	}, {
		name:    "an RLS tenant on a composite model that enforces none",
		r:       TokenRequest{Items: reports(modelsWS, repComposite), Identity: &Identity{Username: "a", Roles: []string{"r"}}, Models: []ModelGrant{{ID: dsComposite}, {ID: dsPlain}, {ID: dsTargets}}},
		wantErr: ErrRLSNotEnforced, wantMsg: dsComposite,
	}, {
		name:    "an Azure Analysis Services model without an identity",
		r:       TokenRequest{Items: reports(modelsWS, repAAS)},
		wantErr: ErrIdentityRequired, wantMsg: dsAAS,
	}, {
		name:    "a dashboard tile on a single sign-on source that only V2 carries",
		r:       TokenRequest{Items: dashItem(modelsWS, "6d6d6d6d-dada-4000-8000-000000000001"), Models: []ModelGrant{{ID: dsTargets, SSO: true}}},
		world:   addDashboard(modelsWS, "6d6d6d6d-dada-4000-8000-000000000001", dsTargets),
		wantErr: ErrUnsupported, wantMsg: "datasourceIdentities",
	}, {
		name:    "a composite model reading more than 50 datasets",
		r:       TokenRequest{Items: reports(modelsWS, repComposite), Models: grantsFor(dsComposite, dsPlain, dsTargets)},
		world:   wideComposite(60),
		wantErr: ErrTokenLimit, wantMsg: "63 datasets",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []envOption
			if tt.world != nil {
				opts = append(opts, withWorld(tt.world))
				tt.r.Models = append(tt.r.Models, grantsFor(wideIDs(60)...)...)
			}
			e := newEnv(t, opts...)
			_, err := e.c.Issue(context.Background(), tt.r)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v naming %q", err, tt.wantErr, tt.wantMsg)
			}
			if _, err := e.c.Plan(context.Background(), tt.r); !errors.Is(err, tt.wantErr) {
				t.Errorf("Plan err = %v, want %v", err, tt.wantErr)
			}
			if n := e.generatePosts(); n != 0 {
				t.Errorf("GenerateToken POSTs = %d, want 0", n)
			}
		})
	}

	// Entra refuses the data source's token: a CredentialError naming the
	// resource, and the Power BI token is not held back by it.
	e := newEnv(t)
	if _, err := e.c.Models(context.Background(), TokenRequest{Items: reports(modelsWS, repSSO)}); err != nil {
		t.Fatal(err) // the Power BI token, before the blob's refusal
	}
	e.emu.SetAnswer(emulator.RouteEntraToken, times(1, answer(400, `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named https://database.windows.net/ was not found in the tenant.","error_codes":[500011]}`)))
	r := TokenRequest{Items: reports(modelsWS, repSSO), Models: []ModelGrant{{ID: dsSSO, SSO: true}}}
	_, err := e.c.Issue(context.Background(), r)
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Resource != "https://database.windows.net/" || !strings.Contains(err.Error(), "data source resource https://database.windows.net/") {
		t.Fatalf("err = %v, want a CredentialError for the data source resource", err)
	}
	if err := e.c.CheckCredential(context.Background()); err != nil {
		t.Errorf("the Power BI credential is held back by a data source's refusal: %v", err)
	}
}

// grantsFor is a decision without identity or blob for each id.
func grantsFor(ids ...string) []ModelGrant {
	out := make([]ModelGrant, len(ids))
	for i, id := range ids {
		out[i] = ModelGrant{ID: id}
	}
	return out
}

func wideIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("6d6d6d6d-eeee-4000-8000-%012d", i)
	}
	return ids
}

// wideComposite makes the composite model read n more datasets.
func wideComposite(n int) func(*emulator.Fixture) {
	return func(f *emulator.Fixture) {
		for i := range f.Workspaces {
			ws := &f.Workspaces[i]
			if ws.ID != modelsWS {
				continue
			}
			for _, id := range wideIDs(n) {
				ws.Datasets = append(ws.Datasets, emulator.Dataset{ID: id, Name: id})
			}
			for j := range ws.Datasets {
				if ws.Datasets[j].ID == dsComposite {
					ws.Datasets[j].UpstreamDatasets = append(ws.Datasets[j].UpstreamDatasets, wideIDs(n)...)
				}
			}
		}
	}
}

// addDashboard adds a dashboard with one tile on a dataset of ws.
func addDashboard(ws, id, dataset string) func(*emulator.Fixture) {
	return func(f *emulator.Fixture) {
		for i := range f.Workspaces {
			if f.Workspaces[i].ID == ws {
				f.Workspaces[i].Dashboards = append(f.Workspaces[i].Dashboards, emulator.Dashboard{ID: id, Name: "Targets",
					Tiles: []emulator.Tile{{ID: "6d6d6d6d-dada-4000-8000-0000000000f1", Title: "Targets", DatasetID: dataset}}})
			}
		}
	}
}

// TestPaginatedDatasetLocationIsCached: a paginated report's dataset is
// looked for in the report's workspace, then the tenant's; once found, the
// next token asks nothing.
func TestPaginatedDatasetLocationIsCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTokenCache)
	r := TokenRequest{Items: reports(modelsWS, repStatements), Workspaces: []string{modelsWS, testWS2, testWS},
		Identity: &Identity{Username: "a", Roles: []string{"Customer"}}, Models: grantsFor(dsRLS, repStatements)}
	for range 2 {
		if _, err := e.c.Issue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for _, ws := range []string{modelsWS, testWS2, testWS} {
		if n := e.gets(groupPath(ws, "datasets", dsRLS)); n != 1 {
			t.Errorf("GETs of dataset %s in %s = %d, want 1", dsRLS, ws, n)
		}
	}
	if n := e.calls(emulator.RouteGetReportDatasources); n != 1 {
		t.Errorf("report data sources GETs = %d, want 1", n)
	}
}

// inFlight is a transport that records the most requests it ever had in
// flight at once.
type inFlight struct {
	base     http.RoundTripper
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.base.RoundTrip(r)
}

// TestMetadataLookupsStayUnderTheBulkhead: a composite model reading 60
// datasets is learned with at most a quarter of max_concurrency lookups in
// flight, so that one cold request never fills the per-host bulkhead and
// sheds its own lookups (or other requests').
func TestMetadataLookupsStayUnderTheBulkhead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWorld(wideComposite(60)), withConfig(func(c *Config) { c.MaxConcurrency = 8 }))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.emu.CACertPEM())
	tr := &inFlight{base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := New(e.cfg, WithHTTPClient(&http.Client{Transport: tr}), WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	models, err := c.Models(context.Background(), TokenRequest{Items: reports(modelsWS, repComposite)})
	if err != nil || len(models) != 63 {
		t.Fatalf("Models = %d models, %v", len(models), err)
	}
	if tr.max > 8/4 {
		t.Errorf("%d requests in flight at once, want at most max_concurrency/4 = 2", tr.max)
	}
}
