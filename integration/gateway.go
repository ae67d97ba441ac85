package integration

import (
	"context"
	"log/slog"
	"net/http"
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
	// CacheBytes is each integration's cache budget; 0 = gateway's default.
	CacheBytes int64
	// UpstreamTimeout bounds one shared Dataverse call; 0 = gateway's default.
	UpstreamTimeout time.Duration
	// Fleet is the optional Redis shared by replicas (second cache level,
	// fleet-wide deduplication and throttle gate); nil = this replica alone.
	Fleet *fleet.Redis
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
	var cache *sharedCache
	if p, ok := prev.(*gatewayBackend); ok && p.cfg.SameData(cfg) {
		cache = p.cache
		cache.refs.Add(1)
	} else {
		c, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: gc.CacheBytes})
		if err != nil {
			conn.Close()
			return nil, err
		}
		cache = &sharedCache{c: c}
		cache.refs.Store(1)
	}
	gw, err := gateway.New(gateway.Config{
		Name: cfg.Name, Conn: conn, Mode: cfg.Mode, TrackingColumn: cfg.TrackingColumn, Cache: cache.c,
		UpstreamTimeout: gc.UpstreamTimeout, Clock: gc.Clock, Logger: log, Metrics: gc.Metrics,
		Shared: fleetShared(gc.Fleet), Throttle: fleetThrottle(gc.Fleet),
	})
	if err != nil {
		cache.release()
		conn.Close()
		return nil, err
	}
	return &gatewayBackend{cfg: cfg, conn: conn, gw: gw, cache: cache}, nil
}

// sharedCache is a gateway cache used by one integration's successive
// backends; the last one to close it frees it.
type sharedCache struct {
	c    *gateway.Cache
	refs atomic.Int32
}

func (s *sharedCache) release() {
	if s.refs.Add(-1) == 0 {
		s.c.Close()
	}
}

type gatewayBackend struct {
	cfg   Config
	conn  *dataverse.Conn
	gw    *gateway.Gateway
	cache *sharedCache
}

func (b *gatewayBackend) Close() {
	b.gw.Close()
	b.conn.Close()
	b.cache.release()
}

func (b *gatewayBackend) ThrottledUntil() time.Time { return b.conn.ThrottledUntil() }

// Messages for gateway.ErrNotFound, by lookup.
const (
	notFoundCustomer = "No contact or account has this email address."
	notFoundOrder    = "No sales order has this number or id."
	notFoundRecent   = "No such customer."
)

func (b *gatewayBackend) Customer(ctx context.Context, email, mode string) (*gateway.Customer, gateway.Meta, error) {
	var (
		c   *gateway.Customer
		m   gateway.Meta
		err error
	)
	if mode == "" {
		c, m, err = b.gw.Customer(ctx, email)
	} else {
		gm, perr := gateway.ParseMode(mode)
		if perr != nil {
			return nil, gateway.Meta{}, ErrorOf(perr, "")
		}
		c, m, err = b.gw.CustomerIn(ctx, email, gm)
	}
	if err != nil {
		return nil, gateway.Meta{}, ErrorOf(err, notFoundCustomer)
	}
	return c, m, nil
}

func (b *gatewayBackend) Order(ctx context.Context, ref string) (*gateway.Order, gateway.Meta, error) {
	o, m, err := b.gw.Order(ctx, ref)
	if err != nil {
		return nil, gateway.Meta{}, ErrorOf(err, notFoundOrder)
	}
	return o, m, nil
}

func (b *gatewayBackend) RecentOrders(ctx context.Context, t, id string, limit int) ([]gateway.OrderSummary, gateway.Meta, error) {
	list, m, err := b.gw.RecentOrders(ctx, t, id, limit)
	if err != nil {
		return nil, gateway.Meta{}, ErrorOf(err, notFoundRecent)
	}
	return list, m, nil
}

func (b *gatewayBackend) Refunds(ctx context.Context, orderRef string) ([]gateway.Refund, error) {
	list, err := b.gw.Refunds(ctx, orderRef)
	if err != nil {
		return nil, ErrorOf(err, notFoundOrder)
	}
	return list, nil
}

func (b *gatewayBackend) Test(ctx context.Context) (*gateway.TestResult, error) {
	r, err := b.gw.Test(ctx)
	if err != nil {
		return nil, ErrorOf(err, "WhoAmI found nothing.")
	}
	return r, nil
}
