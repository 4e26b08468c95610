package emulator

// User is a user account of a tenant.
type User struct {
	// UPN is the user principal name (what the user types to sign in).
	UPN string `yaml:"upn" json:"upn"`
	// ObjectID is the user's object id (the oid claim).
	ObjectID string `yaml:"object_id" json:"object_id"`
	// Name is the display name.
	Name string `yaml:"name" json:"name"`
	// Password lets the user sign in with the password grant (ROPC);
	// empty, the user cannot.
	Password string `yaml:"password" json:"password"`
	// License is the user's Power BI licence: free (the default), pro or
	// ppu (Premium Per User).
	License string `yaml:"license" json:"license"`
	// MyWorkspace holds the user's own content ("My workspace").
	MyWorkspace *MyWorkspace `yaml:"my_workspace" json:"my_workspace"`
}

// Power BI licences (User.License).
const (
	LicenseFree = "free"
	LicensePro  = "pro"
	LicensePPU  = "ppu"
)

// MyWorkspace is a user's personal workspace: reached without a group
// (GET /v1.0/myorg/reports), never embeddable with an embed token.
type MyWorkspace struct {
	// Reports are the user's own reports.
	Reports []Report `yaml:"reports" json:"reports"`
	// Datasets are the user's own datasets.
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
}

// ExposedAPI is a web API an app registration exposes.
type ExposedAPI struct {
	// IdentifierURI is the Application ID URI (default api://<client id>).
	IdentifierURI string `yaml:"identifier_uri" json:"identifier_uri"`
	// Scopes are the delegated scopes it defines, such as access_as_user.
	Scopes []string `yaml:"scopes" json:"scopes"`
	// AccessTokenVersion is accessTokenAcceptedVersion: 1 (the default, as
	// Entra issues for a null value) or 2.
	AccessTokenVersion int `yaml:"access_token_version" json:"access_token_version"`
}

// ConditionalAccessPolicy requires multifactor authentication for some
// users signing in to some resources.
type ConditionalAccessPolicy struct {
	// ID is the policy id, named in the claims challenge.
	ID string `yaml:"id" json:"id"`
	// Name is a label, for humans.
	Name string `yaml:"name" json:"name"`
	// Users are the users it applies to (UPN or object id); empty means
	// every user.
	Users []string `yaml:"users" json:"users"`
	// Resources are the resources (audiences, such as
	// https://analysis.windows.net/powerbi/api) it protects; empty means
	// every resource.
	Resources []string `yaml:"resources" json:"resources"`
}
