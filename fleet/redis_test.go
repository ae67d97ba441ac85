package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// newTestRedis returns a client of the test Redis with a prefix of its own
// (tests run in parallel on one server), closed at the end of the test.
func newTestRedis(t testing.TB, cfg Config) *Redis {
	t.Helper()
	if testRedisURL == "" {
		t.Skip(skipNoRedis)
	}
	if cfg.URL == "" {
		cfg.URL = testRedisURL
	}
	if cfg.Prefix == "" {
		cfg.Prefix = uniquePrefix()
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// rawRedis is a plain client of the test Redis, for looking behind the API.
func rawRedis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testRedisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = ok
	}{
		{"empty URL", Config{}, "URL is empty"},
		{"bad scheme", Config{URL: "http://127.0.0.1:6379"}, "not redis://"},
		{"password never echoed", Config{URL: "redis://u:s3cret@host:notaport/0"}, "not redis://"},
		{"bad prefix", Config{URL: "redis://127.0.0.1:6379", Prefix: "a b"}, "key prefix"},
		{"negative timeout", Config{URL: "redis://127.0.0.1:6379", OpTimeout: -1}, "negative"},
		{"ok", Config{URL: "redis://127.0.0.1:6379/2", Prefix: "prod-eu:dvgate"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				r.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%+v) error = %v, want it to contain %q", tt.cfg, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// TestKeys checks the key layout: versioned, prefixed, and without the org
// URL or the customer's input in clear.
func TestKeys(t *testing.T) {
	t.Parallel()
	r, err := New(Config{URL: "redis://127.0.0.1:1/0", Prefix: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	key := "default\x1fhttps://contoso.crm4.dynamics.com/api/data/v9.2/\x1fcustomer\x1fboth\x1falex@example.com"
	for _, k := range []string{r.dataKey("customer", key), r.lockKey("customer", key), r.throttleKey(orgID("https://contoso.crm4.dynamics.com/api/data/v9.2/"))} {
		if !strings.HasPrefix(k, "acme:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		for _, secret := range []string{"contoso", "alex", "example"} {
			if strings.Contains(k, secret) {
				t.Errorf("key %q shows %q", k, secret)
			}
		}
	}
	if k := r.dataKey("customer", key); !strings.HasPrefix(k, "acme:v1:customer:") {
		t.Errorf("data key %q, want acme:v1:customer:<hash>", k)
	}
	if a, b := orgID("https://Contoso.crm4.dynamics.com/api/data/v9.2/"), orgID("https://contoso.crm4.dynamics.com/api/data/v9.2/contacts?$top=1"); a != b {
		t.Errorf("one org, two ids: %s %s", a, b)
	}
}

func TestGetSet(t *testing.T) {
	t.Parallel()
	r := newTestRedis(t, Config{OpTimeout: time.Second})
	ctx := context.Background()
	if _, ok, err := r.Get(ctx, "order", "k"); ok || err != nil {
		t.Fatalf("Get on an empty Redis = ok %v, err %v; want a miss", ok, err)
	}
	if err := r.Set(ctx, "order", "k", []byte("\x01{}"), time.Minute); err != nil {
		t.Fatal(err)
	}
	b, ok, err := r.Get(ctx, "order", "k")
	if err != nil || !ok || string(b) != "\x01{}" {
		t.Fatalf("Get = %q, %v, %v", b, ok, err)
	}
	if _, ok, _ := r.Get(ctx, "customer", "k"); ok {
		t.Fatal("the same key of another kind was a hit")
	}
	ttl := rawRedis(t).PTTL(ctx, r.dataKey("order", "k")).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, want the Set ttl (1m) as the bound", ttl)
	}
	other := newTestRedis(t, Config{OpTimeout: time.Second}) // another deployment's prefix
	if _, ok, _ := other.Get(ctx, "order", "k"); ok {
		t.Fatal("another prefix read this deployment's entry")
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestRedis(t, Config{OpTimeout: time.Second, LockTTL: 300 * time.Millisecond})
	b := newTestRedis(t, Config{URL: testRedisURL, Prefix: a.prefix, OpTimeout: time.Second})
	unlock, ok, err := a.Lock(ctx, "order", "k")
	if err != nil || !ok {
		t.Fatalf("first Lock = %v, %v", ok, err)
	}
	if _, ok, err := b.Lock(ctx, "order", "k"); ok || err != nil {
		t.Fatalf("second Lock while held = %v, %v; want busy", ok, err)
	}
	// The holder's lock expired and another replica took over: the old
	// holder's unlock must not release the new holder's lock.
	raw := rawRedis(t)
	k := a.lockKey("order", "k")
	if err := raw.Set(ctx, k, "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	unlock()
	if got := raw.Get(ctx, k).Val(); got != "someone-else" {
		t.Fatalf("after the old holder's unlock the lock is %q, want the new holder's", got)
	}
	raw.Del(ctx, k)
	unlock2, ok, err := b.Lock(ctx, "order", "k")
	if err != nil || !ok {
		t.Fatalf("Lock after release = %v, %v", ok, err)
	}
	unlock2()
	if n := raw.Exists(ctx, k).Val(); n != 0 {
		t.Fatal("unlock left the lock behind")
	}
}

// TestLockOutlivesTTLWhileHeld checks that a holder keeps its lock past
// LockTTL (a slow Dataverse call), and that Close (a replica going away
// without unlocking) lets it expire.
func TestLockOutlivesTTLWhileHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestRedis(t, Config{OpTimeout: time.Second, LockTTL: 150 * time.Millisecond})
	raw := rawRedis(t)
	unlock, ok, err := a.Lock(ctx, "order", "k")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	k := a.lockKey("order", "k")
	// Wait (on Redis's clock) for three TTLs: the lock must still be there.
	deadline := time.Now().Add(450 * time.Millisecond)
	for time.Now().Before(deadline) {
		if raw.Exists(ctx, k).Val() == 0 {
			t.Fatal("a held lock expired")
		}
		// PTTL never goes near 0 while the holder extends it.
		if d := raw.PTTL(ctx, k).Val(); d <= 0 {
			t.Fatalf("PTTL = %v", d)
		}
		<-time.After(10 * time.Millisecond) // polling an external server's state
	}
	a.Close() // the holder vanishes: no more extensions, no unlock
	for raw.Exists(ctx, k).Val() != 0 {
		if d := raw.PTTL(ctx, k).Val(); d > 150*time.Millisecond {
			t.Fatalf("PTTL %v after the holder vanished, want at most LockTTL", d)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestRedis(t, Config{OpTimeout: time.Second, Metrics: m})
	b := newTestRedis(t, Config{Prefix: a.prefix, OpTimeout: time.Second, Clock: clk.Now, Metrics: m})
	const org = "https://contoso.crm4.dynamics.com/api/data/v9.2/"

	if d := b.Blocked(ctx, org); d != 0 {
		t.Fatalf("Blocked before any 429 = %v", d)
	}
	a.Block(ctx, org, 20*time.Second)
	// b read "open" just now and trusts it for ThrottleRefresh (100 ms).
	if d := b.Blocked(ctx, org); d != 0 {
		t.Fatalf("Blocked within the refresh period = %v, want the cached 0", d)
	}
	clk.Advance(100 * time.Millisecond)
	if d := b.Blocked(ctx, org); d < 19*time.Second || d > 20*time.Second {
		t.Fatalf("Blocked after a 20s block elsewhere = %v", d)
	}
	a.Block(ctx, org, 5*time.Second) // shorter: must not shorten
	if d := rawRedis(t).PTTL(ctx, a.throttleKey(orgID(org))).Val(); d < 19*time.Second {
		t.Fatalf("a shorter block shortened the current one: PTTL %v", d)
	}
	if d := b.Blocked(ctx, "https://other.crm.dynamics.com/api/data/v9.2/"); d != 0 {
		t.Fatalf("another org is blocked: %v", d)
	}
	got := testutil.ToFloat64(m.ops.WithLabelValues("throttle_get", "blocked"))
	if got != 1 {
		t.Errorf("throttle_get blocked = %v, want 1 (one Redis read per refresh period)", got)
	}
}

// TestFailOpen: an unreachable or silent Redis fails each operation within
// the operation timeout, and after a few failures is skipped for the
// backoff period.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		url     func(t *testing.T) string
		outcome string
	}{
		{"refused", func(t *testing.T) string { return "redis://" + closedAddr(t) }, "error"},
		{"silent", func(t *testing.T) string { return "redis://" + silentAddr(t) }, "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m, _ := NewMetrics(reg)
			r, err := New(Config{URL: tt.url(t), Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for range failuresBeforeSkip {
				if _, _, err := r.Get(ctx, "order", "k"); err == nil || errors.Is(err, errSkipped) {
					t.Fatalf("Get on a dead Redis = %v, want its failure", err)
				}
			}
			if ctx.Err() != nil {
				t.Fatal("Get waited for the caller's deadline instead of its own timeout")
			}
			if _, _, err := r.Lock(ctx, "order", "k"); !errors.Is(err, errSkipped) {
				t.Fatalf("Lock right after a failure = %v, want skipped", err)
			}
			if d := r.Blocked(ctx, "https://x.crm.dynamics.com/"); d != 0 {
				t.Fatalf("Blocked on a dead Redis = %v, want 0 (open)", d)
			}
			want := map[string]float64{"get/" + tt.outcome: failuresBeforeSkip, "lock/skipped": 1, "throttle_get/skipped": 1}
			got := map[string]float64{}
			for k := range want {
				op, out, _ := strings.Cut(k, "/")
				got[k] = testutil.ToFloat64(m.ops.WithLabelValues(op, out))
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("metrics (-want +got):\n%s", d)
			}
		})
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr accepts connections and never answers (a hung Redis, a
// black-holing network).
func silentAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
