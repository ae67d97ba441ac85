package integration

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/fleet"
	"github.com/dvgate/dvgate/gateway"
)

// GatewayConnector builds Backends from package gateway over a
// dataverse.Conn per integration. A backend replacing one with the same data
// source (only credentials changed, see Config.SameData) shares its cache,
// so a rotation does not empty the cache.
type GatewayConnector struct {
	// HTTPClient is the base client of every Conn (TLS roots, proxy); nil =
	// dataverse's default.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Clock      func() time.Time
	Metrics    *gateway.Metrics // shared by all integrations; nil = none
	// CacheBytes is the budget of the cache shared by the integrations
	// that have no budget of their own (Tuning.CacheBytes); 0 = gateway's
	// default.
	CacheBytes int64
	// UpstreamTimeout bounds one shared Dataverse call unless the
	// integration says otherwise (Tuning.UpstreamTimeout); 0 = gateway's
	// default.
	UpstreamTimeout time.Duration
	// Fleet is the optional Redis shared by replicas (second cache level,
	// fleet-wide deduplication and throttle gate); nil = this replica alone.
	Fleet *fleet.Redis
	// FeedMetrics are the change feeds' metrics; nil = none.
	FeedMetrics *gateway.FeedMetrics

	// mu guards the caches' reference counts and the caches below: the
	// one shared by all integrations (made by the first backend that uses
	// it, closed with the last) and the live ones, for the metrics.
	mu     sync.Mutex
	shared *sharedCache
	live   map[*sharedCache]struct{}
}

// Connect implements Connector. It does not call the network.
func (gc *GatewayConnector) Connect(cfg Config, prev Backend) (Backend, error) {
	log := gc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dv := cfg.Dataverse
	dv.HTTPClient = fleetHTTPClient(gc.Fleet, gc.HTTPClient, dv.MaxConcurrent)
	// The gateway names the integration in its lines itself (Config.Name);
	// the connection's lines get it from here.
	dv.Logger = log.With("integration", cfg.Name)
	conn, err := dataverse.New(dv)
	if err != nil {
		return nil, err
	}
	cache, err := gc.cacheFor(cfg, prev)
	if err != nil {
		conn.Close()
		return nil, err
	}
	b := &gatewayBackend{cfg: cfg, conn: conn, cache: cache, gc: gc, log: log.With("integration", cfg.Name), now: gc.now}
	b.life, b.endLife = context.WithCancel(context.Background())
	if !cfg.needsSchema() {
		// The columns compiled into package generated are all it reads.
		gw, err := b.newGateway(nil)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.gw.Store(gw)
	}
	return b, nil
}

func (gc *GatewayConnector) logger() *slog.Logger {
	if gc.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return gc.Logger
}

func (gc *GatewayConnector) now() time.Time {
	if gc.Clock == nil {
		return time.Now()
	}
	return gc.Clock()
}

// sharedCache is a gateway cache used by several backends: the one shared
// by all integrations, or one integration's own (Tuning.CacheBytes) used by
// its successive backends. The last one to release it frees it.
type sharedCache struct {
	c      *gateway.Cache
	label  string // "shared", or the integration's name
	shared bool   // the one shared by the integrations
	budget int64
	gc     *GatewayConnector
	refs   int            // guarded by gc.mu
	users  map[string]int // backends using it, by integration name; guarded by gc.mu
}

// use takes a reference for the integration name. gc.mu must be held.
func (s *sharedCache) use(name string) *sharedCache {
	s.refs++
	if s.users == nil {
		s.users = map[string]int{}
	}
	s.users[name]++
	return s
}

// cacheFor returns the cache of a new backend for cfg, with a reference
// taken: the shared one, or cfg's own, kept from prev when prev reads the
// same data with the same budget (a rotation keeps the cache). Sharing one
// cache is safe because every key starts with the integration's name and
// org URL, and holds the configured columns.
func (gc *GatewayConnector) cacheFor(cfg Config, prev Backend) (*sharedCache, error) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	own := cfg.Tuning.CacheBytes
	if own == 0 && gc.shared != nil {
		return gc.shared.use(cfg.Name), nil
	}
	if p, ok := prev.(*gatewayBackend); ok && own > 0 && p.cfg.SameData(cfg) && p.cache.label == cfg.Name && p.cache.budget == own {
		return p.cache.use(cfg.Name), nil
	}
	budget, label := own, cfg.Name
	if own == 0 {
		budget, label = gc.CacheBytes, "shared"
	}
	if budget == 0 {
		budget = gateway.DefaultMaxBytes
	}
	c, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: budget})
	if err != nil {
		return nil, err
	}
	sc := (&sharedCache{c: c, label: label, shared: own == 0, budget: budget, gc: gc}).use(cfg.Name)
	if own == 0 {
		gc.shared = sc
	}
	if gc.live == nil {
		gc.live = map[*sharedCache]struct{}{}
	}
	gc.live[sc] = struct{}{}
	return sc, nil
}

// release drops the reference the integration name took.
func (s *sharedCache) release(name string) {
	gc := s.gc
	gc.mu.Lock()
	s.refs--
	if s.users[name]--; s.users[name] <= 0 {
		delete(s.users, name) // removed (or moved to a cache of its own): no more series
	}
	last := s.refs == 0
	if last {
		if gc.shared == s {
			gc.shared = nil
		}
		delete(gc.live, s)
	}
	gc.mu.Unlock()
	if last {
		s.c.Close()
	}
}

// CacheStats is one cache's state, for the metrics: the cache shared by
// the integrations (Label "shared") or an integration's own (its name).
type CacheStats struct {
	Label       string
	Shared      bool // the cache shared by the integrations
	BudgetBytes int64
	gateway.CacheStats
	// Integrations are the shares of the integrations configured to use
	// the cache, sorted by name (gateway.Cache.Owner). An integration
	// removed or given a cache of its own is no longer listed, though its
	// answers stay in the cache until evicted.
	Integrations []gateway.OwnerStats
}

// CacheStats returns the state of the live caches, sorted by label.
func (gc *GatewayConnector) CacheStats() []CacheStats {
	gc.mu.Lock()
	out := make([]CacheStats, 0, len(gc.live))
	for sc := range gc.live {
		st := CacheStats{Label: sc.label, Shared: sc.shared, BudgetBytes: sc.budget, CacheStats: sc.c.Stats()}
		for name := range sc.users {
			st.Integrations = append(st.Integrations, sc.c.Owner(name))
		}
		slices.SortFunc(st.Integrations, func(a, b gateway.OwnerStats) int { return strings.Compare(a.Owner, b.Owner) })
		out = append(out, st)
	}
	gc.mu.Unlock()
	slices.SortFunc(out, func(a, b CacheStats) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// gatewayBackend is an integration's live connection. Its gateway is built
// at Connect, or, when the configuration names columns of the org
// (needsSchema), once the org's schema has been read (see schema.go).
type gatewayBackend struct {
	cfg   Config
	conn  *dataverse.Conn
	cache *sharedCache
	gc    *GatewayConnector
	log   *slog.Logger
	now   func() time.Time

	gw         atomic.Pointer[gateway.Gateway]
	refreshing atomic.Bool
	// schemaRead is when the schema in use was read (Unix nanoseconds of
	// the injected clock): read on every lookup, so not under schemaMu.
	schemaRead atomic.Int64
	life       context.Context // ends at Close: background schema reads stop
	endLife    context.CancelFunc
	bg         sync.WaitGroup
	feed       backendFeed // the change follower, when Config.ChangeFeed is on

	schemaMu     sync.Mutex // serializes schema reads; guards the fields below
	schemaErr    *Error     // the last read's failure; nil after a success
	schemaFailed time.Time
	retired      []*gateway.Gateway
}

func (b *gatewayBackend) Close() {
	b.endLife()
	b.bg.Wait()
	b.schemaMu.Lock()
	gws := append(b.retired, b.gw.Load())
	b.schemaMu.Unlock()
	for _, gw := range gws {
		if gw != nil {
			gw.Close()
		}
	}
	b.conn.Close()
	b.cache.release(b.cfg.Name)
}

// ThrottledUntil is the later of this connection's 429 gate and the
// fleet's shared one (another replica's 429 holds this one back too).
func (b *gatewayBackend) ThrottledUntil() time.Time {
	t := b.conn.ThrottledUntil()
	if f := b.gc.Fleet; f != nil {
		if ft := f.ThrottledUntil(b.conn.BaseURL()); ft.After(t) {
			t = ft
		}
	}
	return t
}

// Credential implements CredentialReporter: the connection's credential,
// read when it was made (a renewed certificate file makes a new backend).
func (b *gatewayBackend) Credential() dataverse.Credential { return b.conn.Credential() }

// Messages for gateway.ErrNotFound, by lookup.
const (
	notFoundCustomer = "No contact or account has this email address."
	notFoundOrder    = "No sales order has this number or id."
	notFoundRecent   = "No such customer."
)

func (b *gatewayBackend) Customer(ctx context.Context, email, mode string) (*gateway.Customer, gateway.Meta, error) {
	gw, err := b.gateway(ctx)
	if err != nil {
		return nil, gateway.Meta{}, err
	}
	var (
		c *gateway.Customer
		m gateway.Meta
	)
	if mode == "" {
		c, m, err = gw.Customer(ctx, email)
	} else {
		gm, perr := gateway.ParseMode(mode)
		if perr != nil {
			return nil, gateway.Meta{}, ErrorOf(perr, "")
		}
		c, m, err = gw.CustomerIn(ctx, email, gm)
	}
	if err != nil {
		return nil, gateway.Meta{}, lookupError(err, notFoundCustomer, m)
	}
	return c, m, nil
}

func (b *gatewayBackend) Order(ctx context.Context, ref string) (*gateway.Order, gateway.Meta, error) {
	gw, err := b.gateway(ctx)
	if err != nil {
		return nil, gateway.Meta{}, err
	}
	o, m, err := gw.Order(ctx, ref)
	if err != nil {
		return nil, gateway.Meta{}, lookupError(err, notFoundOrder, m)
	}
	return o, m, nil
}

func (b *gatewayBackend) RecentOrders(ctx context.Context, t, id string, limit int) ([]gateway.OrderSummary, gateway.Meta, error) {
	gw, err := b.gateway(ctx)
	if err != nil {
		return nil, gateway.Meta{}, err
	}
	list, m, err := gw.RecentOrders(ctx, t, id, limit)
	if err != nil {
		return nil, gateway.Meta{}, lookupError(err, notFoundRecent, m)
	}
	return list, m, nil
}

func (b *gatewayBackend) Refunds(ctx context.Context, orderRef string) ([]gateway.Refund, error) {
	gw, err := b.gateway(ctx)
	if err != nil {
		return nil, err
	}
	list, err := gw.Refunds(ctx, orderRef)
	if err != nil {
		return nil, ErrorOf(err, notFoundOrder)
	}
	return list, nil
}

func (b *gatewayBackend) Summary(ctx context.Context, t, id string) (*gateway.Summary, gateway.Meta, error) {
	gw, err := b.gateway(ctx)
	if err != nil {
		return nil, gateway.Meta{}, err
	}
	s, m, err := gw.Summary(ctx, t, id)
	if errors.Is(err, gateway.ErrPending) {
		return nil, gateway.Meta{}, err // not a failure: the front end says when to ask again
	}
	if err != nil {
		return nil, gateway.Meta{}, ErrorOf(err, notFoundRecent)
	}
	return s, m, nil
}

// Test signs in and calls WhoAmI; when the configuration names columns of
// the org, it also reads the org's schema again and checks them, so the
// Test button says which column is wrong.
func (b *gatewayBackend) Test(ctx context.Context) (*gateway.TestResult, error) {
	w, err := b.conn.WhoAmI(ctx)
	if err != nil {
		return nil, ErrorOf(err, "WhoAmI found nothing.")
	}
	if b.cfg.needsSchema() {
		if err := b.loadSchema(ctx, true); err != nil {
			return nil, err
		}
	}
	return &gateway.TestResult{OrganizationID: w.OrganizationID, UserID: w.UserID, BusinessUnitID: w.BusinessUnitID}, nil
}
