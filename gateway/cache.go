package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// DefaultMaxBytes is the cache budget when CacheConfig.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// CacheConfig configures a Cache.
type CacheConfig struct {
	// MaxBytes is the approximate memory budget of cached answers in bytes;
	// 0 = DefaultMaxBytes.
	MaxBytes int64
	// RecentEntries bounds the number of entries in the "recently loaded"
	// guard (see Cache); 0 = 1024, negative disables it (for measurements).
	// The guard also holds at most MaxBytes/16 bytes.
	RecentEntries int
}

// Cache holds lookup answers of one or more gateways within one byte budget.
//
// It is a ristretto cache (TinyLFU admission, sampled-LFU eviction) with
// costs in approximate bytes and IgnoreInternalCost set, because our costs
// already include a per-entry overhead. Ristretto applies Sets of new keys
// asynchronously and its admission policy may refuse a key it has not seen
// before, so an answer just loaded from Dataverse would often not be
// visible to the next, sequential lookup of the same key (singleflight only
// covers concurrent ones). The Cache therefore also keeps the last
// RecentEntries loaded answers in a small FIFO "recently loaded" guard,
// consulted when ristretto misses; a guard hit re-offers the entry to
// ristretto so that keys asked for again get admitted. Unlike calling
// ristretto's Wait after each Set, the guard also covers admission
// rejections and never blocks on ristretto's single writer goroutine (see
// TestRecentGuard for the measurement).
//
// The Cache also accounts for each owner's share of the budget (see
// OwnerStats): the owner of a key is its first field, up to the first
// '\x1f', which is the gateway's name (Config.Name, the integration), so
// that several integrations sharing one budget can be told apart. The
// accounting costs nothing on a hit: it is done where an answer is stored
// and in ristretto's OnExit and OnEvict callbacks.
//
// A Cache is safe for concurrent use. Close it when no gateway uses it.
type Cache struct {
	rc *ristretto.Cache[string, *entry]

	ownersMu sync.RWMutex
	owners   map[string]*owner // by name; only grows; guarded by ownersMu

	// The recently loaded guard, a FIFO bounded by entries and bytes.
	mu          sync.Mutex
	recent      map[string]*entry // guarded by mu
	fifo        []string          // keys of recent, oldest first; guarded by mu
	recentBytes int64             // guarded by mu
	maxEntries  int
	maxBytes    int64
	closed      atomic.Bool
}

// entry is one cached answer. It is immutable once stored.
type entry struct {
	value    any // *Customer, *Order or []OrderSummary; nil when notFound
	notFound bool
	keyLen   uint32        // of the key it is stored under, for its charge; set by Cache.set
	owner    *owner        // whose share it counts in; set by Cache.set
	fetched  time.Time     // on the gateway's clock
	fresh    time.Duration // served without asking Dataverse until fetched+fresh
	stale    time.Duration // then usable on upstream errors until fetched+fresh+stale
	cost     int64
	// superseded is set (atomically, 1) once a newer entry was stored
	// under the same key: such an entry is never served. Ristretto drops
	// the Set of a key whose earlier Set is still in its buffer (the
	// policy sees the key as present and does not store the new value),
	// so without it the older answer would win: a stale copy served after
	// a fresh load, or a change the feed reported served again.
	superseded uint32
	// ix is the answer's record in the change feed's dependency index, nil
	// when not indexed. Its bytes count in the entry's cost, and it leaves
	// the index when ristretto evicts or refuses the entry (left).
	ix *indexRec
}

func (e *entry) isSuperseded() bool { return atomic.LoadUint32(&e.superseded) != 0 }

// clone copies a stored entry for storing again under its key, without
// its index record and its superseded mark (read atomically: a copy of
// the whole struct would race with set marking it).
func (e *entry) clone() *entry {
	return &entry{value: e.value, notFound: e.notFound, fetched: e.fetched, fresh: e.fresh, stale: e.stale, cost: e.cost}
}

func (e *entry) age(now time.Time) time.Duration {
	a := now.Sub(e.fetched)
	if a < 0 {
		return 0
	}
	return a
}

func (e *entry) isFresh(now time.Time) bool { return e.age(now) < e.fresh }

func (e *entry) usableStale(now time.Time) bool { return e.age(now) < e.fresh+e.stale }

// NewCache returns a cache with the given budget.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("gateway: cache MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.RecentEntries == 0 {
		cfg.RecentEntries = 1024
	}
	// TinyLFU wants ~10 counters per item expected when full; assume items
	// of at least ~1 KiB (an order with lines is several) and never fewer
	// than 1000 counters (3 bytes each).
	counters := max(cfg.MaxBytes/100, 1000)
	c := &Cache{}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true,
		OnEvict: func(it *ristretto.Item[*entry]) {
			onEvict(it)
			c.left(it.Value, false)
		},
		OnReject: func(it *ristretto.Item[*entry]) { c.left(it.Value, false) },
		OnExit:   onExit,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: creating cache: %w", err)
	}
	// (Set the fields one by one: the callbacks above close over c, and
	// a Cache holds a mutex, which must not be copied.)
	c.rc, c.maxEntries, c.maxBytes = rc, cfg.RecentEntries, cfg.MaxBytes/16
	c.owners = make(map[string]*owner)
	if cfg.RecentEntries > 0 {
		c.recent = make(map[string]*entry)
	}
	return c, nil
}

// Close stops ristretto's goroutines. Lookups after Close miss.
func (c *Cache) Close() {
	// ristretto's Close evicts every entry holding its store's locks; left
	// must not read the store then (nor matter: the cache is going away).
	c.closed.Store(true)
	c.rc.Close()
}

// CacheStats are ristretto's cumulative counters.
type CacheStats struct {
	Hits, Misses, KeysAdded, KeysEvicted, SetsDropped, SetsRejected uint64
	CostAdded, CostEvicted                                          uint64
}

// Stats returns ristretto's counters (for metrics and measurements).
func (c *Cache) Stats() CacheStats {
	m := c.rc.Metrics
	return CacheStats{
		Hits: m.Hits(), Misses: m.Misses(), KeysAdded: m.KeysAdded(), KeysEvicted: m.KeysEvicted(),
		SetsDropped: m.SetsDropped(), SetsRejected: m.SetsRejected(),
		CostAdded: m.CostAdded(), CostEvicted: m.CostEvicted(),
	}
}

// owner is one owner's share of a Cache. Its counters are atomics: they
// change in lookups (set) and in ristretto's goroutines (the callbacks).
type owner struct {
	bytes, entries atomic.Int64
	evictions      atomic.Uint64
}

// OwnerStats is one owner's share of a Cache: the answers it stored that
// ristretto still holds or may still admit (Bytes, Entries), and how many
// of its answers ristretto evicted to make room for others (Evictions,
// cumulative). An answer is counted from the moment it is offered to
// ristretto until it leaves it (evicted, refused by the admission policy,
// replaced or deleted), so the figures may run ahead of ristretto's own
// KeysAdded by the few answers its goroutine has not yet processed.
type OwnerStats struct {
	Owner          string
	Bytes, Entries int64
	Evictions      uint64
}

// Owner returns the share of the owner name (a gateway's Config.Name);
// zero for an owner that never stored anything.
func (c *Cache) Owner(name string) OwnerStats {
	c.ownersMu.RLock()
	o := c.owners[name]
	c.ownersMu.RUnlock()
	if o == nil {
		return OwnerStats{Owner: name}
	}
	return OwnerStats{Owner: name, Bytes: o.bytes.Load(), Entries: o.entries.Load(), Evictions: o.evictions.Load()}
}

// ownerOf returns the owner of key, creating it on first use.
func (c *Cache) ownerOf(key string) *owner {
	name, _, _ := strings.Cut(key, "\x1f")
	c.ownersMu.RLock()
	o := c.owners[name]
	c.ownersMu.RUnlock()
	if o != nil {
		return o
	}
	c.ownersMu.Lock()
	defer c.ownersMu.Unlock()
	if o = c.owners[name]; o == nil {
		o = &owner{}
		c.owners[name] = o
	}
	return o
}

// charge is what e counts for in its owner's bytes: its ristretto cost.
func (e *entry) charge() int64 { return e.cost + int64(e.keyLen) + entryOverhead + e.ixBytes() }

// ixBytes is the bytes of the entry's index record, if it has one.
func (e *entry) ixBytes() int64 {
	if e.ix == nil {
		return 0
	}
	return e.ix.bytes
}

// onExit is ristretto's OnExit: a value left the cache (evicted, refused
// by the admission policy, replaced by a newer value of its key, deleted).
// Every value whose Set returned true leaves exactly once, or stays. Runs
// in ristretto's goroutines and in Set and Del.
func onExit(e *entry) {
	if e == nil || e.owner == nil {
		return
	}
	e.owner.bytes.Add(-e.charge())
	e.owner.entries.Add(-1)
}

// onEvict is ristretto's OnEvict (OnExit follows it): a value was evicted
// to make room. Runs in ristretto's goroutine.
func onEvict(it *ristretto.Item[*entry]) {
	if e := it.Value; e != nil && e.owner != nil {
		e.owner.evictions.Add(1)
	}
}

// get returns the entry for key, from ristretto or the recent guard; never
// a superseded one.
func (c *Cache) get(key string) (*entry, bool) {
	e, ok := c.rc.Get(key)
	if ok && !e.isSuperseded() {
		return e, true
	}
	if c.recent == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The guard holds the newest entry of each of its keys (set replaces
	// in place). Offer it to ristretto again: ristretto has now seen the
	// key more often, which is what its admission policy wants before
	// admitting it, and when it holds a superseded entry this Set replaces
	// it at once. Under mu, so that this Set is never ordered after a
	// newer one of the same key.
	e, ok = c.recent[key]
	if ok {
		c.setRistretto(key, e, true)
	}
	return e, ok
}

// set stores e under key in ristretto and in the recent guard, and marks
// the entry it replaces superseded. e must not be shared yet (set gives it
// its owner), except a copy of a stored entry stored again under the same
// key.
func (c *Cache) set(key string, e *entry) {
	e.owner, e.keyLen = c.ownerOf(key), uint32(len(key))
	if cur, ok := c.rc.Get(key); ok && cur != e {
		atomic.StoreUint32(&cur.superseded, 1)
	}
	if c.recent == nil {
		c.setRistretto(key, e, false)
		return
	}
	cost := costOf(key, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setRistretto(key, e, true)
	if old, ok := c.recent[key]; ok {
		if old != e {
			atomic.StoreUint32(&old.superseded, 1)
		}
		c.recentBytes -= costOf(key, old)
		c.recent[key] = e // replace in place; its FIFO position stays
	} else {
		c.recent[key] = e
		c.fifo = append(c.fifo, key)
	}
	c.recentBytes += cost
	for len(c.fifo) > 1 && (len(c.fifo) > c.maxEntries || c.recentBytes > c.maxBytes) {
		old := c.fifo[0]
		c.fifo = c.fifo[1:]
		c.recentBytes -= costOf(old, c.recent[old])
		delete(c.recent, old)
	}
}

// costOf is the byte cost of an entry under key.
func costOf(key string, e *entry) int64 {
	return e.cost + int64(len(key)) + entryOverhead + e.ixBytes()
}

// setRistretto offers e to ristretto; locked says whether the caller holds
// mu (for left, when ristretto drops the Set).
func (c *Cache) setRistretto(key string, e *entry, locked bool) {
	// No ristretto TTL: the gateway decides freshness and the stale window
	// on its own clock from e.fetched, and the byte budget (MaxCost) already
	// bounds memory; an entry past its stale window is never served and is
	// evicted like any rarely used one. A TTL would make every Get read the
	// wall clock (ristretto checks expiry on each read), which was a third
	// of the cost of a cache hit.
	//
	// The owner is charged before Set, so that ristretto's callbacks, which
	// may run before Set returns, never take the share below zero.
	cost := costOf(key, e)
	e.owner.bytes.Add(cost)
	e.owner.entries.Add(1)
	if !c.rc.Set(key, e, cost) {
		// Dropped (ristretto's buffer was full): it never entered.
		e.owner.bytes.Add(-cost)
		e.owner.entries.Add(-1)
		c.left(e, locked)
	}
}

// left is called when ristretto evicts or refuses e (in ristretto's
// goroutine; in setRistretto's when the Set was dropped, holding mu when
// locked). An indexed answer leaves the dependency index with it: the
// index holds no answer the cache dropped, so it needs no bound of its
// own. The recently loaded guard may still serve e: it gets a copy that
// is fresh only until the next poll is due, since no change would make
// it stale any more.
func (c *Cache) left(e *entry, locked bool) {
	// e is nil for a victim ristretto's policy chose whose key its store
	// no longer holds (deleted by demote meanwhile), as in onExit.
	if e == nil || e.ix == nil || c.closed.Load() {
		return
	}
	r := e.ix
	if cur, ok := c.rc.Get(r.key); ok && cur == e {
		return // a second Set of an entry still stored was refused
	}
	if !r.x.drop(r) {
		return // taken, drained or replaced by a newer answer's record
	}
	if c.recent == nil {
		return
	}
	if !locked {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	if c.recent[r.key] != e {
		return
	}
	cp := e.clone()
	cp.owner, cp.keyLen = e.owner, e.keyLen
	capFresh(cp, r.normal, r.x.st.due())
	c.recentBytes += costOf(r.key, cp) - costOf(r.key, e)
	c.recent[r.key] = cp
	atomic.StoreUint32(&e.superseded, 1)
}

// capFresh shortens e's freshness to normal, and to end by until when
// until is set, keeping the time it loses in its stale-if-error window.
// It reports whether e changed.
func capFresh(e *entry, normal time.Duration, until time.Time) bool {
	target := normal
	if !until.IsZero() {
		target = max(0, min(target, until.Sub(e.fetched)))
	}
	if e.fresh <= target {
		return false
	}
	if !e.notFound {
		e.stale += e.fresh - target
	}
	e.fresh = target
	return true
}

// entryOverhead is our entry struct (96 bytes, with the owner accounting's
// fields) plus ristretto's per-item bookkeeping: its store's map slot, the
// admission policy's cost map slot
// and the item it keeps while processing, measured at about 250 bytes per
// key in a heap profile of a full cache under churn (ristretto's own
// internal cost, 56, leaves most of it out).
const entryOverhead = 96 + 256
