package emulator

import (
	"strings"
)

// The kinds of model a report can be served from, and what tells them
// apart. Microsoft documents each with a service principal:
//   - imported (or DirectQuery without SSO) models: cloud RLS
//     ("Embed a report with cloud-based RLS");
//   - live connections to Azure Analysis Services: the effective identity
//     is the caller's object id, the end user travels in customData
//     ("Embed a report with an Azure Analysis Services (AAS) database");
//   - live connections to SQL Server Analysis Services through an
//     on-premises gateway: a user the server knows, and the
//     ReadOverrideEffectiveIdentity right on the gateway data source
//     ("Embed a report on an on-premises SQL Server Analysis Services");
//   - DirectQuery with single sign-on: an identity blob, an access token
//     for the data source ("Embed a report with token-based identity (SSO)");
//   - composite models reading other Power BI datasets with DirectQuery:
//     every dataset in the token, XMLA read-only ("Generate an embed
//     token", DirectQuery for Power BI datasets);
//   - paginated reports on Power BI datasets, and Power BI reports with a
//     paginated visual (Embed Token - Generate Token, its examples).
// All of learn.microsoft.com/power-bi/developer/embedded/.

// SSO audiences: the resource an identity blob must be issued for.
const (
	// AudienceAzureSQL is the Azure SQL Database resource.
	AudienceAzureSQL = "https://database.windows.net/"
	// AudienceDatabricks is the application id of Azure Databricks.
	AudienceDatabricks = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
)

// liveKind is the kind of an Analysis Services live connection.
type liveKind int

const (
	notLive  liveKind = iota
	liveAAS           // Azure Analysis Services
	liveSSAS          // SQL Server Analysis Services through a gateway
)

func (d *Datasource) analysisServices() bool { return strings.EqualFold(d.Type, "AnalysisServices") }

// azureAS reports whether the server is an Azure Analysis Services one.
func (d *Datasource) azureAS() bool {
	return strings.HasPrefix(strings.ToLower(d.Server), "asazure://")
}

// audience is the resource an SSO token for the source must be issued
// for ("" when the emulator knows none and the fixture gives none).
func (d *Datasource) audience() string {
	switch {
	case d.Audience != "":
		return d.Audience
	case strings.EqualFold(d.Type, "Sql"):
		return AudienceAzureSQL
	case strings.EqualFold(d.Type, "Extension") && strings.EqualFold(d.Kind, "Databricks"):
		return AudienceDatabricks
	}
	return ""
}

// label names a data source in messages: its type and where it is.
func (d *Datasource) label() string {
	where := d.Server
	if d.Database != "" {
		where += "/" + d.Database
	}
	for _, s := range []string{d.URL, d.Path} {
		if where == "" {
			where = s
		}
	}
	return d.Type + " " + where
}

// live says whether the dataset is a live connection to Analysis
// Services, and which: its one data source is an Analysis Services
// server, in Azure or behind a gateway.
func (ds *Dataset) live() (liveKind, *Datasource) {
	if len(ds.Datasources) != 1 || len(ds.UpstreamDatasets) > 0 || !ds.Datasources[0].analysisServices() {
		return notLive, nil
	}
	src := &ds.Datasources[0]
	if src.Gateway != nil {
		return liveSSAS, src
	}
	return liveAAS, src
}

// ssoSources are the data sources that need an identity blob.
func ssoSources(list []Datasource) []*Datasource {
	var out []*Datasource
	for i := range list {
		if list[i].SSO {
			out = append(out, &list[i])
		}
	}
	return out
}

// onPremGateway reports whether any source goes through a gateway
// (isOnPremGatewayRequired).
func (ds *Dataset) onPremGateway() bool {
	for _, src := range ds.Datasources {
		if src.Gateway != nil {
			return true
		}
	}
	return false
}

// upstreamClosure is every dataset ds reads through DirectQuery, directly
// or through another composite model, each once.
func (w *world) upstreamClosure(ds *Dataset) []*Dataset {
	var out []*Dataset
	seen := map[*Dataset]bool{ds: true}
	var walk func(*Dataset)
	walk = func(d *Dataset) {
		for _, id := range d.UpstreamDatasets {
			p, ok := w.datasets[strings.ToLower(id)]
			if !ok || seen[p.item] {
				continue
			}
			seen[p.item] = true
			out = append(out, p.item)
			walk(p.item)
		}
	}
	walk(ds)
	return out
}

// onPremUsernameOK applies the schema's rule for on-premises models: the
// username holds only letters, digits and . - _ ! # ^ ~ \ @.
func onPremUsernameOK(name string) bool {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(`.-_!#^~\@`, r):
		default:
			return false
		}
	}
	return true
}
