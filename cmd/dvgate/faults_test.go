package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// dnsSwitch is a dialer that, once failing is set, fails every dial the
// way the resolver fails a name that does not resolve, without any DNS
// query. Keep-alives are off so that every request dials.
type dnsSwitch struct{ failing atomic.Bool }

func (d *dnsSwitch) client(sim *dataversetest.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   sim.TLSConfig(),
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if d.failing.Load() {
				return nil, &net.OpError{Op: "dial", Net: network,
					Err: &net.DNSError{Err: "no such host", Name: "contoso.crm4.dynamics.com", IsNotFound: true}}
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		},
	}}
}

const (
	orderPath  = "/v1/orders/" + orderNum
	otherOrder = "/v1/orders/ORD-01002-A7AUCC"
)

// wrongContext is a well-formed answer to another question: system users
// instead of sales orders (a misrouted or proxied answer).
const wrongContext = `{"@odata.context":"https://other.crm.dynamics.com/api/data/v9.2/$metadata#systemusers(fullname)",` +
	`"value":[{"@odata.etag":"W/\"1\"","fullname":"SYSTEM","systemuserid":"2b8e4c9a-1111-4222-8333-944455566677"}]}`

// TestFaultMatrix drives Dataverse and Entra failures through the HTTP API
// of the real wiring. Each case states what the caller gets (status, code,
// X-Cache), how many requests reached Dataverse and Entra, and that the
// caller never waits much past its deadline. Cases with a stale entry look
// the order up once, then move the gateway's clock past the order
// freshness (1 min), so the entry may only be served on a transient error.
// retrySpan is the caller's timeout in the cases that wait for the
// connection's four attempts (backoff ~0.25 + 0.5 + 1 s, plus a new TLS
// connection after each reset): ample, so that a busy 2-core CI machine
// under -race does not turn "unavailable" into "timeout". The cases finish
// as soon as the attempts are spent.
const retrySpan = 12 * time.Second

func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	type fault = dataversetest.Fault
	sec := time.Second
	tests := []struct {
		name    string
		warm    bool // look the order up first, then let it go stale
		timeout time.Duration
		sim     dataversetest.Options
		dns     bool // run over a dnsSwitch, failing after warm-up
		// cold: tokens live 4 min, which MSAL never caches, so every
		// lookup signs in ("not signed in" without blocking start-up).
		cold   bool
		inject func(r *rig)
		path   string
		status int
		code   string // error code, or X-Cache for 200
		retry  int    // minimum Retry-After seconds (0: none expected)
		web    [2]int // min, max Web API requests after inject
		tokens int    // token requests after inject (-1: any)
		note   string
		then   func(t *testing.T, r *rig)
	}{
		{name: "429 storm, Retry-After 300s, stale entry", warm: true,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 429, RetryAfter: 300 * sec}) },
			status: 200, code: "stale", web: [2]int{1, 1},
			note: "the first 429 closes the gate; nothing reaches Dataverse inside the window",
			then: func(t *testing.T, r *rig) {
				before := r.counts()
				for range 3 {
					if res, _ := r.get(t, "GET", orderPath); res.status != 200 || res.header.Get("X-Cache") != "stale" {
						t.Errorf("repeat during the window: %d %s", res.status, res.header.Get("X-Cache"))
					}
				}
				// Another key, another table: the gate is per org.
				for _, p := range []string{otherOrder, "/v1/customers?email=" + alex} {
					res, _ := r.get(t, "GET", p)
					code, _, dv := errorOf(t, res)
					ra, _ := strconv.Atoi(res.header.Get("Retry-After"))
					if res.status != 503 || code != "throttled" || ra < 290 || dv != "0x80072322" {
						t.Errorf("cold %s during the window: %d %s %q Retry-After %d", p, res.status, code, dv, ra)
					}
				}
				if after := r.counts(); after.web != before.web {
					t.Errorf("%d requests reached Dataverse inside the Retry-After window", after.web-before.web)
				}
			}},
		{name: "429 storm, Retry-After 300s, no cached answer",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 429, RetryAfter: 300 * sec}) },
			status: 503, code: "throttled", retry: 295, web: [2]int{1, 1}},
		{name: "one 429, Retry-After 1s",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 429, RetryAfter: sec, Count: 1}) },
			status: 200, code: "miss", web: [2]int{2, 2}, note: "retried once the window has passed",
			then: func(t *testing.T, r *rig) {
				reqs := r.sim.Requests()
				last := reqs[len(reqs)-1].Time
				first := reqs[len(reqs)-2].Time
				if gap := last.Sub(first); gap < time.Second {
					t.Errorf("the retry came %v after the 429, inside its 1 s window", gap)
				}
			}},
		{name: "429 storm, Retry-After 5s (past the caller's 1 s deadline), stale entry", warm: true, timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 429, RetryAfter: 5 * sec}) },
			status: 200, code: "stale", web: [2]int{1, 1}},
		{name: "429 storm, Retry-After 5s (past the caller's 1 s deadline), no cached answer", timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 429, RetryAfter: 5 * sec}) },
			status: 503, code: "throttled", retry: 4, web: [2]int{1, 1},
			note: "the shared call waits out the window; the caller is told to come back then, not that it timed out"},
		{name: "503 burst (2), no Retry-After", timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 503, Count: 2}) },
			status: 200, code: "miss", web: [2]int{3, 3}, note: "retried with backoff"},
		{name: "503 storm, no Retry-After, stale entry", warm: true, timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 503}) },
			status: 200, code: "stale", web: [2]int{4, 4}, note: "4 attempts, then the stale answer"},
		{name: "503 storm, no Retry-After, no cached answer", timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 503}) },
			status: 503, code: "unavailable", web: [2]int{4, 4}},
		{name: "503 with Retry-After 300s, no cached answer",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 503, RetryAfter: 300 * sec}) },
			status: 503, code: "unavailable", retry: 295, web: [2]int{1, 1}, note: "not retried: the wait would outlast the call"},
		{name: "500 storm, stale entry", warm: true,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Status: 500}) },
			status: 200, code: "stale", web: [2]int{1, 1}, note: "500 is not retried"},
		{name: "Dataverse hangs (30 s latency), no cached answer", timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Latency: 30 * sec}) },
			status: 504, code: "timeout", web: [2]int{1, 1}},
		{name: "Dataverse hangs (30 s latency), stale entry", warm: true, timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Latency: 30 * sec}) },
			status: 200, code: "stale", web: [2]int{1, 1}, note: "served when the caller's deadline comes"},
		{name: "connection reset once",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Reset: true, Count: 1}) },
			status: 200, code: "miss", web: [2]int{2, 2}},
		{name: "connection reset storm, stale entry", warm: true, timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Reset: true}) },
			status: 200, code: "stale", web: [2]int{4, 8}, note: "net/http may replay a reset on a reused connection"},
		{name: "connection reset storm, no cached answer", timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Reset: true}) },
			status: 503, code: "unavailable", web: [2]int{4, 8}},
		{name: "slow body (300 ms)",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, SlowBody: 300 * time.Millisecond}) },
			status: 200, code: "miss", web: [2]int{1, 1}},
		{name: "slow body (30 s), no cached answer", timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, SlowBody: 30 * sec}) },
			status: 504, code: "timeout", web: [2]int{1, 1}},
		{name: "slow body (30 s), stale entry", warm: true, timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, SlowBody: 30 * sec}) },
			status: 200, code: "stale", web: [2]int{1, 1}},
		{name: "truncated JSON (200), no cached answer",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Malformed: true}) },
			status: 503, code: "unavailable", web: [2]int{1, 1}},
		{name: "truncated JSON (200), stale entry", warm: true,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Malformed: true}) },
			status: 200, code: "stale", web: [2]int{1, 1}},
		{name: "unexpected @odata.context (system users), no cached answer",
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Body: wrongContext}) },
			status: 503, code: "unavailable", web: [2]int{1, 1}, note: "not cached, not served"},
		{name: "unexpected @odata.context (system users), stale entry", warm: true,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: webOrders, Body: wrongContext}) },
			status: 200, code: "stale", web: [2]int{1, 1}},
		{name: "token endpoint down (503), not signed in", cold: true, timeout: retrySpan,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: "token", Status: 503}) },
			status: 503, code: "unavailable", web: [2]int{0, 0}, tokens: -1},
		{name: "token endpoint down (503), token cached", warm: true,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: "token", Status: 503}) },
			status: 200, code: "miss", web: [2]int{1, 1}, note: "the cached token carries on"},
		{name: "token endpoint slow (30 s), not signed in", cold: true, timeout: sec,
			inject: func(r *rig) { r.sim.InjectFault(fault{Path: "token", Latency: 30 * sec}) },
			status: 504, code: "timeout", web: [2]int{0, 0}, tokens: 1},
		{name: "DNS failure of the org host, not signed in", cold: true, dns: true,
			status: 503, code: "unavailable", web: [2]int{0, 0}, note: "not retried (no such host)"},
		{name: "DNS failure of the org host, stale entry", dns: true, warm: true,
			status: 200, code: "stale", web: [2]int{0, 0}},
		{name: "Dataverse clock 2 h ahead of Entra's (constant skew)",
			sim:    dataversetest.Options{Clock: func() time.Time { return time.Now().Add(2 * time.Hour) }},
			status: 200, code: "miss", web: [2]int{1, 1}, note: "the simulator issues and checks tokens on its own clock"},
		{name: "Dataverse clock jumps 2 h after sign-in (401 expired token), stale entry", warm: true,
			inject: func(r *rig) { r.simClock.Advance(2 * time.Hour) },
			status: 200, code: "miss", web: [2]int{2, 2}, tokens: 1,
			note: "one fresh token (bypassing MSAL's cache), one retry"},
	}
	// The cases mostly wait (timeouts, backoff, Retry-After): run them all
	// at once from their own goroutines rather than as parallel subtests,
	// which -parallel (GOMAXPROCS, 2 in CI) would run two at a time.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, tc := range tests {
		wg.Go(func() {
			t.Run(tc.name, func(t *testing.T) {
				simClock := &stepClock{}
				if tc.sim.Clock == nil {
					tc.sim.Clock = simClock.Now
				}
				o := rigOpts{sim: tc.sim, requestTimeout: tc.timeout}
				var dns dnsSwitch
				if tc.dns {
					o.transport = dns.client
				}
				r := newRig(t, o)
				r.simClock = simClock
				if tc.cold {
					r.sim.SetTokenLifetime(4 * time.Minute)
				}
				r.start()
				if tc.warm {
					res, _ := r.get(t, "GET", orderPath)
					must(t, res, 200)
					r.clock.Advance(2 * time.Minute) // past OrderTTL, inside StaleTTL
				}
				if tc.dns {
					dns.failing.Store(true)
				}
				if tc.inject != nil {
					tc.inject(r)
				}
				path := tc.path
				if path == "" {
					path = orderPath
				}
				before := r.counts()
				res, wall := r.get(t, "GET", path)
				after := r.counts()
				web, tokens := after.web-before.web, after.token-before.token

				got := res.header.Get("X-Cache")
				if res.status != 200 {
					got, _, _ = errorOf(t, res)
				}
				if res.status != tc.status || got != tc.code {
					t.Errorf("got %d %s, want %d %s: %s", res.status, got, tc.status, tc.code, res.body)
				}
				ra, _ := strconv.Atoi(res.header.Get("Retry-After"))
				if tc.retry > 0 && ra < tc.retry {
					t.Errorf("Retry-After %q, want >= %d", res.header.Get("Retry-After"), tc.retry)
				}
				if web < tc.web[0] || web > tc.web[1] {
					t.Errorf("%d Web API requests, want %d..%d", web, tc.web[0], tc.web[1])
				}
				if tc.tokens >= 0 && tokens != tc.tokens {
					t.Errorf("%d token requests, want %d", tokens, tc.tokens)
				}
				if limit := r.requestTimeout + 2*time.Second; wall > limit {
					t.Errorf("the caller waited %v, past its deadline %v", wall, r.requestTimeout)
				}
				if tc.then != nil {
					tc.then(t, r)
				}
				r.checkHygiene(t)

				expect := fmt.Sprintf("%d %s", res.status, got)
				if ra > 0 {
					expect += fmt.Sprintf(", Retry-After %d", ra)
				}
				up := fmt.Sprintf("%d Dataverse", web)
				if tokens > 0 {
					up += fmt.Sprintf(", %d Entra", tokens)
				}
				report(t, reportRow{Area: "fault", Case: tc.name, Expect: expect, Upstream: up,
					Wall: wall.Round(10 * time.Millisecond).String(), Note: tc.note})
			})
		})
	}
}
