package emulator

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Fixture is the emulated world: the Entra tenants with their service
// principals, and the Power BI workspaces with their content. See README.md
// for the file format.
type Fixture struct {
	Tenants    []Tenant    `yaml:"tenants" json:"tenants"`
	Workspaces []Workspace `yaml:"workspaces" json:"workspaces"`
}

// Tenant is an Entra ID tenant (directory), which is also the Power BI
// tenant of its service principals: its admin settings apply to them.
type Tenant struct {
	// ID is the tenant GUID.
	ID string `yaml:"id" json:"id"`
	// Domains are extra names the tenant answers to in Entra URLs, such as
	// contoso.onmicrosoft.com.
	Domains []string `yaml:"domains" json:"domains"`
	// Apps are the service principals registered in the tenant.
	Apps []App `yaml:"apps" json:"apps"`
	// ServicePrincipals is the Power BI admin setting "Service principals
	// can use Fabric APIs" (formerly "Allow service principals to use
	// Power BI APIs"). Nil means enabled for the entire organization.
	ServicePrincipals *ServicePrincipalSetting `yaml:"service_principals" json:"service_principals"`
	// Users are the tenant's user accounts (work accounts that sign in
	// with the device code or password grant, and Power BI users).
	Users []User `yaml:"users" json:"users"`
	// ConditionalAccess are the tenant's Conditional Access policies,
	// each requiring multifactor authentication.
	ConditionalAccess []ConditionalAccessPolicy `yaml:"conditional_access" json:"conditional_access"`
	// DeviceCodeInterval is the polling interval, in seconds, the device
	// code endpoint answers (0 means DefaultDeviceCodeInterval).
	DeviceCodeInterval int `yaml:"device_code_interval" json:"device_code_interval"`
	// TrialTokenLimit is how many embed tokens each principal of the
	// tenant (an app, or one of its profiles) may generate for workspaces
	// on shared capacity; Microsoft documents no number. 0 means
	// DefaultTrialTokenLimit.
	TrialTokenLimit int `yaml:"trial_token_limit" json:"trial_token_limit"`
}

// ServicePrincipalSetting is the tenant setting that lets service
// principals call the Power BI REST APIs, as the admin portal offers it:
// on or off, for the entire organization or specific security groups,
// except some groups.
type ServicePrincipalSetting struct {
	// Enabled turns the setting on; required.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// SecurityGroups, if set, limits the setting to apps in one of these
	// groups (App.SecurityGroups).
	SecurityGroups []string `yaml:"security_groups" json:"security_groups"`
	// ExceptSecurityGroups refuses apps in any of these groups.
	ExceptSecurityGroups []string `yaml:"except_security_groups" json:"except_security_groups"`
}

// App is an app registration with its service principal.
type App struct {
	// ClientID is the application (client) id.
	ClientID string `yaml:"client_id" json:"client_id"`
	// ObjectID is the service principal's object id (the oid claim).
	ObjectID string `yaml:"object_id" json:"object_id"`
	// Name is a display name, for humans.
	Name string `yaml:"name" json:"name"`
	// Secrets are the client secrets: a string, or {value, expires} for a
	// secret with an expiry.
	Secrets []Secret `yaml:"secrets" json:"secrets"`
	// Certificates are PEM certificates (inline PEM text) whose keys may
	// sign a client_assertion.
	Certificates []string `yaml:"certificates" json:"certificates"`
	// FederatedCredentials are the federated identity credentials: tokens
	// of another issuer (Kubernetes, GitHub) the app accepts as
	// client_assertion.
	FederatedCredentials []FederatedCredential `yaml:"federated_credentials" json:"federated_credentials"`
	// Profiles are the app's service-principal profiles: principals of
	// their own in Power BI, usable only by this app.
	Profiles []Profile `yaml:"profiles" json:"profiles"`
	// SecurityGroups are the Entra security groups the service principal
	// is in, for the tenant's ServicePrincipals setting.
	SecurityGroups []string `yaml:"security_groups" json:"security_groups"`
	// PublicClient marks a public client ("Allow public client flows"):
	// it uses the device code and password grants without a credential,
	// and may not present one.
	PublicClient bool `yaml:"public_client" json:"public_client"`
	// API is the web API the app exposes ("Expose an API"), for which
	// users get access tokens and which may redeem them on behalf of the
	// user.
	API *ExposedAPI `yaml:"api" json:"api"`
	// AdminConsent says an administrator consented to the app's delegated
	// permissions for every user of the tenant.
	AdminConsent bool `yaml:"admin_consent" json:"admin_consent"`
	// ConsentedUsers are the users (UPN or object id) who consented to
	// the app themselves. Approving a device code adds the user.
	ConsentedUsers []string `yaml:"consented_users" json:"consented_users"`
}

// Secret is a client secret and, if set, when it expires.
type Secret struct {
	// Value is the secret value (what a client sends).
	Value string `yaml:"value" json:"value"`
	// Expires is the end of its validity (zero: never).
	Expires time.Time `yaml:"expires" json:"expires"`
}

// UnmarshalYAML reads a secret written as a plain string or as
// {value, expires}.
func (s *Secret) UnmarshalYAML(unmarshal func(any) error) error {
	var value string
	if err := unmarshal(&value); err == nil {
		*s = Secret{Value: value}
		return nil
	}
	type plain Secret
	return unmarshal((*plain)(s))
}

// FederatedCredential is a federated identity credential: Entra accepts a
// client_assertion whose iss, sub and aud match, signed by SigningKey.
type FederatedCredential struct {
	// Name is a label, for humans.
	Name string `yaml:"name" json:"name"`
	// Issuer is the token issuer (iss), matched exactly.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Subject is the token subject (sub), matched exactly.
	Subject string `yaml:"subject" json:"subject"`
	// Audiences are the accepted aud values (default
	// api://AzureADTokenExchange).
	Audiences []string `yaml:"audiences" json:"audiences"`
	// SigningKey is the issuer's key, a PEM CERTIFICATE or PUBLIC KEY (RSA
	// or ECDSA P-256): where real Entra reads the issuer's JWKS, the
	// emulator, offline, is given the key.
	SigningKey string `yaml:"signing_key" json:"signing_key"`
}

// Profile is a service-principal profile (X-PowerBI-Profile-Id).
type Profile struct {
	// ID is the profile id.
	ID string `yaml:"id" json:"id"`
	// Name is its display name.
	Name string `yaml:"name" json:"name"`
}

// Capacity values of Workspace.Capacity.
const (
	// CapacityDedicated is an Embedded, Premium or Fabric capacity: embed
	// tokens without limit.
	CapacityDedicated = "dedicated"
	// CapacityShared is shared capacity: embed tokens count against the
	// principal's trial limit.
	CapacityShared = "shared"
)

// Role is a workspace role.
type Role string

// The workspace roles, from most to least powerful.
const (
	RoleAdmin       Role = "Admin"
	RoleMember      Role = "Member"
	RoleContributor Role = "Contributor"
	RoleViewer      Role = "Viewer"
)

// Workspace is a Power BI workspace (group).
type Workspace struct {
	// ID is the workspace (group) id.
	ID string `yaml:"id" json:"id"`
	// Name is the workspace name.
	Name string `yaml:"name" json:"name"`
	// Capacity is CapacityDedicated (the default) or CapacityShared.
	Capacity string `yaml:"capacity" json:"capacity"`
	// Access gives principals (apps, by client or object id, profiles,
	// and users, by UPN or object id) their role in the workspace.
	Access []Access `yaml:"access" json:"access"`
	// Members are client ids of apps with the Member role (the format
	// before Access; the two add up).
	Members []string `yaml:"members" json:"members"`
	// Profiles is the format before Access and App.Profiles: when set,
	// these profiles (owned by the Members apps unless an app declares
	// them) have the Member role instead of the Members themselves.
	// Cannot be combined with Access.
	Profiles []string `yaml:"profiles" json:"profiles"`
	// Reports are the workspace's reports.
	Reports []Report `yaml:"reports" json:"reports"`
	// Datasets are the workspace's datasets (semantic models).
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
	// Dashboards are the workspace's dashboards.
	Dashboards []Dashboard `yaml:"dashboards" json:"dashboards"`
}

// Access is one principal's role in a workspace.
type Access struct {
	// Principal is an app's client id or object id, a profile id, or a
	// user's UPN or object id.
	Principal string `yaml:"principal" json:"principal"`
	// Role is Admin, Member, Contributor or Viewer.
	Role Role `yaml:"role" json:"role"`
}

// Report is a Power BI report or, with Paginated, a paginated (RDL) report.
type Report struct {
	// ID is the report id.
	ID string `yaml:"id" json:"id"`
	// Name is the report name.
	Name string `yaml:"name" json:"name"`
	// DatasetID is the dataset the report reads; empty for paginated
	// reports. The dataset may live in another workspace.
	DatasetID string `yaml:"dataset_id" json:"dataset_id"`
	// Paginated marks an RDL report.
	Paginated bool `yaml:"paginated" json:"paginated"`
	// Datasets are, for a paginated report, the Power BI datasets it
	// reads as data sources (there may be several; Get Report does not
	// name them, its datasources do).
	Datasets []string `yaml:"datasets" json:"datasets"`
	// Datasources are, for a paginated report, its own data sources
	// (Reports - Get Datasources In Group).
	Datasources []Datasource `yaml:"datasources" json:"datasources"`
	// PaginatedVisuals are, for a Power BI report, the paginated reports
	// its paginated report visuals show. No REST call exposes them: it is
	// knowledge of the fixture only.
	PaginatedVisuals []string `yaml:"paginated_visuals" json:"paginated_visuals"`
}

// Dataset is a Power BI dataset (semantic model) with its RLS settings.
type Dataset struct {
	// ID is the dataset id.
	ID string `yaml:"id" json:"id"`
	// Name is the dataset name.
	Name string `yaml:"name" json:"name"`
	// IdentityRequired is isEffectiveIdentityRequired: the model has RLS
	// and a service principal must send an effective identity for it.
	IdentityRequired bool `yaml:"identity_required" json:"identity_required"`
	// RolesRequired is isEffectiveIdentityRolesRequired: the identity must
	// name at least one role.
	RolesRequired bool `yaml:"roles_required" json:"roles_required"`
	// Roles are the RLS roles defined on the model (for a live
	// connection, the roles of the Analysis Services model).
	Roles []string `yaml:"roles" json:"roles"`
	// Datasources are where the model reads its data (Datasets - Get
	// Datasources In Group). They make its kind: a single Analysis
	// Services source is a live connection (Azure Analysis Services, or
	// SQL Server Analysis Services through a gateway); a source with sso
	// is DirectQuery with single sign-on. None is an imported model.
	Datasources []Datasource `yaml:"datasources" json:"datasources"`
	// UpstreamDatasets are the Power BI datasets this composite model
	// reads with DirectQuery (Get Dataset's upstreamDatasets).
	UpstreamDatasets []string `yaml:"upstream_datasets" json:"upstream_datasets"`
}

// Dashboard is a Power BI dashboard.
type Dashboard struct {
	// ID is the dashboard id.
	ID string `yaml:"id" json:"id"`
	// Name is the dashboard's display name.
	Name string `yaml:"name" json:"name"`
	// Tiles are the dashboard's tiles.
	Tiles []Tile `yaml:"tiles" json:"tiles"`
}

// Tile is a dashboard tile.
type Tile struct {
	// ID is the tile id.
	ID string `yaml:"id" json:"id"`
	// Title is the tile title.
	Title string `yaml:"title" json:"title"`
	// ReportID is the report the tile was pinned from (optional).
	ReportID string `yaml:"report_id" json:"report_id"`
	// DatasetID is the dataset the tile reads (optional).
	DatasetID string `yaml:"dataset_id" json:"dataset_id"`
}

//go:embed demo.yaml
var demoYAML []byte

// DemoFixture returns a fresh copy of the built-in demo fixture
// (emulator/demo.yaml), the world dev mode runs against.
func DemoFixture() *Fixture {
	f, err := ParseFixture(demoYAML)
	if err != nil {
		panic("emulator: demo.yaml is invalid: " + err.Error())
	}
	return f
}

// LoadFixture reads and validates a fixture file (YAML or JSON).
func LoadFixture(path string) (*Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emulator: read fixture: %w", err)
	}
	f, err := ParseFixture(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFixture decodes a fixture strictly (unknown keys are errors) and
// validates it. A validation failure is a *FixtureError listing every
// problem.
func ParseFixture(data []byte) (*Fixture, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FixtureError{Problems: []string{"fixture is empty"}}
		}
		return nil, fmt.Errorf("emulator: decode fixture: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// FixtureError lists every problem found in a fixture, each prefixed with
// the key it concerns (for example "workspaces[1].reports[0].dataset_id").
type FixtureError struct {
	Problems []string
}

// Error implements error.
func (e *FixtureError) Error() string {
	return "emulator: invalid fixture:\n  " + strings.Join(e.Problems, "\n  ")
}

// parseCertPEM returns the first certificate of a PEM text.
func parseCertPEM(text string) (*x509.Certificate, error) {
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
