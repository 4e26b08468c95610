package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProductionBuild: the production build (-tags production, what the
// image and the release binaries are) contains neither the emulator nor the
// dev PKI, and its binary says so when asked for the dev commands.
func TestProductionBuild(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	deps, err := exec.Command(goBin, "list", "-deps", "-tags", "production", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, deps)
	}
	for _, left := range []string{"github.com/embedgate/embedgate/emulator", "github.com/embedgate/embedgate/internal/devpki"} {
		for _, dep := range strings.Fields(string(deps)) {
			if dep == left {
				t.Errorf("the production build imports %s", left)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "embedgate")
	if out, err := exec.Command(goBin, "build", "-tags", "production", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"serve", "--dev"}, {"emulator"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not available in this production build") {
			t.Errorf("embedgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "build:  production") {
		t.Errorf("embedgate version: %v\n%s", err, out)
	}
	if out, _ := exec.Command(bin, "help").CombinedOutput(); !strings.Contains(string(out), "This is a production build") {
		t.Errorf("embedgate help does not say what the build leaves out:\n%s", out)
	}
}
