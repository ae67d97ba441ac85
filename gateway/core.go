package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dvgate/dvgate/dataverse"
)

// errClosed is returned by lookups after Close.
var errClosed = errors.New("gateway: closed")

// PanicError is the error every waiter of a shared upstream call gets when
// that call panicked. The process keeps running.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("gateway: upstream call panicked: %v", e.Value)
}

// core is the cache-and-coalesce machinery shared by every lookup kind,
// independent of Dataverse: the lookups give it a key and a load function.
type core struct {
	name        string
	cache       *Cache
	clock       func() time.Time
	notFoundTTL time.Duration
	staleTTL    time.Duration
	timeout     time.Duration // bound of each detached shared call
	metrics     *Metrics
	// counters are the lookup counters of each kind, resolved once at New
	// so that a cache hit does no label lookup; nil (no metrics) counts
	// nothing.
	counters map[string]*kindCounters
	log      *slog.Logger
	// transient reports whether an upstream error allows serving a stale
	// entry (throttling, 5xx, network, timeout; never auth/permission).
	transient func(error) bool
	// outcomeLabel names an upstream error for the metrics.
	outcomeLabel func(error) string
	// shared is the optional second level shared by replicas (shared.go);
	// nil = in-process cache only.
	shared SharedCache
	// throttledUntil reports until when the connection holds requests back
	// after a 429 (*dataverse.Conn.ThrottledUntil); nil when the upstream
	// has no such gate.
	throttledUntil func() time.Time
	// feed is the change follower's state (feed.go); nil = none: answers
	// keep their normal freshness.
	feed atomic.Pointer[feedState]

	// testHookJoined, when set (tests only), is called after a caller has
	// started or joined the shared call for its key.
	testHookJoined func()

	// life ends at close; it cancels the shared calls still running, so
	// that Close does not wait out their UpstreamTimeout. nil (tests that
	// build a core directly) means calls are not canceled.
	life    context.Context
	endLife context.CancelFunc

	mu      sync.Mutex
	closed  bool             // guarded by mu
	calls   map[string]*call // the shared call of each key, until it returns; guarded by mu
	flights sync.WaitGroup   // running shared calls; Add only under mu while !closed
}

// call is one shared upstream call and its waiters. It replaces
// x/sync/singleflight because the core must know when the last waiter of a
// call leaves: a call that has not sent its request by then is dropped
// (abandon is cancelled, and the connection and the budget refuse to send for
// it), so that callers who hung up cost Dataverse nothing. A request
// already sent runs on, so that its answer still goes to the cache, until
// the connection needs its concurrency slot for another request.
type call struct {
	done chan struct{} // closed when res and err are set
	res  flightResult
	err  error
	// abandon is done once the last waiter left before done.
	abandon    context.Context
	abandonNow context.CancelFunc

	waiters int // guarded by core.mu
}

// spec describes one lookup.
type spec struct {
	kind  string        // metrics label: "customer", "order", "recent_orders"
	key   string        // full cache key (integration, kind, mode, normalized input)
	fresh time.Duration // freshness of a found answer
	// local keeps the answer out of the shared level and out of
	// stale-if-error (Test: a stale "it works" would hide an outage).
	local bool
	// load asks Dataverse. It returns the answer and its approximate size in
	// bytes, or ErrNotFound, or an upstream error.
	load func(ctx context.Context) (value any, size int64, err error)
}

// flightResult is what a shared call hands to its waiters.
type flightResult struct {
	e       *entry
	outcome Outcome
}

// cached answers from the cache when it holds a fresh entry for key; ok is
// false otherwise. This is the hit path: one clock read, no allocation.
// The value is the cached one, shared by every caller.
func (c *core) cached(key string, kc *kindCounters) (v any, m Meta, err error, ok bool) {
	e, found := c.cache.get(key)
	if !found {
		return nil, Meta{}, nil, false
	}
	now := c.clock()
	if !e.isFresh(now) {
		return nil, Meta{}, nil, false
	}
	kc.inc(outcomeHit)
	v, m, err = answer(e, Meta{Outcome: Hit, Age: e.age(now)})
	return v, m, err, true
}

// get answers a lookup: cache, then a shared upstream call. The returned
// value is the cached one, shared by every caller: never modified.
func (c *core) get(ctx context.Context, s spec) (any, Meta, error) {
	kc := c.counters[s.kind]
	if v, m, err, ok := c.cached(s.key, kc); ok {
		return v, m, err
	}

	cl, leader, err := c.join(ctx, s)
	if err != nil {
		return nil, Meta{}, err
	}
	if c.testHookJoined != nil {
		c.testHookJoined()
	}
	select {
	case <-cl.done:
		c.leave(cl, false)
		if errors.Is(cl.err, dataverse.ErrAbandoned) && ctx.Err() == nil {
			// This caller joined a call whose earlier waiters had all left
			// and which was dropped before sending: start a new one.
			return c.get(ctx, s)
		}
		if !leader {
			kc.inc(outcomeCoalesced)
		}
		if cl.err != nil {
			kc.inc(outcomeError)
			return nil, Meta{}, cl.err
		}
		fr := cl.res
		meta := Meta{Outcome: fr.outcome}
		if fr.outcome != Miss {
			meta.Age = fr.e.age(c.clock())
		}
		kc.inc(outcomeOf(fr.outcome))
		return answer(fr.e, meta)
	case <-ctx.Done():
		c.leave(cl, true)
		// The shared call carries on for the other waiters and the cache
		// (or, when this was its last waiter and it has sent nothing yet,
		// is dropped).
		// A caller whose deadline comes first gets a usable stale entry:
		// Dataverse being too slow (a hang, a slow body, a Retry-After
		// longer than the caller waits) is an error too, and the shared
		// call's own bound (UpstreamTimeout) is longer than a caller's, so
		// its error would come too late to serve the entry.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			now := c.clock()
			if e, ok := c.cache.get(s.key); ok && !e.notFound && e.usableStale(now) {
				out := Stale
				if e.isFresh(now) {
					out = Hit // the shared call stored its answer just now
				}
				kc.inc(outcomeOf(out))
				c.log.Warn("serving stale answer: Dataverse did not answer before the caller's deadline",
					"integration", c.name, "kind", s.kind, "age", e.age(now))
				return answer(e, Meta{Outcome: out, Age: e.age(now)})
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && c.throttledUntil != nil {
			// The shared call is waiting out a Retry-After that outlasts
			// this caller: tell it so (503 with Retry-After), rather than
			// "timeout", which invites an immediate retry.
			if rem := c.throttledUntil().Sub(c.clock()); rem > 0 {
				kc.inc(outcomeError)
				return nil, Meta{}, &dataverse.Error{Kind: dataverse.KindThrottled, Op: s.kind + " lookup", RetryAfter: rem,
					Message: "Dataverse is throttling this application user and the wait outlasts the request",
					Remedy:  fmt.Sprintf("Dataverse service protection limit reached; retry after %d seconds.", int64((rem+time.Second-1)/time.Second))}
			}
		}
		kc.inc(outcomeCanceled)
		return nil, Meta{}, fmt.Errorf("gateway: %s lookup: %w", s.kind, context.Cause(ctx))
	}
}

func answer(e *entry, m Meta) (any, Meta, error) {
	if e.notFound {
		return nil, m, ErrNotFound
	}
	return e.value, m, nil
}

// join makes the caller a waiter of the shared call for s.key, starting
// it when there is none (leader).
func (c *core) join(ctx context.Context, s spec) (cl *call, leader bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, errClosed
	}
	cl = c.calls[s.key]
	if cl == nil {
		cl = &call{done: make(chan struct{})}
		cl.abandon, cl.abandonNow = context.WithCancel(context.Background())
		if c.calls == nil {
			c.calls = make(map[string]*call)
		}
		c.calls[s.key] = cl
		leader = true
		c.flights.Add(1)
		go c.run(ctx, s, cl)
	}
	cl.waiters++
	return cl, leader, nil
}

// leave ends a waiter's interest in cl; left means it gave up before the
// answer. When the last waiter leaves an unfinished call, the call is
// abandoned: what it has not sent yet is never sent.
func (c *core) leave(cl *call, left bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl.waiters--
	if left && cl.waiters == 0 {
		cl.abandonNow() // a no-op when done already, or when abandoned before
	}
}

// run runs the shared call of cl and hands its result to the waiters.
func (c *core) run(parent context.Context, s spec, cl *call) {
	defer c.flights.Done()
	defer cl.abandonNow() // releases the context
	res, err := c.flight(parent, s, cl.abandon)
	c.mu.Lock()
	if c.calls[s.key] == cl {
		delete(c.calls, s.key)
	}
	c.mu.Unlock()
	cl.res, cl.err = res, err
	close(cl.done)
}

// flight is the shared upstream call for one key. It runs detached from the
// caller that started it (context.WithoutCancel keeps its values, e.g. a
// trace id, but not its deadline), bounded by c.timeout, so that one
// impatient caller cannot fail the others; once every caller has left
// (abandon), requests it has not sent yet are not sent. A panic becomes a
// *PanicError for every waiter, and the process keeps running.
func (c *core) flight(parent context.Context, s spec, abandon context.Context) (res flightResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
			c.log.Error("upstream call panicked", "kind", s.kind, "panic", p)
			c.metrics.upstream(c.name, s.kind, "panic", 0)
		}
	}()

	// A flight that finished just before this one started may have stored
	// the answer already (singleflight only merges overlapping calls).
	prev, havePrev := c.cache.get(s.key)
	if havePrev && prev.isFresh(c.clock()) {
		return flightResult{e: prev, outcome: Hit}, nil
	}

	ctx, cancel := context.WithTimeout(withAdmission(withAbandon(context.WithoutCancel(parent), abandon)), c.timeout)
	defer cancel()
	if c.life != nil {
		defer context.AfterFunc(c.life, cancel)()
	}
	shared := c.shared != nil && !s.local
	if shared {
		fresh, stale, unlock := c.fromShared(ctx, s)
		if fresh != nil {
			stored := c.follow(s, fresh, fresh.fetched, nil)
			if fresh.isFresh(c.clock()) {
				c.cache.set(s.key, fresh)
				stored()
				return flightResult{e: fresh, outcome: Hit}, nil
			}
			// The change feed reported a row of this answer changed since
			// another replica fetched it: ask Dataverse.
			if !havePrev || prev.notFound || fresh.fetched.After(prev.fetched) {
				prev, havePrev = fresh, true
			}
		}
		if unlock != nil {
			defer unlock() // after the answer is stored below, for the waiting replicas
		}
		if stale != nil && (!havePrev || prev.notFound || stale.fetched.After(prev.fetched)) {
			prev, havePrev = stale, true
		}
	}
	loadStart := c.clock() // for the change feed's race check (follow)
	ctx, sink := c.depSink(ctx)
	start := time.Now()
	value, size, err := s.load(ctx)
	elapsed := time.Since(start)
	now := c.clock()

	switch {
	case err == nil:
		c.metrics.upstream(c.name, s.kind, "ok", elapsed)
		e := &entry{value: value, fetched: now, fresh: s.fresh, stale: c.staleTTL, cost: size}
		if s.local {
			e.stale = 0
		}
		normal := *e // the shared level gets the normal freshness: other replicas' caches follow their own feed
		stored := c.follow(s, e, loadStart, sink)
		c.cache.set(s.key, e)
		stored()
		if shared {
			c.writeShared(ctx, s, &normal)
		}
		return flightResult{e: e, outcome: Miss}, nil
	case errors.Is(err, ErrNotFound):
		c.metrics.upstream(c.name, s.kind, "not_found", elapsed)
		// Negative answers get no stale window: an hour-old "not found"
		// is likely wrong by now (the customer may just have been created).
		// They are fresh as long as found ones unless notFoundTTL says
		// otherwise: a never-seen address asked again costs nothing.
		nf := c.notFoundTTL
		if nf <= 0 {
			nf = s.fresh
		}
		e := &entry{notFound: true, fetched: now, fresh: nf, cost: 0}
		normal := *e
		stored := c.follow(s, e, loadStart, sink)
		c.cache.set(s.key, e)
		stored()
		if shared {
			c.writeShared(ctx, s, &normal)
		}
		return flightResult{e: e, outcome: Miss}, nil
	}

	c.metrics.upstream(c.name, s.kind, c.outcomeLabel(err), elapsed)
	if havePrev && !prev.notFound && !s.local && c.transient(err) && prev.usableStale(now) {
		c.log.Warn("serving stale answer after upstream error",
			"integration", c.name, "kind", s.kind, "age", prev.age(now), "error", err)
		return flightResult{e: prev, outcome: Stale}, nil
	}
	return flightResult{}, err
}

// close stops new shared calls and waits for running ones (each is bounded
// by the upstream timeout), so no goroutine outlives the gateway.
func (c *core) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.endLife != nil {
		c.endLife()
	}
	c.flights.Wait()
}
