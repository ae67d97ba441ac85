package integration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestSchemaAtRunTime: an integration naming columns of its org reads the
// org's schema once, on the first lookup, answers with the column, reads it
// again in the background once it is older than SchemaMaxAge, and keeps
// serving with the last one read when that fails.
func TestSchemaAtRunTime(t *testing.T) {
	t.Parallel()
	opts, err := dataversetest.CustomizedDemo()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	clk := &fakeClock{now: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}
	gc := &GatewayConnector{HTTPClient: sim.Client(), Clock: clk.Now}
	dv, err := dataverse.ConfigFromEnv(MapEnv(sim.Env(), nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := gc.Connect(Config{Name: "default", Dataverse: dv, TrackingColumn: "contoso_trackingnumber"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	gb := b.(*gatewayBackend)
	metadataReads := func() int {
		n := 0
		for _, r := range sim.Requests() {
			if strings.HasSuffix(r.Path, "/$metadata") {
				n++
			}
		}
		return n
	}
	order := func() {
		t.Helper()
		o, _, err := b.Order(context.Background(), "ORD-01001-B2K9P7")
		if err != nil || o.TrackingNumber == nil {
			t.Fatalf("order: %v, %v", o, err)
		}
	}
	order()
	order()
	if n := metadataReads(); n != 1 {
		t.Fatalf("%d $metadata reads for two lookups, want 1", n)
	}
	clk.add(SchemaMaxAge + time.Minute)
	order() // answered at once; the schema is read again behind it
	gb.bg.Wait()
	if n := metadataReads(); n != 2 {
		t.Fatalf("%d $metadata reads after %v, want 2", n, SchemaMaxAge)
	}
	remove := sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/$metadata", Status: 503})
	defer remove()
	clk.add(SchemaMaxAge + time.Minute)
	order()
	gb.bg.Wait()
	order() // the last schema read keeps serving
	failed := 0
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/$metadata") && r.Status == 503 {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no failed $metadata read: the fault did not apply")
	}
	// A failed re-read is tried again after schemaRefreshRetry, not at every
	// lookup.
	n := metadataReads()
	order()
	gb.bg.Wait()
	if d := metadataReads() - n; d != 0 {
		t.Errorf("%d $metadata reads at the next lookup after a failed re-read, want 0", d)
	}
	clk.add(schemaRefreshRetry + time.Second)
	order()
	gb.bg.Wait()
	if metadataReads() == n {
		t.Errorf("no new $metadata read %v after the failed one", schemaRefreshRetry)
	}
}
