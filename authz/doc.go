// Package authz is Embedgate's policy decision point: which caller (an mTLS-authenticated
// SPIFFE ID) may act for which tenant, and what each tenant gets (workspaces, reports,
// dashboards and their tiles, service-principal profile, RLS identity, edit, create,
// token lifetime).
//
// It makes pure decisions: no network, no Power BI, no clock. The only I/O is loading
// the policy file and reloading it when it changes (Store), so every decision is a
// table test and the server keeps the mapping from denials to gRPC codes in one place.
//
// # Decisions
//
// Deny by default: a caller must be listed, the tenant must be granted to it, every
// requested item must be the tenant's, edit and create must be allowed by the tenant.
// A denial is a *Denial wrapping one of the Err* sentinels. An unknown tenant and a
// tenant not granted to the caller produce the same error and the same message, and an
// item outside the tenant's lists is never said to exist elsewhere, so a caller cannot
// probe the policy. Callers, tenant keys and templates are matched exactly; only uuids
// (workspace, profile, report, dashboard, tile and dataset ids) are compared
// case-insensitively, and are returned in lower case.
//
// # Items by kind
//
// A Request names items, each of a Kind (a report, a dashboard, a tile of a dashboard).
// One token embeds 1..MaxReportIDs reports, or exactly one dashboard, or exactly one
// tile: that is how Power BI mints them. Adding a kind is one case in Kind (its
// request field and its policy list) and one in Decide's resolution.
//
// # Workspaces and items
//
// A tenant has a primary workspace (workspace_id) and optional additional ones
// (workspaces). Each report and dashboard id maps to exactly one of them: an id listed
// in a workspace's reports or dashboards lives there, and an id listed nowhere lives in
// the primary workspace when the primary list is "*" ("*" is allowed there only). So
// a report id appears at most once in a tenant, and a Grant names each item's
// workspace: one token may span several workspaces.
//
// A granted dashboard grants its tiles (the policy cannot know which they are): the
// gateway must address a tile under its dashboard, so that Power BI itself refuses a
// tile of another dashboard. Edit and create are for reports only (Power BI embeds
// dashboards and tiles for viewing). A create request (allow_create) gets
// Grant.TargetWorkspaceIDs: the tenant's create_workspace_id, or its primary workspace.
//
// # Lifetimes
//
// A request with no lifetime (0) gets the tenant's default_lifetime (max_lifetime when
// none is set). A request for more than max_lifetime is CLAMPED to max_lifetime rather
// than refused, and Grant.LifetimeClamped is set so the server can log and audit it:
// Power BI itself only ever shortens lifetimes and the response carries the real
// expiry, so a caller must already cope with a shorter token than it asked for.
// Lifetimes are truncated to whole minutes (Power BI counts in minutes); a positive
// request under MinLifetime, or a negative one, is an invalid request.
//
// # RLS identity
//
// When a tenant has an rls block, the effective identity is built from it: the roles
// are the policy's (callers never choose roles), and the username and custom_data are
// templates over {tenant} and {user}. dataset_roles replaces the default roles for the
// datasets it names (Identity.DatasetRoles); every other dataset gets the default
// roles. Expansion is single-pass (strings.Replacer): a user string containing
// "{tenant}" or "{user}" is taken literally and never re-expanded. Only those two
// placeholders exist; any other brace in a template is a validation problem.
//
// RLS fails closed: a tenant with an rls block expects every dataset it is served
// from to enforce row-level security. The gateway refuses a dataset that, per Power
// BI, enforces none, unless the policy lists the report or the dataset in
// rls.without_rls (Identity.WithoutRLS): a model republished without its roles would
// otherwise show every row to every tenant.
//
// # Kinds of model
//
// Who the user is depends on the kind of model a dataset is, which the gateway learns
// from Power BI; Grant.Models decides for each dataset a token opens (see models.go),
// from three additions to the policy: the username service_principal (Embedgate's
// service principal's object id, or its profile's: what Power BI requires for a live
// connection to Azure Analysis Services, the end user then travelling in custom_data);
// rls.datasets, the username, custom_data and roles of one dataset, where one tenant
// mixes kinds; and sso, the datasets whose single sign-on data sources get an identity
// blob (an access token the service principal acquires; never the caller's). A policy
// that does not fit a dataset's kind is refused with ErrIdentityKind or
// ErrSSONotApplicable, and a dataset that a composite model or a paginated report reads
// outside the tenant's workspaces with ErrDatasetNotAllowed: never silently granted.
//
// # User owns data
//
// A caller may also embed for end users with their own Power BI access ("embed for
// your organization"): it holds a user's Entra access token, and Power BI applies
// the user's own rights. Its user_owns_data block says for users of which Entra
// tenants and from which workspaces; DecideUser checks the caller, the request and
// the workspace, UserGrant.CheckEntraTenant the user's tenant, each refusal a
// *Denial wrapping ErrUserEmbeddingNotAllowed (ErrUnknownCaller for a caller the
// policy does not list). user_owns_data grants no tenant, and tenants grant no
// user embedding.
//
// # File format
//
//	callers:
//	  - id: spiffe://mesh.example/ns/web/sa/frontend   # exact SPIFFE ID
//	    tenants: ["*"]                # or tenant keys; "*" only as the sole entry;
//	                                  # may be omitted when user_owns_data is set
//	    rate_limit:                   # optional token bucket for this caller
//	      per_second: 10              # > 0
//	      burst: 20                   # >= 1
//	    user_owns_data:               # optional: GenerateUserEmbedConfig
//	      entra_tenants: [<uuid>, ...]   # users of these Entra tenants (at least one)
//	      workspaces: ["*"]           # or workspace uuids; "*" only as the sole entry
//	tenants:
//	  acme:                           # ^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$
//	    workspace_id: 11111111-1111-1111-1111-111111111111   # required uuid
//	    profile_id: ""                # optional uuid (X-PowerBI-Profile-Id)
//	    reports: ["*"]                # or report uuids; "*" only as the sole entry;
//	                                  # may be omitted if the tenant grants other items
//	    dashboards: ["*"]             # optional: dashboards (and their tiles); as reports
//	    workspaces:                   # optional additional workspaces
//	      - id: 22222222-2222-2222-2222-222222222222   # uuid; once per tenant
//	        reports: [<uuid>, ...]    # explicit ids only, no "*"
//	        dashboards: [<uuid>, ...] # explicit ids only, no "*"
//	    rls:                          # optional; absent = no effective identity
//	      roles: [Customer]           # 1..50 roles, each 1..50 chars, no ','
//	      username: "{user}"          # default "{user}"; service_principal for AAS
//	      custom_data: "{tenant}"     # optional
//	      dataset_roles:              # optional: dataset uuid -> roles (same rules)
//	        33333333-3333-3333-3333-333333333333: [Region, Customer]
//	      without_rls: [<uuid>, ...]  # optional: reports or datasets that carry no RLS
//	      datasets:                   # optional: dataset uuid -> its own identity; each
//	        44444444-4444-4444-4444-444444444444:   # key it leaves out is the block's
//	          username: service_principal           # or a template, as username
//	          custom_data: "{user}"                 # "" for none
//	          roles: [SalesReader]                  # [] for none
//	    sso: ["*"]                    # optional: datasets (or paginated reports) whose
//	                                  # single sign-on sources get an identity blob, or "*"
//	    allow_edit: false
//	    allow_create: false           # create / save-as report tokens
//	    create_workspace_id: ""       # optional, needs allow_create: where created
//	                                  # reports go; default workspace_id; must be
//	                                  # workspace_id or one of workspaces[].id
//	    max_lifetime: 60m             # default 60m; 1m..24h; whole minutes
//	    default_lifetime: 30m         # optional; <= max_lifetime
//
// Decoding is strict (unknown and duplicate keys and wrong types are problems, see
// internal/yamlfile) and validation reports every problem at once, each with its key
// (see ValidationError). A report or dashboard id listed twice anywhere in a tenant, or
// a workspace id listed twice, is a problem, and so is an additional workspace that
// grants nothing (unless it is the create workspace). An empty policy is valid and
// denies everything.
//
// # Reload
//
// Store holds the active *Policy behind an atomic pointer and swaps it when the file
// changes (Kubernetes ConfigMap symlink swaps, editors' rename-over and plain writes
// all count). A file that fails validation is logged with every problem and never
// replaces the policy being served.
package authz
