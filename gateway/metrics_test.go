package gateway

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice in one registry succeeded")
	}
	up := newFake()
	up.on("contacts", func(q url.Values, _ string) (string, error) {
		if strings.Contains(q.Get("$filter"), "alex") {
			return contactsAlex, nil
		}
		return contactsEmpty, nil
	})
	up.reply("accounts", contactsEmpty)
	gate := make(chan struct{})
	g, _ := newTestGateway(t, gatedUpstream{up, gate}, Config{Name: "acme", Metrics: m})
	ctx := context.Background()

	// 3 concurrent identical misses: 1 upstream call, 2 coalesced.
	var joined, wg sync.WaitGroup
	joined.Add(3)
	g.testHookJoined = joined.Done
	for range 3 {
		wg.Go(func() {
			if _, _, err := g.Customer(ctx, "alex.wu@example.com"); err != nil {
				t.Error(err)
			}
		})
	}
	joined.Wait()
	g.testHookJoined = nil
	close(gate)
	wg.Wait()
	g.Customer(ctx, "alex.wu@example.com") // hit
	g.Customer(ctx, "nobody@example.com")  // miss: not found after the fallback
	g.Customer(ctx, "nobody@example.com")  // hit (negative)

	got := map[string]float64{
		"hit":           testutil.ToFloat64(m.lookups.WithLabelValues("acme", "customer", "hit")),
		"miss":          testutil.ToFloat64(m.lookups.WithLabelValues("acme", "customer", "miss")),
		"coalesced":     testutil.ToFloat64(m.coalescedTotal.WithLabelValues("acme", "customer")),
		"upstream ok":   testutil.ToFloat64(m.upstreamTotal.WithLabelValues("acme", "customer", "ok")),
		"upstream 404":  testutil.ToFloat64(m.upstreamTotal.WithLabelValues("acme", "customer", "not_found")),
		"latency count": float64(testutil.CollectAndCount(m.upstreamLatency)),
	}
	want := map[string]float64{"hit": 2, "miss": 4, "coalesced": 2, "upstream ok": 1, "upstream 404": 1, "latency count": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	// No email (or any input) in any label.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if strings.Contains(l.GetValue(), "@") || strings.Contains(l.GetValue(), "example") {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
