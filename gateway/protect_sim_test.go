package gateway

// Protection of the org, end to end: the gateway over a real
// dataverse.Conn against the simulator with its real service protection
// limits (6,000 requests per 5 minutes, 52 concurrent, per user).

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"go.uber.org/goleak"
)

// codeCounts tallies answers by ErrorCode ("" = an answer).
type codeCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *codeCounts) add(err error) {
	code := ErrorCode(err)
	if code == "" {
		code = "ok"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[code]++
}

func (c *codeCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}

// 3,000 distinct never-seen sender addresses within 10 s (on the gateway's
// clock) from 16 concurrent callers, in "both" mode (two requests each):
// the budget keeps Dataverse below its limits (no 429, at most 1,000
// requests), and a customer looked up before answers from cache
// throughout.
func TestSimFloodOfUnknownEmails(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{}) // real Limits, default Budget, ModeBoth
	ctx := context.Background()
	const known = "alex.wu@example.com"
	if _, _, err := e.g.Customer(ctx, known); err != nil {
		t.Fatal(err)
	}
	warm := len(e.webRequests())

	const n, callers, window = 3000, 16, 10 * time.Second
	var next atomic.Int64
	var flood codeCounts
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				e.clk.Advance(window / n)
				_, _, err := e.g.Customer(ctx, fmt.Sprintf("stranger.%05d@attacker.example", i))
				flood.add(err)
			}
		})
	}
	// The known customer, asked for all along.
	var knownAsked, knownHits int
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		c, meta, err := e.g.Customer(ctx, known)
		knownAsked++
		if err != nil || c == nil || c.ID != alexID || meta.Outcome != Hit {
			t.Errorf("known customer during the flood: %v, %v, %v", c, meta.Outcome, err)
			break
		}
		knownHits++
		runtime.Gosched()
	}
	<-done

	reqs := e.webRequests()
	throttled := 0
	for _, r := range reqs {
		if r.Status == 429 {
			throttled++
		}
	}
	sent := len(reqs) - warm
	t.Logf("%d unknown emails in %v by %d callers: %d Dataverse requests, %d answered 429; answers by code %s; "+
		"known customer asked %d times, %d cache hits; conn %+v",
		n, window, callers, sent, throttled, flood.String(), knownAsked, knownHits, connStats(e.g))
	if throttled != 0 {
		t.Errorf("Dataverse answered 429 %d times", throttled)
	}
	if sent > 1000 {
		t.Errorf("%d Dataverse requests, want at most 1000", sent)
	}
	if flood.m["busy"] == 0 || flood.m["busy"]+flood.m["not_found"] != n {
		t.Errorf("answers %s: want only not_found and busy, with some busy", flood.String())
	}
}

func connStats(g *Gateway) any {
	up := g.up
	if b, ok := up.(budgeted); ok {
		up = b.Upstream
	}
	if c, ok := up.(*dataverse.Conn); ok {
		return c.Stats()
	}
	return nil
}

// rssKiB reads the process's resident set size (Linux; 0 elsewhere).
func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb
		}
	}
	return 0
}

// 2,000 lookups of distinct addresses whose callers hang up after 50 ms,
// with 3 s of upstream latency: calls not yet sent when their callers
// left are dropped (no Dataverse request, no goroutine left waiting), and
// a real lookup started while the sent ones are still at Dataverse is not
// queued behind them: with the default budget at most Burst plus the
// refill reach Dataverse, which leaves concurrency slots free, so it
// answers. Without a budget the sent calls take every slot; those whose
// callers left are cancelled when a live request needs their slot, so the
// real lookup answers or is shed as busy, never times out in the queue.
//
// The assertions are outcomes and counts, not durations (the CI machine
// is shared and runs this under -race): a lookup queued behind the flood
// would wait for several rounds of the 3 s latency and fail its deadline
// as "timeout". How long it took is logged.
//
// Real time (the simulator's latency is real), about 4 s per case. Not
// parallel: goroutine counts are process-wide.
func TestSimAbortedRequestsCostNothing(t *testing.T) {
	const (
		aborted = 2000
		latency = 3 * time.Second
		hangUp  = 50 * time.Millisecond
		realAt  = 300 * time.Millisecond // after the flood started, at the earliest
	)
	for _, tc := range []struct {
		name   string
		budget Budget
	}{
		{"default budget", Budget{}},
		{"no budget", Budget{Rate: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g0, before := runtime.NumGoroutine(), goleak.IgnoreCurrent()
			sim, err := dataversetest.NewServer(dataversetest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := dataverse.New(dataverse.Config{
				URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
				AuthorityHost: sim.AuthorityHost(), HTTPClient: sim.Client(), MaxAttempts: 1, Logger: discardLogger,
			})
			if err != nil {
				t.Fatal(err)
			}
			g, err := New(Config{Conn: conn, Logger: discardLogger, Budget: tc.budget}) // real clock: the budget refills in real time
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.Test(context.Background()); err != nil { // signs in
				t.Fatal(err)
			}
			base, rss0 := runtime.NumGoroutine(), rssKiB()
			sim.InjectFault(dataversetest.Fault{Latency: latency})

			start := time.Now()
			var codes codeCounts
			var wg sync.WaitGroup
			for i := range aborted {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), hangUp)
					defer cancel()
					_, _, err := g.Customer(ctx, fmt.Sprintf("gone.%05d@example.com", i))
					codes.add(err)
				})
			}
			peak := runtime.NumGoroutine()
			wg.Wait()
			afterAbort := runtime.NumGoroutine()
			floodTook := time.Since(start)
			// The real lookup comes while the sent calls are still at
			// Dataverse, and at least 150 ms after the last aborted caller,
			// so that the budget has refilled a token: a lookup racing the
			// flood for the same token gets busy, by design.
			<-time.After(max(time.Until(start.Add(realAt)), 150*time.Millisecond))
			realAfter := time.Since(start)

			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 4*latency)
			c, _, err := g.Customer(ctx, "alex.wu@example.com")
			cancel()
			took := time.Since(t0)
			code := ErrorCode(err)

			g.flights.Wait() // the sent calls finish their 3 s
			// Connections whose requests were cancelled close in their own
			// goroutines: on a loaded machine that takes a moment. Wait
			// for it, as goleak does, up to 10 s.
			limit := base + 4*52
			settled := runtime.NumGoroutine()
			for wait := time.Now().Add(10 * time.Second); settled > limit && time.Now().Before(wait); settled = runtime.NumGoroutine() {
				<-time.After(20 * time.Millisecond) // polling the runtime's count, not waiting for a result
			}
			rss1 := rssKiB()
			// Every lookup request but the real one's (a request cancelled
			// on its way has no parsed filter, so go by path).
			var abortedCalls int
			for _, r := range sim.Requests() {
				if p := setOf(r.Path); (p == "contacts" || p == "accounts") && !strings.Contains(r.Filter, "alex.wu") {
					abortedCalls++
				}
			}
			st := conn.Stats()
			g.Close()
			conn.Close()
			sim.Close()
			// Back to where the test started: goleak retries while
			// cancelled connections finish closing.
			goleak.VerifyNone(t, before)
			final := runtime.NumGoroutine()
			t.Logf("flood of %d launched and answered in %v; real lookup started %v after the flood began took %v (code %q, customer %v); aborted lookups by code %s caused %d Dataverse requests; "+
				"goroutines: %d before the gateway, %d at rest, %d peak while the callers waited, %d once they left, %d after the sent calls finished, %d after Close; "+
				"RSS %d -> %d KiB; conn %+v (Requests counts attempts, also those cancelled before reaching the server)",
				aborted, floodTook.Round(time.Millisecond), realAfter.Round(time.Millisecond), took.Round(time.Millisecond), code, c != nil, codes.String(), abortedCalls,
				g0, base, peak, afterAbort, settled, final, rss0, rss1, st)

			if tc.budget.Rate >= 0 {
				if err != nil || c == nil || c.ID != alexID {
					t.Errorf("the real lookup: %v, %v (code %q after %v): want the customer", c, err, code, took.Round(time.Millisecond))
				}
			} else if err != nil && code != "busy" {
				// Without a budget the flood's late arrivals and the real
				// lookup take turns preempting each other's slots: it
				// answers, or is shed as busy.
				t.Errorf("the real lookup: %v (code %q after %v), want an answer or busy", err, code, took.Round(time.Millisecond))
			}
			if tc.budget.Rate >= 0 {
				if limit := DefaultBudgetBurst + int(DefaultBudgetRate*floodTook.Seconds()) + 1; abortedCalls > limit {
					t.Errorf("the aborted lookups caused %d Dataverse requests, more than the budget's %d", abortedCalls, limit)
				}
			} else if abortedCalls > aborted/4 {
				t.Errorf("the aborted lookups caused %d Dataverse requests", abortedCalls)
			}
			// Once the sent calls are over, nothing of the flood remains
			// but idle connections (two goroutines each, client and server
			// side, at most one per concurrency slot).
			if settled > limit {
				t.Errorf("%d goroutines 10 s after the sent calls finished (%d at rest)", settled, base)
			}
		})
	}
}
