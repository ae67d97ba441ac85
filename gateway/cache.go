package gateway

import (
	"fmt"
	"sync"
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
// A Cache is safe for concurrent use. Close it when no gateway uses it.
type Cache struct {
	rc *ristretto.Cache[string, *entry]

	// The recently loaded guard, a FIFO bounded by entries and bytes.
	mu          sync.Mutex
	recent      map[string]*entry // guarded by mu
	fifo        []string          // keys of recent, oldest first; guarded by mu
	recentBytes int64             // guarded by mu
	maxEntries  int
	maxBytes    int64
	budget      int64 // CacheConfig.MaxBytes
}

// entry is one cached answer. It is immutable once stored.
type entry struct {
	value    any // *Customer, *Order or []OrderSummary; nil when notFound
	notFound bool
	fetched  time.Time     // on the gateway's clock
	fresh    time.Duration // served without asking Dataverse until fetched+fresh
	stale    time.Duration // then usable on upstream errors until fetched+fresh+stale
	cost     int64
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
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: creating cache: %w", err)
	}
	c := &Cache{rc: rc, maxEntries: cfg.RecentEntries, maxBytes: cfg.MaxBytes / 16, budget: cfg.MaxBytes}
	if cfg.RecentEntries > 0 {
		c.recent = make(map[string]*entry)
	}
	return c, nil
}

// Close stops ristretto's goroutines. Lookups after Close miss.
func (c *Cache) Close() { c.rc.Close() }

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

// get returns the entry for key, from ristretto or the recent guard.
func (c *Cache) get(key string) (*entry, bool) {
	if e, ok := c.rc.Get(key); ok {
		return e, true
	}
	if c.recent == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.recent[key]
	c.mu.Unlock()
	if ok {
		// Offer it again: ristretto has now seen the key more often, which
		// is what its admission policy wants before admitting it.
		c.setRistretto(key, e)
	}
	return e, ok
}

// set stores e under key in ristretto and in the recent guard.
func (c *Cache) set(key string, e *entry) {
	c.setRistretto(key, e)
	if c.recent == nil {
		return
	}
	cost := costOf(key, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.recent[key]; ok {
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
func costOf(key string, e *entry) int64 { return e.cost + int64(len(key)) + entryOverhead }

func (c *Cache) setRistretto(key string, e *entry) {
	// No ristretto TTL: the gateway decides freshness and the stale window
	// on its own clock from e.fetched, and the byte budget (MaxCost) already
	// bounds memory; an entry past its stale window is never served and is
	// evicted like any rarely used one. A TTL would make every Get read the
	// wall clock (ristretto checks expiry on each read), which was a third
	// of the cost of a cache hit.
	c.rc.Set(key, e, costOf(key, e))
}

// entryOverhead is our entry struct (80 bytes) plus ristretto's per-item
// bookkeeping: its store's map slot, the admission policy's cost map slot
// and the item it keeps while processing, measured at about 250 bytes per
// key in a heap profile of a full cache under churn (ristretto's own
// internal cost, 56, leaves most of it out).
const entryOverhead = 80 + 256
