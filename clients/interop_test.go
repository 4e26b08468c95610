// Package clients_test runs the TypeScript and Python clients' test suites,
// and the README's per-language snippets, against the real server: the
// embedgate binary in dev mode (clients/internal/devserver), over mTLS.
//
// Each needs a tool from outside Go (node and the npm packages of
// clients/ts; Debian's python3 with python3-grpcio and python3-protobuf),
// which `make test` installs. Without it a test skips with a message, except
// under EMBEDGATE_CI=1 (CI), where it fails.
package clients_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/clients/internal/devserver"
)

func TestMain(m *testing.M) { devserver.Main(m) }

// missing skips the test, or fails it in CI, for want of a tool.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("EMBEDGATE_CI") == "1" {
		t.Fatalf(format+" (EMBEDGATE_CI=1: required)", args...)
	}
	t.Skipf(format+": skipping (EMBEDGATE_CI=1 makes this a failure)", args...)
}

// tsDir is the TypeScript client's package.
const tsDir = "ts"

// node returns node's path and builds the TypeScript client (dist/, and
// build/ with the tests), or skips.
func node(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(tsDir, "node_modules", ".bin", "tsc")); err != nil {
		missing(t, "clients/ts/node_modules is not installed (npm ci in clients/ts)")
	}
	tsBuild.do(t, func() error {
		for _, cfg := range []string{"tsconfig.json", "tsconfig.test.json"} {
			if out, err := command(context.Background(), tsDir, nil, node, "node_modules/typescript/bin/tsc", "-p", cfg); err != nil {
				return errors.New("tsc -p " + cfg + ": " + err.Error() + "\n" + out)
			}
		}
		return nil
	})
	return node
}

var tsBuild once

// once runs a build once per test process and remembers its error.
type once struct {
	mu   sync.Mutex
	done bool
	err  error
}

func (o *once) do(t *testing.T, f func() error) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		o.done, o.err = true, f()
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
}

// python returns a python3 that can import grpc and google.protobuf (the
// Makefile names Debian's in EMBEDGATE_TEST_PYTHON), or skips.
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("EMBEDGATE_TEST_PYTHON"), "/usr/bin/python3", "python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import grpc, google.protobuf").CombinedOutput()
		if err == nil {
			return path
		}
		t.Logf("%s cannot import grpc and google.protobuf: %s", path, bytes.TrimSpace(out))
	}
	missing(t, "no python3 with grpcio and protobuf (Debian: python3-grpcio python3-protobuf)")
	return ""
}

// command runs name in dir with env added, and returns its combined output.
func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestTypeScriptClient runs clients/ts/test with node's test runner.
func TestTypeScriptClient(t *testing.T) {
	node := node(t)
	s := devserver.Start(t)
	out, err := command(timeout(t, 3*time.Minute), tsDir, s.Env(), node, "--test", "build/test/client.test.js")
	if err := devserver.CheckNoSecrets(out); err != nil {
		t.Fatalf("node --test printed a secret: %v", err)
	}
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", lastLines(out, 12))
}

// TestPythonClient runs clients/python/tests with unittest.
func TestPythonClient(t *testing.T) {
	py := python(t)
	s := devserver.Start(t)
	env := append(s.Env(), "PYTHONPATH=src", "PYTHONDONTWRITEBYTECODE=1")
	out, err := command(timeout(t, 3*time.Minute), "python", env, py, "-m", "unittest", "discover", "-v", "-s", "tests", "-t", ".")
	if err := devserver.CheckNoSecrets(out); err != nil {
		t.Fatalf("python -m unittest printed a secret: %v", err)
	}
	if err != nil {
		t.Fatalf("python -m unittest: %v\n%s", err, out)
	}
	t.Logf("python -m unittest:\n%s", lastLines(out, 16))
}

// apiVersion is clients/VERSION, the version of every client package.
func apiVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestTypeScriptPackage: what `npm pack` would publish holds the built
// client, its types and the generated code, at the API's version.
func TestTypeScriptPackage(t *testing.T) {
	node(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing(t, "npm is not on PATH")
	}
	out, err := command(timeout(t, time.Minute), tsDir, nil, npm, "pack", "--dry-run", "--json", "--loglevel=error")
	if err != nil {
		t.Fatalf("npm pack --dry-run: %v\n%s", err, out)
	}
	var packs []struct {
		Name, Version string
		Files         []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(out), &packs); err != nil || len(packs) != 1 {
		t.Fatalf("npm pack --json printed %q: %v", out, err)
	}
	if packs[0].Name != "@embedgate/client" || packs[0].Version != apiVersion(t) {
		t.Errorf("package %s@%s, want @embedgate/client@%s", packs[0].Name, packs[0].Version, apiVersion(t))
	}
	files := map[string]bool{}
	for _, f := range packs[0].Files {
		files[f.Path] = true
	}
	for _, want := range []string{"package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/gen/embedgate/v1/embed_token_pb.js", "dist/gen/google/rpc/error_details_pb.d.ts", "dist/gen/buf/validate/validate_pb.js"} {
		if !files[want] {
			t.Errorf("the package lacks %s", want)
		}
	}
	for f := range files {
		if strings.HasPrefix(f, "build/") || strings.HasPrefix(f, "test/") || strings.HasPrefix(f, "node_modules/") {
			t.Errorf("the package holds %s", f)
		}
	}
}

// TestPythonPackage builds the wheel from pyproject.toml (offline, with
// Debian's setuptools), installs it into a folder of its own and imports
// the client from there.
func TestPythonPackage(t *testing.T) {
	py := python(t)
	if out, err := exec.Command(py, "-c", "import setuptools, wheel, pip").CombinedOutput(); err != nil {
		missing(t, "%s cannot build a wheel (Debian: python3-pip python3-setuptools python3-wheel): %s", py, bytes.TrimSpace(out))
	}
	src, dist := filepath.Join(t.TempDir(), "python"), t.TempDir()
	if err := os.CopyFS(src, os.DirFS("python")); err != nil {
		t.Fatal(err)
	}
	env := []string{"PYTHONDONTWRITEBYTECODE=1", "PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1"}
	if out, err := command(timeout(t, 2*time.Minute), src, env, py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, "."); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	wheel := filepath.Join(dist, "embedgate_client-"+apiVersion(t)+"-py3-none-any.whl")
	zr, err := zip.OpenReader(wheel)
	if err != nil {
		t.Fatalf("the wheel: %v", err)
	}
	defer zr.Close()
	files := map[string]bool{}
	for _, f := range zr.File {
		files[f.Name] = true
	}
	for _, want := range []string{
		"embedgate_client/__init__.py", "embedgate_client/py.typed",
		"embedgate/v1/embed_token_pb2.py", "embedgate/v1/embed_token_pb2.pyi", "embedgate/v1/embed_token_pb2_grpc.py", "embedgate/v1/reason_pb2.py",
		"buf/validate/validate_pb2.py", "embedgate_client/_googleapis/google/rpc/error_details_pb2.py",
	} {
		if !files[want] {
			t.Errorf("the wheel lacks %s", want)
		}
	}
	site := t.TempDir()
	if out, err := command(timeout(t, time.Minute), site, env, py, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel); err != nil {
		t.Fatalf("pip install --target: %v\n%s", err, out)
	}
	out, err := command(timeout(t, time.Minute), t.TempDir(), append(env, "PYTHONPATH="+site), py, "-c",
		"import embedgate_client as eg; print(eg.__version__, eg.Reason.Name(eg.Reason.CALLER_RATE_LIMITED))")
	if err != nil || strings.TrimSpace(out) != apiVersion(t)+" CALLER_RATE_LIMITED" {
		t.Errorf("importing the client from the wheel: %v\n%s", err, out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
