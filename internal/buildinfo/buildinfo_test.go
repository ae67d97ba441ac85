package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrom(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205101500-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name   string
		bi     *debug.BuildInfo
		linked string
		want   Info
		line   string
	}{
		{"no build info", nil, "dev", Info{Version: "dev"}, "dvgate dev"},
		{"go run", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "dev",
			Info{Version: "dev", GoVersion: "go1.26.8"}, "dvgate dev (go1.26.8)"},
		{"VCS stamped", stamped, "dev",
			Info{Version: "v0.0.0-20261205101500-0123456789ab+dirty", Revision: "0123456789abcdef-modified", GoVersion: "go1.26.8"},
			"dvgate v0.0.0-20261205101500-0123456789ab+dirty (revision 0123456789abcdef-modified, go1.26.8)"},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, "v1.4.1",
			Info{Version: "v1.4.1", Revision: "abc", GoVersion: "go1.26.8"}, "dvgate v1.4.1 (revision abc, go1.26.8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := From(tc.bi, tc.linked)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("From (-want +got):\n%s", diff)
			}
			if s := got.String(); s != tc.line {
				t.Errorf("String() = %q, want %q", s, tc.line)
			}
		})
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	if got := Read(); got.GoVersion != runtime.Version() || got.Version == "" {
		t.Errorf("Read() = %+v, want the running Go version %s and a version", got, runtime.Version())
	}
}
