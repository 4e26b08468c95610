package clients_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/clients/internal/devserver"
)

// readmeAddr is the address the README's snippets call (`make run`'s); the
// test puts the address of its own server in its place, and nothing else.
const readmeAddr = "127.0.0.1:8443"

var fence = regexp.MustCompile("(?ms)^```(go|ts|python)\n(.*?)^```\n")

// readmeSnippets returns the code blocks of the README's section "Calling
// Embedgate from a service", by language.
func readmeSnippets(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Calling Embedgate from a service\n")
	if start < 0 {
		t.Fatal(`README.md has no section "Calling Embedgate from a service"`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	snippets := map[string]string{}
	for _, m := range fence.FindAllStringSubmatch(section, -1) {
		if _, dup := snippets[m[1]]; dup {
			t.Fatalf("the section has two %s snippets", m[1])
		}
		if strings.Count(m[2], readmeAddr) != 1 {
			t.Fatalf("the %s snippet names %s %d times, want once", m[1], readmeAddr, strings.Count(m[2], readmeAddr))
		}
		snippets[m[1]] = m[2]
	}
	for _, lang := range []string{"go", "ts", "python"} {
		if snippets[lang] == "" {
			t.Fatalf("the section has no %s snippet", lang)
		}
	}
	return snippets
}

// TestREADMESnippets runs each language's snippet as printed, from a folder
// whose .dev is the dev folder of a real server, as `make run` leaves it.
func TestREADMESnippets(t *testing.T) {
	snippets := readmeSnippets(t)
	s := devserver.Start(t)
	work := t.TempDir()
	if err := os.Symlink(s.Dir, filepath.Join(work, ".dev")); err != nil {
		t.Fatal(err)
	}
	code := func(lang string) string { return strings.Replace(snippets[lang], readmeAddr, s.Addr, 1) }
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// check runs a compiled snippet from the work folder: it must print the
	// report's embed URL, and no secret.
	check := func(t *testing.T, name string, args ...string) {
		t.Helper()
		out, err := command(timeout(t, 2*time.Minute), work, nil, name, args...)
		if err := devserver.CheckNoSecrets(out); err != nil {
			t.Fatalf("the snippet printed a secret: %v", err)
		}
		if err != nil || !strings.Contains(out, "/reportEmbed?reportId="+devserver.SalesReport) {
			t.Fatalf("the snippet: %v\n%s\nwant the report's embed URL", err, out)
		}
	}

	t.Run("go", func(t *testing.T) {
		// A module of its own that uses this repository through a workspace,
		// as a service depending on this module would.
		mod := t.TempDir()
		files := map[string]string{
			"go.mod":  "module readme\n\ngo 1.26.0\n",
			"go.work": "go 1.26.0\n\nuse (\n\t.\n\t" + repo + "\n)\n",
			"main.go": code("go"),
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(mod, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		bin := filepath.Join(mod, "snippet")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = mod
		build.Env = append(os.Environ(), "GOWORK="+filepath.Join(mod, "go.work"), "GOFLAGS=-mod=readonly")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build of the Go snippet: %v\n%s", err, out)
		}
		vet := exec.Command("go", "vet", ".")
		vet.Dir, vet.Env = mod, build.Env
		if out, err := vet.CombinedOutput(); err != nil {
			t.Fatalf("go vet of the Go snippet: %v\n%s", err, out)
		}
		check(t, bin)
	})

	t.Run("ts", func(t *testing.T) {
		node := node(t)
		// Inside the package, "@embedgate/client" resolves to the package
		// itself (its exports), for tsc and node alike.
		dir := filepath.Join(tsDir, "build", "readme")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "snippet.ts"), []byte(code("ts")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := command(timeout(t, 2*time.Minute), tsDir, nil, node, "node_modules/typescript/bin/tsc",
			"--strict", "--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext",
			"--types", "node", "--skipLibCheck", "--rootDir", "build/readme", "--outDir", "build/readme/out", "build/readme/snippet.ts")
		if err != nil {
			t.Fatalf("tsc of the TypeScript snippet: %v\n%s", err, out)
		}
		js, err := filepath.Abs(filepath.Join(dir, "out", "snippet.js"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, node, js)
	})

	t.Run("python", func(t *testing.T) {
		py := python(t)
		script := filepath.Join(work, "snippet.py")
		if err := os.WriteFile(script, []byte(code("python")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PYTHONPATH", filepath.Join(repo, "clients", "python", "src"))
		t.Setenv("PYTHONDONTWRITEBYTECODE", "1")
		check(t, py, script)
	})
}
