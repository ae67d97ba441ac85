package fleet

// Hostile Redis: entries written by someone who can write to Redis but does
// not hold the deployment's key (or by a replica whose clock runs ahead)
// are never served, whatever they claim.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/dvgate/dvgate/fleet/redistest"
	"github.com/dvgate/dvgate/gateway"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-deployment-A")
	otherKey = []byte("fedcba9876543210fedcba9876543210-deployment-B")
)

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// forgedCustomer is the gateway's payload (format gateway.SharedFormat) of
// a customer answer with the given fetch time and windows, as an attacker
// (or a replica with another clock) would write it.
func forgedCustomer(t testing.TB, fetched time.Time, fresh, stale time.Duration, notFound bool, name string) []byte {
	t.Helper()
	p := map[string]any{"kind": "customer", "fetched": fetched.UnixMilli(), "fresh": fresh.Milliseconds(), "stale": stale.Milliseconds()}
	if notFound {
		p["notFound"] = true
	} else {
		p["value"] = map[string]any{"type": "contact", "id": "00000000-0000-0000-0000-000000000666", "name": name, "email": alexEmail}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{gateway.SharedFormat}, b...)
}

// onlyKey returns the one data key of kind under r's prefix.
func onlyKey(t *testing.T, r *Redis, kind string) string {
	t.Helper()
	keys := rawRedis(t).Keys(context.Background(), r.prefix+":"+keyVersion+":"+kind+":*").Val()
	if len(keys) != 1 {
		t.Fatalf("%s keys in Redis: %q, want one", kind, keys)
	}
	return keys[0]
}

func mustKeys(t testing.TB, secret []byte) *keys {
	t.Helper()
	k, err := deriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestFleetForged: replica 0 stores Alex's answer; the test replaces the
// value in Redis; replica 1 (cold) must answer Alex from Dataverse, never
// the forged value, count the refusal and log it once.
func TestFleetForged(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name   string
		key    []byte // the deployment's Config.Key
		forge  func(t *testing.T, rk string, real []byte) []byte
		reason string // metric outcome rejected_<reason>
	}{
		{"valid format without MAC", testKey, func(t *testing.T, rk string, _ []byte) []byte {
			return (*keys)(nil).seal(rk, forgedCustomer(t, now, time.Minute, 0, false, "Forged"))
		}, rejectFormat},
		{"sealed under another key", testKey, func(t *testing.T, rk string, _ []byte) []byte {
			return mustKeys(t, otherKey).seal(rk, forgedCustomer(t, now, time.Minute, 0, false, "Forged"))
		}, rejectForged},
		{"MAC of the real value on a tampered value", testKey, func(t *testing.T, rk string, real []byte) []byte {
			b := bytes.Clone(real)
			b[2+nonceLen] ^= 1 // first ciphertext byte; the tag stays the real one
			return b
		}, rejectForged},
		{"forged not-found (wrong key)", testKey, func(t *testing.T, rk string, _ []byte) []byte {
			return mustKeys(t, otherKey).seal(rk, forgedCustomer(t, now, time.Minute, 0, true, ""))
		}, rejectForged},
		{"fetched ten years ahead (keyed: a replica with its clock ahead)", testKey, func(t *testing.T, rk string, _ []byte) []byte {
			return mustKeys(t, testKey).seal(rk, forgedCustomer(t, now.AddDate(10, 0, 0), time.Minute, 0, false, "Forged"))
		}, "future"},
		{"fetched ten years ahead (no key)", nil, func(t *testing.T, rk string, _ []byte) []byte {
			return (*keys)(nil).seal(rk, forgedCustomer(t, now.AddDate(10, 0, 0), time.Minute, 0, false, "Forged"))
		}, "future"},
		{"fresh for ten years", nil, func(t *testing.T, rk string, _ []byte) []byte {
			return (*keys)(nil).seal(rk, forgedCustomer(t, now, 10*365*24*time.Hour, 0, false, "Forged"))
		}, "windows"},
		{"1 MB (no key, bound to its key)", nil, func(t *testing.T, rk string, _ []byte) []byte {
			return (*keys)(nil).seal(rk, forgedCustomer(t, now, time.Minute, 0, false, "Forged"+strings.Repeat("x", 1<<20)))
		}, rejectOversize},
		{"1 MB (keyed, authentic)", testKey, func(t *testing.T, rk string, _ []byte) []byte {
			return mustKeys(t, testKey).seal(rk, forgedCustomer(t, now, time.Minute, 0, false, "Forged"+strings.Repeat("x", 1<<20)))
		}, rejectOversize},
		{"another release's bare payload", nil, func(t *testing.T, rk string, _ []byte) []byte {
			return forgedCustomer(t, now, time.Minute, 0, false, "Forged")
		}, rejectFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuf
			m, _ := NewMetrics(prometheus.NewRegistry())
			c := newClusterWith(t, 2, Config{OpTimeout: time.Second, Key: tt.key, Metrics: m, Logger: logs.logger()}, nil, nil)
			ctx := ctxT(t)
			if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
				t.Fatal(err)
			}
			rk := onlyKey(t, c.reps[0].r, "customer")
			raw := rawRedis(t)
			real, err := raw.Get(ctx, rk).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := raw.Set(ctx, rk, tt.forge(t, rk, real), time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			before := c.requests()
			for i, want := range []gateway.Outcome{gateway.Miss, gateway.Hit} {
				cu, meta, err := c.reps[1].gw.Customer(ctx, alexEmail)
				if err != nil || cu.ID != alexID || cu.Name != "Alex Wu" || meta.Outcome != want {
					t.Fatalf("lookup %d over the forged value = %+v %v %v; want Alex Wu, %v", i, cu, meta.Outcome, err, want)
				}
			}
			if n := c.requests() - before; n != 1 {
				t.Errorf("%d Dataverse requests, want 1 (the forged value is a miss)", n)
			}
			if got := testutil.ToFloat64(m.ops.WithLabelValues("get", "rejected_"+tt.reason)); got < 1 {
				t.Errorf("get/rejected_%s = %v, want at least 1", tt.reason, got)
			}
			if n := strings.Count(logs.String(), "reason="+tt.reason); n != 1 {
				t.Errorf("%d log lines with reason=%s, want 1 (logged once):\n%s", n, tt.reason, logs.String())
			}
			// The refused value was replaced by Dataverse's answer: a third,
			// cold replica would read that.
			b, _ := raw.Get(ctx, rk).Bytes()
			if bytes.Contains(b, []byte("Forged")) || len(b) > DefaultMaxPayload {
				t.Errorf("the forged value is still in Redis (%d bytes)", len(b))
			}
		})
	}
}

// TestFleetFutureAfterFlush: the forged future-dated answer of issue 16
// (served as a hit, then from the in-process cache even after FLUSHALL) is
// never served, before or after FLUSHALL. A Redis of its own: FLUSHALL.
func TestFleetFutureAfterFlush(t *testing.T) {
	t.Parallel()
	if testRedisURL == "" {
		redistest.Skip(t)
	}
	srv := redistest.Start(t)
	c := newClusterWith(t, 2, Config{URL: srv.URL, OpTimeout: time.Second}, nil, nil)
	ctx := ctxT(t)
	if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opts)
	defer raw.Close()
	ks := raw.Keys(ctx, c.reps[0].r.prefix+":"+keyVersion+":customer:*").Val()
	if len(ks) != 1 {
		t.Fatalf("keys %q", ks)
	}
	raw.Set(ctx, ks[0], (*keys)(nil).seal(ks[0], forgedCustomer(t, time.Now().AddDate(10, 0, 0), time.Minute, time.Hour, false, "Forged")), time.Hour)
	check := func(when string) {
		t.Helper()
		cu, _, err := c.reps[1].gw.Customer(ctx, alexEmail)
		if err != nil || cu.Name != "Alex Wu" {
			t.Fatalf("%s: %+v %v; want Alex Wu", when, cu, err)
		}
	}
	check("before FLUSHALL")
	if err := raw.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	check("after FLUSHALL")
	c.clk.Advance(10 * time.Minute) // past the local freshness: the in-process copy must not have lived longer
	before := c.requests()
	check("after the local freshness")
	if n := c.requests() - before; n != 1 {
		t.Errorf("%d requests past the local freshness, want 1 (nothing kept longer than the local TTL)", n)
	}
}

// TestFleetMoved: integration A's value copied to integration B's key (B's
// lookup of another customer) is never served to B, keyed or not.
func TestFleetMoved(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		key    []byte
		reason string
	}{{"keyed", testKey, rejectForged}, {"no key", nil, rejectForged}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, _ := NewMetrics(prometheus.NewRegistry())
			names := []string{"a", "b", "b"}
			c := newClusterWith(t, 3, Config{OpTimeout: time.Second, Key: tt.key, Metrics: m}, nil, func(i int, _ *Config, gc *gateway.Config) {
				gc.Name = names[i]
			})
			ctx := ctxT(t)
			r := c.reps[0].r
			raw := rawRedis(t)
			if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
				t.Fatal(err)
			}
			ka := onlyKey(t, r, "customer")
			if _, _, err := c.reps[1].gw.Customer(ctx, fabrikamEmail); err != nil {
				t.Fatal(err)
			}
			var kb string
			for _, k := range raw.Keys(ctx, r.prefix+":"+keyVersion+":customer:*").Val() {
				if k != ka {
					kb = k
				}
			}
			if kb == "" {
				t.Fatal("no key of integration b")
			}
			v, _ := raw.Get(ctx, ka).Bytes()
			raw.Set(ctx, kb, v, time.Hour)
			cu, _, err := c.reps[2].gw.Customer(ctx, fabrikamEmail)
			if err != nil || cu.ID == alexID || cu.Email != fabrikamEmail {
				t.Fatalf("b's lookup of %s over a's moved value = %+v %v", fabrikamEmail, cu, err)
			}
			if got := testutil.ToFloat64(m.ops.WithLabelValues("get", "rejected_"+tt.reason)); got < 1 {
				t.Errorf("get/rejected_%s = %v", tt.reason, got)
			}
		})
	}
}

// TestFleetSealedAtRest: with a key, Redis holds neither the answer's
// names, emails and phones nor a key anyone can recompute from a guessed
// email; without one, values are in clear (the documented trade-off) but
// still bound to their key.
func TestFleetSealedAtRest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		key   []byte
		clear bool
	}{{"keyed", testKey, false}, {"no key", nil, true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 1, Config{OpTimeout: time.Second, Key: tt.key}, nil)
			ctx := ctxT(t)
			if _, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil {
				t.Fatal(err)
			}
			r := c.reps[0].r
			rk := onlyKey(t, r, "customer")
			b, _ := rawRedis(t).Get(ctx, rk).Bytes()
			if b[0] != envVersion {
				t.Fatalf("value starts with %#x, want the envelope version %#x", b[0], envVersion)
			}
			for _, pii := range []string{"Alex", "alex.wu", "example.com", "206-555-0200"} {
				if got := bytes.Contains(b, []byte(pii)); got != tt.clear {
					t.Errorf("value contains %q: %v, want %v: %q", pii, got, tt.clear, b)
				}
			}
			bare := (*keys)(nil).hash("x")
			keyed := mustKeys(t, testKey).hash("x")
			if bare == keyed {
				t.Fatal("keyed hash = bare SHA-256")
			}
			if tt.key != nil && r.keys.hash("x") != keyed {
				t.Fatal("a keyed Redis does not use keyed hashes")
			}
		})
	}
}
