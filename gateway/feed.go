package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dvgate/dvgate/dataverse"
)

// The change follower: instead of short TTLs, answers live for hours
// (FeedConfig.TTL) and are made stale exactly when Dataverse's change feed
// (Prefer: odata.track-changes, wire facts §4.2) reports a row they depend
// on (deps.go). A poll every FeedConfig.Interval follows each table's
// deltaLink; an answer is therefore at most one interval plus one request
// older than Dataverse. When the feed fails (a token expired, tracking off,
// Dataverse down) every answer falls back to its normal freshness at once,
// the failure is logged, and the follower resyncs; answers live long again
// once every table has a deltaLink.

// Feed defaults.
const (
	DefaultFeedInterval = 30 * time.Second
	DefaultFeedTTL      = 12 * time.Hour
	feedPageSize        = 5000 // Dataverse's page size for tracked changes (§4.2)
	feedMaxPages        = 1000 // 5 million rows: a bound, not a limit anyone meets
)

// FeedConfig configures Gateway.Follow.
type FeedConfig struct {
	// Interval between polls; 0 = DefaultFeedInterval.
	Interval time.Duration
	// TTL is the freshness of answers while the feed runs; 0 =
	// DefaultFeedTTL. Answers never live shorter than without the feed.
	TTL time.Duration
	// Metrics; nil = none.
	Metrics *FeedMetrics
	// From is the follower of a gateway this one replaces over the same
	// org and tables (a schema re-read): this one continues from its
	// deltaLinks instead of reading the tables again. Stop From first (end
	// its Run): its answers then fall back to their normal freshness.
	From *Follower
}

// feedState is what the core needs of a follower when it stores an answer.
type feedState struct {
	idx  *depIndex
	ttl  time.Duration
	up   atomic.Bool   // every table has a deltaLink: answers may live for ttl
	gen  atomic.Uint64 // incremented each time the feed goes down, before the drain
	keep time.Duration
	// interval is the poll interval, and polled (Unix ns, on the gateway's
	// clock) the start of the last poll whose changes were applied: an
	// answer that leaves the index lives until the next poll is due.
	interval time.Duration
	polled   atomic.Int64
	// lengthen is false with a shared level: another replica would read
	// the long-lived entry from it without this replica's invalidations.
	lengthen bool
}

// follow is called by the core for an entry it is about to store: it
// indexes the entry's deps (those of its value, and those the load noted
// in sink) and, while the feed is up, lengthens its freshness; an answer
// loaded before a change the feed already reported (since = the load's
// start) is stored stale. The core calls the returned func once the entry
// is stored: if the feed went down in between (its drain may have missed
// the entry), the entry falls back to its normal freshness.
func (c *core) follow(s spec, e *entry, since time.Time, sink *depSink) (stored func()) {
	nothing := func() {}
	f := c.feed.Load()
	if f == nil || s.local {
		return nothing
	}
	deps := depsOf(s.kind, s.key, e.value)
	if deps == nil {
		return nothing
	}
	if sink != nil && !e.notFound {
		deps = append(deps, sink.ids...)
	}
	normal := e.fresh
	gen := f.gen.Load()
	r, raced := f.idx.add(s.key, deps, normal, since)
	e.ix = r
	switch {
	case raced:
		e.fresh = 0
	case f.up.Load() && f.lengthen && !since.Before(c.clock().Add(-f.keep)):
		// (An answer fetched longer ago than the index remembers
		// invalidations, as one read from the shared level may be, keeps
		// its normal freshness: a change since may have been forgotten.)
		e.fresh = max(e.fresh, f.ttl)
		return func() {
			if f.gen.Load() != gen {
				c.demote([]evictedKey{{key: s.key, normal: normal}}, false)
				return
			}
			// A poll may have reported a change of one of its rows
			// between indexing and storing: its invalidation did not
			// find the entry.
			if _, taken := f.idx.state(r); taken {
				c.demote([]evictedKey{{key: s.key}}, true)
			}
		}
	}
	return nothing
}

// due is when the next poll's changes are due: the last applied poll's
// start plus the interval.
func (f *feedState) due() time.Time {
	return time.Unix(0, f.polled.Load()).Add(f.interval)
}

// demote gives each key's cached entry its normal freshness (stale = make
// it stale now, keeping the stale-if-error window) and returns how many
// fresh entries it changed. The old entry leaves ristretto at once (Del is
// ordered after pending Sets); the new one goes to the recent guard, which
// offers it to ristretto again when asked.
func (c *core) demote(keys []evictedKey, stale bool) int {
	now := c.clock()
	n := 0
	for _, k := range keys {
		e, ok := c.cache.get(k.key)
		if !ok || !e.isFresh(now) {
			continue
		}
		cp := e.clone()
		if stale {
			cp.fresh = 0
			if !e.notFound {
				cp.stale = e.fresh + e.stale
			}
		} else if !capFresh(cp, k.normal, k.until) {
			continue
		}
		c.cache.rc.Del(k.key)
		c.cache.set(k.key, cp)
		n++
	}
	return n
}

// feedTable is one tracked table: its entity set, the columns selected
// (the key and those the deps are derived from), and the deps of a changed
// row.
type feedTable struct {
	set  string
	cols []string
	deps func(row map[string]any) []string
}

func rowStr(row map[string]any, col string) string {
	s, _ := row[col].(string)
	return strings.ToLower(strings.TrimSpace(s))
}

// depsWith derives a changed row's deps: its key, the prefixed values of
// columns (an email as "em:<address>"), and for the tables answers show
// columns of, its partial deps (rowPartials).
func depsWith(set, key string, prefixed map[string]string) func(map[string]any) []string {
	return func(row map[string]any) []string {
		id := rowStr(row, key)
		out := []string{id}
		for col, prefix := range prefixed {
			if v := rowStr(row, col); v != "" {
				out = append(out, prefix+v)
			}
		}
		return append(out, rowPartials(set, id, row)...)
	}
}

// feedTables are the tables an order or customer answer is made of.
func (g *Gateway) feedTables() []feedTable {
	emails := map[string]string{"emailaddress1": "em:", "emailaddress2": "em:", "emailaddress3": "em:"}
	// The columns beyond the key and those prefixed are what rowPartials
	// fingerprints: what order and customer answers show of these rows.
	ts := []feedTable{
		{"contacts", []string{"contactid", "emailaddress1", "emailaddress2", "emailaddress3", "fullname", "_parentcustomerid_value"},
			depsWith("contacts", "contactid", emails)},
		{"accounts", []string{"accountid", "emailaddress1", "emailaddress2", "emailaddress3", "name"}, depsWith("accounts", "accountid", emails)},
		{"salesorders", []string{"salesorderid", "ordernumber", "_customerid_value"},
			depsWith("salesorders", "salesorderid", map[string]string{"ordernumber": "on:", "_customerid_value": "oc:"})},
		{"salesorderdetails", []string{"salesorderdetailid", "_salesorderid_value"},
			depsWith("salesorderdetails", "salesorderdetailid", map[string]string{"_salesorderid_value": ""})},
		{"products", []string{"productid", "name", "productnumber"}, depsWith("products", "productid", nil)},
	}
	if r := g.refunds; r != nil {
		ts = append(ts, feedTable{r.set, []string{r.key, r.order.prop}, depsWith(r.set, r.key, map[string]string{r.order.prop: "rf:"})})
	}
	return ts
}

// Follower follows the change feed of one gateway's org. Run polls;
// Poll is one round (tests drive it with a fake clock). Safe for
// concurrent use, though polls are meant to run one at a time.
type Follower struct {
	g        *Gateway
	st       *feedState
	interval time.Duration
	tables   []feedTable
	metrics  *FeedMetrics
	log      *slog.Logger

	// With a fleet (bus != nil), one follower at a time polls for all the
	// replicas and publishes what changed (feedbus.go).
	bus      FeedBus
	feedID   string        // the feed's name on the bus: org and tables
	id       string        // this follower's name on the bus
	leaseTTL time.Duration // how long a leader's lease outlives its last tick
	silence  time.Duration // no event for that long: fall back

	mu          sync.Mutex        // serializes polls and events; guards the fields below
	links       map[string]string // deltaLink per entity set; "" = resync
	lastSuccess time.Time         // start of the last poll that reached every table
	down        bool
	stats       FeedStats
	// Fleet state.
	leading      bool      // this follower holds the lease and polls
	seq          uint64    // the last event published or heard
	lastEvent    time.Time // when it was
	pending      []string  // deps a leader's poll found, to publish
	pendingAll   bool      // too many to list: publish All
	announceDown bool      // the next event is Down (a takeover without a checkpoint)
	batchOff     int       // polls left without a $batch (feedbatch.go)
}

// FeedStats are a follower's cumulative counters.
type FeedStats struct {
	Polls, Requests, RowsChanged, Invalidated, Resyncs int64
	// Operations counts each GET of a $batch (Requests counts the batch
	// once): Dataverse's entitlement limits count operations.
	Operations int64
	// InitialRows and InitialBytes are what the initial syncs read.
	InitialRows, InitialBytes int64
	// IndexedAnswers and IndexBytes are the dependency index's size now.
	IndexedAnswers int
	IndexBytes     int64
	Up             bool
	// With a fleet: whether this follower leads (polls for the fleet), the
	// events it published and those it heard from other replicas' leaders.
	Leading          bool
	Published, Heard int64
}

// Follow attaches a change follower to g and returns it; call Run (or
// Poll) to start following. Until the first poll has a deltaLink for every
// table, answers keep their normal freshness. Follow at most once per
// gateway.
func (g *Gateway) Follow(cfg FeedConfig) (*Follower, error) {
	if cfg.Interval < 0 || cfg.TTL < 0 {
		return nil, errors.New("gateway: FeedConfig durations must not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultFeedInterval
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultFeedTTL
	}
	bus, _ := g.shared.(FeedBus)
	st := &feedState{ttl: cfg.TTL, keep: g.timeout + cfg.Interval, interval: cfg.Interval, lengthen: g.shared == nil || bus != nil}
	st.idx = newDepIndex(st)
	if !g.feed.CompareAndSwap(nil, st) {
		return nil, errors.New("gateway: a change follower is already attached")
	}
	f := &Follower{g: g, st: st, interval: cfg.Interval, tables: g.feedTables(), metrics: cfg.Metrics, log: g.log,
		links: map[string]string{}, down: true,
		bus: bus, id: randomID(), leaseTTL: 2*cfg.Interval + g.timeout, silence: 3*cfg.Interval + g.timeout}
	f.feedID = feedName(g.baseURL, f.tables)
	if p := cfg.From; p != nil {
		p.mu.Lock()
		for _, t := range f.tables {
			if l := p.links[t.set]; l != "" {
				f.links[t.set] = l
			}
		}
		p.mu.Unlock()
	}
	if g.shared != nil && bus == nil {
		g.log.Warn("change feed with a shared cache level that cannot carry invalidations: answers keep their normal freshness",
			"integration", g.name)
	}
	return f, nil
}

// Run polls every interval until ctx ends. A failure is logged by Poll;
// the next tick resyncs. When Run returns, nothing makes the gateway's
// answers stale any more: they fall back to their normal freshness.
func (f *Follower) Run(ctx context.Context) {
	if f.bus != nil {
		f.runFleet(ctx)
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	defer f.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = f.Poll(ctx)
		t.Reset(f.interval)
	}
}

// errNotTracked: the answer had no deltaLink.
var errNotTracked = errors.New("change tracking is not enabled for the table")

// Poll follows every table's deltaLink once (or obtains one: the initial
// sync reads the table's keys once, paged, since Dataverse refuses $top and
// $filter with change tracking) and makes stale the answers that depend
// on the rows reported. On a failure it falls back to normal freshness,
// forgets the deltaLink when it is no longer usable (an expired token,
// tracking off), and returns the error.
func (f *Follower) Poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := f.g.clock()
	f.stats.Polls++
	first := f.batchPages(ctx) // feedbatch.go: every deltaLink in one request
	for _, t := range f.tables {
		if err := f.pollTable(ctx, t, first[t.set]); err != nil {
			f.fail(t, err)
			f.metrics.lag(f.g.name, f.g.clock().Sub(f.lastSuccess), f.lastSuccess.IsZero())
			return err
		}
	}
	f.lastSuccess = start
	f.st.polled.Store(start.UnixNano())
	f.goUp("change feed following: answers live until a change makes them stale")
	f.metrics.lag(f.g.name, f.g.clock().Sub(start), false)
	return nil
}

// pollTable follows one table's link to its next deltaLink, page by page,
// making stale what each page reports. first, when not nil, is the first
// page, read by batchPages.
func (f *Follower) pollTable(ctx context.Context, t feedTable, first *batchedPage) error {
	link := f.links[t.set]
	initial := link == ""
	if initial {
		link = f.g.baseURL + t.set + "?$select=" + strings.Join(t.cols, ",")
	}
	for range feedMaxPages {
		page, n, err := f.nextPage(ctx, link, &first)
		if err != nil {
			return err
		}
		var deps []string
		for _, raw := range page.Value {
			var row map[string]any
			if err := json.Unmarshal(raw, &row); err != nil {
				return upstreamErr("GET "+t.set, err)
			}
			if ctxs, _ := row["@odata.context"].(string); strings.HasSuffix(ctxs, "$deletedEntity") {
				if id, _ := row["id"].(string); id != "" {
					id = strings.ToLower(id)
					deps = append(deps, id)
					deps = append(deps, rowPartials(t.set, id, nil)...)
				}
				continue
			}
			if !initial {
				deps = append(deps, t.deps(row)...)
			}
		}
		if initial {
			f.stats.InitialRows += int64(len(page.Value))
			f.stats.InitialBytes += int64(n)
		} else {
			f.stats.RowsChanged += int64(len(page.Value))
			f.metrics.rows(f.g.name, t.set, len(page.Value))
		}
		if len(deps) > 0 {
			f.invalidate(deps)
			if f.bus != nil && !f.pendingAll {
				if f.pending = append(f.pending, deps...); len(f.pending) > maxEventDeps {
					f.pending, f.pendingAll = nil, true
				}
			}
		}
		switch {
		case page.NextLink != "":
			link = page.NextLink
		case page.DeltaLink != "":
			f.links[t.set] = page.DeltaLink
			return nil
		default:
			return &dataverse.Error{Kind: dataverse.KindConfig, Op: "GET " + t.set, Err: errNotTracked,
				Message: fmt.Sprintf("Dataverse answered %s without an @odata.deltaLink: change tracking is not enabled for the table", t.set),
				Remedy:  "Turn on Track changes for the table (Power Apps: Tables > the table > Properties > Advanced options), or remove changeFeed from the integration."}
		}
	}
	return upstreamErr("GET "+t.set, fmt.Errorf("the change feed did not end after %d pages", feedMaxPages))
}

// invalidate makes stale the answers that depend on deps. f.mu is held.
func (f *Follower) invalidate(deps []string) {
	keys := f.st.idx.take(deps, f.g.clock(), f.st.keep)
	evicted := make([]evictedKey, len(keys))
	for i, k := range keys {
		evicted[i] = evictedKey{key: k}
	}
	inv := f.g.demote(evicted, true)
	f.stats.Invalidated += int64(inv)
	f.metrics.invalidated(f.g.name, inv)
}

// feedPage is one page of a change-tracking answer.
type feedPage struct {
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
	Value     []json.RawMessage `json:"value"`
}

func (f *Follower) get(ctx context.Context, link string) (*feedPage, int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("gateway: change feed link: %w", err)
	}
	req.Header.Set("Prefer", fmt.Sprintf("odata.track-changes,odata.maxpagesize=%d", feedPageSize))
	resp, err := f.g.up.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var p feedPage
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&p); err != nil {
		return nil, 0, upstreamErr("GET change feed", err)
	}
	return &p, int(dec.InputOffset()), nil
}

// fail falls back to normal freshness, logs, and forgets t's deltaLink
// when following it cannot succeed again (an expired or refused token,
// tracking off): the next poll resyncs the table.
func (f *Follower) fail(t feedTable, err error) {
	resync := !transient(err)
	if resync {
		delete(f.links, t.set)
		f.stats.Resyncs++
		f.metrics.resync(f.g.name)
	}
	if n, wasUp := f.goDown(); wasUp {
		f.log.Warn("change feed failed: answers fall back to their normal freshness until it resyncs",
			"integration", f.g.name, "table", t.set, "resync", resync, "answersShortened", n, "error", err)
	} else {
		f.log.Debug("change feed still failing", "integration", f.g.name, "table", t.set, "error", err)
	}
}

// goDown makes every answer fall back to its normal freshness, unless
// the follower is down already; it returns how many answers it shortened.
// f.mu is held.
func (f *Follower) goDown() (shortened int, wasUp bool) {
	f.metrics.up(f.g.name, false)
	if f.down {
		return 0, false
	}
	f.down = true
	f.st.up.Store(false)
	f.st.gen.Add(1)
	return f.g.demote(f.st.idx.drain(), false), true
}

// goUp lets answers live long again. f.mu is held.
func (f *Follower) goUp(msg string) {
	f.metrics.up(f.g.name, true)
	if !f.down {
		return
	}
	f.down = false
	f.st.up.Store(true)
	f.log.Info(msg, "integration", f.g.name)
}

// stop falls back to normal freshness for good (Run ended).
func (f *Follower) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	f.st.up.Store(false)
	f.st.gen.Add(1)
	f.g.demote(f.st.idx.drain(), false)
	f.metrics.up(f.g.name, false)
}

// Stats returns the follower's counters.
func (f *Follower) Stats() FeedStats {
	f.mu.Lock()
	s := f.stats
	s.Up = !f.down
	s.Leading = f.leading
	f.mu.Unlock()
	s.IndexedAnswers, s.IndexBytes = f.st.idx.size()
	return s
}

// FeedMetrics are the change feed's Prometheus collectors. A nil
// *FeedMetrics records nothing. One FeedMetrics may serve several
// followers (labelled by integration).
type FeedMetrics struct {
	lagSeconds  *prometheus.GaugeVec
	upGauge     *prometheus.GaugeVec
	rowsTotal   *prometheus.CounterVec
	invalidTot  *prometheus.CounterVec
	resyncTotal *prometheus.CounterVec
	leaderGauge *prometheus.GaugeVec
}

// NewFeedMetrics creates the collectors and registers them with reg.
func NewFeedMetrics(reg prometheus.Registerer) (*FeedMetrics, error) {
	m := &FeedMetrics{
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_feed_lag_seconds",
			Help: "How far behind Dataverse the change feed was at its last poll: the poll's duration when it succeeded, the time since the last successful poll began when it failed.",
		}, []string{"integration"}),
		upGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_feed_up",
			Help: "1 while the change feed follows every table (answers live long), 0 while answers fall back to their normal freshness.",
		}, []string{"integration"}),
		rowsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_feed_rows_changed_total",
			Help: "Rows the change feed reported changed or deleted, by entity set.",
		}, []string{"integration", "table"}),
		invalidTot: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_feed_answers_invalidated_total",
			Help: "Cached answers made stale because the change feed reported a row they depend on.",
		}, []string{"integration"}),
		resyncTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_feed_resyncs_total",
			Help: "Times a table's deltaLink was dropped (expired token, tracking off, refused) and the table read again.",
		}, []string{"integration"}),
	}
	m.leaderGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dvgate_feed_leader",
		Help: "With a shared level (Redis): 1 while this replica polls the change feed for the fleet and publishes what changed, 0 while it applies another replica's events.",
	}, []string{"integration"})
	for _, c := range []prometheus.Collector{m.lagSeconds, m.upGauge, m.rowsTotal, m.invalidTot, m.resyncTotal, m.leaderGauge} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("gateway: registering feed metrics"), err)
		}
	}
	return m, nil
}

func (m *FeedMetrics) lag(integration string, d time.Duration, never bool) {
	if m == nil || never {
		return
	}
	m.lagSeconds.WithLabelValues(integration).Set(d.Seconds())
}

func (m *FeedMetrics) up(integration string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.upGauge.WithLabelValues(integration).Set(v)
}

func (m *FeedMetrics) rows(integration, table string, n int) {
	if m != nil && n > 0 {
		m.rowsTotal.WithLabelValues(integration, table).Add(float64(n))
	}
}

func (m *FeedMetrics) invalidated(integration string, n int) {
	if m != nil && n > 0 {
		m.invalidTot.WithLabelValues(integration).Add(float64(n))
	}
}

func (m *FeedMetrics) resync(integration string) {
	if m != nil {
		m.resyncTotal.WithLabelValues(integration).Inc()
	}
}

func (m *FeedMetrics) leader(integration string, leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leaderGauge.WithLabelValues(integration).Set(v)
}
