package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/dvgate/dvgate/fleet/redistest"
	"github.com/dvgate/dvgate/gateway"
)

// newTestRedis returns a client of the test Redis with a prefix of its own
// (tests run in parallel on one server), closed at the end of the test.
func newTestRedis(t testing.TB, cfg Config) *Redis {
	t.Helper()
	if testRedisURL == "" {
		redistest.Skip(t)
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
	for _, k := range []string{r.dataKey("customer", key), r.lockKey("customer", key), r.throttleKey(r.orgID("https://contoso.crm4.dynamics.com/api/data/v9.2/"))} {
		if !strings.HasPrefix(k, "acme:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		for _, secret := range []string{"contoso", "alex", "example"} {
			if strings.Contains(k, secret) {
				t.Errorf("key %q shows %q", k, secret)
			}
		}
	}
	if k := r.dataKey("customer", key); !strings.HasPrefix(k, "acme:v2:customer:") {
		t.Errorf("data key %q, want acme:v2:customer:<hash>", k)
	}
	if a, b := r.orgID("https://Contoso.crm4.dynamics.com/api/data/v9.2/"), r.orgID("https://contoso.crm4.dynamics.com/api/data/v9.2/contacts?$top=1"); a != b {
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
	// LockTTL 1 s (extended every 333 ms): long enough that a loaded CI
	// machine does not starve the extender past it.
	const ttl = time.Second
	a := newTestRedis(t, Config{OpTimeout: time.Second, LockTTL: ttl})
	raw := rawRedis(t)
	unlock, ok, err := a.Lock(ctx, "order", "k")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	k := a.lockKey("order", "k")
	// Wait (on Redis's clock) for three TTLs: the lock must still be there.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if raw.Exists(ctx, k).Val() == 0 {
			t.Fatal("a held lock expired")
		}
		// PTTL never goes near 0 while the holder extends it.
		if d := raw.PTTL(ctx, k).Val(); d <= 0 {
			t.Fatalf("PTTL = %v", d)
		}
		<-time.After(50 * time.Millisecond) // polling an external server's state
	}
	a.Close() // the holder vanishes: no more extensions, no unlock
	for raw.Exists(ctx, k).Val() != 0 {
		if d := raw.PTTL(ctx, k).Val(); d > ttl {
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
	if d := rawRedis(t).PTTL(ctx, a.throttleKey(a.orgID(org))).Val(); d < 19*time.Second {
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

// TestThrottleCapAndShrink: a throttle key set by hand with a year-long TTL
// holds a replica back for at most MaxBlock on its clock, even when renewed,
// and not at all once deleted; ThrottledUntil (for /readyz) says the same.
func TestThrottleCapAndShrink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	r := newTestRedis(t, Config{OpTimeout: time.Second, Clock: clk.Now})
	raw := rawRedis(t)
	const org = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
	key := r.throttleKey(r.orgID(org))
	year := 365 * 24 * time.Hour
	step := func(d time.Duration) { clk.Advance(d + DefaultThrottleRefresh) } // past the local cache of the last read

	raw.Set(ctx, key, "1", year)
	if d := r.Blocked(ctx, org); d <= 0 || d > MaxBlock {
		t.Fatalf("Blocked under a year-long key = %v, want (0, %v]", d, MaxBlock)
	}
	if until := r.ThrottledUntil(org); until.IsZero() || until.Sub(clk.Now()) > MaxBlock {
		t.Fatalf("ThrottledUntil = %v (now %v)", until, clk.Now())
	}
	if d := raw.PTTL(ctx, key).Val(); d <= 0 || d > MaxBlock {
		t.Fatalf("the key's PTTL after a read = %v, want cut to at most %v", d, MaxBlock)
	}
	raw.Set(ctx, key, "1", year) // renewed by hand: still at most 24 h from the first sight
	step(12 * time.Hour)
	if d := r.Blocked(ctx, org); d <= 0 || d > 12*time.Hour {
		t.Fatalf("Blocked 12h into a renewed year-long key = %v, want at most the 12h left", d)
	}
	raw.Set(ctx, key, "1", year)
	step(12 * time.Hour)
	if d := r.Blocked(ctx, org); d != 0 {
		t.Fatalf("Blocked 24h into a renewed year-long key = %v, want 0", d)
	}
	if until := r.ThrottledUntil(org); !until.IsZero() {
		t.Fatalf("ThrottledUntil past the cap = %v, want zero", until)
	}

	// Deleted: the gate shrinks at the next read.
	other := "https://fabrikam.crm.dynamics.com/api/data/v9.2/"
	okey := r.throttleKey(r.orgID(other))
	raw.Set(ctx, okey, "1", time.Hour)
	step(0)
	if d := r.Blocked(ctx, other); d <= 0 {
		t.Fatalf("Blocked under an hour-long key = %v", d)
	}
	raw.Del(ctx, okey)
	step(0)
	if d := r.Blocked(ctx, other); d != 0 {
		t.Fatalf("Blocked after the key was deleted = %v, want 0", d)
	}
	if until := r.ThrottledUntil(other); !until.IsZero() {
		t.Fatalf("ThrottledUntil after the key was deleted = %v, want zero", until)
	}

	// A block after the previous one ended on its own counts afresh.
	raw.Set(ctx, okey, "1", time.Minute)
	step(0)
	if d := r.Blocked(ctx, other); d <= 0 {
		t.Fatalf("Blocked under a new key = %v", d)
	}

	// Block itself never writes more than MaxBlock.
	third := "https://northwind.crm.dynamics.com/api/data/v9.2/"
	r.Block(ctx, third, year)
	if d := raw.PTTL(ctx, r.throttleKey(r.orgID(third))).Val(); d <= 0 || d > MaxBlock {
		t.Fatalf("PTTL after Block(1 year) = %v, want at most %v", d, MaxBlock)
	}
	if d := r.Blocked(ctx, third); d <= 0 || d > MaxBlock {
		t.Fatalf("Blocked after Block(1 year) = %v", d)
	}
}

// TestFleetThrottleKeyDeleted: through a gateway, a year-long throttle key
// answers 503 with a Retry-After of at most 24 h, and once deleted the
// next lookup reaches Dataverse (no restart).
func TestFleetThrottleKeyDeleted(t *testing.T) {
	t.Parallel()
	fclk := &testClock{t: time.Now()}
	c := newCluster(t, 1, Config{OpTimeout: time.Second, Clock: fclk.Now}, nil)
	ctx := ctxT(t)
	r := c.reps[0].r
	raw := rawRedis(t)
	key := r.throttleKey(r.orgID(c.sim.URL()))
	raw.Set(ctx, key, "1", 365*24*time.Hour)
	_, _, err := c.reps[0].gw.Customer(ctx, alexEmail)
	if code := gateway.ErrorCode(err); code != "throttled" {
		t.Fatalf("lookup under a year-long throttle key = %v, want throttled", err)
	}
	if ra := gateway.RetryAfter(err); ra <= 0 || ra > MaxBlock {
		t.Fatalf("Retry-After %v, want at most %v", ra, MaxBlock)
	}
	if n := c.requests(); n != 0 {
		t.Fatalf("%d requests while held back", n)
	}
	raw.Del(ctx, key)
	fclk.Advance(DefaultThrottleRefresh)
	if cu, _, err := c.reps[0].gw.Customer(ctx, alexEmail); err != nil || cu.ID != alexID {
		t.Fatalf("lookup after the key was deleted = %v", err)
	}
}

// TestErrorLogReadable: a Redis error (here WRONGPASS) is logged as Redis
// said it, without the password (issue 16: every character was separated
// by "<url>").
func TestErrorLogReadable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := rawRedis(t)
	user := uniquePrefix()
	if err := raw.Do(ctx, "ACL", "SETUSER", user, "on", ">rightpass-"+user, "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Do(context.Background(), "ACL", "DELUSER", user) })
	u, err := url.Parse(testRedisURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, "s3cretpw")
	var logs logBuf
	r := newTestRedis(t, Config{URL: u.String(), OpTimeout: time.Second, Logger: logs.logger()})
	for range failuresBeforeSkip {
		if _, _, err := r.Get(ctx, "order", "k"); err == nil {
			t.Fatal("Get with a wrong password succeeded")
		}
	}
	out := logs.String()
	if !strings.Contains(out, "WRONGPASS invalid username-password pair") {
		t.Errorf("log does not show Redis's WRONGPASS error readably:\n%s", out)
	}
	if strings.Contains(out, "s3cretpw") {
		t.Errorf("log shows the password:\n%s", out)
	}
	if strings.Count(out, "<url>") > 1 {
		t.Errorf("log garbled with <url>:\n%s", out)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ msg, url, want string }{
		{"WRONGPASS invalid username-password pair", "", "WRONGPASS invalid username-password pair"},
		{"dial redis://u:pw@h:1/0 failed", "redis://u:pw@h:1/0", "dial <url> failed"},
		{"auth pw rejected", "redis://u:pw@h:1/0", "auth <password> rejected"},
	} {
		if got := redact(tt.msg, tt.url); got != tt.want {
			t.Errorf("redact(%q, %q) = %q, want %q", tt.msg, tt.url, got, tt.want)
		}
	}
}

func TestKeyConfig(t *testing.T) {
	t.Parallel()
	var logs logBuf
	if _, err := New(Config{URL: "redis://127.0.0.1:1/0", Key: []byte("short")}); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("New with a 5-byte key = %v, want refused", err)
	}
	r, err := New(Config{URL: "redis://127.0.0.1:1/0", Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "unauthenticated") {
		t.Errorf("no warning without a key:\n%s", logs.String())
	}
	var quiet logBuf
	r, err = New(Config{URL: "redis://127.0.0.1:1/0", Key: testKey, Logger: quiet.logger()})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if quiet.String() != "" {
		t.Errorf("logged with a key:\n%s", quiet.String())
	}
}

// TestLockForged: a lock set by hand with an hour-long TTL is cut to
// LockTTL at the first attempt, so it stalls loads for at most that long.
func TestLockForged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestRedis(t, Config{OpTimeout: time.Second, LockTTL: 300 * time.Millisecond})
	raw := rawRedis(t)
	k := a.lockKey("order", "k")
	raw.Set(ctx, k, "forged", time.Hour)
	if _, ok, err := a.Lock(ctx, "order", "k"); ok || err != nil {
		t.Fatalf("Lock over a held lock = %v, %v; want busy", ok, err)
	}
	if d := raw.PTTL(ctx, k).Val(); d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("PTTL of the hour-long lock after an attempt = %v, want at most LockTTL", d)
	}
}
