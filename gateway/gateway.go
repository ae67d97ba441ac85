package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/generated"
)

// Mode says which tables a customer lookup searches.
type Mode int

const (
	// ModeBoth searches contacts first and falls back to accounts.
	ModeBoth Mode = iota
	// ModeContacts searches contacts only.
	ModeContacts
	// ModeAccounts searches accounts only.
	ModeAccounts
)

// String returns "both", "contacts" or "accounts".
func (m Mode) String() string {
	switch m {
	case ModeContacts:
		return "contacts"
	case ModeAccounts:
		return "accounts"
	case ModeBoth:
		return "both"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "both" (or ""), "contacts" or "accounts".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "both":
		return ModeBoth, nil
	case "contacts":
		return ModeContacts, nil
	case "accounts":
		return ModeAccounts, nil
	}
	return 0, &InputError{Field: "mode", Message: fmt.Sprintf("%q is not one of both, contacts, accounts", s)}
}

// Config configures a Gateway. Zero durations take the defaults.
type Config struct {
	// Name is the integration name, part of cache keys and metrics labels;
	// "" = "default".
	Name string
	// Conn is the Dataverse connection, usually a *dataverse.Conn.
	Conn Upstream
	// Mode is the default mode of Customer.
	Mode Mode
	// TrackingColumn is an optional salesorder column (e.g.
	// "contoso_trackingnumber") returned as Order.TrackingNumber: a text
	// column, or a lookup (e.g. to a custom shipment table), whose related
	// row's primary name is the tracking number. It needs Model.
	TrackingColumn string
	// OrderFields and CustomerFields are optional columns of salesorder,
	// and of contact or account, returned under Order.Fields and
	// Customer.Fields, typed by the org's schema, in the same request as
	// the rest of the answer. They need Model.
	OrderFields, CustomerFields []string
	// Refunds names the org's own refunds table and its columns; nil = the
	// org has none, and Refunds answers an empty list. It needs Model.
	Refunds *RefundsConfig
	// OrderNumberPrefix is the org's order number prefix ("ORD-"), so that
	// an order number typed without it is found (see Order).
	OrderNumberPrefix string
	// Model is the org's parsed $metadata (csdl.Read; the tables the
	// gateway reads are enough, see SchemaTables). When set, New checks
	// that the org has every column the gateway reads, and resolves the
	// configured columns against it, so that a wrong column is an error
	// naming it (a *ColumnError) before the first lookup. Without it, no
	// custom column can be configured.
	Model *csdl.Model
	// Cache may be shared by several gateways (one memory budget); nil = New
	// creates one with the defaults, closed by Close.
	Cache *Cache
	// Freshness of customers (5m), orders and recent orders (1m), and "not
	// found" answers (0 = as long as a found answer of the same kind: a
	// never-seen address asked again must not cost another request);
	// StaleTTL (1h) is how long past freshness an answer may still be
	// served when Dataverse fails.
	CustomerTTL, OrderTTL, NotFoundTTL, StaleTTL time.Duration
	// TestTTL is how long Test's answer is kept (5s): the help desk's Test
	// button and readiness probes pressed many times cost one WhoAmI.
	TestTTL time.Duration
	// Budget limits the Dataverse requests this gateway sends (see Budget);
	// the zero value is DefaultBudgetRate per second with a burst of
	// DefaultBudgetBurst.
	Budget Budget
	// UpstreamTimeout bounds each shared Dataverse call (30s), whatever the
	// callers' own deadlines.
	UpstreamTimeout time.Duration
	// Clock decides freshness; nil = time.Now.
	Clock func() time.Time
	// Logger; nil = discard.
	Logger *slog.Logger
	// Metrics; nil = none.
	Metrics *Metrics
	// Shared is an optional second cache level shared by several replicas
	// (e.g. fleet.Redis): read on an in-process miss before Dataverse,
	// written with every answer, and used to make one Dataverse request
	// per key fleet-wide. nil = in-process cache only.
	Shared SharedCache
	// Throttle is an optional throttling gate shared by several replicas
	// (e.g. fleet.Redis), checked before every Dataverse lookup. nil = the
	// connection's own gate only.
	Throttle Throttle
	// Summary configures Summary (counted states, contacts' orders, TTL, wait).
	Summary SummaryConfig
}

// Gateway answers lookups for one integration. It is safe for concurrent use.
type Gateway struct {
	core
	up          Upstream
	svc         *generated.Service
	baseURL     string
	mode        Mode
	extra       extraColumns
	orderPrefix string
	refunds     *refundsTable // nil = the org has no refunds table
	customerTTL time.Duration
	orderTTL    time.Duration
	ownCache    bool
	throttle    Throttle
	testTTL     time.Duration
	testKey     string
	summaries   *summaries // summary.go

	// Cache key prefixes, built once: a key is a prefix plus the
	// normalized input, so a lookup builds its key with one allocation.
	customerPrefix   [ModeAccounts + 1]string // by mode
	orderIDPrefix    string
	orderNumPrefix   string
	recentPrefix     string
	customerCounters *kindCounters
	orderCounters    *kindCounters
}

// Lookup kinds (metrics labels and part of the cache keys).
const (
	kindCustomer     = "customer"
	kindOrder        = "order"
	kindRecentOrders = "recent_orders"
	kindTest         = "test" // Gateway.Test; not a lookup, no metrics
)

var columnName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// New validates cfg and returns a Gateway. It makes no network call.
func New(cfg Config) (*Gateway, error) {
	if cfg.Conn == nil {
		return nil, errors.New("gateway: Config.Conn is nil")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.Mode < ModeBoth || cfg.Mode > ModeAccounts {
		return nil, fmt.Errorf("gateway: invalid mode %v", cfg.Mode)
	}
	var (
		x       extraColumns
		refunds *refundsTable
	)
	if cfg.Model != nil {
		if err := checkModel(cfg.Model); err != nil {
			return nil, err
		}
		// Every wrong setting at once, so that one fix is enough.
		var errX, errR error
		x, errX = resolveExtras(cfg.Model, cfg.TrackingColumn, cfg.OrderFields, cfg.CustomerFields)
		if cfg.Refunds != nil {
			refunds, errR = resolveRefunds(cfg.Model, cfg.Refunds)
		}
		if err := errors.Join(errX, errR); err != nil {
			return nil, err
		}
	} else if cfg.TrackingColumn != "" || len(cfg.OrderFields) > 0 || len(cfg.CustomerFields) > 0 || cfg.Refunds != nil {
		return nil, errors.New("gateway: a tracking column or custom fields need the org's schema (Config.Model)")
	}
	durs := []struct {
		d   *time.Duration
		def time.Duration
		n   string
	}{
		{&cfg.CustomerTTL, 5 * time.Minute, "CustomerTTL"},
		{&cfg.OrderTTL, time.Minute, "OrderTTL"},
		{&cfg.NotFoundTTL, 0, "NotFoundTTL"},
		{&cfg.TestTTL, 5 * time.Second, "TestTTL"},
		{&cfg.StaleTTL, time.Hour, "StaleTTL"},
		{&cfg.UpstreamTimeout, 30 * time.Second, "UpstreamTimeout"},
	}
	for _, d := range durs {
		if *d.d < 0 {
			return nil, fmt.Errorf("gateway: %s %v is negative", d.n, *d.d)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	up := cfg.Conn
	b, err := newBucket(cfg.Budget, cfg.Clock)
	if err != nil {
		return nil, err
	}
	if b != nil {
		up = budgeted{Upstream: up, b: b}
	}
	svc, err := generated.NewService(cfg.Conn.BaseURL(), up)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	own := false
	if cfg.Cache == nil {
		c, err := NewCache(CacheConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Cache, own = c, true
	}
	g := &Gateway{
		core: core{
			name: cfg.Name, cache: cfg.Cache, clock: cfg.Clock,
			notFoundTTL: cfg.NotFoundTTL, staleTTL: cfg.StaleTTL, timeout: cfg.UpstreamTimeout,
			metrics: cfg.Metrics, log: cfg.Logger,
			transient: transient, outcomeLabel: outcomeLabel, shared: cfg.Shared,
		},
		up: up, svc: svc, testTTL: cfg.TestTTL, baseURL: cfg.Conn.BaseURL(), mode: cfg.Mode, extra: x,
		orderPrefix: strings.TrimSpace(cfg.OrderNumberPrefix), refunds: refunds,
		customerTTL: cfg.CustomerTTL, orderTTL: cfg.OrderTTL, ownCache: own, throttle: cfg.Throttle,
	}
	g.life, g.endLife = context.WithCancel(context.Background())
	if gate, ok := cfg.Conn.(interface{ ThrottledUntil() time.Time }); ok {
		g.throttledUntil = gate.ThrottledUntil
	}
	if cfg.Metrics != nil {
		g.counters = map[string]*kindCounters{}
		for _, k := range []string{kindCustomer, kindOrder, kindRecentOrders, kindRefunds, kindSummary} {
			g.counters[k] = cfg.Metrics.counters(cfg.Name, k)
		}
		g.customerCounters, g.orderCounters = g.counters[kindCustomer], g.counters[kindOrder]
	}
	// The configured columns are part of the keys: a cache kept across a
	// configuration change must not answer without them.
	for m := ModeBoth; m <= ModeAccounts; m++ {
		g.customerPrefix[m] = g.key(kindCustomer, m.String(), x.customerKey(), "")
	}
	g.orderIDPrefix = g.key(kindOrder, x.orderKey(), "id:")
	g.orderNumPrefix = g.key(kindOrder, x.orderKey(), "number:")
	g.recentPrefix = g.key(kindRecentOrders, "")
	g.testKey = g.key(kindTest)
	if g.summaries, err = newSummaries(g, cfg.Summary); err != nil {
		g.endLife()
		if own {
			cfg.Cache.Close()
		}
		return nil, err
	}
	return g, nil
}

// Close cancels the Dataverse calls still running, waits for them to
// return, and closes the cache if New created it. Lookups after Close fail.
func (g *Gateway) Close() {
	g.core.close()
	g.summaries.close()
	if g.ownCache {
		g.cache.Close()
	}
}

// get is core.get with the fleet-wide throttling gate around the load.
func (g *Gateway) get(ctx context.Context, s spec) (any, Meta, error) {
	s.load = throttled(g.throttle, g.baseURL, s.load)
	return g.core.get(ctx, s)
}

// key builds a cache key (at New, for the prefixes). Inputs are validated
// and contain no control characters, so the unit separator keeps the parts
// unambiguous.
func (g *Gateway) key(parts ...string) string {
	return strings.Join(append([]string{g.name, g.baseURL}, parts...), "\x1f")
}

// Customer finds a customer by email in the configured mode.
func (g *Gateway) Customer(ctx context.Context, email string) (*Customer, Meta, error) {
	return g.CustomerIn(ctx, email, g.mode)
}

// CustomerIn finds a customer by email in the given mode: one request per
// table searched (two when ModeBoth falls back to accounts).
//
// The answer is shared with the cache and other callers: do not modify it.
func (g *Gateway) CustomerIn(ctx context.Context, email string, mode Mode) (*Customer, Meta, error) {
	if mode < ModeBoth || mode > ModeAccounts {
		return nil, Meta{}, &InputError{Field: "mode", Message: mode.String() + " is not a mode"}
	}
	// Hit path: plain ASCII input is looked up before validation (see
	// canonical): only validated addresses are ever stored.
	if s, ok := canonical(email); ok {
		if v, meta, err, ok := g.cached(hitKey(g.customerPrefix[mode], s), g.customerCounters); ok {
			c, _ := v.(*Customer)
			return c, meta, err
		}
	}
	e, err := normalizeEmail(email)
	if err != nil {
		return nil, Meta{}, err
	}
	var tables []string
	switch mode {
	case ModeBoth:
		tables = []string{"contact", "account"}
	case ModeContacts:
		tables = []string{"contact"}
	case ModeAccounts:
		tables = []string{"account"}
	}
	v, meta, err := g.get(ctx, spec{
		kind: kindCustomer, key: g.customerPrefix[mode] + e, fresh: g.customerTTL,
		load: func(ctx context.Context) (any, int64, error) {
			for _, t := range tables {
				specs := g.extra.contact
				if t == "account" {
					specs = g.extra.account
				}
				c, err := findCustomer(ctx, g.svc, t, e, specs)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, 0, err
				}
				return c, c.size(), nil
			}
			return nil, 0, ErrNotFound
		},
	})
	if err != nil {
		return nil, meta, err
	}
	return v.(*Customer), meta, nil
}

// orderKey is the cache key of a normalized order reference.
func (g *Gateway) orderKey(r orderRef) string {
	if r.id != "" {
		return g.orderIDPrefix + r.id
	}
	return g.orderNumPrefix + r.number
}

// Order finds an order by GUID (key lookup) or order number, with its lines,
// in one request.
//
// The answer is shared with the cache and other callers: do not modify it.
func (g *Gateway) Order(ctx context.Context, ref string) (*Order, Meta, error) {
	if s, ok := canonical(ref); ok {
		prefix := g.orderNumPrefix
		if isGUID(s) {
			prefix = g.orderIDPrefix
		}
		if v, meta, err, ok := g.cached(hitKey(prefix, s), g.orderCounters); ok {
			o, _ := v.(*Order)
			return o, meta, err
		}
	}
	r, err := normalizeOrderRef(ref, g.orderPrefix)
	if err != nil {
		return nil, Meta{}, err
	}
	v, meta, err := g.get(ctx, spec{
		kind: kindOrder, key: g.orderKey(r), fresh: g.orderTTL,
		load: func(ctx context.Context) (any, int64, error) {
			o, err := findOrder(ctx, g.svc, r, &g.extra)
			if err != nil {
				return nil, 0, err
			}
			return o, o.size(), nil
		},
	})
	if err != nil {
		return nil, meta, err
	}
	return v.(*Order), meta, nil
}

// RecentOrders returns the limit (1..50) most recently created orders of a
// customer, newest first, in one request. An empty list is an answer, not
// ErrNotFound. Every limit is served from one cached answer, fetched at
// MaxRecentOrders and cut to the limit, so that each limit asked for is
// not a request of its own.
//
// The list is shared with the cache and other callers: do not modify it.
func (g *Gateway) RecentOrders(ctx context.Context, customerType, customerID string, limit int) ([]OrderSummary, Meta, error) {
	typ, id, err := normalizeCustomer(customerType, customerID)
	if err != nil {
		return nil, Meta{}, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, Meta{}, err
	}
	v, meta, err := g.get(ctx, spec{
		kind: kindRecentOrders, key: g.recentPrefix + typ + "\x1f" + id, fresh: g.orderTTL,
		load: func(ctx context.Context) (any, int64, error) {
			s, err := findRecentOrders(ctx, g.svc, id, MaxRecentOrders)
			if err != nil {
				return nil, 0, err
			}
			return s, summariesSize(s), nil
		},
	})
	if err != nil {
		return nil, meta, err
	}
	s := v.([]OrderSummary)
	n := min(limit, len(s))
	return s[:n:n], meta, nil // capped: an append by the caller cannot reach the cached array
}

// Refunds validates the order reference and returns an empty list:
// Dataverse (Dynamics 365 Sales) has no refund table, so there is nothing to
// look up. It makes no request.
func (g *Gateway) Refunds(ctx context.Context, orderRef string) ([]Refund, error) {
	if _, err := normalizeOrderRef(orderRef, g.orderPrefix); err != nil {
		return nil, err
	}
	if g.refunds == nil {
		return []Refund{}, nil
	}
	// The order first (usually cached: the agent looked it up), for its
	// id and currency; then one request on the refunds table.
	o, _, err := g.Order(ctx, orderRef)
	if err != nil {
		return nil, err
	}
	v, _, err := g.get(ctx, spec{kind: kindRefunds, key: g.refundsKey(o.ID), fresh: g.orderTTL,
		load: func(ctx context.Context) (any, int64, error) {
			rs, err := g.findRefunds(ctx, o)
			if err != nil {
				return nil, 0, err
			}
			return rs, refundsSize(rs), nil
		}})
	if err != nil {
		return nil, err
	}
	return v.([]Refund), nil
}

// Test calls WhoAmI and returns the ids it reports. Concurrent calls share
// one WhoAmI, and a successful answer is kept for Config.TestTTL (never
// served stale, never from the shared level); errors are not kept. It
// takes a token of the request budget like any lookup.
//
// The answer is shared with other callers: do not modify it.
func (g *Gateway) Test(ctx context.Context) (*TestResult, error) {
	v, _, err := g.core.get(ctx, spec{kind: kindTest, key: g.testKey, fresh: g.testTTL, local: true,
		load: func(ctx context.Context) (any, int64, error) {
			w, err := g.up.WhoAmI(ctx)
			if err != nil {
				return nil, 0, err
			}
			r := &TestResult{OrganizationID: w.OrganizationID, UserID: w.UserID, BusinessUnitID: w.BusinessUnitID}
			return r, int64(len(r.OrganizationID) + len(r.UserID) + len(r.BusinessUnitID) + 64), nil
		}})
	if err != nil {
		return nil, err
	}
	return v.(*TestResult), nil
}

func columnsOf(m *csdl.Model, table string) ([]string, error) {
	var t *csdl.EntityType
	for _, et := range m.EntityTypes {
		if et.Name == table {
			t = et
			break
		}
	}
	if t == nil {
		return nil, fmt.Errorf("gateway: the metadata has no %s table (is the Sales app installed?)", table)
	}
	var cols []string
	for _, p := range t.AllProperties() {
		cols = append(cols, p.Name)
	}
	return cols, nil
}

// checkModel checks that the org has every column the gateway's queries
// select (they come from the generated model of a default org), so that a
// customised org missing one fails at start-up with a clear message.
func checkModel(m *csdl.Model) error {
	var missing []string
	for _, t := range selectedColumns() {
		have, err := columnsOf(m, t.table)
		if err != nil {
			return err
		}
		for _, c := range t.cols {
			if !slices.Contains(have, c) {
				missing = append(missing, t.table+"."+c)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("gateway: the org's metadata lacks columns the lookups read: %s", strings.Join(missing, ", "))
	}
	return nil
}

// transient reports whether err allows serving a stale answer (RFC 5861
// stale-if-error: what would be a 500, 502, 503 or 504): throttling,
// Dataverse 5xx or malformed answers, network errors and timeouts. Never
// sign-in, permission, configuration or bad-request errors: those need an
// admin, and hiding them behind stale data would delay the fix.
func transient(err error) bool {
	switch dataverse.KindOf(err) {
	case dataverse.KindThrottled, dataverse.KindUnavailable, dataverse.KindNetwork, dataverse.KindTimeout,
		dataverse.KindBusy:
		return true
	case dataverse.KindUnknown:
		return errors.Is(err, context.DeadlineExceeded)
	}
	return false
}

func outcomeLabel(err error) string {
	var pe *PanicError
	switch k := dataverse.KindOf(err); {
	case k != dataverse.KindUnknown:
		return k.String()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &pe):
		return "panic"
	}
	return "unknown"
}

// ErrorCode maps an error of this package to its error code, the one
// table of codes every front end reports (integration.Code); each front
// end has its own table from codes to its statuses. "" for nil.
func ErrorCode(err error) string {
	var ie *InputError
	var pe *PanicError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ie):
		return "invalid_input"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.As(err, &pe):
		return "internal"
	}
	switch dataverse.KindOf(err) {
	case dataverse.KindAuth:
		return "auth"
	case dataverse.KindPermission:
		return "permission"
	case dataverse.KindConfig:
		return "config"
	case dataverse.KindBadRequest:
		// Dataverse rejected our query: it does not fit this org's schema,
		// which an admin fixes like a configuration error.
		return "config"
	case dataverse.KindNotFound:
		return "not_found"
	case dataverse.KindThrottled:
		return "throttled"
	case dataverse.KindBusy:
		// dvgate did not send the request (request budget spent, or no
		// concurrency slot in time); RetryAfter says when to come back.
		return "busy"
	case dataverse.KindUnavailable, dataverse.KindNetwork:
		return "unavailable"
	case dataverse.KindTimeout:
		return "timeout"
	case dataverse.KindCanceled:
		// The caller went away, or the server is shutting down.
		return "unavailable"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "unavailable"
	}
	return "internal"
}

// RetryAfter returns how long Dataverse asked us to wait (throttling), or
// when dvgate will send again (busy), or 0; for the sidecar's Retry-After
// header.
func RetryAfter(err error) time.Duration {
	var e *dataverse.Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
