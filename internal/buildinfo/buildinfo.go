// Package buildinfo says which build of dvgate is running: the module
// version, the VCS revision and the Go version, from the binary's own
// build information (runtime/debug.ReadBuildInfo), for `dvgate version`
// and the dvgate_build_info metric.
package buildinfo

import (
	"runtime/debug"
	"strings"

	"github.com/dvgate/dvgate/dataverse"
)

// Info describes one build. Fields that the build did not record are "".
type Info struct {
	// Version is the release version: set at link time
	// (-ldflags "-X github.com/dvgate/dvgate/dataverse.version=v1.2.3"),
	// else the main module's version (go install ...@v1.2.3, or a VCS
	// pseudo-version), else "dev".
	Version string
	// Revision is the VCS commit the binary was built from, with
	// "-modified" when the work tree had uncommitted changes; "" when VCS
	// stamping was off (go run, go test, -buildvcs=false).
	Revision  string
	GoVersion string // e.g. go1.26.8
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return From(bi, dataverse.Version())
}

// From builds Info from a binary's build information (nil when it has
// none) and the link-time version ("dev" when not set).
func From(bi *debug.BuildInfo, linked string) Info {
	out := Info{Version: linked}
	if bi == nil {
		if out.Version == "" {
			out.Version = "dev"
		}
		return out
	}
	out.GoVersion = bi.GoVersion
	if (out.Version == "" || out.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		out.Version = bi.Main.Version
	}
	if out.Version == "" {
		out.Version = "dev"
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if out.Revision != "" && modified {
		out.Revision += "-modified"
	}
	return out
}

// String is the line `dvgate version` prints:
// "dvgate v1.2.3 (revision 0123abc, go1.26.8)".
func (i Info) String() string {
	var extra []string
	if i.Revision != "" {
		extra = append(extra, "revision "+i.Revision)
	}
	if i.GoVersion != "" {
		extra = append(extra, i.GoVersion)
	}
	if len(extra) == 0 {
		return "dvgate " + i.Version
	}
	return "dvgate " + i.Version + " (" + strings.Join(extra, ", ") + ")"
}
