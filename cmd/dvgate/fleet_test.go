package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/fleet/redistest"
)

// TestFleetReplicas runs two dvgate servers on one config file with a
// "redis" section, as two replicas would: a lookup answered by one is a hit
// on the other without a second Dataverse request, and the shared level
// shows in /metrics.
func TestFleetReplicas(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	e := newEnv(t)
	// opTimeout: the CI machine is shared; at the default 50 ms a loaded
	// moment makes a replica go on without Redis (fail open), by design.
	e.editConfig(func(cfg map[string]any) {
		cfg["redis"] = map[string]string{"url": rs.URL, "prefix": "dvgate-test", "opTimeout": "2s"}
	})

	var bases []string
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	for range 2 {
		m := e.main("serve", "--listen", "127.0.0.1:0")
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Error(err)
			}
		})
		bases = append(bases, "http://"+m.Addr())
	}
	const alex = "alex.wu%40example.com"
	r := must(t, doReq(t, client, "GET", bases[0]+"/v1/customers?email="+alex), 200)
	if got := r.header.Get("X-Cache"); got != "miss" {
		t.Fatalf("first replica: X-Cache %q, want miss", got)
	}
	r = must(t, doReq(t, client, "GET", bases[1]+"/v1/customers?email="+alex), 200)
	if got := r.header.Get("X-Cache"); got != "hit" {
		t.Fatalf("second replica: X-Cache %q, want hit (from Redis)", got)
	}
	n := 0
	for _, req := range e.sim.Requests() {
		if !strings.HasSuffix(req.Path, "/WhoAmI") { // each replica's readiness check
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Dataverse requests for one customer on two replicas, want 1", n)
	}
	metrics := string(must(t, doReq(t, client, "GET", bases[1]+"/metrics"), 200).body)
	if !strings.Contains(metrics, `dvgate_redis_ops_total{op="get",outcome="hit"} 1`) {
		t.Errorf("metrics lack the Redis hit:\n%s", grepLines(metrics, "dvgate_redis"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
