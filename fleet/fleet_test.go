package fleet

// Multi-replica tests: several gateways in one process, each with its own
// Dataverse connection and Redis client (as separate processes would
// have), against one dataversetest simulator and one real Redis, asserting
// on the simulator's request log.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/fleet/redistest"
	"github.com/dvgate/dvgate/gateway"
)

// Demo seed facts (testdata/seed/demo.json).
const (
	alexEmail     = "alex.wu@example.com"
	alexID        = "b46d4f35-6f57-5fbb-b866-32977a8faa40"
	fabrikamEmail = "orders@fabrikam.example"
	demoOrder     = "ORD-01001-B2K9P7"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type cluster struct {
	sim  *dataversetest.Server
	clk  *testClock // the gateways' clock (freshness), shared like NTP-synced wall clocks
	reps []*replica
}

type replica struct {
	gw   *gateway.Gateway
	r    *Redis
	conn *dataverse.Conn
}

// newCluster starts a simulator and n replicas sharing one Redis prefix.
// fc is each replica's fleet configuration (URL and Prefix filled in when
// empty); shared wraps a replica's Redis as its gateway's SharedCache (nil
// = the Redis itself).
func newCluster(t *testing.T, n int, fc Config, shared func(*Redis) gateway.SharedCache) *cluster {
	t.Helper()
	return newClusterWith(t, n, fc, shared, nil)
}

// newClusterWith is newCluster with tweak (when not nil) adjusting replica
// i's fleet and gateway configurations before they are used.
func newClusterWith(t *testing.T, n int, fc Config, shared func(*Redis) gateway.SharedCache, tweak func(i int, fc *Config, gc *gateway.Config)) *cluster {
	t.Helper()
	if testRedisURL == "" && fc.URL == "" {
		redistest.Skip(t)
	}
	sim, err := dataversetest.NewServer(dataversetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if fc.Prefix == "" {
		fc.Prefix = uniquePrefix()
	}
	if fc.URL == "" {
		fc.URL = testRedisURL
	}
	c := &cluster{sim: sim, clk: &testClock{t: time.Now()}}
	for i := range n {
		fc := fc
		gc := gateway.Config{Clock: c.clk.Now, Logger: discard}
		if tweak != nil {
			tweak(i, &fc, &gc)
		}
		r, err := New(fc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		hc := *sim.Client()
		hc.Transport = r.Transport(sim.Client().Transport)
		conn, err := dataverse.New(dataverse.Config{
			URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
			AuthorityHost: sim.AuthorityHost(), HTTPClient: &hc,
			MaxAttempts: 1, // each lookup's requests are countable
			Logger:      discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		var sc gateway.SharedCache = r
		if shared != nil {
			sc = shared(r)
		}
		gc.Conn, gc.Shared, gc.Throttle = conn, sc, r
		gw, err := gateway.New(gc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Close)
		c.reps = append(c.reps, &replica{gw: gw, r: r, conn: conn})
	}
	return c
}

// requests counts the simulator's Web API requests (WhoAmI included: a
// held-back one must not arrive either).
func (c *cluster) requests() int { return c.sim.WebAPIRequests() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestFleetDedup: N replicas x M concurrent identical cold lookups make one
// Dataverse request; a replica started later answers from Redis.
func TestFleetDedup(t *testing.T) {
	t.Parallel()
	const replicas, callers = 4, 8
	c := newCluster(t, replicas+1, Config{OpTimeout: time.Second}, nil)
	ctx := ctxT(t)

	for _, look := range []struct {
		name string
		do   func(g *gateway.Gateway) (string, gateway.Meta, error)
	}{
		{"customer", func(g *gateway.Gateway) (string, gateway.Meta, error) {
			cu, m, err := g.Customer(ctx, alexEmail)
			if err != nil {
				return "", m, err
			}
			return cu.ID, m, nil
		}},
		{"order", func(g *gateway.Gateway) (string, gateway.Meta, error) {
			o, m, err := g.Order(ctx, demoOrder)
			if err != nil {
				return "", m, err
			}
			return o.Number, m, nil
		}},
	} {
		before := c.requests()
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make(chan string, replicas*callers)
		for _, rep := range c.reps[:replicas] {
			for range callers {
				wg.Go(func() {
					<-start
					got, _, err := look.do(rep.gw)
					if err != nil {
						t.Errorf("%s lookup: %v", look.name, err)
					}
					results <- got
				})
			}
		}
		close(start)
		wg.Wait()
		close(results)
		first := ""
		for r := range results {
			if first == "" {
				first = r
			}
			if r != first {
				t.Errorf("%s: replicas disagree: %q and %q", look.name, first, r)
			}
		}
		if n := c.requests() - before; n != 1 {
			t.Errorf("%s: %d replicas x %d concurrent cold lookups made %d Dataverse requests, want 1", look.name, replicas, callers, n)
		}
		// A replica that never saw the key (cold in-process cache) answers
		// from Redis: a hit with the age of the first fetch.
		late := c.reps[replicas]
		c.clk.Advance(2 * time.Second)
		got, m, err := look.do(late.gw)
		if err != nil || got != first {
			t.Fatalf("%s on a cold replica = %q, %v", look.name, got, err)
		}
		if m.Outcome != gateway.Hit || m.Age < 2*time.Second {
			t.Errorf("%s on a cold replica: %v age %v, want a hit aged >= 2s", look.name, m.Outcome, m.Age)
		}
		if n := c.requests() - before; n != 1 {
			t.Errorf("%s: %d requests after the cold replica's lookup, want still 1", look.name, n)
		}
	}
	if cu, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil || cu.ID != alexID {
		t.Fatalf("customer = %+v, %v", cu, err)
	}
}

// TestFleetThrottle: a 429 seen by one replica holds every replica back
// for its Retry-After; a replica with a stale answer serves it.
func TestFleetThrottle(t *testing.T) {
	t.Parallel()
	fclk := &testClock{t: time.Now()}
	c := newCluster(t, 3, Config{OpTimeout: time.Second, Clock: fclk.Now}, nil)
	ctx := ctxT(t)
	a, b, cc := c.reps[0].gw, c.reps[1].gw, c.reps[2].gw

	if _, _, err := b.Order(ctx, demoOrder); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(2 * time.Minute) // b's order is past its freshness (1m), within its stale window (1h)
	c.sim.InjectFault(dataversetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second, Count: 1})
	before := c.requests()
	_, _, err := a.Customer(ctx, alexEmail)
	if code := gateway.ErrorCode(err); code != "throttled" {
		t.Fatalf("lookup answered by a 429 = %v, want throttled", err)
	}
	if c.requests() != before+1 {
		t.Fatalf("%d requests for one lookup", c.requests()-before)
	}
	// b read the (open) state at its first lookup and trusts it for
	// ThrottleRefresh; from then on every replica knows.
	fclk.Advance(DefaultThrottleRefresh)
	before = c.requests()

	checks := []struct {
		name string
		do   func() (gateway.Meta, error)
		want string // error code, or "stale"
	}{
		{"cold lookup on another replica", func() (gateway.Meta, error) {
			_, m, err := b.Customer(ctx, fabrikamEmail)
			return m, err
		}, "throttled"},
		{"stale answer on another replica", func() (gateway.Meta, error) {
			_, m, err := b.Order(ctx, demoOrder)
			return m, err
		}, "stale"},
		{"replica that never asked before", func() (gateway.Meta, error) {
			_, m, err := cc.Order(ctx, demoOrder)
			return m, err
		}, "stale"}, // from Redis's copy, past freshness
		{"the connection's own requests (WhoAmI)", func() (gateway.Meta, error) {
			_, err := cc.Test(ctx)
			return gateway.Meta{}, err
		}, "throttled"},
		{"the throttled replica again", func() (gateway.Meta, error) {
			_, m, err := a.Customer(ctx, alexEmail)
			return m, err
		}, "throttled"},
	}
	for _, ch := range checks {
		m, err := ch.do()
		switch ch.want {
		case "stale":
			if err != nil || m.Outcome != gateway.Stale {
				t.Errorf("%s: %v, %v; want a stale answer", ch.name, m.Outcome, err)
			}
		default:
			code := gateway.ErrorCode(err)
			if code != ch.want {
				t.Errorf("%s: %v; want %s", ch.name, err, ch.want)
			}
			if ra := gateway.RetryAfter(err); ra <= 25*time.Second || ra > 30*time.Second {
				t.Errorf("%s: Retry-After %v, want the remaining ~30s", ch.name, ra)
			}
		}
	}
	if n := c.requests() - before; n != 0 {
		for _, r := range c.sim.Requests()[before:] {
			t.Logf("request inside the window: %s %s", r.Path, r.Filter)
		}
		t.Fatalf("%d Dataverse requests inside the Retry-After window of another replica's 429, want 0", n)
	}
}

// TestFleetRedisDown: with Redis refused, silent or killed mid-way, lookups
// still answer from Dataverse, well within the caller's deadline.
func TestFleetRedisDown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"refused", func(t *testing.T) string { return "redis://" + closedAddr(t) }},
		{"silent", func(t *testing.T) string { return "redis://" + silentAddr(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m, _ := NewMetrics(reg)
			c := newCluster(t, 2, Config{URL: tt.url(t), Metrics: m}, nil)
			for i, rep := range c.reps {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				cu, meta, err := rep.gw.Customer(ctx, alexEmail)
				cancel()
				if err != nil || cu.ID != alexID || meta.Outcome != gateway.Miss {
					t.Fatalf("replica %d: %+v %v %v; want a miss answered by Dataverse", i, cu, meta, err)
				}
			}
			if n := c.requests(); n != 2 {
				t.Errorf("%d requests, want 2 (each replica alone)", n)
			}
			failed := testutil.ToFloat64(m.ops.WithLabelValues("get", "error")) + testutil.ToFloat64(m.ops.WithLabelValues("get", "timeout"))
			if failed == 0 {
				t.Error("no failed Redis operation counted")
			}
		})
	}
	t.Run("killed", func(t *testing.T) {
		t.Parallel()
		p := redistest.Start(t)
		c := newCluster(t, 2, Config{URL: p.URL}, nil)
		ctx := ctxT(t)
		if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.reps[1].gw.Customer(ctx, alexEmail); err != nil || m.Outcome != gateway.Hit {
			t.Fatalf("second replica = %v %v, want a hit from Redis", m.Outcome, err)
		}
		p.Stop()
		for i, rep := range c.reps {
			o, _, err := rep.gw.Order(ctx, demoOrder)
			if err != nil || o.Number != demoOrder {
				t.Fatalf("replica %d after Redis died: %v", i, err)
			}
		}
		if n := c.requests(); n != 3 {
			t.Errorf("%d requests, want 3 (one shared, then one per replica)", n)
		}
	})
}

// TestFleetVersionMismatch: an entry in another payload format (another
// dvgate release) is a miss, and is replaced by this release's answer.
func TestFleetVersionMismatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, Config{OpTimeout: time.Second}, nil)
	ctx := ctxT(t)
	if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
		t.Fatal(err)
	}
	raw := rawRedis(t)
	keys := raw.Keys(ctx, c.reps[0].r.prefix+":"+keyVersion+":customer:*").Val()
	if len(keys) != 1 {
		t.Fatalf("customer keys in Redis: %q, want one", keys)
	}
	b := raw.Get(ctx, keys[0]).Val()
	if b[0] != envVersion {
		t.Fatalf("value starts with %#x, want the envelope version %#x", b[0], envVersion)
	}
	for _, secret := range []string{"https://", "client_secret", c.sim.ClientSecret()} {
		if strings.Contains(b, secret) {
			t.Fatalf("payload holds %q: %s", secret, b)
		}
	}
	raw.Set(ctx, keys[0], string(envVersion+1)+b[1:], time.Hour)

	_, m, err := c.reps[1].gw.Customer(ctx, alexEmail)
	if err != nil || m.Outcome != gateway.Miss {
		t.Fatalf("lookup over a payload of another version = %v %v, want a miss", m.Outcome, err)
	}
	if n := c.requests(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if _, m, err := c.reps[2].gw.Customer(ctx, alexEmail); err != nil || m.Outcome != gateway.Hit || c.requests() != 2 {
		t.Fatalf("after the rewrite: %v %v, %d requests; want a hit from Redis", m.Outcome, err, c.requests())
	}
}

// crashingHolder takes the first lock with a replica that then vanishes
// (its Redis client closed: no extension, no unlock), as a replica killed
// in the middle of a Dataverse call would.
type crashingHolder struct {
	*Redis
	dead *Redis
	once sync.Once
}

func (c *crashingHolder) Lock(ctx context.Context, kind, key string) (func(), bool, error) {
	crashed := false
	c.once.Do(func() {
		_, ok, err := c.dead.Lock(ctx, kind, key)
		c.dead.Close()
		crashed = ok && err == nil
	})
	if crashed {
		return nil, false, nil
	}
	return c.Redis.Lock(ctx, kind, key)
}

// TestFleetLostHolder: a lock holder that vanishes stalls the others only
// until its lock expires; then one of them loads.
func TestFleetLostHolder(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	dead := newTestRedis(t, Config{Prefix: prefix, OpTimeout: time.Second, LockTTL: 200 * time.Millisecond})
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	c := newCluster(t, 1, Config{Prefix: prefix, OpTimeout: time.Second, Metrics: m}, func(r *Redis) gateway.SharedCache {
		return &crashingHolder{Redis: r, dead: dead}
	})
	cu, meta, err := c.reps[0].gw.Customer(ctxT(t), alexEmail)
	if err != nil || cu.ID != alexID || meta.Outcome != gateway.Miss {
		t.Fatalf("lookup behind a vanished holder = %v %v", meta.Outcome, err)
	}
	if n := c.requests(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if busy := testutil.ToFloat64(m.ops.WithLabelValues("lock", "busy")); busy == 0 {
		t.Error("the lookup never found the lock busy: the test did not test a lost holder")
	}
}

// go-redis's own messages (a failed dial) reach the replica's JSON log as
// JSON, without the URL's password.
func TestRedisClientLogIsJSON(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	l := redisLog{log: log, url: "redis://:hunter2@127.0.0.1:1/0"}
	l.Printf(context.Background(), "redis: %s: dial tcp: connect refused for %s", "pool.go:770", "redis://:hunter2@127.0.0.1:1/0")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not a JSON line: %q", buf.String())
	}
	if msg, _ := rec["message"].(string); !strings.Contains(msg, "connect refused for <url>") || strings.Contains(buf.String(), "hunter2") {
		t.Errorf("log line %s", buf.String())
	}
}
