package main

import (
	"sync"
	"testing"
)

// TestConcurrentLookupsShareOneCall: 20 simultaneous lookups of one email
// on a cold cache make a single Dataverse request, and the next 50 none.
func TestConcurrentLookupsShareOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	before := e.sim.WebAPIRequests()
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Go(func() { statuses[i] = doReq(t, e.client, "GET", e.base+"/v1/customers?email="+alex).status })
	}
	wg.Wait()
	cold := e.sim.WebAPIRequests() - before
	for i := range statuses {
		wg.Go(func() { statuses[i] = doReq(t, e.client, "GET", e.base+"/v1/customers?email="+alex).status })
	}
	wg.Wait()
	warm := e.sim.WebAPIRequests() - before - cold
	for _, s := range statuses {
		if s != 200 {
			t.Fatalf("status %d", s)
		}
	}
	t.Logf("Dataverse requests: %d for 20 concurrent cold lookups, %d for 20 warm ones", cold, warm)
	if cold != 1 || warm != 0 {
		t.Errorf("Dataverse requests: cold %d (want 1), warm %d (want 0)", cold, warm)
	}
}

// BenchmarkCachedLookup measures a cache hit through the whole HTTP stack
// (routing, middleware, logging, JSON); BenchmarkHealthz is the baseline of
// the same stack without a lookup.
func BenchmarkCachedLookup(b *testing.B) {
	benchGet(b, "/v1/customers?email="+alex)
}

func BenchmarkHealthz(b *testing.B) {
	benchGet(b, "/healthz")
}

func benchGet(b *testing.B, path string) {
	e := newEnv(b)
	e.start()
	doReq(e.t, e.client, "GET", e.base+path) // warm the cache
	b.ResetTimer()
	for b.Loop() {
		if r := doReq(e.t, e.client, "GET", e.base+path); r.status != 200 {
			b.Fatal(r.status)
		}
	}
}
