package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"golang.org/x/sync/singleflight"
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

	sf singleflight.Group

	// testHookJoined, when set (tests only), is called after a caller has
	// started or joined the shared call for its key.
	testHookJoined func()

	// life ends at close; it cancels the shared calls still running, so
	// that Close does not wait out their UpstreamTimeout. nil (tests that
	// build a core directly) means calls are not canceled.
	life    context.Context
	endLife context.CancelFunc

	mu      sync.Mutex
	closed  bool           // guarded by mu
	flights sync.WaitGroup // running shared calls; Add only under mu while !closed
}

// spec describes one lookup.
type spec struct {
	kind  string        // metrics label: "customer", "order", "recent_orders"
	key   string        // full cache key (integration, kind, mode, normalized input)
	fresh time.Duration // freshness of a found answer
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

	// Each caller passes its own closure; only the one that starts the
	// flight runs it, which is how we count coalesced waiters. ran is
	// written before singleflight sends the result, so reading it after
	// receiving is race free.
	ran := false
	ch := c.sf.DoChan(s.key, func() (any, error) {
		ran = true
		return c.flight(ctx, s)
	})
	if c.testHookJoined != nil {
		c.testHookJoined()
	}
	select {
	case r := <-ch:
		if !ran {
			kc.inc(outcomeCoalesced)
		}
		if r.Err != nil {
			kc.inc(outcomeError)
			return nil, Meta{}, r.Err
		}
		fr := r.Val.(flightResult)
		meta := Meta{Outcome: fr.outcome}
		if fr.outcome != Miss {
			meta.Age = fr.e.age(c.clock())
		}
		kc.inc(outcomeOf(fr.outcome))
		return answer(fr.e, meta)
	case <-ctx.Done():
		// The shared call carries on for the other waiters and the cache.
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

// flight is the shared upstream call for one key. It runs detached from the
// caller that started it (context.WithoutCancel keeps its values, e.g. a
// trace id, but not its deadline), bounded by c.timeout, so that one
// impatient caller cannot fail the others. A panic becomes a *PanicError for
// every waiter: with DoChan, singleflight would otherwise re-panic on a new
// goroutine and crash the process.
func (c *core) flight(parent context.Context, s spec) (res any, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	c.flights.Add(1)
	c.mu.Unlock()
	defer c.flights.Done()
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

	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.timeout)
	defer cancel()
	if c.life != nil {
		defer context.AfterFunc(c.life, cancel)()
	}
	if c.shared != nil {
		fresh, stale, unlock := c.fromShared(ctx, s)
		if fresh != nil {
			c.cache.set(s.key, fresh)
			return flightResult{e: fresh, outcome: Hit}, nil
		}
		if unlock != nil {
			defer unlock() // after the answer is stored below, for the waiting replicas
		}
		if stale != nil && (!havePrev || prev.notFound || stale.fetched.After(prev.fetched)) {
			prev, havePrev = stale, true
		}
	}
	start := time.Now()
	value, size, err := s.load(ctx)
	elapsed := time.Since(start)
	now := c.clock()

	switch {
	case err == nil:
		c.metrics.upstream(c.name, s.kind, "ok", elapsed)
		e := &entry{value: value, fetched: now, fresh: s.fresh, stale: c.staleTTL, cost: size}
		c.cache.set(s.key, e)
		if c.shared != nil {
			c.writeShared(ctx, s, e)
		}
		return flightResult{e: e, outcome: Miss}, nil
	case errors.Is(err, ErrNotFound):
		c.metrics.upstream(c.name, s.kind, "not_found", elapsed)
		// Negative answers get no stale window: an hour-old "not found"
		// is likely wrong by now (the customer may just have been created).
		e := &entry{notFound: true, fetched: now, fresh: c.notFoundTTL, cost: 0}
		c.cache.set(s.key, e)
		if c.shared != nil {
			c.writeShared(ctx, s, e)
		}
		return flightResult{e: e, outcome: Miss}, nil
	}

	c.metrics.upstream(c.name, s.kind, c.outcomeLabel(err), elapsed)
	if havePrev && !prev.notFound && c.transient(err) && prev.usableStale(now) {
		c.log.Warn("serving stale answer after upstream error",
			"integration", c.name, "kind", s.kind, "age", prev.age(now), "error", err)
		return flightResult{e: prev, outcome: Stale}, nil
	}
	return nil, err
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
