package sidecar

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dvgate/dvgate/gateway"
)

// This file holds what makes a cached lookup cheap over HTTP, kept for the
// target that the sidecar's cache-hit throughput is at least 0.8x that of a
// plain net/http handler writing the same bytes (BenchmarkSidecarHit and
// make bench-report measure both side by side; BENCHMARKS.md has the
// figures): one allocation for everything the handler keeps per request
// (request, below), a request timeout whose timer is only made when
// something waits, answers written from JSON encoded once per cached answer
// (answerMemo), and an access log line that allocates nothing of its own.
// The two oapi-codegen templates in internal/httpapi/templates serve the
// same target (the query string parsed once, no closure per call).

// request is everything ServeHTTP keeps for one request, in one
// allocation. It is also the request's context: the connection's context
// plus reqInfo (Value) plus, on API paths, the request timeout.
//
// The timeout's deadline is fixed when the request starts, but the timer
// behind Done is only made when something asks for Done, or Err after the
// deadline: a cache hit never waits, so it never pays for a timer. Anything
// that waits (the gateway's select on Done, a context derived from this one)
// sees an ordinary context.WithDeadline. Safe for concurrent use: the
// context may be passed to other goroutines.
type request struct {
	parent context.Context
	info   reqInfo
	sw     statusWriter
	// idVal backs the X-Request-Id header value.
	idVal [1]string

	// logAttrs backs the access log line's attributes after status, and
	// dur its duration (see ServeHTTP), so that logging allocates nothing.
	logAttrs [5]slog.Attr // a hit's: durationMs, integration, kind, email, cache
	dur      logMillis

	timed    bool      // API path: deadline applies
	deadline time.Time // start + RequestTimeout (wall clock, as context.WithTimeout)
	mu       sync.Mutex
	inner    atomic.Pointer[timedContext]
}

// logMillis is a duration logged as fractional milliseconds: a JSON
// number such as 1.234, as a float attribute would be, but written without
// encoding/json boxing a float. The digits are formatted once, before the
// record is handled, so handlers may read them concurrently.
type logMillis struct {
	buf [23]byte // a time.Duration is under 10^13 ms: at most 17 characters
	n   uint8
}

func (m *logMillis) set(d time.Duration) {
	b := strconv.AppendFloat(m.buf[:0], float64(d.Microseconds())/1000, 'f', -1, 64)
	if len(b) > len(m.buf) { // not reached (see buf)
		b = append(m.buf[:0], '0')
	}
	m.n = uint8(len(b))
}

// MarshalJSON is for JSON handlers.
func (m *logMillis) MarshalJSON() ([]byte, error) { return m.buf[:m.n:m.n], nil }

// MarshalText is for text handlers.
func (m *logMillis) MarshalText() ([]byte, error) { return m.buf[:m.n:m.n], nil }

type timedContext struct {
	ctx    context.Context
	cancel context.CancelFunc
}

var _ context.Context = (*request)(nil)

// timer returns the context with the deadline, making it on first use.
func (rq *request) timer() context.Context {
	if t := rq.inner.Load(); t != nil {
		return t.ctx
	}
	rq.mu.Lock()
	defer rq.mu.Unlock()
	if t := rq.inner.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithDeadline(rq.parent, rq.deadline)
	rq.inner.Store(&timedContext{ctx: ctx, cancel: cancel})
	return ctx
}

// release stops the timer, if one was made; ServeHTTP calls it when the
// handler returns (what the deferred cancel of context.WithTimeout did).
func (rq *request) release() {
	if t := rq.inner.Load(); t != nil {
		t.cancel()
	}
}

func (rq *request) Deadline() (time.Time, bool) {
	if !rq.timed {
		return rq.parent.Deadline()
	}
	if d, ok := rq.parent.Deadline(); ok && d.Before(rq.deadline) {
		return d, true
	}
	return rq.deadline, true
}

func (rq *request) Done() <-chan struct{} {
	if !rq.timed {
		return rq.parent.Done()
	}
	return rq.timer().Done()
}

func (rq *request) Err() error {
	if !rq.timed {
		return rq.parent.Err()
	}
	if t := rq.inner.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := rq.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(rq.deadline) {
		return rq.timer().Err() // made past its deadline: already expired
	}
	return nil
}

func (rq *request) Value(key any) any {
	if _, ok := key.(reqInfoKey); ok {
		return &rq.info
	}
	// Once the timer exists, the context package's own lookups (Cause,
	// propagation to derived contexts) must find its cancelCtx, not the
	// parent's.
	if t := rq.inner.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return rq.parent.Value(key)
}

// jsonAnswer is a lookup's 200 answer: its body, encoded once per cached
// answer (shared, read-only), and the Age and X-Cache headers the OpenAPI
// document declares. It implements the generated response objects of the
// lookups that have them, so the generated routing, parameter binding and
// error handling stay in charge; only the encoding is ours. It lives in
// reqInfo, so returning it costs no allocation.
type jsonAnswer struct {
	body []byte
	// vals back the header values (Content-Type, Age, X-Cache), so that
	// setting them does not allocate a slice each.
	vals [3]string
}

func (a *jsonAnswer) set(body []byte, m gateway.Meta) *jsonAnswer {
	a.body = body
	a.vals = [3]string{"application/json", strconv.Itoa(ageSeconds(m)), m.Outcome.String()}
	return a
}

// write sends the answer. The header keys are in canonical form, so
// assigning them directly is what Header.Set would do.
func (a *jsonAnswer) write(w http.ResponseWriter) error {
	h := w.Header()
	h["Content-Type"] = a.vals[0:1:1]
	h["Age"] = a.vals[1:2:2]
	h["X-Cache"] = a.vals[2:3:3]
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(a.body)
	return err
}

func (a *jsonAnswer) VisitGetOrderResponse(w http.ResponseWriter) error      { return a.write(w) }
func (a *jsonAnswer) VisitGetOrderInResponse(w http.ResponseWriter) error    { return a.write(w) }
func (a *jsonAnswer) VisitGetCustomerResponse(w http.ResponseWriter) error   { return a.write(w) }
func (a *jsonAnswer) VisitGetCustomerInResponse(w http.ResponseWriter) error { return a.write(w) }

// memoSlots is the number of encoded answers an answerMemo keeps per kind
// and backend: enough for the hot keys of a help desk, small enough that
// the answers it keeps alive after the cache evicted them do not matter
// (about 1 KiB each).
const memoSlots = 256

// answerMemo remembers the JSON of recent answers, keyed by the answer's
// pointer: the gateway shares one immutable answer per cache entry, so the
// same pointer always encodes to the same bytes, and a refreshed answer is
// a new pointer. It is a direct-mapped table (a colliding answer replaces
// the slot's), so it is bounded without bookkeeping; a slot holds its
// answer's pointer, so an address is never reused while it is a key. Safe
// for concurrent use.
type answerMemo[T any] struct {
	seed  maphash.Seed
	slots [memoSlots]atomic.Pointer[memoEntry[T]]
}

type memoEntry[T any] struct {
	key  *T
	body []byte
}

func newAnswerMemo[T any]() *answerMemo[T] { return &answerMemo[T]{seed: maphash.MakeSeed()} }

// get returns the memoized body of key, else encodes it with encode.
func (m *answerMemo[T]) get(key *T, encode func(*T) ([]byte, error)) ([]byte, error) {
	slot := &m.slots[maphash.Comparable(m.seed, key)%memoSlots]
	if e := slot.Load(); e != nil && e.key == key {
		return e.body, nil
	}
	body, err := encode(key)
	if err != nil {
		return nil, err
	}
	slot.Store(&memoEntry[T]{key: key, body: body})
	return body, nil
}
