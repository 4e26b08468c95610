// Package buildinfo says which build of Embedgate is running: the version,
// commit and date that the release build stamps in with -ldflags -X, or,
// when a build was not stamped (go run, go build, go install), what the Go
// toolchain recorded itself (the module version, vcs.revision, vcs.time).
// `embedgate version` prints it, and a build-info metric can export it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Stamped by the Makefile's static build:
//
//	-X github.com/embedgate/embedgate/internal/buildinfo.version=v1.2.3
//	-X github.com/embedgate/embedgate/internal/buildinfo.commit=<40 hex digits>
//	-X github.com/embedgate/embedgate/internal/buildinfo.date=2026-12-01T10:00:00Z
var version, commit, date string

// Unknown stands for a field neither the linker flags nor the toolchain
// recorded.
const Unknown = "unknown"

// Info describes one build. No field is ever empty: what is not known is
// Unknown (or "dev" for the version).
type Info struct {
	// Version is the release (a semantic version tag such as v1.2.3), the
	// module version of a `go install module@version`, or "dev".
	Version string
	// Commit is the full git commit hash the binary was built from, with
	// "-dirty" appended when the work tree had uncommitted changes.
	Commit string
	// Date is when that commit was made (stamped builds, so that a rebuild
	// of the same commit is identical) or the vcs.time the toolchain
	// recorded, in RFC 3339, UTC.
	Date string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Get returns the running binary's build information.
func Get() Info {
	return resolve(version, commit, date, readBuildInfo())
}

// readBuildInfo is debug.ReadBuildInfo, nil when the binary has none.
func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// resolve prefers the stamped values and falls back, field by field, to the
// toolchain's record.
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if info.Commit == "" && settings["vcs.revision"] != "" {
			info.Commit = settings["vcs.revision"]
			if settings["vcs.modified"] == "true" {
				info.Commit += "-dirty"
			}
		}
		if info.Date == "" {
			info.Date = settings["vcs.time"]
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	if info.Date == "" {
		info.Date = Unknown
	}
	return info
}
