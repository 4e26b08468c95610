package authz

import "time"

// policyFile is the policy file as written: one struct tree, strictly decoded
// (internal/yamlfile). Its yaml keys are the file format's contract: extend beside
// them, never rename.
type policyFile struct {
	// Callers are the services allowed to ask for tokens, by SPIFFE ID.
	Callers []*callerFile `yaml:"callers"`
	// Tenants are the customers tokens are minted for, by tenant key.
	Tenants map[string]*tenantFile `yaml:"tenants"`
}

// callerFile grants one calling service a set of tenants.
type callerFile struct {
	// ID is the caller's exact SPIFFE ID (the URI SAN of its client certificate).
	ID string `yaml:"id"`
	// Tenants are the tenant keys the caller may act for, or ["*"] for all of them.
	Tenants []string `yaml:"tenants"`
	// RateLimit optionally bounds how fast this caller may ask; nil = unlimited.
	RateLimit *rateLimitFile `yaml:"rate_limit"`
	// Admin lets the caller ask ExplainEmbedToken on behalf of any other
	// caller (as_caller): an operator's tool. It grants no token; a caller
	// that is only an admin lists no tenants.
	Admin bool `yaml:"admin"`
	// UserOwnsData lets the caller embed for end users with their own Power
	// BI access (user.go); nil = not at all.
	UserOwnsData *userOwnsDataFile `yaml:"user_owns_data"`
}

// rateLimitFile is a token bucket, as golang.org/x/time/rate takes it.
type rateLimitFile struct {
	// PerSecond is the refill rate; must be > 0.
	PerSecond float64 `yaml:"per_second"`
	// Burst is the bucket size; must be >= 1.
	Burst int `yaml:"burst"`
}

// tenantFile is what one tenant gets.
type tenantFile struct {
	// WorkspaceID is the tenant's Power BI workspace (required uuid).
	WorkspaceID string `yaml:"workspace_id"`
	// ProfileID is the optional service-principal profile (X-PowerBI-Profile-Id).
	ProfileID string `yaml:"profile_id"`
	// Reports are the report uuids of the workspace the tenant may embed, or ["*"] to
	// leave the choice to Power BI (any report of the workspace).
	Reports []string `yaml:"reports"`
	// Dashboards are the dashboard uuids of the workspace the tenant may embed (with
	// their tiles), or ["*"]; nil = none.
	Dashboards []string `yaml:"dashboards"`
	// Workspaces are the tenant's additional workspaces, each with explicit items.
	Workspaces []*workspaceFile `yaml:"workspaces"`
	// RLS is the effective identity to send; nil = none.
	RLS *rlsFile `yaml:"rls"`
	// SSO lists the datasets (and paginated reports) whose single sign-on
	// data sources get an identity blob, acquired by Embedgate's service
	// principal, or ["*"] for all of them; nil = none.
	SSO []string `yaml:"sso"`
	// AllowEdit lets callers request edit tokens for this tenant.
	AllowEdit bool `yaml:"allow_edit"`
	// AllowCreate lets callers request tokens that may create and save-as reports.
	AllowCreate bool `yaml:"allow_create"`
	// CreateWorkspaceID is where created reports go (the token's targetWorkspaces);
	// "" = WorkspaceID. It must be one of the tenant's workspaces.
	CreateWorkspaceID string `yaml:"create_workspace_id"`
	// MaxLifetime caps a token's lifetime; nil = DefaultMaxLifetime.
	MaxLifetime *time.Duration `yaml:"max_lifetime"`
	// DefaultLifetime is used when a request names no lifetime; nil = MaxLifetime.
	DefaultLifetime *time.Duration `yaml:"default_lifetime"`
}

// workspaceFile is one of a tenant's additional workspaces. Its items are listed
// explicitly ("*" is not allowed): a requested id must resolve to exactly one workspace.
type workspaceFile struct {
	// ID is the workspace's uuid.
	ID string `yaml:"id"`
	// Reports are report uuids of this workspace the tenant may embed.
	Reports []string `yaml:"reports"`
	// Dashboards are dashboard uuids of this workspace the tenant may embed.
	Dashboards []string `yaml:"dashboards"`
}

// rlsFile is a tenant's row-level-security identity.
type rlsFile struct {
	// Roles are the RLS roles applied, always the policy's, never the caller's.
	Roles []string `yaml:"roles"`
	// DatasetRoles override Roles for some datasets: dataset uuid -> roles.
	DatasetRoles map[string][]string `yaml:"dataset_roles"`
	// Username is a template over {tenant} and {user}, or ServicePrincipal; nil =
	// DefaultUsernameTemplate.
	Username *string `yaml:"username"`
	// CustomData is an optional template over {tenant} and {user} (Power BI's
	// customData, read by CUSTOMDATA() in the model).
	CustomData string `yaml:"custom_data"`
	// WithoutRLS lists the reports or datasets (uuids) of this tenant that carry no
	// row-level security on purpose: they are embedded without an identity. Any other
	// dataset that enforces no RLS is refused (RLS fails closed).
	WithoutRLS []string `yaml:"without_rls"`
	// Datasets replace the identity for some datasets, where one tenant mixes kinds
	// of model: dataset uuid -> username, custom_data, roles.
	Datasets map[string]*datasetIdentityFile `yaml:"datasets"`
}

// datasetIdentityFile is the identity of one dataset; an absent key keeps the rls
// block's.
type datasetIdentityFile struct {
	// Username is a template over {tenant} and {user}, or ServicePrincipal.
	Username *string `yaml:"username"`
	// CustomData is a template over {tenant} and {user}; "" sends none.
	CustomData *string `yaml:"custom_data"`
	// Roles are its roles; [] sends none.
	Roles []string `yaml:"roles"`
}
