package bench

import (
	"fmt"
	"sort"
	"strings"
)

// LoadReport is everything one cmd/dvgate-load invocation measured; its
// JSON form (dvgate-load -json) is what bench/report reads.
type LoadReport struct {
	Scenario          string    `json:"scenario"`
	Target            string    `json:"target"`
	Clients           int       `json:"clients"`
	CPUs              int       `json:"cpus"`
	GoVersion         string    `json:"go_version"`
	InjectedLatencyMs float64   `json:"injected_latency_ms,omitempty"`
	Workload          string    `json:"workload,omitempty"`
	BodyBytes         int       `json:"body_bytes,omitempty"`
	Runs              []LoadRun `json:"runs"`
	// TokensSinceStart counts token requests since the simulator started
	// (in-process only; includes the sidecar's first sign-in and the naive
	// baseline's own connection).
	TokensSinceStart int64    `json:"tokens_since_start,omitempty"`
	PeakRSSMB        float64  `json:"peak_rss_mb"`
	RSSSource        string   `json:"rss_source,omitempty"`
	Notes            []string `json:"notes,omitempty"`
}

// LoadRun is one measured run of cmd/dvgate-load.
type LoadRun struct {
	Name     string  `json:"name"` // "sidecar", "baseline-fixed", "baseline-naive"
	Tool     string  `json:"tool"` // which client produced the figures
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	Tickets  int64   `json:"tickets,omitempty"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Errors   int64   `json:"errors"`
	// Statuses counts HTTP statuses (naive: "found"/"not_found").
	Statuses map[string]int64 `json:"statuses,omitempty"`
	// CacheHits and CacheMisses count X-Cache answers (hit / miss, stale).
	CacheHits   int64 `json:"cache_hits,omitempty"`
	CacheMisses int64 `json:"cache_misses,omitempty"`
	// Upstream and Tokens are Dataverse Web API and Entra token requests
	// made during the run; -1 = not observable.
	Upstream int64 `json:"upstream"`
	Tokens   int64 `json:"tokens"`
	// FirstError describes the first error, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
}

// Counts writes counters as "k=v" pairs sorted by key ("200=130405 404=12").
func Counts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
