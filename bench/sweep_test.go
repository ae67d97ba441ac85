package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

// fastUpstream answers every customer query at once: one email in four
// with a small contact, the others with no row (not found). It stands in for Dataverse where only the
// gateway's memory is measured.
type fastUpstream struct{ n atomic.Int64 }

const smallContact = `{"value":[{"contactid":"b46d4f35-6f57-5fbb-b866-32977a8faa40","fullname":"Sweep Contact",` +
	`"emailaddress1":"%s","telephone1":"+1 555 0100","statecode":0,"modifiedon":"2026-01-01T00:00:00Z"}]}`

func (f *fastUpstream) BaseURL() string { return "https://sweep.example/api/data/v9.2/" }

func (f *fastUpstream) WhoAmI(context.Context) (dataverse.WhoAmIResult, error) {
	return dataverse.WhoAmIResult{}, nil
}

func (f *fastUpstream) Do(req *http.Request) (*http.Response, error) {
	f.n.Add(1)
	body := `{"value":[]}`
	// The email is the filter's first literal: ...eq%20'u123@sweep.example'...
	q := req.URL.RawQuery
	if strings.HasPrefix(req.URL.Path, "/api/data/v9.2/contacts") {
		if i := strings.Index(q, "'u"); i >= 0 {
			if j := strings.IndexByte(q[i+1:], '\''); j > 0 {
				email := q[i+1 : i+1+j]
				var n int
				if _, err := fmt.Sscanf(email, "u%d", &n); err == nil && n%4 == 0 {
					body = fmt.Sprintf(smallContact, strings.ReplaceAll(email, "%40", "@"))
				}
			}
		}
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: req}, nil
}

// sweepBudget is the cache budget of the sweep: small, so the 1,000,000
// distinct emails overflow it about 20 times.
const sweepBudget = 8 << 20

// BenchmarkEmailSweep looks up 1,000,000 distinct emails (4 goroutines)
// through one gateway (contacts mode) with an 8 MiB cache budget against
// fastUpstream, and
// reports the live heap after a GC (gateway still in use) above the heap
// before the gateway was created, next to the budget and to the heap of
// the empty gateway (its fixed overhead). Run it with
// -benchtime=1x: one op is the whole sweep.
func BenchmarkEmailSweep(b *testing.B) {
	const emails, workers = 1_000_000, 4
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		up := &fastUpstream{}
		cache, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: sweepBudget})
		if err != nil {
			b.Fatal(err)
		}
		g, err := gateway.New(gateway.Config{Conn: up, Cache: cache, Mode: gateway.ModeContacts, Budget: gateway.Budget{Rate: -1}}) // measured: memory, not the budget
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var empty runtime.MemStats
		runtime.ReadMemStats(&empty)
		var next atomic.Int64
		var found atomic.Int64
		var wg sync.WaitGroup
		var peak atomic.Uint64
		for range workers {
			wg.Go(func() {
				ctx := context.Background()
				for {
					i := next.Add(1)
					if i > emails {
						return
					}
					c, _, err := g.Customer(ctx, fmt.Sprintf("u%d@sweep.example", i))
					if err == nil && c != nil {
						found.Add(1)
					} else if err != nil && !isNotFound(err) {
						b.Error(err)
						return
					}
					if i%100_000 == 0 {
						var ms runtime.MemStats
						runtime.ReadMemStats(&ms)
						if h := ms.HeapAlloc; h > peak.Load() {
							peak.Store(h)
						}
					}
				}
			})
		}
		wg.Wait()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		st := cache.Stats()
		live := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(live/(1<<20), "heap-after-gc-MiB")
		b.ReportMetric((float64(empty.HeapAlloc)-float64(before.HeapAlloc))/(1<<20), "heap-empty-MiB")
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), before.HeapAlloc))/(1<<20), "heap-peak-sampled-MiB")
		b.ReportMetric(float64(sweepBudget)/(1<<20), "budget-MiB")
		b.ReportMetric(float64(st.CostAdded-st.CostEvicted)/(1<<20), "cached-cost-MiB")
		b.ReportMetric(float64(up.n.Load())/emails, "upstream/lookup")
		if found.Load() != emails/4 {
			b.Errorf("found %d customers, want %d", found.Load(), emails/4)
		}
		runtime.KeepAlive(g)
		g.Close()
		cache.Close()
	}
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, gateway.ErrNotFound) }
