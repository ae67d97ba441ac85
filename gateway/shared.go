package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dvgate/dvgate/dataverse"
)

// SharedCache is an optional second cache level shared by several gateway
// replicas (package fleet implements it on Redis). A miss in the in-process
// cache reads it before Dataverse, and an answer from Dataverse is written
// to both, so a fleet of replicas asks Dataverse once per key and freshness
// window rather than once per replica.
//
// Payloads are opaque to the store: the gateway encodes them (see
// SharedFormat) with the fetch time and the freshness and stale windows, and
// decides freshness itself; the ttl passed to Set only bounds how long the
// store keeps them. kind is the lookup kind ("customer", "order",
// "recent_orders"); key is the gateway's cache key, which holds the org URL
// and the customer's input, so an implementation must not store it in clear.
//
// Every method must return within a short bound of its own (the store is an
// optimisation: a slow store must not slow lookups down), and an error makes
// the gateway go to Dataverse as if there were no shared level ("fail
// open"). Implementations are safe for concurrent use.
type SharedCache interface {
	// Get returns the payload stored under kind and key; ok is false on a
	// miss.
	Get(ctx context.Context, kind, key string) (payload []byte, ok bool, err error)
	// Set stores payload under kind and key for at most ttl.
	Set(ctx context.Context, kind, key string, payload []byte, ttl time.Duration) error
	// Lock tries to make this replica the one that loads kind/key from
	// Dataverse (fleet-wide deduplication). When acquired, unlock releases
	// the lock and must be called; a lock whose holder disappears expires
	// on its own after a short time, so that another replica takes over.
	Lock(ctx context.Context, kind, key string) (unlock func(), acquired bool, err error)
}

// Throttle is an optional throttling gate shared by several replicas:
// Dataverse limits the application user, not the replica, so a 429 that one
// replica receives should hold all of them back (package fleet implements
// it on Redis). org is the Web API base URL of the org (Conn.BaseURL()).
type Throttle interface {
	// Blocked returns how long requests to org must still wait, or 0. It
	// must be cheap (implementations cache the answer briefly) and fail
	// open (0) when the shared state cannot be read.
	Blocked(ctx context.Context, org string) time.Duration
	// Block records that Dataverse asked org's clients to wait d. It
	// never shortens an existing block.
	Block(ctx context.Context, org string, d time.Duration)
}

// SharedRejecter is implemented by a SharedCache that wants to hear of the
// payloads it returned that the gateway then refused, to log and count
// them with its own refusals (package fleet logs the first of each reason
// and counts them all). reason is one of "future" (fetched later than the
// gateway's clock plus SharedClockSkew), "windows" (a freshness or stale
// window longer than this gateway's TTLs for the kind) or "format" (not a
// payload of this release). Called from lookups: it must be cheap and
// safe for concurrent use.
type SharedRejecter interface {
	RejectShared(kind, reason string)
}

// SharedClockSkew is how far in the future, by the gateway's clock, a
// shared payload's fetch time may be: replicas' clocks differ a little.
// Past it the payload is refused (a replica whose clock runs ahead, or a
// forgery): its answer would otherwise pass for fresh for as long as the
// clocks differ, in the shared level and in every in-process cache it is
// copied to.
const SharedClockSkew = 5 * time.Second

// SharedFormat is the version of the payloads the gateway writes to a
// SharedCache. A payload of another version (written by another dvgate
// release) is a miss, never misread. Bump it whenever the answer types or
// the payload's fields change in a way an older reader would misinterpret.
const SharedFormat byte = 2 // 2: Order carries CustomerEmails and CustomerAccount (integration.OrderFor)

// sharedPayload is the JSON after the version byte. It holds the answer
// only: never credentials, and nothing a lookup did not return.
type sharedPayload struct {
	Kind     string          `json:"kind"`
	Fetched  int64           `json:"fetched"` // Unix milliseconds, on the writer's clock
	Fresh    int64           `json:"fresh"`   // milliseconds
	Stale    int64           `json:"stale"`   // milliseconds
	NotFound bool            `json:"notFound,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
}

var errSharedFormat = errors.New("gateway: shared cache payload of another format version")

// encodeShared encodes an entry for a SharedCache.
func encodeShared(kind string, e *entry) ([]byte, error) {
	p := sharedPayload{Kind: kind, Fetched: e.fetched.UnixMilli(), Fresh: e.fresh.Milliseconds(),
		Stale: e.stale.Milliseconds(), NotFound: e.notFound}
	if !e.notFound {
		v, err := json.Marshal(e.value)
		if err != nil {
			return nil, err
		}
		p.Value = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return append([]byte{SharedFormat}, b...), nil
}

// decodeShared decodes a payload written by encodeShared. A payload of
// another version or kind is an error (errSharedFormat): a miss.
func decodeShared(kind string, b []byte) (*entry, error) {
	if len(b) == 0 || b[0] != SharedFormat {
		return nil, errSharedFormat
	}
	var p sharedPayload
	if err := json.Unmarshal(b[1:], &p); err != nil {
		return nil, fmt.Errorf("gateway: shared cache payload: %w", err)
	}
	if p.Kind != kind || p.Fresh < 0 || p.Stale < 0 {
		return nil, errSharedFormat
	}
	e := &entry{notFound: p.NotFound, fetched: time.UnixMilli(p.Fetched),
		fresh: time.Duration(p.Fresh) * time.Millisecond, stale: time.Duration(p.Stale) * time.Millisecond}
	if p.NotFound {
		return e, nil
	}
	var err error
	switch kind {
	case kindCustomer:
		var c *Customer
		if err = json.Unmarshal(p.Value, &c); err == nil && c != nil {
			e.value, e.cost = c, c.size()
		}
	case kindOrder:
		var o *Order
		if err = json.Unmarshal(p.Value, &o); err == nil && o != nil {
			e.value, e.cost = o, o.size()
		}
	case kindRefunds:
		var rs []Refund
		if err = json.Unmarshal(p.Value, &rs); err == nil {
			if rs == nil {
				rs = []Refund{}
			}
			e.value, e.cost = rs, refundsSize(rs)
		}
	case kindSummary:
		var s *Summary
		if err = json.Unmarshal(p.Value, &s); err == nil && s != nil {
			e.value, e.cost = s, s.size()
		}
	case kindRecentOrders:
		var s []OrderSummary
		if err = json.Unmarshal(p.Value, &s); err == nil {
			if s == nil {
				s = []OrderSummary{}
			}
			e.value, e.cost = s, summariesSize(s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: shared cache payload: %w", err)
	}
	if e.value == nil {
		return nil, errSharedFormat
	}
	return e, nil
}

// Backoff of a replica waiting for another one's load to land in the shared
// level: short first (a Dataverse lookup takes tens of milliseconds), then
// capped so that waiting replicas do not hammer the store.
const (
	sharedPollMin = 2 * time.Millisecond
	sharedPollMax = 25 * time.Millisecond
)

// fromShared runs in a flight, between the in-process cache and Dataverse,
// when a shared level is configured. It returns a fresh entry from the
// shared level (stored there before, or by another replica while this one
// waited for its lock), or else unlock != nil when this replica holds the
// fleet-wide lock for the key and must load it (and call unlock after
// storing the answer). stale is a usable entry past its freshness it saw,
// for stale-if-error. When the shared level fails or ctx ends it returns
// neither: the flight goes to Dataverse (fail open).
func (c *core) fromShared(ctx context.Context, s spec) (fresh, stale *entry, unlock func()) {
	wait := sharedPollMin
	for {
		if e := c.readShared(ctx, s); e != nil {
			if e.isFresh(c.clock()) {
				return e, stale, nil
			}
			if !e.notFound && e.usableStale(c.clock()) {
				stale = e
			}
		} else if ctx.Err() != nil {
			return nil, stale, nil
		}
		u, acquired, err := c.shared.Lock(ctx, s.kind, s.key)
		if err != nil {
			c.log.Debug("shared cache lock failed; asking Dataverse", "integration", c.name, "kind", s.kind, "error", err)
			return nil, stale, nil
		}
		if acquired {
			// The previous holder may have stored its answer and released
			// the lock between our read and our lock: read once more.
			if e := c.readShared(ctx, s); e != nil && e.isFresh(c.clock()) {
				u()
				return e, stale, nil
			}
			return nil, stale, u
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, stale, nil
		}
		wait = min(2*wait, sharedPollMax)
	}
}

// readShared reads and decodes the shared entry of s; nil on a miss, an
// error (fail open) or a payload refused by checkShared.
func (c *core) readShared(ctx context.Context, s spec) *entry {
	b, ok, err := c.shared.Get(ctx, s.kind, s.key)
	if err != nil || !ok {
		return nil
	}
	e, err := decodeShared(s.kind, b)
	reason := "format"
	if err == nil {
		reason = c.checkShared(s, e)
	}
	if reason != "" {
		c.log.Debug("ignoring shared cache entry", "integration", c.name, "kind", s.kind, "reason", reason, "error", err)
		if r, ok := c.shared.(SharedRejecter); ok {
			r.RejectShared(s.kind, reason)
		}
		return nil
	}
	return e
}

// checkShared returns why a decoded shared entry must not be used ("" if
// it may), and makes it keep this gateway's TTLs: its windows are at most
// the ones this gateway would give the answer itself, and a fetch time
// ahead of the clock (within SharedClockSkew) is brought back to now, so
// the entry, here and in the in-process cache it is copied to, expires no
// later than a fresh load of this replica's would.
func (c *core) checkShared(s spec, e *entry) string {
	now := c.clock()
	if e.fetched.After(now.Add(SharedClockSkew)) {
		return "future"
	}
	maxFresh := s.fresh
	if e.notFound {
		maxFresh = c.notFoundTTL
	}
	if e.fresh > maxFresh || e.stale > c.staleTTL {
		return "windows"
	}
	if e.fetched.After(now) {
		e.fetched = now
	}
	return ""
}

// writeShared stores a loaded entry in the shared level. Errors are the
// store's to count; the lookup has its answer already.
func (c *core) writeShared(ctx context.Context, s spec, e *entry) {
	b, err := encodeShared(s.kind, e)
	if err != nil {
		c.log.Warn("encoding shared cache entry", "integration", c.name, "kind", s.kind, "error", err)
		return
	}
	_ = c.shared.Set(context.WithoutCancel(ctx), s.kind, s.key, b, e.fresh+e.stale)
}

// throttled wraps a load with the fleet-wide throttling gate: while another
// replica's 429 holds org back, the load fails at once with a throttling
// error (the flight then serves a stale entry if it has one), and a
// throttling error of this replica's own is recorded for the others.
func throttled(t Throttle, org string, load func(context.Context) (any, int64, error)) func(context.Context) (any, int64, error) {
	if t == nil {
		return load
	}
	return func(ctx context.Context) (any, int64, error) {
		if d := t.Blocked(ctx, org); d > 0 {
			return nil, 0, &dataverse.Error{Kind: dataverse.KindThrottled, Status: 429, RetryAfter: d, Op: "lookup",
				Message: "held back: Dataverse throttled another dvgate replica of this org",
				Remedy:  "Wait for the Retry-After period; replicas share one application user, whose limits Dataverse enforces."}
		}
		v, n, err := load(ctx)
		var de *dataverse.Error
		if errors.As(err, &de) && de.Kind == dataverse.KindThrottled && de.RetryAfter > 0 {
			t.Block(ctx, org, de.RetryAfter)
		}
		return v, n, err
	}
}
