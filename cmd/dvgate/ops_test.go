package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestHTTPSemantics: a wrong method on a known path is 405 with Allow; a
// cached "not found" says so; an unencoded '+' in an email gets a hint;
// malformed percent-encoding is answered as such; an error names the
// parameter the caller sent.
func TestHTTPSemantics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	raw := func(method, path string) result {
		t.Helper()
		req, err := http.NewRequest(method, e.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{resp.StatusCode, resp.Header, b}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/customers?email=" + alex, "GET, HEAD"},
		{"GET", "/v1/test", "POST"},
		{"DELETE", "/v1/integrations/default/orders/" + orderNum, "GET, HEAD"},
		{"POST", "/openapi.json", "GET, HEAD"},
	} {
		r := raw(tc.method, tc.path)
		code, msg, _ := errorOf(t, r)
		if r.status != 405 || r.header.Get("Allow") != tc.allow || code != "invalid_input" || !strings.Contains(msg, tc.allow) {
			t.Errorf("%s %s: %d Allow %q %s %q, want 405 Allow %q", tc.method, tc.path, r.status, r.header.Get("Allow"), code, msg, tc.allow)
		}
	}
	if r := raw("GET", "/v1/nothing"); r.status != 404 || r.header.Get("Allow") != "" {
		t.Errorf("GET /v1/nothing: %d Allow %q, want 404", r.status, r.header.Get("Allow"))
	}

	// "Not found" twice: from Dataverse, then from the cache.
	for i, want := range []string{"miss", "hit"} {
		r := must(t, e.do("GET", "/v1/customers?email=nobody@example.com"), 404)
		if got := r.header.Get("X-Cache"); got != want || r.header.Get("Age") == "" {
			t.Errorf("not found #%d: X-Cache %q Age %q, want %q and an Age", i+1, got, r.header.Get("Age"), want)
		}
	}
	for i, want := range []string{"miss", "hit"} {
		r := must(t, e.do("GET", "/v1/orders/ORD-99999-ZZZZZZ"), 404)
		if got := r.header.Get("X-Cache"); got != want {
			t.Errorf("order not found #%d: X-Cache %q, want %q", i+1, got, want)
		}
	}

	for _, tc := range []struct{ path, want, notWant string }{
		{"/v1/customers?email=sam+orders@example.com", "%2B", ""},
		{"/v1/orders/" + orderNum + "?email=sam+orders@example.com", "%2B", ""},
		{"/v1/customers?email=alex%zz@example.com", `not valid percent-encoding: "%zz"`, "required"},
		{"/v1/customers?email=alex@example.com%", `"%"`, "required"},
		{"/v1/refunds?order=%00", "The order is not valid", "ref"},
	} {
		r := raw("GET", tc.path)
		code, msg, _ := errorOf(t, r)
		if r.status != 400 || code != "invalid_input" || !strings.Contains(msg, tc.want) || (tc.notWant != "" && strings.Contains(msg, tc.notWant)) {
			t.Errorf("GET %s: %d %s %q, want 400 with %q", tc.path, r.status, code, msg, tc.want)
		}
	}
}

// TestCLI: help and --version answer on stdout; lookup's five kinds with
// --mode and --integration print JSON; its exit status tells found (0),
// not found (3), error (1) and usage (2) apart.
func TestCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "bad", secretEnv: "BAD"})
	e.vars["BAD"] = "wrong"
	var mu sync.Mutex // the runs share e.stdout
	run := func(args ...string) (string, int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		e.stdout.mu.Lock()
		e.stdout.b.Reset()
		e.stdout.mu.Unlock()
		m := e.main(args...)
		err := m.Run(context.Background())
		if cerr := m.Close(); cerr != nil {
			t.Error(cerr)
		}
		code := 0
		var ee exitError
		switch {
		case errors.As(err, &ee):
			code = ee.status()
		case err != nil:
			code = exitFailed
		}
		return e.stdout.String(), code
	}
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"help"}, 0, []string{"Usage:", "dvgate help [COMMAND]", "Exit status: 0 done", "3 a lookup found nothing", "-integration"}},
		{[]string{"--help"}, 0, []string{"Usage:", "Examples:"}},
		{[]string{"help", "lookup"}, 0, []string{"dvgate lookup recent EMAIL", "Exit status: 0 found, 3 not found", "-mode", "-limit"}},
		{[]string{"lookup", "--help"}, 0, []string{"dvgate lookup refunds"}},
		{[]string{"--version"}, 0, []string{"dvgate ", runtime.Version()}},
		{[]string{"lookup", "customer", alex}, 0, []string{`"name": "Alex Wu"`}},
		{[]string{"lookup", "customer", alex, "--mode", "accounts"}, exitNotFound, []string{`"code": "not_found"`}},
		{[]string{"lookup", "customer", alex, "--mode", "contacts", "--integration", "default"}, 0, []string{`"type": "contact"`}},
		{[]string{"lookup", "order", orderNum}, 0, []string{`"status": "Submitted / In Progress"`}},
		{[]string{"lookup", "order", "ORD-99999-XXXXXX"}, exitNotFound, []string{`"code": "not_found"`}},
		{[]string{"lookup", "recent", alex, "--limit", "2"}, 0, []string{`"customer": {`, `"orders": [`}},
		{[]string{"lookup", "recent", "nobody@example.com"}, exitNotFound, []string{`"code": "not_found"`}},
		{[]string{"lookup", "refunds", orderNum}, 0, []string{`"refunds": []`, `"source": "none"`}},
		{[]string{"lookup", "refunds", "ORD-\x00"}, exitFailed, []string{`"code": "invalid_input"`, "The order is not valid"}},
		{[]string{"lookup", "order", orderNum, "--integration", "bad"}, exitFailed, []string{`"code": "auth"`}},
		{[]string{"help", "lookup"}, 0, []string{"dvgate lookup summary EMAIL", "--customer contact|account/GUID", "-wait"}},
		{[]string{"lookup", "summary", alex}, 0, []string{`"summary": {`, `"totalSpent": {`, `"count": `, `"type": "contact"`}},
		{[]string{"lookup", "summary", "nobody@example.com"}, exitNotFound, []string{`"code": "not_found"`}},
		{[]string{"lookup", "summary", alex, "--mode", "accounts"}, exitNotFound, []string{`"code": "not_found"`}},
		{[]string{"lookup", "summary", "--customer", "account/" + contoso}, 0,
			[]string{`"name": "Contoso Pharmaceuticals"`, `"amount": "24154.9183"`, `"formatted": "$24,154.92"`, `"open": 1`, `"stale": false`}},
		{[]string{"lookup", "summary", "--customer", "lead/" + contoso}, exitFailed, []string{`"code": "invalid_input"`}},
	}
	for _, tc := range tests {
		out, code := run(tc.args...)
		if code != tc.code {
			t.Errorf("dvgate %s: exit %d, want %d; stdout:\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("dvgate %s: stdout lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	for _, args := range [][]string{{"help", "frobnicate"}, {"lookup", "summary"}, {"lookup", "summary", alex, "--customer", "contact/" + contoso},
		{"lookup", "order", "x", "--customer", "contact/" + contoso}, {"lookup", "summary", "--customer", contoso},
		{"lookup", "summary", "--customer", "account/" + contoso, "--mode", "accounts"}, {"lookup", "summary", alex, "--wait", "-1s"},
		{"lookup", "order", "x", "--mode", "contacts"},
		{"lookup", "recent", alex, "--limit", "0"}, {"lookup", "customer", alex, "--mode", "leads"}} {
		m := &Main{Stdout: e.stdout, Stderr: e.stderr, Getenv: func(string) string { return "" }}
		if err := m.ParseFlags(args); err == nil {
			t.Errorf("ParseFlags(%q) accepted (want a usage error, exit %d)", args, exitUsage)
		}
	}
}

// TestMakeHelp: every make target has a "## description", so make help
// lists it, and the README names it.
func TestMakeHelp(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?m)^([a-z][a-z-]*):`)
	described := regexp.MustCompile(`(?m)^([a-z][a-z-]*):.*## \S`)
	n := 0
	for _, m := range target.FindAllStringSubmatch(string(mk), -1) {
		n++
		name := m[1]
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:.*## \S`).Match(mk) {
			t.Errorf("make target %s has no ## description: make help does not list it", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") && !strings.Contains(string(readme), "make "+name) {
			t.Errorf("make target %s is not named in the README", name)
		}
	}
	if n < 10 || len(described.FindAllString(string(mk), -1)) != n {
		t.Errorf("found %d targets in the Makefile, %d described", n, len(described.FindAllString(string(mk), -1)))
	}
}

// TestKnobsApplied: a TTL from the config file reaches the gateway: with
// customerTTL 10m a customer answer is still fresh after 6 minutes (the
// default, 5m, would ask Dataverse again), and with orderTTL 10s an order
// is not fresh after 30s.
func TestKnobsApplied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setIntegration("default", map[string]any{"customerTTL": "10m", "orderTTL": "10s"})

	var mu sync.Mutex
	now := time.Now()
	m := e.main("serve", "--listen", "127.0.0.1:0")
	m.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.m, e.client, e.base = m, &http.Client{Transport: &http.Transport{}}, "http://"+m.Addr()
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	must(t, e.do("GET", "/v1/orders/"+orderNum), 200)
	mu.Lock()
	now = now.Add(6 * time.Minute)
	mu.Unlock()
	if got := must(t, e.do("GET", "/v1/customers?email="+alex), 200).header.Get("X-Cache"); got != "hit" {
		t.Errorf("customer after 6m with customerTTL 10m: X-Cache %q, want hit", got)
	}
	if got := must(t, e.do("GET", "/v1/orders/"+orderNum), 200).header.Get("X-Cache"); got != "miss" {
		t.Errorf("order after 6m with orderTTL 10s: X-Cache %q, want miss", got)
	}
}
