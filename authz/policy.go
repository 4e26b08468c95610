package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// Defaults and limits of the policy file and of requests, named so that documentation,
// validation messages and tests agree. The API's protovalidate rules repeat the
// request limits; a test keeps the two in step.
const (
	// DefaultMaxLifetime is a tenant's max_lifetime when the file names none: Power BI's
	// own default embed-token lifetime.
	DefaultMaxLifetime = 60 * time.Minute
	// MinLifetime is the shortest lifetime a tenant may configure or a request may ask
	// for: Power BI counts token lifetimes in whole minutes.
	MinLifetime = time.Minute
	// MaxLifetime is the longest max_lifetime a tenant may configure. Longer-lived
	// tokens outlive the RLS and access decisions they encode by too much.
	MaxLifetime = 24 * time.Hour
	// DefaultUsernameTemplate is an rls block's username when the file names none: the
	// end user, as the caller reported it.
	DefaultUsernameTemplate = "{user}"
	// MaxRoles is the most roles one rls block may list.
	MaxRoles = 50
	// MaxRoleLength is the longest role name, in characters.
	MaxRoleLength = 50
	// MaxUsernameLength is the longest effective-identity username Power BI accepts,
	// in characters; it also bounds the user string of a request.
	MaxUsernameLength = 256
	// MaxReportIDs is the most reports one request may name: Power BI's limit for one
	// GenerateToken call.
	MaxReportIDs = 50
	// Wildcard, as the sole entry of a caller's tenants, of a tenant's reports or
	// dashboards (primary workspace only) or of its sso list, grants all of them.
	Wildcard = "*"
	// ServicePrincipal, as an rls username, is Embedgate's service principal's object
	// id (or, for a tenant with a profile, the profile's): the username Power BI
	// requires for a live connection to Azure Analysis Services, where the end user
	// travels in custom_data.
	ServicePrincipal = "service_principal"
)

// TenantKeyPattern is the shape of a tenant key: DNS-label-like, so keys are safe in
// logs, metrics labels and URLs.
var TenantKeyPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// UserPattern is the shape of a request's end user (besides being valid UTF-8 of at
// most MaxUsernameLength characters): no whitespace or other separator (Unicode Z),
// no control, format (invisible and bidi characters such as U+200B, U+202E, U+FEFF),
// private-use or surrogate character (Unicode C). The user becomes an RLS username,
// customData and an audit field: what it shows must be what it is.
var UserPattern = regexp.MustCompile(`^[^\p{Z}\p{C}]+$`)

// Policy is a parsed, fully validated, immutable policy. It is safe for concurrent use;
// a new file makes a new Policy (see Store), it never mutates one.
type Policy struct {
	version string
	callers map[string]*caller
	tenants map[string]*tenant
	// readInPieces: the file was read piece by piece, never as one YAML tree
	// (internal/yamlfile.DecodeLarge); size is the file's, in bytes.
	readInPieces bool
	size         int
}

// caller is a validated callerFile.
type caller struct {
	rule       string // callers[<id>]
	admin      bool
	allTenants bool
	tenants    map[string]bool
	rateLimit  *RateLimit
	user       *userAccess // user_owns_data; nil = none
}

// tenant is a validated tenantFile, uuids in lower case and defaults applied.
type tenant struct {
	key         string
	workspaceID string // the primary workspace
	profileID   string
	reports     list
	dashboards  list
	// workspaces are every workspace of the tenant, the primary one first.
	workspaces []string
	// sso lists the datasets and paginated reports whose single sign-on data
	// sources get identity blobs (lower case), or Wildcard.
	sso         []string
	rls         *rls
	allowEdit   bool
	allowCreate bool
	// createWorkspaceID is set when allowCreate.
	createWorkspaceID string
	maxLifetime       time.Duration
	defaultLifetime   time.Duration
	// digest identifies the entry's content (Tenant.Digest).
	digest string
}

// list maps each explicitly listed id of one kind, in any of the tenant's workspaces,
// to its workspace; all is the primary workspace's "*", which applies to ids listed
// nowhere.
type list struct {
	ids map[string]string
	all bool
}

// listed is the tenant's list of items of kind k; a tile is granted through its
// dashboard, so it has no list of its own.
func (t *tenant) listed(k Kind) list {
	if k == KindDashboard {
		return t.dashboards
	}
	return t.reports
}

// rls is a validated rlsFile.
type rls struct {
	roles        []string
	datasetRoles map[string][]string // nil when none
	username     template
	// servicePrincipal: the username is ServicePrincipal.
	servicePrincipal bool
	customData       template
	withoutRLS       []string // lower case
	// datasets are rls.datasets, by dataset id in lower case; nil when none.
	datasets map[string]*datasetRule
}

// datasetRule is a validated datasetIdentityFile: what replaces the rls block's
// identity for one dataset.
type datasetRule struct {
	username         *template // nil: the rls block's
	servicePrincipal bool      // the username is ServicePrincipal
	customData       *template // nil: the rls block's
	roles            []string  // nil: the rls block's (dataset_roles, else roles)
}

// RateLimit is a caller's token bucket (golang.org/x/time/rate: rate.Limit(PerSecond),
// Burst). The server enforces it; the policy only carries it so that one file says who
// may ask and how fast.
type RateLimit struct {
	// PerSecond is the bucket's refill rate, requests per second (> 0).
	PerSecond float64
	// Burst is the bucket's size (>= 1).
	Burst int
}

// Load reads and parses the policy file at path. A file that fails validation yields
// an error wrapping a *ValidationError (errors.As finds it).
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Version identifies the policy's content: "sha256:" and the hex digest of the file's
// bytes. It is what operators compare with the file they deployed.
func (p *Policy) Version() string { return p.version }

// RateLimit returns the caller's rate limit, if the policy sets one. Unknown callers
// have none (Decide denies them anyway).
func (p *Policy) RateLimit(caller string) (RateLimit, bool) {
	c, ok := p.callers[caller]
	if !ok || c.rateLimit == nil {
		return RateLimit{}, false
	}
	return *c.rateLimit, true
}

// Admin reports whether the policy makes caller an admin: one that may ask
// Explain on behalf of other callers.
func (p *Policy) Admin(caller string) bool {
	c, ok := p.callers[caller]
	return ok && c.admin
}

// version computes the Version of a file's bytes.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Parse strictly decodes and fully validates a policy file. On failure it returns a
// *ValidationError listing every problem with its key.
func Parse(data []byte) (*Policy, error) {
	var f policyFile
	problems, ok, inPieces := yamlfile.DecodeLarge(data, &f)
	if ok {
		decoded := make(map[string]bool, len(problems))
		for _, p := range problems {
			decoded[p.Key] = true
		}
		// A key that failed to decode is already reported; its zero value would only
		// add a second, misleading problem at the same key.
		for _, p := range f.validate() {
			if !decoded[p.Key] {
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	p := f.compile(version(data))
	p.readInPieces, p.size = inPieces, len(data)
	return p, nil
}

// compile builds the immutable Policy from a file that validated clean.
func (f *policyFile) compile(ver string) *Policy {
	p := &Policy{
		version: ver,
		callers: make(map[string]*caller, len(f.Callers)),
		tenants: make(map[string]*tenant, len(f.Tenants)),
	}
	for _, c := range f.Callers {
		// The rule names the caller by its id, not its place in the file:
		// a denial tells the caller nothing of the other entries.
		pc := &caller{rule: "callers[" + c.ID + "]", admin: c.Admin, tenants: map[string]bool{}, user: compileUserAccess(c.UserOwnsData)}
		for _, name := range c.Tenants {
			if name == Wildcard {
				pc.allTenants = true
			} else {
				pc.tenants[name] = true
			}
		}
		if c.RateLimit != nil {
			pc.rateLimit = &RateLimit{PerSecond: c.RateLimit.PerSecond, Burst: c.RateLimit.Burst}
		}
		p.callers[c.ID] = pc
	}
	for name, t := range f.Tenants {
		if t == nil {
			t = &tenantFile{}
		}
		ws := strings.ToLower(t.WorkspaceID)
		pt := &tenant{
			key:         name,
			workspaceID: ws,
			profileID:   strings.ToLower(t.ProfileID),
			reports:     list{ids: map[string]string{}},
			dashboards:  list{ids: map[string]string{}},
			allowEdit:   t.AllowEdit,
			allowCreate: t.AllowCreate,
			maxLifetime: DefaultMaxLifetime,
		}
		pt.reports.add(t.Reports, ws)
		pt.dashboards.add(t.Dashboards, ws)
		pt.workspaces = []string{ws}
		for _, w := range t.Workspaces {
			pt.reports.add(w.Reports, strings.ToLower(w.ID))
			pt.dashboards.add(w.Dashboards, strings.ToLower(w.ID))
			pt.workspaces = append(pt.workspaces, strings.ToLower(w.ID))
		}
		for _, id := range t.SSO {
			pt.sso = append(pt.sso, strings.ToLower(id))
		}
		if pt.allowCreate {
			pt.createWorkspaceID = ws
			if t.CreateWorkspaceID != "" {
				pt.createWorkspaceID = strings.ToLower(t.CreateWorkspaceID)
			}
		}
		if t.MaxLifetime != nil {
			pt.maxLifetime = *t.MaxLifetime
		}
		pt.defaultLifetime = pt.maxLifetime
		if t.DefaultLifetime != nil {
			pt.defaultLifetime = *t.DefaultLifetime
		}
		if r := t.RLS; r != nil {
			pt.rls = &rls{roles: slices.Clone(r.Roles), username: parseTemplate(DefaultUsernameTemplate), customData: parseTemplate(r.CustomData)}
			for ds, roles := range r.DatasetRoles {
				if pt.rls.datasetRoles == nil {
					pt.rls.datasetRoles = make(map[string][]string, len(r.DatasetRoles))
				}
				pt.rls.datasetRoles[strings.ToLower(ds)] = slices.Clone(roles)
			}
			for _, id := range r.WithoutRLS {
				pt.rls.withoutRLS = append(pt.rls.withoutRLS, strings.ToLower(id))
			}
			if r.Username != nil {
				pt.rls.username = parseTemplate(*r.Username)
				pt.rls.servicePrincipal = *r.Username == ServicePrincipal
			}
			for ds, d := range r.Datasets {
				if pt.rls.datasets == nil {
					pt.rls.datasets = make(map[string]*datasetRule, len(r.Datasets))
				}
				rule := &datasetRule{roles: slices.Clone(d.Roles)}
				if d.Username != nil {
					u := parseTemplate(*d.Username)
					rule.username, rule.servicePrincipal = &u, *d.Username == ServicePrincipal
				}
				if d.CustomData != nil {
					c := parseTemplate(*d.CustomData)
					rule.customData = &c
				}
				pt.rls.datasets[strings.ToLower(ds)] = rule
			}
		}
		b, _ := json.Marshal(t) // cannot fail: strings, bools, durations, slices and maps of them
		sum := sha256.Sum256(b)
		pt.digest = hex.EncodeToString(sum[:8])
		p.tenants[name] = pt
	}
	return p
}

// add records each id of a validated list as living in workspace ws; "*" sets all.
func (l *list) add(ids []string, ws string) {
	for _, id := range ids {
		if id == Wildcard {
			l.all = true
		} else {
			l.ids[strings.ToLower(id)] = ws
		}
	}
}
