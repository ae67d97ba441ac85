package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/bench"
	"github.com/google/go-cmp/cmp"
)

// TestSmoke runs both scenarios briefly in-process so the harness does not
// rot: requests are served with zero errors, the baselines run, and every
// figure the report needs is printed.
func TestSmoke(t *testing.T) {
	t.Parallel()
	t.Run("mix json", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		if code := run(t.Context(), []string{"--inprocess", "-scenario", "mix", "-c", "4", "-d", "1s", "-latency", "1ms", "-json"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var rep bench.LoadReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		var names []string
		for _, r := range rep.Runs {
			names = append(names, r.Name)
			if r.Requests == 0 || r.Errors != 0 || r.Upstream <= 0 {
				t.Errorf("%s: %d requests, %d errors (%s), %d upstream", r.Name, r.Requests, r.Errors, r.FirstError, r.Upstream)
			}
		}
		if diff := cmp.Diff([]string{"sidecar", "baseline-naive"}, names); diff != "" {
			t.Errorf("runs (-want +got):\n%s", diff)
		}
		if rep.PeakRSSMB <= 0 || rep.TokensSinceStart < 1 {
			t.Errorf("peak RSS %v MiB, %d token requests", rep.PeakRSSMB, rep.TokensSinceStart)
		}
	})
	t.Run("hit text", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		if code := run(t.Context(), []string{"--inprocess", "-scenario", "hit", "-c", "4", "-d", "1s", "-rounds", "2", "-wrk", "off"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		s := out.String()
		for _, want := range []string{"[sidecar]", "[baseline-fixed]", "requests/s:", "latency p50/p90/p99/max:", "errors:                  0",
			"upstream requests:       0", "token requests:", "peak RSS:", "wrk figures skipped"} {
			if !strings.Contains(s, want) {
				t.Errorf("output lacks %q:\n%s", want, s)
			}
		}
	})
}

func TestParseWrk(t *testing.T) {
	t.Parallel()
	const out = `Running 3s test @ http://127.0.0.1:40000/v1/orders/ORD-01001-B2K9P7
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.20ms    8.10ms 119.57ms   95.12%
    Req/Sec    12.50k     1.20k   15.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.50ms
     90%   32.19ms
     99%    1.02s
  74576 requests in 3.00s, 80.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  24835.12
Transfer/sec:     26.70MB
`
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := bench.LoadRun{RPS: 24835.12, P50Ms: 0.85, P90Ms: 32.19, P99Ms: 1020, MaxMs: 119.57, Requests: 74576, Errors: 7}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseWrk (-want +got):\n%s", diff)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk accepted output without Requests/sec")
	}
}

func TestMetricsSum(t *testing.T) {
	t.Parallel()
	m := parseMetrics(strings.NewReader(`# HELP dvgate_upstream_calls_total x
# TYPE dvgate_upstream_calls_total counter
dvgate_upstream_calls_total{integration="default",kind="customer",outcome="ok"} 12
dvgate_upstream_calls_total{integration="default",kind="order",outcome="not_found"} 3
dvgate_upstream_calls_total_other 100
process_resident_memory_bytes 4.5e+07
`))
	if got := m.sum("dvgate_upstream_calls_total"); got != 15 {
		t.Errorf("upstream calls = %v, want 15", got)
	}
	if got := m.sum("process_resident_memory_bytes"); got != 45e6 {
		t.Errorf("RSS = %v, want 4.5e7", got)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},                                  // neither target
		{"--inprocess", "-url", "http://x"}, // both
		{"-url", "http://x", "-baseline", "naive"}, // naive needs the simulator
		{"--inprocess", "-scenario", "soak"},
		{"--inprocess", "-c", "0"},
	} {
		var errOut bytes.Buffer
		if code := run(t.Context(), args, &bytes.Buffer{}, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}
