package gateway_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

var budgetLookups = flag.Int("budget.lookups", 10_000, "distinct lookups of TestCacheBudget (make soak: 1000000)")

// contactUpstream answers every contacts query with one contact whose
// email is the one asked for (read back from the $filter).
type contactUpstream struct{}

func (contactUpstream) BaseURL() string {
	return "https://org.example.crm4.dynamics.com/api/data/v9.2/"
}

func (contactUpstream) WhoAmI(context.Context) (dataverse.WhoAmIResult, error) {
	return dataverse.WhoAmIResult{}, nil
}

func (contactUpstream) Do(req *http.Request) (*http.Response, error) {
	f, _ := url.QueryUnescape(req.URL.Query().Get("$filter"))
	email := ""
	if i := strings.IndexByte(f, '\''); i >= 0 {
		if j := strings.IndexByte(f[i+1:], '\''); j >= 0 {
			email = f[i+1 : i+1+j]
		}
	}
	body := fmt.Sprintf(`{"value":[{"contactid":"4faf1f34-f06d-4e51-80d0-%012x","fullname":"Customer %s","emailaddress1":%q,"statecode":0,"modifiedon":"2026-01-01T00:00:00Z"}]}`,
		len(email), email, email)
	return &http.Response{StatusCode: 200, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body)))}, nil
}

// TestCacheBudget makes many distinct lookups through a gateway whose cache
// has a 1 MiB budget: the cost ristretto holds stays within the budget and
// the live heap does not grow with the number of lookups.
//
// Not parallel: the heap is process-wide, and parallel tests only start
// once the sequential ones are done.
func TestCacheBudget(t *testing.T) {
	const budget = 1 << 20
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
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	n := *budgetLookups
	var h0 uint64
	for i := range n {
		if i == n/10 {
			h0 = heap() // the cache is full by now
		}
		email := fmt.Sprintf("customer.%07d@example.com", i)
		c, _, err := g.Customer(ctx, email)
		if err != nil || c.Email != email {
			t.Fatalf("lookup %d: %v %+v", i, err, c)
		}
	}
	h1 := heap()
	st := cache.Stats()
	held := int64(st.CostAdded) - int64(st.CostEvicted)
	t.Logf("%d lookups: ristretto holds %d bytes (budget %d) in %d keys (%d evicted, %d rejected); heap %.1f -> %.1f MiB",
		n, held, budget, st.KeysAdded-st.KeysEvicted, st.KeysEvicted, st.SetsRejected, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if held > budget {
		t.Errorf("the cache holds %d bytes, over its %d budget", held, budget)
	}
	if h1 > h0+8<<20 {
		t.Errorf("heap grew from %d to %d bytes over %d lookups", h0, h1, n-n/10)
	}
}
