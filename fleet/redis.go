package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/sync/singleflight"

	"github.com/dvgate/dvgate/gateway"
)

// Defaults of Config's zero values.
const (
	DefaultPrefix          = "dvgate"
	DefaultOpTimeout       = 50 * time.Millisecond
	DefaultLockTTL         = 2 * time.Second
	DefaultThrottleRefresh = 100 * time.Millisecond
	DefaultBackoff         = time.Second
	DefaultMaxPayload      = 256 << 10
)

// MaxBlock caps how long the shared throttle gate holds an org back,
// whatever a 429 or the throttle key in Redis says: Dataverse's own
// Retry-After is capped the same way in package dataverse, and a key set
// by hand (or by an attacker) with a year-long TTL must not stop the fleet
// for a year.
const MaxBlock = 24 * time.Hour

// keyVersion is the layout version of the keys (see the package comment).
// v2: keyed hashes and the sealed envelope (seal.go).
const keyVersion = "v2"

// Config configures a Redis.
type Config struct {
	// URL is the Redis or Valkey URL: redis://[user:password@]host:port[/db],
	// rediss:// for TLS, unix:///path.sock (go-redis ParseURL).
	URL string
	// Prefix starts every key, one per deployment sharing a Redis;
	// "" = "dvgate". Letters, digits, '.', '_', '-' and ':'.
	Prefix string
	// OpTimeout bounds each Redis operation (50 ms): past it the lookup
	// goes on without Redis.
	OpTimeout time.Duration
	// LockTTL is how long a load lock outlives a replica that vanished
	// while loading (2 s); the holder extends it while its Dataverse call
	// runs.
	LockTTL time.Duration
	// ThrottleRefresh is how long a replica trusts its last read of an
	// org's throttle state (100 ms), so that a lookup does not cost a Redis
	// round trip; a 429 elsewhere reaches it within this delay.
	ThrottleRefresh time.Duration
	// Backoff is how long Redis is skipped after a failed operation (1 s).
	Backoff time.Duration
	// Key is the deployment's secret for the shared level, the same on
	// every replica and never stored in Redis (configured by reference as
	// redis.key, or DVGATE_REDIS_KEY): at least MinKeyLen (32) bytes,
	// e.g. the text `openssl rand -base64 32` prints. New derives from it
	// with HKDF-SHA256, one label each, an HMAC-SHA256 key authenticating
	// every value together with the Redis key it is stored under (a value
	// forged, or copied to another key, integration or org, is a miss), an
	// AES-256-GCM key encrypting values (Redis holds no names, emails or
	// phones in clear) and an HMAC key for the hashes in key names (nobody
	// can recompute a key from a guessed email). Changing it turns every
	// entry into a miss, nothing worse.
	//
	// nil = none: values are bound to their key (a moved value is a miss)
	// but in clear and unauthenticated, key hashes are bare SHA-256, and
	// New logs a warning.
	Key []byte
	// MaxPayload caps a value (256 KiB): a larger one is a miss, and no
	// more than MaxPayload+1 bytes of it cross the network (GETRANGE).
	MaxPayload int
	// Clock is the local clock of the throttle cache and the backoff; nil =
	// time.Now. (Expiry is Redis's own: PX and PTTL.)
	Clock func() time.Time
	// Logger; nil = discard.
	Logger *slog.Logger
	// Metrics; nil = none.
	Metrics *Metrics
}

// Redis implements gateway.SharedCache and gateway.Throttle on one Redis
// (or Valkey) server. See the package comment.
type Redis struct {
	c        *redis.Client
	prefix   string
	opTO     time.Duration
	lockTTL  time.Duration
	refresh  time.Duration
	backoff  time.Duration
	maxValue int
	keys     *keys  // nil without Config.Key
	rawURL   string // for redacting error messages
	clock    func() time.Time
	log      *slog.Logger
	metrics  *Metrics
	skipTill atomic.Int64 // Unix ns on clock until which Redis is skipped
	failures atomic.Int32 // consecutive failed operations

	mu     sync.Mutex
	orgs   map[string]*orgState // by org hash; guarded by mu
	warned map[string]bool      // rejection reasons logged; guarded by mu
	sf     singleflight.Group   // one throttle read per org at a time

	done    chan struct{} // closed by Close: stops lock refreshers
	running sync.WaitGroup
	closed  atomic.Bool

	opts *redis.Options // for the change feed's reader (feed.go)
	feed feedReader
}

type orgState struct {
	checked time.Time // last read from Redis (clock)
	shared  time.Time // blocked until (clock), as of the last read: replaced by each read, so it shrinks when the key goes
	since   time.Time // start (clock) of the continuous shared block being read; zero when open
	capped  bool      // shared was cut at since+MaxBlock: the key outlived the cap
	own     time.Time // blocked until (clock) by this replica's own 429s
}

// observe records a successful read of the shared block: rem remaining
// (0 = open) at now. A block seen continuously, from read to read, holds
// this replica back for at most MaxBlock from its first sight on this
// replica's clock, however often the key is renewed (a key re-set by
// hand or by an attacker); once open again, or once a block ended on its
// own, the next one counts afresh.
func (st *orgState) observe(now time.Time, rem time.Duration) {
	if rem <= 0 {
		st.shared, st.since, st.capped = time.Time{}, time.Time{}, false
		return
	}
	if st.since.IsZero() || (!st.capped && !st.shared.After(now)) {
		st.since, st.capped = now, false
	}
	st.shared = now.Add(min(rem, MaxBlock))
	if limit := st.since.Add(MaxBlock); !st.shared.Before(limit) {
		st.shared, st.capped = limit, true
	}
}

func (st *orgState) until() time.Time {
	if st.own.After(st.shared) {
		return st.own
	}
	return st.shared
}

var (
	_ gateway.SharedCache = (*Redis)(nil)
	_ gateway.Throttle    = (*Redis)(nil)
	_ gateway.FeedBus     = (*Redis)(nil)
)

var prefixPattern = func(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:", r)) {
			return false
		}
	}
	return s != "" && len(s) <= 64
}

// New checks cfg and returns a Redis client. It makes no network call:
// connections are made on first use, so a Redis that is down at start-up
// only makes the replica work alone until it comes back.
func New(cfg Config) (*Redis, error) {
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, errors.New("fleet: Redis URL is empty; set it (redis://host:6379/0) or leave the shared level off")
	}
	opts, err := redis.ParseURL(strings.TrimSpace(cfg.URL))
	if err != nil {
		// go-redis errors may echo the URL, which may hold a password.
		return nil, fmt.Errorf("fleet: Redis URL is not redis://[user:password@]host:port[/db], rediss://... or unix://...: %s", redact(err.Error(), cfg.URL))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger != nil {
		setRedisLog(cfg.Logger, cfg.URL)
	}
	if !prefixPattern(cfg.Prefix) {
		return nil, fmt.Errorf("fleet: key prefix %q: use 1-64 letters, digits, '.', '_', '-' or ':'", cfg.Prefix)
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
		n   string
	}{{&cfg.OpTimeout, DefaultOpTimeout, "OpTimeout"}, {&cfg.LockTTL, DefaultLockTTL, "LockTTL"},
		{&cfg.ThrottleRefresh, DefaultThrottleRefresh, "ThrottleRefresh"}, {&cfg.Backoff, DefaultBackoff, "Backoff"}} {
		if *d.p < 0 {
			return nil, fmt.Errorf("fleet: %s %v is negative", d.n, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("fleet: MaxPayload %d is negative", cfg.MaxPayload)
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	k, err := deriveKeys(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if k == nil {
		cfg.Logger.Warn("the shared level (Redis) is unauthenticated: anyone who can write to this Redis can make dvgate serve forged answers, and values hold names, emails and phones in clear",
			"remedy", "set redis.key (DVGATE_REDIS_KEY) to the same secret of at least 32 random bytes on every replica, e.g. `openssl rand -base64 32`")
	}
	// Fail fast rather than well: no retries, dial and I/O bounded by the
	// operation timeout, deadlines from the context, no background
	// maintenance-notification machinery.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DialTimeout = cfg.OpTimeout
	opts.ReadTimeout = cfg.OpTimeout
	opts.WriteTimeout = cfg.OpTimeout
	opts.PoolTimeout = cfg.OpTimeout
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &Redis{
		c: redis.NewClient(opts), prefix: cfg.Prefix, opTO: cfg.OpTimeout, lockTTL: cfg.LockTTL,
		refresh: cfg.ThrottleRefresh, backoff: cfg.Backoff, maxValue: cfg.MaxPayload, keys: k, rawURL: strings.TrimSpace(cfg.URL),
		clock: cfg.Clock, log: cfg.Logger, metrics: cfg.Metrics, orgs: map[string]*orgState{}, warned: map[string]bool{},
		done: make(chan struct{}), opts: opts,
	}, nil
}

// redact removes the URL (and its password) from a message. An empty URL
// changes nothing (strings.ReplaceAll with an empty old string would put
// "<url>" between every character).
func redact(msg, rawURL string) string {
	if rawURL == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, rawURL, "<url>")
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "<password>")
		}
	}
	return msg
}

// Close stops lock refreshers and closes the connections.
func (r *Redis) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	close(r.done)
	r.feed.close()
	r.running.Wait()
	return r.c.Close()
}

// Ping checks that Redis answers (for a start-up log line; never needed).
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opTO)
	defer cancel()
	return r.c.Ping(ctx).Err()
}

// dataKey and lockKey name a gateway cache key's entries; kind is checked
// by the gateway's own constants and contains no ':'.
func (r *Redis) dataKey(kind, key string) string {
	return r.prefix + ":" + keyVersion + ":" + kind + ":" + r.keys.hash(key)
}

func (r *Redis) lockKey(kind, key string) string {
	return r.prefix + ":" + keyVersion + ":lock:" + kind + ":" + r.keys.hash(key)
}

// orgID identifies an org by the scheme and host of its URL (any URL of
// the org: its base URL, a request URL), hashed.
func (r *Redis) orgID(org string) string {
	if u, err := url.Parse(org); err == nil && u.Host != "" {
		org = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return r.keys.hash(org)
}

func (r *Redis) throttleKey(id string) string { return r.prefix + ":throttle:" + id }

// failuresBeforeSkip consecutive failures make Redis skipped for Backoff:
// one slow answer on a loaded machine should not cut a replica off the
// fleet for a second, but a dead Redis should stop costing timeouts fast.
const failuresBeforeSkip = 3

// succeeded resets the consecutive failures.
func (r *Redis) succeeded() { r.failures.Store(0) }

// errSkipped is returned while Redis is skipped after a failure.
var errSkipped = errors.New("fleet: Redis skipped after a recent failure")

// begin starts an operation: errSkipped during the backoff after a failure,
// else a context bounded by the operation timeout.
func (r *Redis) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if r.clock().UnixNano() < r.skipTill.Load() {
		r.metrics.op(op, "skipped")
		return nil, nil, errSkipped
	}
	ctx, cancel := context.WithTimeout(ctx, r.opTO)
	return ctx, cancel, nil
}

// fail counts a failed operation and starts the backoff, unless the
// caller's own context ended (not Redis's fault).
func (r *Redis) fail(parent context.Context, op string, err error) error {
	if parent.Err() != nil {
		r.metrics.op(op, "canceled")
		return err
	}
	outcome := "error"
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		outcome = "timeout"
	}
	r.metrics.op(op, outcome)
	if r.failures.Add(1) < failuresBeforeSkip {
		return fmt.Errorf("fleet: redis %s: %w", op, err)
	}
	until := r.clock().Add(r.backoff).UnixNano()
	if prev := r.skipTill.Swap(until); prev < r.clock().UnixNano() {
		r.log.Warn("Redis failed; working without the shared level for a while (lookups go to Dataverse)",
			"op", op, "outcome", outcome, "skipFor", r.backoff, "error", redact(err.Error(), r.rawURL))
	}
	return fmt.Errorf("fleet: redis %s: %w", op, err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Get implements gateway.SharedCache. It reads at most MaxPayload+1
// bytes (GETRANGE: an oversized value costs no more than that), and a
// value that is oversized, of another envelope version, or not
// authenticated for this very Redis key is a miss (see reject).
func (r *Redis) Get(ctx context.Context, kind, key string) ([]byte, bool, error) {
	octx, cancel, err := r.begin(ctx, "get")
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	rk := r.dataKey(kind, key)
	// GETRANGE answers "" for a missing key; this package never stores an
	// empty value.
	b, err := r.c.GetRange(octx, rk, 0, int64(r.maxValue)).Bytes()
	switch {
	case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
		r.succeeded() // Redis works; the key holds something we never write
		r.reject(kind, rejectFormat)
		return nil, false, nil
	case err != nil:
		return nil, false, r.fail(ctx, "get", err)
	case len(b) == 0:
		r.succeeded()
		r.metrics.op("get", "miss")
		return nil, false, nil
	}
	r.succeeded()
	if len(b) > r.maxValue {
		r.reject(kind, rejectOversize)
		return nil, false, nil
	}
	p, err := r.keys.open(rk, b)
	if reason, ok := rejectReason(err); ok {
		r.reject(kind, reason)
		return nil, false, nil
	}
	r.metrics.op("get", "hit")
	return p, true, nil
}

// RejectShared implements gateway.SharedRejecter: the gateway refused a
// value Get returned (reason "future", "windows" or "format").
func (r *Redis) RejectShared(kind, reason string) { r.reject(kind, reason) }

// reject counts a refused value (op get, outcome rejected_<reason>) and
// logs the first refusal of each reason: one is worth an admin's look (a
// forged or moved entry, a replica with a clock ahead or other TTLs, a
// release or key mismatch), a thousand are the same news.
func (r *Redis) reject(kind, reason string) {
	r.metrics.op("get", "rejected_"+reason)
	r.mu.Lock()
	first := !r.warned[reason]
	r.warned[reason] = true
	r.mu.Unlock()
	if first {
		r.log.Warn("ignoring an entry of the shared level (Redis) and asking Dataverse instead; further ones for this reason are only counted (dvgate_redis_ops_total{op=\"get\",outcome=\"rejected_"+reason+"\"})",
			"kind", kind, "reason", reason, "remedy", rejectRemedy[reason])
	}
}

var rejectRemedy = map[string]string{
	rejectForged:   "the value is not authenticated for its key: it was written without this deployment's redis.key, copied from another key, or forged; check who can write to this Redis and that every replica has the same redis.key",
	rejectFormat:   "the value is in another format: a replica of another dvgate release, or with redis.key set on one replica and not another, shares this prefix",
	rejectOversize: "the value exceeds the payload cap: a replica with another cap shares this prefix, or someone wrote it by hand",
	"future":       "the answer was fetched in the future by this replica's clock: a replica's clock runs ahead (check NTP) or the value is forged",
	"windows":      "the answer's freshness or stale window exceeds this replica's TTLs: replicas sharing this prefix have different TTLs, or the value is forged",
}

// Set implements gateway.SharedCache.
func (r *Redis) Set(ctx context.Context, kind, key string, payload []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	rk := r.dataKey(kind, key)
	v := r.keys.seal(rk, payload)
	if len(v) > r.maxValue {
		r.metrics.op("set", "oversize") // every reader would refuse it
		return nil
	}
	octx, cancel, err := r.begin(ctx, "set")
	if err != nil {
		return err
	}
	defer cancel()
	if err := r.c.Set(octx, rk, v, ttl).Err(); err != nil {
		return r.fail(ctx, "set", err)
	}
	r.succeeded()
	r.metrics.op("set", "ok")
	return nil
}

// unlockScript deletes the lock only if it still holds our token: a holder
// whose lock expired and was taken over must not release the new holder's.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// extendScript extends the lock only if it still holds our token.
var extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// lockScript takes the lock (SET NX PX ARGV[2]) or, when it is held with
// more than ARGV[2] ms left, which no replica of this deployment ever sets
// (a lock set by hand or by an attacker, or by a replica with a longer
// LockTTL), cuts it to ARGV[2]: a forged lock stalls lookups for at most
// one LockTTL rather than as long as it claims.
var lockScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 1 end
if redis.call("PTTL", KEYS[1]) > tonumber(ARGV[2]) then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`)

// Lock implements gateway.SharedCache: SET lock token NX PX LockTTL (see
// lockScript). While held, a goroutine extends it every LockTTL/3, so a
// long Dataverse call keeps it and a vanished holder loses it after at
// most LockTTL.
func (r *Redis) Lock(ctx context.Context, kind, key string) (func(), bool, error) {
	octx, cancel, err := r.begin(ctx, "lock")
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	token := hex.EncodeToString(tb[:])
	k := r.lockKey(kind, key)
	n, err := lockScript.Run(octx, r.c, []string{k}, token, r.lockTTL.Milliseconds()).Int()
	ok := n == 1
	if err != nil {
		return nil, false, r.fail(ctx, "lock", err)
	}
	r.succeeded()
	if !ok {
		r.metrics.op("lock", "busy")
		return nil, false, nil
	}
	r.metrics.op("lock", "acquired")
	if r.closed.Load() {
		r.release(k, token)
		return nil, false, errors.New("fleet: closed")
	}
	stop := make(chan struct{})
	r.running.Add(1)
	go r.keep(k, token, stop)
	return sync.OnceFunc(func() {
		close(stop)
		r.release(k, token)
	}), true, nil
}

// keep extends a held lock until stop or Close.
func (r *Redis) keep(k, token string, stop <-chan struct{}) {
	defer r.running.Done()
	t := time.NewTicker(r.lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.done:
			return
		case <-t.C:
		}
		ctx, cancel, err := r.begin(context.Background(), "extend")
		if err != nil {
			continue
		}
		n, err := extendScript.Run(ctx, r.c, []string{k}, token, r.lockTTL.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil:
			_ = r.fail(context.Background(), "extend", err)
		case n == 0:
			r.metrics.op("extend", "lost")
			return // expired and maybe taken over: nothing left to extend
		default:
			r.metrics.op("extend", "ok")
		}
	}
}

func (r *Redis) release(k, token string) {
	ctx, cancel, err := r.begin(context.Background(), "unlock")
	if err != nil {
		return // it expires on its own
	}
	defer cancel()
	if err := unlockScript.Run(ctx, r.c, []string{k}, token).Err(); err != nil {
		_ = r.fail(context.Background(), "unlock", err)
		return
	}
	r.metrics.op("unlock", "ok")
}

// blockScript records a block only if it ends later than the current one
// (PTTL is -2 without a key). ARGV: Unix ms until (for humans), PX ms.
var blockScript = redis.NewScript(`
local cur = redis.call("PTTL", KEYS[1])
if cur < tonumber(ARGV[2]) then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`)

// Block implements gateway.Throttle. The remaining time lives in Redis as
// the key's PTTL, so replicas' clocks need not agree. d is capped at
// MaxBlock.
func (r *Redis) Block(ctx context.Context, org string, d time.Duration) {
	if d <= 0 {
		return
	}
	d = min(d, MaxBlock)
	id := r.orgID(org)
	now := r.clock()
	r.mu.Lock()
	st := r.state(id)
	if until := now.Add(d); until.After(st.own) {
		st.own = until
	}
	r.mu.Unlock()
	octx, cancel, err := r.begin(ctx, "throttle_set")
	if err != nil {
		return
	}
	defer cancel()
	ms := (d + time.Millisecond - 1).Milliseconds()
	if err := blockScript.Run(octx, r.c, []string{r.throttleKey(id)}, time.Now().Add(d).UnixMilli(), ms).Err(); err != nil {
		_ = r.fail(ctx, "throttle_set", err)
		return
	}
	r.succeeded()
	r.metrics.op("throttle_set", "ok")
	r.log.Info("Dataverse throttled this application user; holding every replica back", "retryAfter", d)
}

// state returns the org's local state; r.mu held.
func (r *Redis) state(id string) *orgState {
	st := r.orgs[id]
	if st == nil {
		st = &orgState{}
		r.orgs[id] = st
	}
	return st
}

// Blocked implements gateway.Throttle: the org's remaining block, at most
// MaxBlock. The fleet's part is read from Redis at most once per
// ThrottleRefresh per process and replaced by each read, so a throttle key
// that expires or is deleted stops holding this replica back within
// ThrottleRefresh (no restart); a 429 this replica received itself holds
// it back for its own Retry-After whatever Redis says. When Redis cannot
// be read, the last read stands.
func (r *Redis) Blocked(ctx context.Context, org string) time.Duration {
	return max(r.blockedUntil(ctx, org).Sub(r.clock()), 0)
}

// ThrottledUntil returns until when (on Config.Clock) requests to org are
// held back fleet-wide, the zero time when they are not: what /readyz
// reports next to the connection's own ThrottledUntil (an integration is
// not ready while either is in the future). It shares Blocked's cache, so
// it costs at most one Redis read (bounded by OpTimeout) per
// ThrottleRefresh; org is any URL of the org (its Web API base URL). Safe
// for concurrent use.
func (r *Redis) ThrottledUntil(org string) time.Time {
	u := r.blockedUntil(context.Background(), org)
	if !u.After(r.clock()) {
		return time.Time{}
	}
	return u
}

func (r *Redis) blockedUntil(ctx context.Context, org string) time.Time {
	id := r.orgID(org)
	now := r.clock()
	r.mu.Lock()
	st := r.state(id)
	checked, until := st.checked, st.until()
	r.mu.Unlock()
	if !checked.IsZero() && now.Sub(checked) < r.refresh && now.Sub(checked) >= 0 {
		return until
	}
	v, _, _ := r.sf.Do(id, func() (any, error) {
		rem, err := r.readBlock(context.WithoutCancel(ctx), id)
		now := r.clock()
		r.mu.Lock()
		defer r.mu.Unlock()
		st := r.state(id)
		st.checked = now
		if err == nil {
			st.observe(now, rem)
		}
		return st.until(), nil
	})
	return v.(time.Time)
}

// readBlockScript returns the throttle key's PTTL (ms; negative without a
// key), first cutting it to ARGV[1] ms when longer: a key that outlives
// MaxBlock is repaired for every replica, on Redis's clock.
var readBlockScript = redis.NewScript(`
local t = redis.call("PTTL", KEYS[1])
if t > tonumber(ARGV[1]) then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
end
return t`)

// readBlock returns the PTTL of the org's throttle key (0 when none),
// capped at MaxBlock.
func (r *Redis) readBlock(ctx context.Context, id string) (time.Duration, error) {
	octx, cancel, err := r.begin(ctx, "throttle_get")
	if err != nil {
		return 0, err
	}
	defer cancel()
	ms, err := readBlockScript.Run(octx, r.c, []string{r.throttleKey(id)}, MaxBlock.Milliseconds()).Int64()
	d := time.Duration(ms) * time.Millisecond
	if err != nil {
		return 0, r.fail(ctx, "throttle_get", err)
	}
	r.succeeded()
	if d <= 0 {
		r.metrics.op("throttle_get", "open")
		return 0, nil
	}
	r.metrics.op("throttle_get", "blocked")
	if d > MaxBlock {
		r.mu.Lock()
		first := !r.warned["throttle_cap"]
		r.warned["throttle_cap"] = true
		r.mu.Unlock()
		if first {
			r.log.Warn("the shared throttle key in Redis held the org back longer than 24 h; cut to 24 h",
				"ttl", d, "key", r.throttleKey(id),
				"remedy", "Dataverse never asks for that long: delete the key (replicas stop holding back within ThrottleRefresh) and check who can write to this Redis")
		}
		d = MaxBlock
	}
	return d, nil
}

// retryAfterHeader formats d as whole seconds, rounded up (Retry-After).
func retryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
