package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestExplainCommandIsTheRPC: `embedgate explain` with a server's config
// prints what the server's ExplainEmbedToken answers for the same caller
// and request: --online to the byte (the Power BI request, each model),
// offline the policy's part of it.
func TestExplainCommandIsTheRPC(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	client := embedgatev1.NewEmbedTokenServiceClient(dev.conn)
	config := filepath.Join(dev.dir, "config.yaml")
	for _, c := range []struct {
		name string
		req  *embedgatev1.GenerateEmbedTokenRequest
		args []string
	}{
		{"an allow with row-level security", &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{devSalesReport}},
			[]string{"--tenant", "acme", "--user", "alice@acme.example", "--report-id", devSalesReport}},
		{"a model of another kind", &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme-models", User: "alice@acme.example", ReportIds: []string{devAASReport}},
			[]string{"--tenant", "acme-models", "--user", "alice@acme.example", "--report-id", devAASReport}},
		{"a denial", &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{"a2000000-0000-4000-8000-000000000001"}, AllowEdit: true},
			[]string{"--tenant", "acme", "--user", "alice", "--report-id", "a2000000-0000-4000-8000-000000000001", "--allow-edit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, err := client.ExplainEmbedToken(context.Background(), &embedgatev1.ExplainEmbedTokenRequest{
				Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{EmbedToken: c.req}})
			if err != nil {
				t.Fatal(err)
			}
			explained := func(extra ...string) *embedgatev1.ExplainEmbedTokenResponse {
				out := &testkit.Buffer{}
				args := append([]string{"explain", "--config", config, "--caller", devCaller}, append(c.args, extra...)...)
				if err := run(context.Background(), args, out, &testkit.Buffer{}); err != nil {
					t.Fatalf("explain: %v\n%s", err, out)
				}
				got := &embedgatev1.ExplainEmbedTokenResponse{}
				if err := protojson.Unmarshal([]byte(out.String()), got); err != nil {
					t.Fatalf("the output is not the RPC's JSON: %v\n%s", err, out)
				}
				return got
			}
			if got := explained("--online"); !proto.Equal(got, want) {
				t.Errorf("--online:\n got %v\nwant %v", got, want)
			}
			// Offline: the same decision, without what only Power BI knows.
			got := explained()
			want.PowerbiRequest, want.Models = nil, nil
			if want.GetAllowed() {
				want.Message = "allowed by " + want.GetRule() + " (the policy alone: Power BI was not asked about the items)"
			}
			if !proto.Equal(got, want) {
				t.Errorf("offline:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestPolicyTestExample: the example policy's tests pass, as CI runs them.
func TestPolicyTestExample(t *testing.T) {
	t.Parallel()
	out := &testkit.Buffer{}
	if err := run(context.Background(), []string{"test", "-v", "../../examples/policy/policy_test.yaml"}, out, &testkit.Buffer{}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "9 tests, 0 failed") {
		t.Errorf("output:\n%s", out)
	}
}

// TestPolicyTestFailures: every way a test can fail is reported, each with
// what came and what was wanted, all tests run, and the exit is an error.
func TestPolicyTestFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, err := filepath.Abs("../../examples/policy/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "policy_test.yaml")
	writeTestFile(t, file, `policy: `+policy+`
tests:
  - name: wants allow, gets a denial
    caller: spiffe://example.org/ns/web/sa/frontend
    request: {tenant: acme, user: alice, report_ids: [a2000000-0000-4000-8000-000000000001]}
    want: {}
  - name: wants a denial, gets an allow
    caller: spiffe://example.org/ns/web/sa/frontend
    request: {tenant: acme, user: alice, report_ids: [a1000000-0000-4000-8000-000000000001]}
    want: {deny: REPORT_NOT_ALLOWED}
  - name: the wrong identity and lifetime
    caller: spiffe://example.org/ns/web/sa/frontend
    request: {tenant: acme, user: alice, report_ids: [a1000000-0000-4000-8000-000000000001]}
    want: {lifetime: 30m, identity: {username: bob, roles: [Customer], custom_data: acme}}
  - name: the wrong reason
    caller: spiffe://example.org/ns/web/sa/frontend
    request: {tenant: acme, user: alice, report_ids: [a2000000-0000-4000-8000-000000000001]}
    want: {deny: TENANT_NOT_ALLOWED}
  - name: passes
    caller: spiffe://example.org/ns/web/sa/frontend
    request: {tenant: acme, user: alice, report_ids: [a1000000-0000-4000-8000-000000000001]}
    want: {rule: tenants.acme}
`)
	out := &testkit.Buffer{}
	err = run(context.Background(), []string{"test", file}, out, &testkit.Buffer{})
	if err == nil {
		t.Fatalf("failing tests passed:\n%s", out)
	}
	for _, want := range []string{
		"FAIL wants allow, gets a denial\n     decision: got denied, REPORT_NOT_ALLOWED",
		"FAIL wants a denial, gets an allow\n     decision: got allowed by tenants.acme, want deny REPORT_NOT_ALLOWED",
		`lifetime: got 1h0m0s, want 30m0s`,
		`identity: got {username: "alice"`,
		"FAIL the wrong reason\n     reason: got REPORT_NOT_ALLOWED",
		"5 tests, 4 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "FAIL passes") {
		t.Error("a passing test is reported as failing")
	}
}

// TestPolicyTestFileProblems: a test file's mistakes are listed with their
// keys, before anything runs.
func TestPolicyTestFileProblems(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "policy_test.yaml")
	writeTestFile(t, file, `policy: policy.yaml
tests:
  - name: a
    request: {tenant: acme, colour: red}
    want: {deny: NOT_A_REASON}
  - name: a
    caller: spiffe://example.org/x
    want: {deny: REPORT_NOT_ALLOWED, lifetime: 1h}
`)
	err := run(context.Background(), []string{"test", file}, &testkit.Buffer{}, &testkit.Buffer{})
	if err == nil {
		t.Fatal("a bad test file ran")
	}
	for _, want := range []string{"tests[0].request.colour: unknown key", "tests[0].caller: required", `tests[0].want.deny: "NOT_A_REASON" is not a reason`,
		"tests[1].name: duplicate name", "tests[1].want: deny takes no lifetime"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}
