package main

import (
	"context"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the first sample of /metrics matching
// name and every label given ("" when there is none).
func metricValue(metrics, name string, labels ...string) string {
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(rest, l)
		}
		if all {
			return rest[strings.LastIndexByte(rest, ' ')+1:]
		}
	}
	return ""
}

// TestBuildInfoAndCacheMetrics: dvgate version and dvgate_build_info say
// the Go version; the shared cache's gauges follow a lookup.
func TestBuildInfoAndCacheMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu"})
	m := e.main("version")
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := e.stdout.String(); !regexp.MustCompile(`^dvgate \S+ \(.*` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`).MatchString(out) {
		t.Errorf("dvgate version printed %q, want the version and %s", out, runtime.Version())
	}
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 200)
	metrics := string(must(t, e.do("GET", "/metrics"), 200).body)
	if v := metricValue(metrics, "dvgate_build_info", `goversion="`+runtime.Version()+`"`); v != "1" {
		t.Errorf("dvgate_build_info with goversion %s: %q", runtime.Version(), v)
	}
	if v := metricValue(metrics, "dvgate_cache_budget_bytes", `cache="shared"`); v != "6.7108864e+07" {
		t.Errorf("dvgate_cache_budget_bytes{cache=shared} = %q, want 64 MiB (one budget for both integrations)", v)
	}
	if n := strings.Count(metrics, "dvgate_cache_budget_bytes{"); n != 1 {
		t.Errorf("%d caches for two integrations, want one shared", n)
	}
	// Ristretto applies sets asynchronously: the entries may not be
	// counted yet, but the gauges exist.
	for _, name := range []string{"dvgate_cache_bytes", "dvgate_cache_entries", "dvgate_cache_evictions_total"} {
		v := metricValue(metrics, name, `cache="shared"`)
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("%s{cache=shared} = %q", name, v)
		}
	}
}
