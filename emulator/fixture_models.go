package emulator

// Datasource is a data source of a dataset or of a paginated report, as
// Get Datasources reports it (datasourceType and connectionDetails), with
// what decides how Power BI reaches it.
type Datasource struct {
	// Type is the datasourceType: Sql, AnalysisServices, Extension, ...
	Type string `yaml:"type" json:"type"`
	// Server, Database, URL, Path and Kind are the connectionDetails.
	Server   string `yaml:"server" json:"server"`
	Database string `yaml:"database" json:"database"`
	URL      string `yaml:"url" json:"url"`
	Path     string `yaml:"path" json:"path"`
	Kind     string `yaml:"kind" json:"kind"`
	// SSO marks a DirectQuery source with single sign-on: a token must
	// carry an identity blob, an Entra access token for Audience.
	SSO bool `yaml:"sso" json:"sso"`
	// Audience is the resource the identity blob must be issued for.
	// Default: https://database.windows.net/ for Sql, the Azure
	// Databricks application id for Extension sources of kind Databricks.
	Audience string `yaml:"audience" json:"audience"`
	// Gateway binds the source to an on-premises data gateway (SQL Server
	// Analysis Services, or any on-premises source).
	Gateway *GatewayBinding `yaml:"gateway" json:"gateway"`
}

// GatewayBinding is a data source registered on an on-premises data
// gateway, with who may override the effective identity there.
type GatewayBinding struct {
	// ID is the gateway (cluster) id.
	ID string `yaml:"id" json:"id"`
	// DatasourceID is the gateway data source id.
	DatasourceID string `yaml:"datasource_id" json:"datasource_id"`
	// Admins are principals (apps by client or object id, profiles,
	// users) who administer the gateway.
	Admins []string `yaml:"admins" json:"admins"`
	// ReadOverrideEffectiveIdentity are principals given that right on
	// the data source (Gateways - Add Datasource User).
	ReadOverrideEffectiveIdentity []string `yaml:"read_override_effective_identity" json:"read_override_effective_identity"`
	// Users are the usernames the data source knows (for SQL Server
	// Analysis Services, Windows users with a role on the server): the
	// only effective identities it accepts.
	Users []string `yaml:"users" json:"users"`
}
