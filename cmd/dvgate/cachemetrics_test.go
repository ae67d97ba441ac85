package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shares returns each integration's dvgate_cache_integration_* samples of
// the shared cache: integration -> [bytes, entries, evictions].
func shares(t *testing.T, metrics string) map[string][3]float64 {
	t.Helper()
	out := map[string][3]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		for i, name := range []string{"dvgate_cache_integration_bytes{", "dvgate_cache_integration_entries{", "dvgate_cache_integration_evictions_total{"} {
			rest, ok := strings.CutPrefix(line, name)
			if !ok {
				continue
			}
			labels, value, _ := strings.Cut(rest, "} ")
			if !strings.Contains(labels, `cache="shared"`) {
				t.Errorf("%s: want cache=\"shared\" (no integration has a cache of its own)", line)
			}
			_, integ, _ := strings.Cut(labels, `integration="`)
			integ, _, _ = strings.Cut(integ, `"`)
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			s := out[integ]
			s[i] = v
			out[integ] = s
		}
	}
	return out
}

// TestCacheMetricsPerIntegration: in the cache shared by two integrations,
// a lookup raises only the gauges of the integration it was made for, an
// eviction is counted for the integration whose answer was evicted, and an
// integration removed from the config file loses its series. The budget
// (the config file's cacheBytes, 1200) holds one customer answer (about 850 bytes),
// so eu's answer must evict default's.
func TestCacheMetricsPerIntegration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu"})
	e.editConfig(func(cfg map[string]any) { cfg["cacheBytes"] = 1200 }) // DVGATE_CACHE_BYTES of a config file
	e.start()
	if v := metricValue(string(must(t, e.do("GET", "/metrics"), 200).body), "dvgate_cache_budget_bytes", `cache="shared"`); v != "1200" {
		t.Fatalf("dvgate_cache_budget_bytes{cache=shared} %s, want 1200", v)
	}
	scrape := func() string { return string(must(t, e.do("GET", "/metrics"), 200).body) }

	if diff := cmp.Diff(map[string][3]float64{"default": {}, "eu": {}}, shares(t, scrape())); diff != "" {
		t.Errorf("before any lookup (-want +got):\n%s", diff)
	}
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	m := scrape()
	got := shares(t, m)
	if d := got["default"]; d[0] < 500 || d[0] > 1200 || d[1] != 1 || d[2] != 0 {
		t.Errorf("default after its lookup: bytes, entries, evictions = %v; want one answer of 500 to 1200 bytes", d)
	}
	if diff := cmp.Diff([3]float64{}, got["eu"]); diff != "" {
		t.Errorf("eu after default's lookup (-want +got):\n%s", diff)
	}

	must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 200)
	// Ristretto evicts in its own goroutine: scrape until it did (each
	// scrape lets it run), within a bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = shares(t, scrape())
		if got["default"][2] > 0 || time.Now().After(deadline) {
			break
		}
	}
	if d, eu := got["default"], got["eu"]; d[2] != 1 || d[1] != 0 || d[0] != 0 || eu[2] != 0 || eu[1] != 1 || eu[0] < 500 {
		t.Errorf("after eu's lookup: default %v, eu %v (bytes, entries, evictions); want default's answer evicted for eu's", d, eu)
	}

	// eu removed from the config file: its series go.
	e.editConfig(func(cfg map[string]any) { delete(cfg["integrations"].(map[string]any), "eu") })
	e.tick()
	m = scrape()
	if strings.Contains(grepLines(m, "dvgate_cache"), `integration="eu"`) {
		t.Errorf("eu removed, but /metrics still has series of it:\n%s", grepLines(m, "dvgate_cache"))
	}
	if _, ok := shares(t, m)["default"]; !ok {
		t.Errorf("default's series went with eu's:\n%s", grepLines(m, "dvgate_cache_integration"))
	}
}

// TestOwnCacheBudget: an integration with cacheBytes of its own gets a
// cache of its own (its budget, its series with cache="own"), which the
// shared cache's lookups do not touch.
func TestOwnCacheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "solo"})
	e.setIntegration("solo", map[string]any{"cacheBytes": "2MiB"})
	e.start()
	must(t, e.do("GET", "/v1/integrations/solo/customers?email="+alex), 200)
	m := string(must(t, e.do("GET", "/metrics"), 200).body)
	for _, tc := range []struct {
		name   string
		labels []string
		want   func(float64) bool
	}{
		{"dvgate_cache_budget_bytes", []string{`cache="own"`, `integration="solo"`}, func(v float64) bool { return v == 2<<20 }},
		{"dvgate_cache_budget_bytes", []string{`cache="shared"`}, func(v float64) bool { return v == 64<<20 }},
		{"dvgate_cache_integration_bytes", []string{`cache="own"`, `integration="solo"`}, func(v float64) bool { return v > 500 }},
		{"dvgate_cache_integration_entries", []string{`cache="own"`, `integration="solo"`}, func(v float64) bool { return v == 1 }},
		{"dvgate_cache_integration_bytes", []string{`cache="shared"`, `integration="default"`}, func(v float64) bool { return v == 0 }},
	} {
		s := metricValue(m, tc.name, tc.labels...)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !tc.want(v) {
			t.Errorf("%s%v = %q", tc.name, tc.labels, s)
		}
	}
	if strings.Contains(m, `dvgate_cache_integration_bytes{cache="shared",integration="solo"}`) {
		t.Errorf("solo, with a cache of its own, has a share of the shared cache:\n%s", grepLines(m, "dvgate_cache"))
	}
}
