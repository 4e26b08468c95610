package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/embedgate/embedgate", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "3831866aaaabbbbccccddddeeeeffff000011112"},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"stamped wins over the toolchain's record", "v1.2.3", "abc", "2026-12-01T00:00:00Z", vcs,
			Info{"v1.2.3", "abc", "2026-12-01T00:00:00Z", "go1.26.8", platform}},
		{"go build in a git checkout", "", "", "", vcs,
			Info{"dev", "3831866aaaabbbbccccddddeeeeffff000011112-dirty", "2026-11-30T10:00:00Z", "go1.26.8", platform}},
		{"go install module@version", "", "", "", installed,
			Info{"v1.4.0", Unknown, Unknown, "go1.26.8", platform}},
		{"no build info at all", "", "", "", nil,
			Info{"dev", Unknown, Unknown, runtime.Version(), platform}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, resolve(tt.version, tt.commit, tt.date, tt.bi)); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGet: a test binary is not stamped, and its fields are never empty.
func TestGet(t *testing.T) {
	t.Parallel()
	got := Get()
	if got.Version == "" || got.Commit == "" || got.Date == "" || got.GoVersion != runtime.Version() {
		t.Errorf("Get() = %+v", got)
	}
}
