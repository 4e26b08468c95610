package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/yamlfile"
)

const testAbout = `usage: embedgate test [-v] FILE

Run a policy's tests: each is a request (a caller, a tenant, a user, items)
and the decision it must get, allow (with the rule, lifetime and row-level
security identity, when given) or deny (with the reason). The policy decides
offline, exactly as the server's would, including the API's validation of
the request. Every test runs; any mismatch is listed and the exit status is
1, for a policy repository's CI. The file (YAML):

  policy: policy.yaml            # relative to this file
  tests:
    - name: alice sees Sales as herself
      caller: spiffe://example.org/ns/web/sa/frontend
      request: {tenant: acme, user: alice@acme.example, report_ids: [a1000000-0000-4000-8000-000000000001]}
      want:
        rule: tenants.acme       # optional
        lifetime: 30m            # optional
        identity: {username: alice@acme.example, roles: [Customer], custom_data: acme}   # optional
    - name: another tenant's report is refused
      caller: spiffe://example.org/ns/web/sa/frontend
      request: {tenant: acme, user: alice@acme.example, report_ids: [a2000000-0000-4000-8000-000000000001]}
      want: {deny: REPORT_NOT_ALLOWED}

The request takes the API's fields: tenant, user, report_ids, dashboard_id,
tile_id, allow_edit, allow_create, lifetime. want.identity: {} expects no
identity (a tenant without rls).

flags:
`

// policyTests is a test file.
type policyTests struct {
	Policy string       `yaml:"policy"`
	Tests  []policyCase `yaml:"tests"`
}

type policyCase struct {
	Name    string      `yaml:"name"`
	Caller  string      `yaml:"caller"`
	Request caseRequest `yaml:"request"`
	Want    caseWant    `yaml:"want"`
}

type caseRequest struct {
	Tenant      string        `yaml:"tenant"`
	User        string        `yaml:"user"`
	ReportIDs   []string      `yaml:"report_ids"`
	DashboardID string        `yaml:"dashboard_id"`
	TileID      string        `yaml:"tile_id"`
	AllowEdit   bool          `yaml:"allow_edit"`
	AllowCreate bool          `yaml:"allow_create"`
	Lifetime    time.Duration `yaml:"lifetime"`
}

type caseWant struct {
	// Deny is the reason a denial must carry; empty means allow.
	Deny     string        `yaml:"deny"`
	Rule     string        `yaml:"rule"`
	Lifetime time.Duration `yaml:"lifetime"`
	Identity *caseIdentity `yaml:"identity"`
}

type caseIdentity struct {
	Username   string   `yaml:"username"`
	Roles      []string `yaml:"roles"`
	CustomData string   `yaml:"custom_data"`
}

func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "print every test, not only the failures")
	fs.SetOutput(io.Discard)
	// The file comes after the flags: parse them, then take one argument.
	if done, err := parseFlags(fs, flagsOnly(args), testAbout, stdout, stderr); done {
		return err
	}
	files := argsOnly(args)
	if len(files) != 1 {
		return fmt.Errorf("test: want one test file: %w", errUsage)
	}
	suite, err := loadPolicyTests(files[0])
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	policy, err := authz.Load(suite.Policy)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	failed := 0
	for _, c := range suite.Tests {
		problems := c.run(ctx, policy)
		switch {
		case len(problems) > 0:
			failed++
			fmt.Fprintf(stdout, "FAIL %s\n", c.Name)
			for _, p := range problems {
				fmt.Fprintf(stdout, "     %s\n", p)
			}
		case *verbose:
			fmt.Fprintf(stdout, "ok   %s\n", c.Name)
		}
	}
	fmt.Fprintf(stdout, "%d tests, %d failed (policy %s, %s)\n", len(suite.Tests), failed, suite.Policy, policy.Version())
	if failed > 0 {
		return fmt.Errorf("test: %d of %d failed", failed, len(suite.Tests))
	}
	return nil
}

// loadPolicyTests reads and checks a test file; the policy path becomes
// relative to the working directory.
func loadPolicyTests(file string) (*policyTests, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var suite policyTests
	problems, ok := yamlfile.Decode(data, &suite)
	if ok {
		if suite.Policy == "" {
			problems = append(problems, yamlfile.Problem{Key: "policy", Message: "required: the policy file to test"})
		}
		if len(suite.Tests) == 0 {
			problems = append(problems, yamlfile.Problem{Key: "tests", Message: "at least one test is required"})
		}
		names := map[string]int{}
		for i, c := range suite.Tests {
			key := "tests[" + strconv.Itoa(i) + "]"
			if c.Name == "" {
				problems = append(problems, yamlfile.Problem{Key: key + ".name", Message: "required"})
			} else if j, dup := names[c.Name]; dup {
				problems = append(problems, yamlfile.Problem{Key: key + ".name", Message: fmt.Sprintf("duplicate name (also tests[%d])", j)})
			}
			names[c.Name] = i
			if c.Caller == "" {
				problems = append(problems, yamlfile.Problem{Key: key + ".caller", Message: "required"})
			}
			if c.Want.Deny != "" {
				if _, known := embedgatev1.Reason_value[c.Want.Deny]; !known {
					problems = append(problems, yamlfile.Problem{Key: key + ".want.deny", Message: fmt.Sprintf("%q is not a reason of the API", c.Want.Deny)})
				}
				if c.Want.Lifetime != 0 || c.Want.Identity != nil {
					problems = append(problems, yamlfile.Problem{Key: key + ".want", Message: "deny takes no lifetime or identity"})
				}
			}
		}
	}
	if len(problems) > 0 {
		lines := make([]string, len(problems))
		for i, p := range problems {
			lines[i] = p.String()
		}
		return nil, fmt.Errorf("%s:\n  %s", file, strings.Join(lines, "\n  "))
	}
	if !filepath.IsAbs(suite.Policy) {
		suite.Policy = filepath.Join(filepath.Dir(file), suite.Policy)
	}
	return &suite, nil
}

// run decides the case's request and lists how the answer differs from
// what is wanted.
func (c policyCase) run(ctx context.Context, policy *authz.Policy) []string {
	f := explainFlags{tenant: c.Request.Tenant, user: c.Request.User, reports: c.Request.ReportIDs,
		dashboard: c.Request.DashboardID, tile: c.Request.TileID, allowEdit: c.Request.AllowEdit,
		allowCreate: c.Request.AllowCreate, lifetime: c.Request.Lifetime}
	resp, err := explainOne(ctx, policy, nil, c.Caller, f.request())
	if err != nil {
		st := status.Convert(err)
		resp = &embedgatev1.ExplainEmbedTokenResponse{Code: st.Code().String(), Message: st.Message(), Reason: reasonOfStatus(st)}
	}
	var diffs []string
	differs := func(what string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", what, got, want))
	}
	w := c.Want
	if w.Deny != "" {
		if resp.GetAllowed() {
			differs("decision", "allowed by "+resp.GetRule(), "deny "+w.Deny)
		} else if resp.GetReason() != w.Deny {
			differs("reason", resp.GetReason()+" ("+resp.GetMessage()+")", w.Deny)
		}
		if w.Rule != "" && resp.GetRule() != w.Rule {
			differs("rule", resp.GetRule(), w.Rule)
		}
		return diffs
	}
	if !resp.GetAllowed() {
		differs("decision", "denied, "+resp.GetReason()+": "+resp.GetMessage(), "allow")
		return diffs
	}
	if w.Rule != "" && resp.GetRule() != w.Rule {
		differs("rule", resp.GetRule(), w.Rule)
	}
	if got := resp.GetLifetime().AsDuration(); w.Lifetime != 0 && got != w.Lifetime {
		differs("lifetime", got, w.Lifetime)
	}
	if want := w.Identity; want != nil {
		got := resp.GetIdentity()
		if got.GetUsername() != want.Username || got.GetCustomData() != want.CustomData || !sameSet(got.GetRoles(), want.Roles) {
			differs("identity", fmt.Sprintf("{username: %q, roles: %q, custom_data: %q}", got.GetUsername(), got.GetRoles(), got.GetCustomData()),
				fmt.Sprintf("{username: %q, roles: %q, custom_data: %q}", want.Username, want.Roles, want.CustomData))
		}
	}
	return diffs
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// reasonOfStatus is a status's ErrorInfo reason.
func reasonOfStatus(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			return info.GetReason()
		}
	}
	return ""
}

// flagsOnly and argsOnly split a command line whose flags may come before
// or after its arguments.
func flagsOnly(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}

func argsOnly(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}
