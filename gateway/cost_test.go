package gateway_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/dvgate/dvgate/gateway"
)

// TestCostMatchesHeap: once the cache is full and churning, the heap it
// holds stays within its byte budget plus a small fixed overhead (TinyLFU
// counters, the gateway). The costs the gateway gives ristretto are
// estimates; if they undercount (as they did by 1.6x before strings were
// counted by size class and ristretto's bookkeeping by measurement), a
// "64 MiB" cache quietly holds 100.
//
// Not parallel: the heap is process-wide.
func TestCostMatchesHeap(t *testing.T) {
	const budget = 2 << 20
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	h0 := heap()
	cache, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	g, err := gateway.New(gateway.Config{Conn: contactUpstream{}, Cache: cache, Mode: gateway.ModeContacts,
		Budget: gateway.Budget{Rate: -1}}) // every lookup is a miss by design
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	empty := heap() - h0
	ctx := context.Background()
	const lookups = 15_000 // about three times what fits
	for i := range lookups {
		if _, _, err := g.Customer(ctx, fmt.Sprintf("u%d@sweep.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	live := heap() - h0
	st := cache.Stats()
	t.Logf("%d lookups: heap %.2f MiB (empty gateway %.2f MiB), ristretto cost %.2f MiB in %d keys, budget %.2f MiB",
		lookups, float64(live)/(1<<20), float64(empty)/(1<<20), float64(st.CostAdded-st.CostEvicted)/(1<<20),
		st.KeysAdded-st.KeysEvicted, float64(budget)/(1<<20))
	if st.KeysEvicted == 0 {
		t.Fatalf("nothing was evicted: the test did not fill the cache")
	}
	if limit := empty + budget + budget/8; live > limit {
		t.Errorf("the cache holds %.2f MiB of heap, over its %.2f MiB budget plus the empty gateway's %.2f MiB and 1/8 slack",
			float64(live)/(1<<20), float64(budget)/(1<<20), float64(empty)/(1<<20))
	}
	runtime.KeepAlive(g)
}
