package emulator

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ds builds a V2 datasets entry.
func ds(id, xmla string) map[string]any { return map[string]any{"id": id, "xmlaPermissions": xmla} }

func reps(ids ...string) []any {
	out := []any{}
	for _, id := range ids {
		out = append(out, map[string]any{"id": id})
	}
	return out
}

func blob(value string) map[string]any { return map[string]any{"value": value} }

// databricks is the datasourceIdentities selector of the demo's Targets
// Model.
func databricksSource(blobValue string) []any {
	return []any{map[string]any{"identityBlob": blobValue, "datasources": []any{map[string]any{
		"datasourceType":    "Extension",
		"connectionDetails": map[string]any{"kind": "Databricks", "path": "adb-1234567890123456.7.azuredatabricks.net;/sql/1.0/warehouses/acme"},
	}}}}
}

// TestModelKinds mints a V2 token for each kind of model in the demo's
// Acme Models workspace, and checks every rule Power BI enforces on it.
func TestModelKinds(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	sqlBlob := resourceToken(t, srv, hc, "https://database.windows.net//.default")
	dbxBlob := resourceToken(t, srv, hc, AudienceDatabricks+"/.default")
	composite := func(xmla ...string) []any {
		return []any{ds(dsComposite, xmla[0]), ds(dsInventory, xmla[1]), ds(dsTargets, xmla[2])}
	}
	tests := []struct {
		name        string
		body        map[string]any
		wantStatus  int
		wantMessage string
		check       func(t *testing.T, info TokenInfo)
	}{
		// Azure Analysis Services: the username is the caller's object id.
		{"AAS, object id and customData", map[string]any{"reports": reps(repAAS), "datasets": []any{ds(dsAAS, "")},
			"identities": []any{map[string]any{"username": demoObject, "customData": "alice@acme.com", "roles": []string{"SalesReader"}, "datasets": []string{dsAAS}}}}, 200, "",
			func(t *testing.T, info TokenInfo) {
				if id := info.Identities[0]; id.Username != demoObject || id.CustomData != "alice@acme.com" {
					t.Errorf("identity %+v", id)
				}
			}},
		{"AAS, the end user as username", map[string]any{"reports": reps(repAAS), "datasets": []any{ds(dsAAS, "")},
			"identities": []any{map[string]any{"username": "alice@acme.com", "datasets": []string{dsAAS}}}}, 400,
			"Creating embed token for accessing dataset " + dsAAS + " requries effective identity username to be identical to the caller's principal name", nil},
		{"AAS, the client id is not the object id", map[string]any{"reports": reps(repAAS), "datasets": []any{ds(dsAAS, "")},
			"identities": []any{map[string]any{"username": demoClient, "datasets": []string{dsAAS}}}}, 400, "identical to the caller's principal name", nil},
		{"AAS, no identity", map[string]any{"reports": reps(repAAS), "datasets": []any{ds(dsAAS, "")}}, 400, "requires effective identity to be provided", nil},

		// SQL Server Analysis Services through a gateway.
		{"SSAS, a user the server knows", map[string]any{"reports": reps(repSSAS), "datasets": []any{ds(dsSSAS, "")},
			"identities": []any{map[string]any{"username": `acme\ALICE`, "datasets": []string{dsSSAS}}}}, 200, "", nil},
		{"SSAS, a user the server does not know", map[string]any{"reports": reps(repSSAS), "datasets": []any{ds(dsSSAS, "")},
			"identities": []any{map[string]any{"username": "mallory@acme.example", "datasets": []string{dsSSAS}}}}, 400, "is not a user of data source AnalysisServices acme-ssas01", nil},
		{"SSAS, customData", map[string]any{"reports": reps(repSSAS), "datasets": []any{ds(dsSSAS, "")},
			"identities": []any{map[string]any{"username": "alice@acme.example", "customData": "x", "datasets": []string{dsSSAS}}}}, 400, "customData", nil},
		{"SSAS, a character on-premises models refuse", map[string]any{"reports": reps(repSSAS), "datasets": []any{ds(dsSSAS, "")},
			"identities": []any{map[string]any{"username": "alice/acme", "datasets": []string{dsSSAS}}}}, 400, "on-premises model", nil},

		// DirectQuery with SSO.
		{"SSO, a blob and a username", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"username": "alice@acme.com", "datasets": []string{dsSSO}, "identityBlob": blob(sqlBlob)}}}, 200, "",
			func(t *testing.T, info TokenInfo) {
				b := info.Identities[0].IdentityBlob
				if !info.Identities[0].HasIdentityBlob || b == nil || !sameResource(b.Audience, AudienceAzureSQL) || b.AppID != demoClient || b.ObjectID != demoObject {
					t.Errorf("identity %+v blob %+v", info.Identities[0], b)
				}
			}},
		{"SSO, the blob in datasourceIdentities", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"username": "alice@acme.com", "datasets": []string{dsSSO}}},
			"datasourceIdentities": []any{map[string]any{"identityBlob": sqlBlob, "datasources": []any{map[string]any{
				"datasourceType": "sql", "connectionDetails": map[string]any{"server": "ACME-ORDERS.database.windows.net", "database": "Orders"}}}}}}, 200, "",
			func(t *testing.T, info TokenInfo) {
				if len(info.DatasourceIdentities) != 1 || info.DatasourceIdentities[0].Datasources[0].Server != "acme-orders.database.windows.net" {
					t.Errorf("datasource identities %+v", info.DatasourceIdentities)
				}
			}},
		{"SSO, no blob", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"username": "alice@acme.com", "datasets": []string{dsSSO}}}}, 400, "requires an identity blob for its single sign-on data source Sql acme-orders.database.windows.net/Orders", nil},
		{"SSO, a blob for Power BI", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": blob(tok)}}}, 400, "not for 'https://database.windows.net/'", nil},
		{"SSO, a blob this Entra ID did not issue", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": blob(sqlBlob[:len(sqlBlob)-4] + "AAAA")}}}, 400, "not an access token issued by this Entra ID", nil},
		{"SSO, a blob without value", map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": map[string]any{}}}}, 400, "identityBlob", nil},
		{"a blob on a dataset without SSO", map[string]any{"reports": reps(repSales), "datasets": []any{ds(dsSales, "")},
			"identities": []any{map[string]any{"username": "a@x.com", "roles": []string{"Customer"}, "datasets": []string{dsSales}, "identityBlob": blob(sqlBlob)}}}, 400, "identityBlob is supported only", nil},
		{"datasourceIdentities naming a source outside the request", map[string]any{"reports": reps(repInventory), "datasets": []any{ds(dsInventory, "")},
			"datasourceIdentities": []any{map[string]any{"identityBlob": sqlBlob, "datasources": []any{map[string]any{
				"datasourceType": "Sql", "connectionDetails": map[string]any{"server": "acme-orders.database.windows.net", "database": "Orders"}}}}}}, 400, "not a single sign-on data source of the request", nil},

		// A composite model: every dataset, each read-only, and the
		// Databricks blob of the upstream model.
		{"composite, all three read-only", map[string]any{"reports": reps(repComposite), "datasets": composite("ReadOnly", "ReadOnly", "ReadOnly"),
			"datasourceIdentities": databricksSource(dbxBlob)}, 200, "",
			func(t *testing.T, info TokenInfo) {
				want := []TokenDataset{
					{ID: dsComposite, XmlaPermissions: "ReadOnly", UpstreamDatasets: []string{dsInventory, dsTargets}},
					{ID: dsInventory, XmlaPermissions: "ReadOnly"},
					{ID: dsTargets, XmlaPermissions: "ReadOnly"},
				}
				if diff := cmp.Diff(want, info.Datasets); diff != "" {
					t.Errorf("datasets (-want +got):\n%s", diff)
				}
				if len(info.DatasourceIdentities) != 1 || info.DatasourceIdentities[0].IdentityBlob.Audience != AudienceDatabricks {
					t.Errorf("datasource identities %+v", info.DatasourceIdentities)
				}
			}},
		{"composite, an upstream dataset left out", map[string]any{"reports": reps(repComposite), "datasets": []any{ds(dsComposite, "ReadOnly"), ds(dsInventory, "ReadOnly")},
			"datasourceIdentities": databricksSource(dbxBlob)}, 400, "reads dataset " + dsTargets + " with DirectQuery, which must be included in datasets", nil},
		{"composite, an upstream dataset not read-only", map[string]any{"reports": reps(repComposite), "datasets": composite("ReadOnly", "Off", "ReadOnly"),
			"datasourceIdentities": databricksSource(dbxBlob)}, 400, "dataset " + dsInventory + " has Off", nil},
		{"composite, itself not read-only", map[string]any{"reports": reps(repComposite), "datasets": composite("", "ReadOnly", "ReadOnly"),
			"datasourceIdentities": databricksSource(dbxBlob)}, 400, "dataset " + dsComposite + " has Off", nil},
		{"composite, no blob for Databricks", map[string]any{"reports": reps(repComposite), "datasets": composite("ReadOnly", "ReadOnly", "ReadOnly")},
			400, "dataset " + dsTargets + " requires an identity blob", nil},
		{"composite, the Azure SQL blob for Databricks", map[string]any{"reports": reps(repComposite), "datasets": composite("ReadOnly", "ReadOnly", "ReadOnly"),
			"datasourceIdentities": databricksSource(sqlBlob)}, 400, "not for '" + AudienceDatabricks + "'", nil},

		// A paginated report on a Power BI dataset (with RLS), as the
		// spec's example: one identity for the dataset, one for the report.
		{"paginated on a dataset", map[string]any{"reports": reps(repStatement), "datasets": []any{ds(dsSales, "ReadOnly")},
			"identities": []any{ident("john@contoso.com", []string{"Customer"}, dsSales), map[string]any{"username": "john@contoso.com", "reports": []string{repStatement}}}}, 200, "",
			func(t *testing.T, info TokenInfo) {
				if len(info.Identities) != 2 || info.Identities[1].Reports[0] != repStatement || info.Datasets[0].XmlaPermissions != "ReadOnly" {
					t.Errorf("grant %+v", info)
				}
			}},
		{"paginated, its dataset left out", map[string]any{"reports": reps(repStatement)}, 400, "reads dataset " + dsSales + ", which must be included in datasets", nil},
		{"paginated, its dataset not read-only", map[string]any{"reports": reps(repStatement), "datasets": []any{ds(dsSales, "Off")},
			"identities": []any{ident("john@contoso.com", []string{"Customer"}, dsSales)}}, 400, "must have xmlaPermissions ReadOnly", nil},
		{"paginated, allowEdit", map[string]any{"reports": []any{map[string]any{"id": repStatement, "allowEdit": true}}, "datasets": []any{ds(dsSales, "ReadOnly")},
			"identities": []any{ident("john@contoso.com", []string{"Customer"}, dsSales)}}, 400, "allowEdit must be false", nil},

		// A Power BI report with a paginated visual.
		{"paginated visual, its report included", map[string]any{"reports": reps(repExecutive, repInvoices), "datasets": []any{ds(dsInventory, "")}}, 200, "", nil},
		{"paginated visual, its report left out", map[string]any{"reports": reps(repExecutive), "datasets": []any{ds(dsInventory, "")}}, 400,
			"showing paginated report " + repInvoices + ", which must be included in reports", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(errorMessage(r), tc.wantMessage) {
					t.Errorf("message %q, want it to contain %q", errorMessage(r), tc.wantMessage)
				}
				if strings.Contains(string(r.raw), sqlBlob) || strings.Contains(string(r.raw), dbxBlob) {
					t.Error("the error echoes a blob")
				}
				return
			}
			info := checkEmbedToken(t, srv, r, KindV2)
			lookup := call(t, hc, "GET", srv.URL()+"/_emulator/tokens/"+info.TokenID, "", nil)
			for _, secret := range []string{sqlBlob, dbxBlob, tok} {
				if strings.Contains(string(lookup.raw), secret) {
					t.Error("token lookup shows a blob")
				}
			}
			if tc.check != nil {
				tc.check(t, info)
			}
		})
	}
}

// TestModelKindsV1 checks what the V1 routes accept for each kind: the
// identity rules apply, and what needs xmlaPermissions or a second report
// needs the V2 call.
func TestModelKindsV1(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	sqlBlob := resourceToken(t, srv, hc, "https://database.windows.net//.default")
	tests := []struct {
		name        string
		report      string
		body        map[string]any
		wantStatus  int
		wantMessage string
	}{
		{"AAS", repAAS, map[string]any{"identities": []any{map[string]any{"username": demoObject, "customData": "alice"}}}, 200, ""},
		{"AAS, the end user as username", repAAS, map[string]any{"identities": []any{map[string]any{"username": "alice"}}}, 400, "requries effective identity username"},
		{"SSO with a blob", repSSO, map[string]any{"identities": []any{map[string]any{"identityBlob": blob(sqlBlob)}}}, 200, ""},
		{"SSO without a blob", repSSO, map[string]any{"identities": []any{map[string]any{"username": "alice"}}}, 400, "requires an identity blob"},
		{"composite", repComposite, map[string]any{}, 400, "multi-resource embed token"},
		{"paginated on a dataset", repStatement, map[string]any{}, 400, "multi-resource embed token"},
		{"paginated visual", repExecutive, map[string]any{}, 400, "paginated report visual"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/groups/"+wsModels+"/reports/"+tc.report+"/GenerateToken", tok, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantStatus == 200 {
				checkEmbedToken(t, srv, r, KindReport)
				return
			}
			if !strings.Contains(errorMessage(r), tc.wantMessage) {
				t.Errorf("message %q, want it to contain %q", errorMessage(r), tc.wantMessage)
			}
		})
	}
}

// TestModelKindsPrincipals: an AAS identity as a profile is the profile's
// id; the SSAS override right belongs to the principal the call acts as
// (a gateway admin has it too).
func TestModelKindsPrincipals(t *testing.T) {
	t.Parallel()
	f := testFixture(t)
	const (
		wsProfile = "a0000000-0000-4000-8000-0000000000f1"
		repP      = "a7000000-0000-4000-8000-0000000000f1"
		dsP       = "d7000000-0000-4000-8000-0000000000f1"
		repAdm    = "a7000000-0000-4000-8000-0000000000f2"
		dsAdm     = "d7000000-0000-4000-8000-0000000000f2"
	)
	f.Workspaces = append(f.Workspaces, Workspace{
		ID: wsProfile, Name: "Profile models", Capacity: CapacityDedicated,
		Access: []Access{{Principal: globexProf, Role: RoleMember}},
		Reports: []Report{
			{ID: repP, Name: "AAS", DatasetID: dsP},
			{ID: repAdm, Name: "SSAS", DatasetID: dsAdm},
		},
		Datasets: []Dataset{
			{ID: dsP, Name: "AAS", IdentityRequired: true, Datasources: []Datasource{{Type: "AnalysisServices", Server: "asazure://x.asazure.windows.net/y", Database: "m"}}},
			{ID: dsAdm, Name: "SSAS", IdentityRequired: true, Datasources: []Datasource{{Type: "AnalysisServices", Server: "ssas", Database: "m",
				Gateway: &GatewayBinding{ID: gatewayID, DatasourceID: newUUID(), Admins: []string{globexProf}, Users: []string{"bob"}}}}},
		},
	})
	// The profile may not use the demo's SSAS source: the right is the
	// app's, and a profile is a principal of its own.
	for i := range f.Workspaces {
		if f.Workspaces[i].ID == wsModels {
			f.Workspaces[i].Access = append(f.Workspaces[i].Access, Access{Principal: globexProf, Role: RoleMember})
		}
	}
	srv := startServer(t, Config{Fixture: f})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	tests := []struct {
		name, dataset, report, username string
		wantStatus                      int
	}{
		{"AAS as the profile: the profile id", dsP, repP, globexProf, 200},
		{"AAS as the profile: not the app's object id", dsP, repP, demoObject, 400},
		{"SSAS as a gateway admin", dsAdm, repAdm, "bob", 200},
		{"SSAS as the profile, the right being the app's", dsSSAS, repSSAS, "bob", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, map[string]any{
				"reports": reps(tc.report), "datasets": []any{ds(tc.dataset, "")},
				"identities": []any{map[string]any{"username": tc.username, "datasets": []string{tc.dataset}}},
			}, "X-PowerBI-Profile-Id", globexProf)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if r.status == 403 && (errorCode(r) != "InsufficientPermissions" || !strings.Contains(errorMessage(r), "ReadOverrideEffectiveIdentity")) {
				t.Errorf("403 body %s", r.raw)
			}
		})
	}
}

// TestExpiredIdentityBlob: a blob past its exp is refused, though the
// Power BI token is fresh.
func TestExpiredIdentityBlob(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := startServer(t, Config{Now: clk.Now})
	hc := httpClient(t, srv)
	sqlBlob := resourceToken(t, srv, hc, "https://database.windows.net//.default")
	clk.Advance(2 * time.Hour)
	tok := entraToken(t, srv, hc)
	body := map[string]any{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
		"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": blob(sqlBlob)}}}
	r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, body)
	if r.status != 400 || !strings.Contains(errorMessage(r), "identityBlob has expired") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if len(srv.tokens.all()) != 0 {
		t.Error("a token was minted")
	}
}

// TestModelMetadata: what a caller reads to learn each kind.
func TestModelMetadata(t *testing.T) {
	t.Parallel()
	srv := shared(t)
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	get := func(path string) response {
		t.Helper()
		r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsModels+path, tok, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
		}
		return r
	}
	datasets := []struct {
		id                    string
		identity, roles, gate bool
		upstream              []any
		sources               string
	}{
		{dsAAS, true, false, false, []any{}, `[{"connectionDetails":{"database":"SalesTabular","server":"asazure://westeurope.asazure.windows.net/acmeaas"},"datasourceType":"AnalysisServices"}]`},
		{dsSSAS, true, false, true, []any{}, `[{"connectionDetails":{"database":"FinanceTabular","server":"acme-ssas01.corp.acme.example"},"datasourceId":"9a7e0000-0000-4000-8000-0000000000d1","datasourceType":"AnalysisServices","gatewayId":"9a7e0000-0000-4000-8000-000000000001"}]`},
		{dsSSO, true, false, false, []any{}, `[{"connectionDetails":{"database":"Orders","server":"acme-orders.database.windows.net"},"datasourceType":"Sql"}]`},
		{dsComposite, false, false, false,
			[]any{map[string]any{"targetDatasetId": dsInventory, "groupId": wsAcme}, map[string]any{"targetDatasetId": dsTargets, "groupId": wsModels}},
			`[{"connectionDetails":{"database":"Inventory Model","server":"powerbi://api.powerbi.com/v1.0/myorg/Acme%20Analytics"},"datasourceType":"AnalysisServices"},` +
				`{"connectionDetails":{"database":"Targets Model","server":"powerbi://api.powerbi.com/v1.0/myorg/Acme%20Models"},"datasourceType":"AnalysisServices"}]`},
	}
	for _, d := range datasets {
		r := get("/datasets/" + d.id)
		b := r.body
		if b["isEffectiveIdentityRequired"] != d.identity || b["isEffectiveIdentityRolesRequired"] != d.roles || b["isOnPremGatewayRequired"] != d.gate {
			t.Errorf("dataset %s: %s", d.id, r.raw)
		}
		if diff := cmp.Diff(d.upstream, b["upstreamDatasets"]); diff != "" {
			t.Errorf("dataset %s upstreamDatasets (-want +got):\n%s", d.id, diff)
		}
		src := get("/datasets/" + d.id + "/datasources")
		got := string(src.raw)
		if !strings.Contains(got, `"value":`+d.sources+"}") || !strings.Contains(got, "$metadata#datasources") {
			t.Errorf("datasources of %s: %s", d.id, got)
		}
	}
	r := get("/reports/" + repStatement + "/datasources")
	if want := `"value":[{"connectionDetails":{"database":"sobe_wowvirtualserver-` + dsSales + `","server":"pbiazure://api.powerbi.com/"},"datasourceType":"AnalysisServices"}]`; !strings.Contains(string(r.raw), want) {
		t.Errorf("paginated report datasources: %s", r.raw)
	}
	if r := get("/reports/" + repStatement); r.body["datasetId"] != nil || r.body["reportType"] != "PaginatedReport" {
		t.Errorf("paginated report: %s", r.raw)
	}
	if r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsModels+"/reports/"+repAAS+"/datasources", tok, nil); r.status != 400 {
		t.Errorf("datasources of a Power BI report: %d %s", r.status, r.raw)
	}
	if r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsFinance+"/datasets/"+dsLedger+"/datasources", tok, nil); r.status != 401 {
		t.Errorf("datasources without a role: %d", r.status)
	}
	if r := call(t, hc, "GET", srv.URL()+"/v1.0/myorg/groups/"+wsModels+"/datasets/"+url.PathEscape("d7000000-0000-4000-8000-0000000000ff")+"/datasources", tok, nil); r.status != 404 {
		t.Errorf("datasources of an unknown dataset: %d", r.status)
	}
}

// TestRecordedBlobsRedacted: what the emulator records of a GenerateToken
// call keeps no identity blob, in identities or datasourceIdentities.
func TestRecordedBlobsRedacted(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	hc := httpClient(t, srv)
	tok := entraToken(t, srv, hc)
	sqlBlob := resourceToken(t, srv, hc, "https://database.windows.net//.default")
	dbxBlob := resourceToken(t, srv, hc, AudienceDatabricks+"/.default")
	for _, body := range []map[string]any{
		{"reports": reps(repSSO), "datasets": []any{ds(dsSSO, "")},
			"identities": []any{map[string]any{"datasets": []string{dsSSO}, "identityBlob": blob(sqlBlob)}}},
		{"reports": reps(repComposite), "datasets": []any{ds(dsComposite, "ReadOnly"), ds(dsInventory, "ReadOnly"), ds(dsTargets, "ReadOnly")},
			"datasourceIdentities": databricksSource(dbxBlob)},
	} {
		if r := call(t, hc, "POST", srv.URL()+"/v1.0/myorg/GenerateToken", tok, body); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	}
	recs := srv.Requests(RouteGenerateToken)
	if len(recs) != 2 {
		t.Fatalf("%d recorded", len(recs))
	}
	for _, rec := range recs {
		if strings.Contains(string(rec.Body), sqlBlob) || strings.Contains(string(rec.Body), dbxBlob) || !strings.Contains(string(rec.Body), redacted) {
			t.Errorf("recorded body %.200s", rec.Body)
		}
	}
}
