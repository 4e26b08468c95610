package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// readmeGRPCAddr is the address the README's grpcurl commands call (`make
// run`'s); the test puts its own server's there, and nothing else.
const readmeGRPCAddr = "127.0.0.1:8443"

var shFence = regexp.MustCompile("(?ms)^```sh\n(.*?)^```\n")

// readmeShell returns the sh blocks of a README section, in order.
func readmeShell(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## "+heading+"\n")
	if start < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var blocks []string
	for _, m := range shFence.FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestREADMEQuickTestAndOrganization runs the README's sections "Quick
// test with your own account" and "Embed for your organization" as
// printed, from a folder whose .dev is a running dev server's and whose
// bin/embedgate is this command built: the device code sign-in approved
// through the emulator while the command waits, the silent runs after it,
// the user assertion, and GenerateUserEmbedConfig over grpcurl (when make
// test provides grpcurl).
func TestREADMEQuickTestAndOrganization(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	quick := readmeShell(t, "Quick test with your own account")
	org := readmeShell(t, "Embed for your organization")
	if len(quick) != 3 || len(org) != 2 {
		t.Fatalf("the sections have %d and %d sh blocks, want 3 (sign in, approve, more runs) and 2 (alice, carol)", len(quick), len(org))
	}
	work := t.TempDir()
	bin := filepath.Join(work, "bin", "embedgate")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dev := filepath.Join(work, ".dev")
	addr := startDevIn(t, dev).addr
	home := filepath.Join(work, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	sh := func(script string) *exec.Cmd {
		c := exec.Command("sh", "-c", script)
		c.Dir, c.Env = work, env
		return c
	}

	// The first run waits for the sign-in; the second block approves it.
	signIn := strings.Replace(quick[0], "go build -o bin/embedgate ./cmd/embedgate\n", "", 1)
	if signIn == quick[0] {
		t.Fatalf("the first block does not build bin/embedgate as expected:\n%s", quick[0])
	}
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	first := sh(signIn)
	first.Stdout, first.Stderr = stdout, stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Wait() }()
	testkit.Eventually(t, "the device code prompt", func() bool { return strings.Contains(stderr.String(), "enter the code") })
	if out, err := sh(quick[1]).CombinedOutput(); err != nil {
		t.Fatalf("the approval block: %v\n%s", err, out)
	}
	select {
	case err := <-firstDone:
		if err != nil {
			t.Fatalf("the sign-in block: %v\n%s\n%s", err, stdout, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("the sign-in block did not end")
	}
	for _, want := range []string{
		"Embed token for 1 item(s), signed in as alice@embedgate-demo.onmicrosoft.com\ntoken:      H4sI",
		"report:     a1000000-0000-4000-8000-000000000001  Sales\n  embed URL: https://app.powerbi.com/reportEmbed?reportId=a1000000-0000-4000-8000-000000000001&groupId=a0000000-0000-4000-8000-000000000001",
		`  {"datasets":[{"id":"d1000000-0000-4000-8000-000000000001"}],"reports":[{"id":"a1000000-0000-4000-8000-000000000001","allowEdit":false}]}`,
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the sign-in block's output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "sales.html")); err != nil {
		t.Errorf("no sales.html: %v", err)
	}

	more, err := sh(quick[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("the third block: %v\n%s", err, more)
	}
	for _, want := range []string{`"tokenType": "Embed"`, `\"identities\":[{\"username\":\"bob@acme.example\",\"roles\":[\"Customer\"]`,
		"by tenant acme's policy (tenants.acme) for user alice@acme.example", `"identities":[{"username":"alice@acme.example","roles":["Customer"],"customData":"acme"`} {
		if !strings.Contains(string(more), want) {
			t.Errorf("the third block's output lacks %q:\n%s", want, more)
		}
	}
	if strings.Contains(string(more), "enter the code") {
		t.Errorf("the runs after the first asked for a device code again")
	}

	grpcurl := os.Getenv("EMBEDGATE_TEST_GRPCURL")
	if grpcurl == "" {
		if os.Getenv("EMBEDGATE_CI") == "1" {
			t.Fatal("EMBEDGATE_TEST_GRPCURL is not set, and CI (EMBEDGATE_CI=1) requires this test: run it with make test")
		}
		t.Skip("EMBEDGATE_TEST_GRPCURL is not set (make test sets it): the organization section is not run")
	}
	for i, want := range [][]string{
		{`"accessToken": "eyJ`, `"name": "Sales"`, `"refreshTime"`},
		{"Code: Unauthenticated", `"reason": "USER_INTERACTION_REQUIRED"`, `\"polids\"`},
	} {
		block := org[i]
		if i == 1 {
			block = org[0][:strings.Index(org[0], "\n")+1] + block // G, from the first block
		}
		script := strings.ReplaceAll(strings.ReplaceAll(block, ".tools/grpcurl-v1.9.3/grpcurl", grpcurl), readmeGRPCAddr, addr)
		out, _ := sh(script).CombinedOutput() // the second fails, as printed
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("organization block %d: the output lacks %q:\n%s", i+1, w, out)
			}
		}
	}
}
