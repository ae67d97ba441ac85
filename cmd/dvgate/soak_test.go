package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

var soakFor = flag.Duration("soak", 10*time.Second, "how long TestSoak runs its load (make soak: 60s)")

// soakKeys are the lookups of the soak: demo customers (contacts and an
// account), demo orders, and a few unknown keys (negative answers).
var soakKeys = []string{
	"/v1/customers?email=" + alex, "/v1/customers?email=" + fabrikam, "/v1/customers?email=nobody@example.com",
	"/v1/orders/ORD-01001-B2K9P7", "/v1/orders/ORD-01002-A7AUCC", "/v1/orders/ORD-01003-SYF8ZN",
	"/v1/orders/ORD-01004-77VQAL", "/v1/orders/ORD-01005-KDXG32", "/v1/orders/ORD-99999-NOPE00",
}

// TestSoak runs lookups from 8 clients for -soak (10 s in make test, 60 s
// in make soak) against the simulator with 5% 503s and 1% 429s (Retry-After
// 1 s) injected, moving the freshness clock a minute every half second so
// that entries keep going stale and being refreshed through the faults.
// Every key is looked up once before the faults start, so a stale entry
// always exists: no caller may get a 5xx. Goroutines must not grow and the
// heap must stay bounded.
//
// Not parallel: goroutines and heap are process-wide, and parallel tests
// only start once the sequential ones are done.
func TestSoak(t *testing.T) {
	r := newRig(t, rigOpts{requestTimeout: 5 * time.Second})
	// Warnings only: an access log line per request, kept in memory for
	// the hygiene check, would dwarf the server's own memory (the other
	// tests check the access log's hygiene).
	r.start("--log-level", "warn")
	for _, k := range soakKeys {
		if res, _ := r.get(t, "GET", k); res.status != 200 && res.status != 404 {
			t.Fatalf("warm-up %s: %d %s", k, res.status, res.body)
		}
	}
	heap0, rss0 := memory()
	web0 := r.sim.WebAPIRequests()
	r.sim.InjectFault(dataversetest.Fault{Fraction: 0.05, Status: 503})
	r.sim.InjectFault(dataversetest.Fault{Fraction: 0.01, Status: 429, RetryAfter: time.Second})

	// Goroutines are sampled under load every half second: the fewest in
	// the run's second quarter (pools filled) against the fewest in its
	// last quarter. A leak raises the floor; requests and upstream calls
	// in flight at one sample do not.
	var goroutines0, goroutines1 atomic.Int64
	var served, errs5xx, stale, other atomic.Int64
	var mu sync.Mutex
	var firstErr string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				r.clock.Advance(time.Minute)
				n, el := int64(runtime.NumGoroutine()), time.Since(start)
				switch {
				case el >= *soakFor/4 && el < *soakFor/2:
					if g := goroutines0.Load(); g == 0 || n < g {
						goroutines0.Store(n)
					}
				case el >= *soakFor*3/4:
					if g := goroutines1.Load(); g == 0 || n < g {
						goroutines1.Store(n)
					}
				}
			}
		}
	})
	for c := range 8 {
		wg.Go(func() {
			for i := c; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res := doReq(rawTB{t}, r.client, "GET", r.base+soakKeys[i%len(soakKeys)])
				served.Add(1)
				switch {
				case res.status >= 500:
					errs5xx.Add(1)
					mu.Lock()
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %s", res.status, res.body)
					}
					mu.Unlock()
				case res.status != 200 && res.status != 404:
					other.Add(1)
				case res.header.Get("X-Cache") == "stale":
					stale.Add(1)
				}
			}
		})
	}
	time.Sleep(*soakFor) // the load runs for a wall-clock duration by design
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	r.sim.ClearFaults()
	r.client.CloseIdleConnections()
	heap1, rss1 := memory()
	web, faults := 0, 0
	for _, q := range r.sim.Requests()[web0:] {
		web++
		if q.Status == 503 || q.Status == 429 {
			faults++
		}
	}

	t.Logf("soak %v: %d requests served (%.0f/s), %d 5xx, %d other errors, %d stale answers, %d Dataverse requests (%d faulted); heap %s -> %s, RSS %s -> %s, goroutines %d -> %d",
		elapsed.Round(time.Second), served.Load(), float64(served.Load())/elapsed.Seconds(), errs5xx.Load(), other.Load(), stale.Load(), web, faults,
		mib(heap0), mib(heap1), mib(rss0), mib(rss1), goroutines0.Load(), goroutines1.Load())
	if n := errs5xx.Load(); n > 0 {
		t.Errorf("%d 5xx answers although every key had a stale entry; first: %s", n, firstErr)
	}
	if other.Load() > 0 {
		t.Errorf("%d answers other than 200/404", other.Load())
	}
	// Retries absorb most faults (a 503 is retried, a 429 waits out its
	// second), so stale answers are rare; the faults must have happened.
	if faults == 0 {
		t.Errorf("no injected fault was hit in %d Dataverse requests", web)
	}
	// A leak keeps its goroutines once the load has stopped; calls still
	// in flight (many more on a loaded machine: the floor under load
	// moves with the machine's speed) finish within their timeout.
	if g0, g1 := goroutines0.Load(), goroutines1.Load(); g1 > g0+16 {
		after := int64(runtime.NumGoroutine())
		for wait := time.Now().Add(15 * time.Second); after > g0+16 && time.Now().Before(wait); after = int64(runtime.NumGoroutine()) {
			<-time.After(50 * time.Millisecond) // polling the runtime's count, not waiting for a result
		}
		if after > g0+16 {
			t.Errorf("goroutines grew under load from %d to %d, and were still %d 15 s after it stopped", g0, g1, after)
		}
	}
	if heap1 > heap0+64<<20 {
		t.Errorf("heap grew from %s to %s", mib(heap0), mib(heap1))
	}
	r.checkHygiene(t)
	report(t, reportRow{Area: "soak", Case: fmt.Sprintf("8 clients, %d keys, 5%% 503 + 1%% 429 (Retry-After 1 s), freshness clock +1 min every 0.5 s", len(soakKeys)),
		Expect:   fmt.Sprintf("%d served (%.0f/s), %d 5xx, %d stale", served.Load(), float64(served.Load())/elapsed.Seconds(), errs5xx.Load(), stale.Load()),
		Upstream: fmt.Sprintf("%d Dataverse (%d answered 503/429)", web, faults), Wall: elapsed.Round(time.Second).String(),
		Note: fmt.Sprintf("live heap %s -> %s, RSS %s -> %s, goroutines under load %d -> %d", mib(heap0), mib(heap1), mib(rss0), mib(rss1), goroutines0.Load(), goroutines1.Load())})
}

// memory returns the live heap after a GC and the process RSS (0 where
// /proc is missing).
func memory() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	return ms.HeapAlloc, rss
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
