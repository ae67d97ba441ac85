package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFloodOfUnknownEmails is the attack of issue 16 through dvgate
// serve: 3,000 never-seen sender addresses from 16 callers against an org
// with Dataverse's real service-protection limits. The request budget
// keeps dvgate from tripping them (no 429, at most 1,000 requests), the
// lookups it cannot afford answer 503 busy with Retry-After, and a
// customer looked up before keeps answering 200 from the cache.
func TestFloodOfUnknownEmails(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the simulator's default limits are Dataverse's
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	before := len(e.sim.Requests())

	const callers, emails = 16, 3000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
	defer client.CloseIdleConnections()
	var next, ok, notFound, busy, other, known, knownMiss atomic.Int32
	var firstOther atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > emails {
					return
				}
				r := doReq(t, client, "GET", fmt.Sprintf("%s/v1/customers?email=unknown.%d@flood.example", e.base, i))
				switch {
				case r.status == 404:
					notFound.Add(1)
				case r.status == 503 && strings.Contains(string(r.body), `"busy"`) && r.header.Get("Retry-After") != "":
					busy.Add(1)
				case r.status == 200:
					ok.Add(1)
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.status, r.body))
				}
				if i%10 == 0 {
					k := doReq(t, client, "GET", e.base+"/v1/customers?email="+alex)
					known.Add(1)
					if k.status != 200 || k.header.Get("X-Cache") != "hit" {
						knownMiss.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	upstream, throttled := 0, 0
	for _, q := range e.sim.Requests()[before:] {
		upstream++
		if q.Status == 429 {
			throttled++
		}
	}
	t.Logf("%d unknown emails from %d callers in %v: %d not found, %d busy, %d other; %d Dataverse requests, %d answered 429; the known customer: %d of %d lookups not a 200 hit",
		emails, callers, wall.Round(time.Millisecond), notFound.Load(), busy.Load(), other.Load(), upstream, throttled, knownMiss.Load(), known.Load())
	if throttled != 0 || upstream > 1000 {
		t.Errorf("%d Dataverse requests, %d throttled; want at most 1,000 and none", upstream, throttled)
	}
	if other.Load() != 0 || ok.Load() != 0 {
		t.Errorf("%d answers neither 404 nor 503 busy, first: %v", other.Load()+ok.Load(), firstOther.Load())
	}
	if knownMiss.Load() != 0 {
		t.Errorf("the known customer was not a cached 200 in %d of %d lookups", knownMiss.Load(), known.Load())
	}
	report(t, reportRow{Area: "fault", Case: fmt.Sprintf("%d never-seen emails from %d callers (real service-protection limits)", emails, callers),
		Expect:   fmt.Sprintf("%d 404, %d 503 busy with Retry-After; known customer 200 hit %d/%d", notFound.Load(), busy.Load(), known.Load()-knownMiss.Load(), known.Load()),
		Upstream: fmt.Sprintf("%d Dataverse, %d of them 429", upstream, throttled), Wall: wall.Round(time.Millisecond).String()})
}
