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
// requested report (or the one dashboard) must be the tenant's, edit and create must
// be allowed by the tenant. A denial is a *Denial wrapping one of the Err* sentinels.
// An unknown tenant and a tenant not granted to the caller produce the same error and
// the same message, and an item outside the tenant's lists is never said to exist
// elsewhere, so a caller cannot probe the policy. Callers, tenant keys and templates
// are matched exactly; only uuids (workspace, profile, report, dashboard, tile and
// dataset ids) are compared case-insensitively, and are returned in lower case.
//
// # Workspaces and items
//
// A tenant has a primary workspace (workspace_id) and optional additional ones
// (workspaces). Each report and dashboard id maps to exactly one of them: an id listed
// in a workspace's reports or dashboards lives there, and an id listed nowhere lives in
// the primary workspace when the primary list is "*" ("*" is allowed there only). So
// a report id appears at most once in a tenant, and a Grant names each item's
// workspace (Grant.Reports, Grant.Dashboard): one token may span several workspaces.
//
// A request names either 1..MaxReportIDs reports or one dashboard, optionally with one
// of its tiles. A granted dashboard grants its tiles (the policy cannot know which they
// are): the gateway must address the tile under its dashboard, so that Power BI itself
// refuses a tile of another dashboard. Edit and
// create are for reports only (Power BI embeds dashboards and tiles for viewing).
// A create request (allow_create) gets Grant.TargetWorkspaceIDs: the tenant's
// create_workspace_id, or its primary workspace.
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
// # File format
//
//	callers:
//	  - id: spiffe://mesh.example/ns/web/sa/frontend   # exact SPIFFE ID
//	    tenants: ["*"]                # or tenant keys; "*" only as the sole entry
//	    rate_limit:                   # optional token bucket for this caller
//	      per_second: 10              # > 0
//	      burst: 20                   # >= 1
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
//	      username: "{user}"          # default "{user}"
//	      custom_data: "{tenant}"     # optional
//	      dataset_roles:              # optional: dataset uuid -> roles (same rules)
//	        33333333-3333-3333-3333-333333333333: [Region, Customer]
//	    allow_edit: false
//	    allow_create: false           # create / save-as report tokens
//	    create_workspace_id: ""       # optional, needs allow_create: where created
//	                                  # reports go; default workspace_id; must be
//	                                  # workspace_id or one of workspaces[].id
//	    max_lifetime: 60m             # default 60m; 1m..24h; whole minutes
//	    default_lifetime: 30m         # optional; <= max_lifetime
//
// Decoding is strict (unknown and duplicate keys are problems) and validation reports
// every problem at once, each with its key (see ValidationError). A report or
// dashboard id listed twice anywhere in a tenant, or a workspace id listed twice, is a
// problem, and so is an additional workspace that grants nothing (unless it is the
// create workspace). An empty policy is valid and denies everything.
//
// # Reload
//
// Store holds the active *Policy behind an atomic pointer and swaps it when the file
// changes (Kubernetes ConfigMap symlink swaps, editors' rename-over and plain writes
// all count). A file that fails validation is logged with every problem and never
// replaces the policy being served.
package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"
)

// Defaults and limits of the policy file, named so that documentation, validation
// messages and tests agree.
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
	// Wildcard, as the sole entry of a caller's tenants or of a tenant's reports or
	// dashboards (primary workspace only), grants all of them.
	Wildcard = "*"
)

// tenantKeyPattern is the shape of a tenant key: DNS-label-like, so keys are safe in
// logs, metrics labels and URLs.
var tenantKeyPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// policyFile is the policy file as written: one struct tree, strictly decoded. Its
// yaml keys are the contract of DESIGN.md ("Configuration").
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
	// Username is a template over {tenant} and {user}; nil = DefaultUsernameTemplate.
	Username *string `yaml:"username"`
	// CustomData is an optional template over {tenant} and {user} (Power BI's
	// customData, read by CUSTOMDATA() in the model).
	CustomData string `yaml:"custom_data"`
}

// Policy is a parsed, fully validated, immutable policy. It is safe for concurrent use;
// a new file makes a new Policy (see Store), it never mutates one.
type Policy struct {
	version string
	callers map[string]*caller
	tenants map[string]*tenant
}

// caller is a validated callerFile.
type caller struct {
	rule       string // callers[i]
	allTenants bool
	tenants    map[string]bool
	rateLimit  *RateLimit
}

// tenant is a validated tenantFile, uuids in lower case and defaults applied.
type tenant struct {
	key         string
	workspaceID string // the primary workspace
	profileID   string
	// reports and dashboards map each explicitly listed id, in any of the tenant's
	// workspaces, to its workspace; allReports and allDashboards are the primary
	// workspace's "*", which applies to ids listed nowhere.
	reports           map[string]string
	allReports        bool
	dashboards        map[string]string
	allDashboards     bool
	rls               *rls
	allowEdit         bool
	allowCreate       bool
	createWorkspaceID string // set when allowCreate
	maxLifetime       time.Duration
	defaultLifetime   time.Duration
}

// rls is a validated rlsFile.
type rls struct {
	roles        []string
	datasetRoles map[string][]string // nil when none
	username     string
	customData   string
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

// version computes the Version of a file's bytes.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Parse strictly decodes and fully validates a policy file. On failure it returns a
// *ValidationError listing every problem with its key.
func Parse(data []byte) (*Policy, error) {
	f, problems := decode(data)
	if f != nil {
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
	return f.compile(version(data)), nil
}

// decode turns the file into a policyFile. Problems of the YAML itself (syntax,
// unknown or duplicate keys, wrong types) are returned with the key they sit at; the
// policyFile is nil when the file could not be decoded at all.
//
// Decoding is as strict as yaml's Decoder.KnownFields(true) (FuzzParse checks that),
// but done on the node tree: KnownFields reports a line without a key, and a mapping
// with a duplicate key is skipped whole, which would hide every other problem in it.
// Here unknown keys are reported with their key path, later duplicates are dropped
// after being reported, and the rest of the file is still decoded and validated.
func decode(data []byte) (*policyFile, []Problem) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return &policyFile{}, nil // an empty file: a valid, empty policy
	case err != nil:
		return nil, []Problem{{Message: err.Error()}}
	}
	var problems []Problem
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		msg := "only one YAML document is allowed"
		if err != nil {
			msg = err.Error()
		}
		problems = append(problems, Problem{Message: msg})
	}

	c := checker{lines: map[int]string{}}
	c.walk(&root, "", reflect.TypeFor[policyFile]())
	problems = append(problems, c.problems...)

	var f policyFile
	err := root.Decode(&f)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		for _, msg := range te.Errors {
			problems = append(problems, c.typeProblem(msg))
		}
	default: // e.g. excessive aliasing: nothing decoded can be trusted
		return nil, append(problems, Problem{Message: err.Error()})
	}
	return &f, problems
}

// checker walks the node tree against the policyFile types: it reports unknown and
// duplicate keys, and records which key each line holds so that the decoder's
// "line N: ..." messages can be given a key.
type checker struct {
	problems []Problem
	// lines holds the key path of the first (outermost) node of each line.
	lines map[int]string
}

// walk checks n, found at path, against the Go type t it will be decoded into.
// Aliases are not followed: their anchor is checked where it is defined, and the
// decoder bounds alias expansion.
func (c *checker) walk(n *yaml.Node, path string, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	record := func(line int, p string) {
		if _, ok := c.lines[line]; !ok && p != "" {
			c.lines[line] = p
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			c.walk(child, path, t)
		}
	case yaml.MappingNode:
		first := map[string]int{}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			record(k.Line, p)
			if line, dup := first[k.Value]; dup {
				c.problems = append(c.problems, Problem{Key: p,
					Message: fmt.Sprintf("duplicate key (first at line %d) (line %d)", line, k.Line)})
				continue
			}
			first[k.Value] = k.Line
			kept = append(kept, k, v)
			if k.ShortTag() == "!!merge" {
				continue // `<<: *anchor` merges keys checked where the anchor is defined
			}
			switch t.Kind() {
			case reflect.Struct:
				ft, ok := yamlField(t, k.Value)
				if !ok {
					c.problems = append(c.problems, Problem{Key: p, Message: fmt.Sprintf("unknown key (line %d)", k.Line)})
					continue
				}
				c.walk(v, p, ft)
			case reflect.Map:
				c.walk(v, p, t.Elem())
			}
			// Any other type: the decoder reports the mismatch.
		}
		n.Content = kept
	case yaml.SequenceNode:
		for i, child := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			record(child.Line, p)
			if t.Kind() == reflect.Slice {
				c.walk(child, p, t.Elem())
			}
		}
	}
}

// yamlField returns the type of struct t's field whose yaml key is name.
func yamlField(t reflect.Type, name string) (reflect.Type, bool) {
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// decoderLine matches the yaml decoder's per-node messages.
var decoderLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeProblem rewrites one of the decoder's type errors as a keyed Problem.
func (c *checker) typeProblem(msg string) Problem {
	m := decoderLine.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	return Problem{Key: c.lines[line], Message: m[2] + " (line " + m[1] + ")"}
}

// validate reports every semantic problem of a decoded file, callers in file order,
// then tenants by key.
func (f *policyFile) validate() []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}

	seen := map[string]int{}
	for i, c := range f.Callers {
		key := "callers[" + strconv.Itoa(i) + "]"
		if c == nil {
			add(key, "empty caller entry")
			continue
		}
		switch _, err := spiffeid.FromString(c.ID); {
		case c.ID == "":
			add(key+".id", "is required")
		case err != nil:
			add(key+".id", "%q is not a valid SPIFFE ID: %v", c.ID, err)
		}
		if j, dup := seen[c.ID]; dup && c.ID != "" {
			add(key+".id", "duplicate caller id (also callers[%d])", j)
		} else {
			seen[c.ID] = i
		}
		if len(c.Tenants) == 0 {
			add(key+".tenants", "must list at least one tenant key, or %q", Wildcard)
		}
		names := map[string]bool{}
		for k, name := range c.Tenants {
			tk := key + ".tenants[" + strconv.Itoa(k) + "]"
			_, defined := f.Tenants[name]
			switch {
			case name == Wildcard && len(c.Tenants) > 1:
				add(tk, "%q must be the only entry", Wildcard)
			case name == Wildcard:
			case names[name]:
				add(tk, "duplicate tenant %q", name)
			case !defined:
				add(tk, "tenant %q is not defined under tenants", name)
			}
			names[name] = true
		}
		if rl := c.RateLimit; rl != nil {
			if !(rl.PerSecond > 0) || math.IsInf(rl.PerSecond, 0) {
				add(key+".rate_limit.per_second", "must be a finite number > 0")
			}
			if rl.Burst < 1 {
				add(key+".rate_limit.burst", "must be >= 1")
			}
		}
	}

	keys := make([]string, 0, len(f.Tenants))
	for k := range f.Tenants {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, name := range keys {
		ps = append(ps, validateTenant(name, f.Tenants[name])...)
	}
	return ps
}

// validateTenant reports every problem of one tenant entry.
func validateTenant(name string, t *tenantFile) []Problem {
	var ps []Problem
	key := "tenants." + name
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if !tenantKeyPattern.MatchString(name) {
		add(key, "tenant key %q must match %s", name, tenantKeyPattern)
	}
	if t == nil {
		t = &tenantFile{}
	}
	switch {
	case t.WorkspaceID == "":
		add(key+".workspace_id", "is required")
	case !isUUID(t.WorkspaceID):
		add(key+".workspace_id", "%q is not a uuid", t.WorkspaceID)
	}
	if t.ProfileID != "" && !isUUID(t.ProfileID) {
		add(key+".profile_id", "%q is not a uuid", t.ProfileID)
	}

	// Every report and dashboard id maps to exactly one workspace, so an id listed twice
	// anywhere in the tenant is a problem, and "*" is the primary workspace's alone.
	// where records the first place of each id, relative to the tenant.
	reports, dashboards := map[string]string{}, map[string]string{}
	checkItems := func(at, kind string, ids []string, primary bool, where map[string]string) {
		for i, id := range ids {
			here := at + "[" + strconv.Itoa(i) + "]"
			k := key + "." + here
			switch first, dup := where[strings.ToLower(id)]; {
			case id == Wildcard && !primary:
				add(k, "%q is allowed only in the primary workspace's %ss: list %s ids here, each mapping to exactly one workspace", Wildcard, kind, kind)
			case id == Wildcard && len(ids) > 1:
				add(k, "%q must be the only entry", Wildcard)
			case id == Wildcard:
			case !isUUID(id):
				add(k, "%q is not a uuid", id)
			case dup:
				add(k, "duplicate %s id (also %s)", kind, first)
			default:
				where[strings.ToLower(id)] = here
			}
		}
	}
	if len(t.Reports) == 0 && !grantsItems(t) {
		add(key+".reports", "must list report ids, or %q (a tenant must grant at least one report or dashboard)", Wildcard)
	}
	checkItems("reports", "report", t.Reports, true, reports)
	checkItems("dashboards", "dashboard", t.Dashboards, true, dashboards)

	workspaces := map[string]string{} // lower id -> where, relative to the tenant
	if t.WorkspaceID != "" {
		workspaces[strings.ToLower(t.WorkspaceID)] = "workspace_id"
	}
	for i, w := range t.Workspaces {
		at := "workspaces[" + strconv.Itoa(i) + "]"
		wk := key + "." + at
		if w == nil {
			add(wk, "empty workspace entry")
			continue
		}
		switch first, dup := workspaces[strings.ToLower(w.ID)]; {
		case w.ID == "":
			add(wk+".id", "is required")
		case !isUUID(w.ID):
			add(wk+".id", "%q is not a uuid", w.ID)
		case dup:
			add(wk+".id", "duplicate workspace id (also %s)", first)
		default:
			workspaces[strings.ToLower(w.ID)] = at + ".id"
		}
		checkItems(at+".reports", "report", w.Reports, false, reports)
		checkItems(at+".dashboards", "dashboard", w.Dashboards, false, dashboards)
		if len(w.Reports) == 0 && len(w.Dashboards) == 0 && (w.ID == "" || !strings.EqualFold(w.ID, t.CreateWorkspaceID)) {
			add(wk, "grants nothing: list reports or dashboards, or name it in create_workspace_id")
		}
	}

	if r := t.RLS; r != nil {
		rk := key + ".rls"
		checkRoles(add, rk+".roles", r.Roles)
		// Keys in sorted order, so that problems come out in the same order every run.
		datasets := map[string]string{}
		for _, ds := range slices.Sorted(maps.Keys(r.DatasetRoles)) {
			dk := rk + ".dataset_roles." + ds
			switch first, dup := datasets[strings.ToLower(ds)]; {
			case !isUUID(ds):
				add(dk, "dataset id %q is not a uuid", ds)
			case dup:
				add(dk, "duplicate dataset id (also dataset_roles.%s)", first)
			default:
				datasets[strings.ToLower(ds)] = ds
			}
			checkRoles(add, dk, r.DatasetRoles[ds])
		}
		if r.Username != nil {
			switch u := *r.Username; {
			case u == "":
				add(rk+".username", "must not be empty (omit it for %q)", DefaultUsernameTemplate)
			case strings.IndexFunc(u, unsafeInUsername) >= 0:
				add(rk+".username", "%q must not contain whitespace or control characters", u)
			case utf8.RuneCountInString(strings.NewReplacer("{user}", "", "{tenant}", name).Replace(u)) > MaxUsernameLength:
				add(rk+".username", "expands to more than %d characters before any user is added", MaxUsernameLength)
			}
			if err := checkTemplate(*r.Username); err != nil {
				add(rk+".username", "%v", err)
			}
		}
		if err := checkTemplate(r.CustomData); err != nil {
			add(rk+".custom_data", "%v", err)
		}
	}

	if c := t.CreateWorkspaceID; c != "" {
		ck := key + ".create_workspace_id"
		if !t.AllowCreate {
			add(ck, "is set but allow_create is false: set allow_create: true, or remove it")
		}
		switch _, ok := workspaces[strings.ToLower(c)]; {
		case !isUUID(c):
			add(ck, "%q is not a uuid", c)
		case !ok:
			add(ck, "%s is not one of the tenant's workspaces (workspace_id or a workspaces[].id)", c)
		}
	}

	maxLT := DefaultMaxLifetime
	if t.MaxLifetime != nil {
		maxLT = *t.MaxLifetime
		if err := checkLifetime(maxLT); err != nil {
			add(key+".max_lifetime", "%v", err)
		}
	}
	if t.DefaultLifetime != nil {
		d := *t.DefaultLifetime
		if err := checkLifetime(d); err != nil {
			add(key+".default_lifetime", "%v", err)
		} else if d > maxLT {
			add(key+".default_lifetime", "%v exceeds max_lifetime %v", d, maxLT)
		}
	}
	return ps
}

// grantsItems reports whether a tenant grants any item besides its primary reports.
func grantsItems(t *tenantFile) bool {
	if len(t.Dashboards) > 0 {
		return true
	}
	for _, w := range t.Workspaces {
		if w != nil && len(w.Reports)+len(w.Dashboards) > 0 {
			return true
		}
	}
	return false
}

// checkRoles enforces Power BI's rules for the roles of one effective identity, found
// at key: 1..MaxRoles distinct, non-empty names of at most MaxRoleLength characters
// without ','.
func checkRoles(add func(key, format string, args ...any), key string, roles []string) {
	switch n := len(roles); {
	case n == 0:
		add(key, "must list 1 to %d roles", MaxRoles)
	case n > MaxRoles:
		add(key, "lists %d roles; at most %d are allowed", n, MaxRoles)
	}
	seen := map[string]bool{}
	for i, role := range roles {
		k := key + "[" + strconv.Itoa(i) + "]"
		switch n := utf8.RuneCountInString(role); {
		case strings.TrimSpace(role) == "":
			add(k, "must not be empty")
		case n > MaxRoleLength:
			add(k, "is %d characters; at most %d are allowed", n, MaxRoleLength)
		case strings.Contains(role, ","):
			add(k, "%q must not contain ','", role)
		case seen[role]:
			add(k, "duplicate role %q", role)
		}
		seen[role] = true
	}
}

// checkLifetime enforces the configurable range of lifetimes, in whole minutes.
func checkLifetime(d time.Duration) error {
	switch {
	case d < MinLifetime || d > MaxLifetime:
		return fmt.Errorf("%v is outside %v..%v", d, MinLifetime, MaxLifetime)
	case d%time.Minute != 0:
		return fmt.Errorf("%v is not a whole number of minutes", d)
	}
	return nil
}

// placeholders are the only template placeholders; templateReplacer expands them.
var placeholders = []string{"{user}", "{tenant}"}

// checkTemplate rejects any brace that is not part of a known placeholder, so that a
// typo such as "{usr}" fails at load time instead of minting a literal username.
func checkTemplate(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' && s[i] != '}' {
			continue
		}
		known := false
		for _, p := range placeholders {
			if strings.HasPrefix(s[i:], p) {
				i += len(p) - 1
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("template %q: only {user} and {tenant} are placeholders, and braces are not allowed elsewhere", s)
		}
	}
	return nil
}

// unsafeInUsername reports the characters an effective-identity username may not hold.
func unsafeInUsername(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

// isUUID reports whether s is a uuid in its canonical 8-4-4-4-12 hex form (any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// compile builds the immutable Policy from a file that validated clean.
func (f *policyFile) compile(ver string) *Policy {
	p := &Policy{
		version: ver,
		callers: make(map[string]*caller, len(f.Callers)),
		tenants: make(map[string]*tenant, len(f.Tenants)),
	}
	for i, c := range f.Callers {
		pc := &caller{rule: "callers[" + strconv.Itoa(i) + "]", tenants: map[string]bool{}}
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
			reports:     map[string]string{},
			dashboards:  map[string]string{},
			allowEdit:   t.AllowEdit,
			allowCreate: t.AllowCreate,
			maxLifetime: DefaultMaxLifetime,
		}
		pt.allReports = addItems(pt.reports, t.Reports, ws)
		pt.allDashboards = addItems(pt.dashboards, t.Dashboards, ws)
		for _, w := range t.Workspaces {
			addItems(pt.reports, w.Reports, strings.ToLower(w.ID))
			addItems(pt.dashboards, w.Dashboards, strings.ToLower(w.ID))
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
			pt.rls = &rls{roles: slices.Clone(r.Roles), username: DefaultUsernameTemplate, customData: r.CustomData}
			for ds, roles := range r.DatasetRoles {
				if pt.rls.datasetRoles == nil {
					pt.rls.datasetRoles = make(map[string][]string, len(r.DatasetRoles))
				}
				pt.rls.datasetRoles[strings.ToLower(ds)] = slices.Clone(roles)
			}
			if r.Username != nil {
				pt.rls.username = *r.Username
			}
		}
		p.tenants[name] = pt
	}
	return p
}

// addItems records each id of a validated list as living in workspace ws, and reports
// whether the list is the wildcard.
func addItems(into map[string]string, ids []string, ws string) (wildcard bool) {
	for _, id := range ids {
		if id == Wildcard {
			wildcard = true
		} else {
			into[strings.ToLower(id)] = ws
		}
	}
	return wildcard
}
