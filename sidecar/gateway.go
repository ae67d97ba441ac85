package sidecar

import (
	"context"
	"errors"
	"fmt"
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
// source (only credentials changed, see IntegrationConfig.SameData) shares
// its cache, so a rotation does not empty the cache.
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
func (gc *GatewayConnector) Connect(cfg IntegrationConfig, prev Backend) (Backend, error) {
	log := gc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("integration", cfg.Name)
	dv := cfg.Dataverse
	dv.HTTPClient = fleetHTTPClient(gc.Fleet, gc.HTTPClient, dv.MaxConcurrent)
	dv.Logger = log
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
	mode, _ := gateway.ParseMode(string(cfg.mode()))
	gw, err := gateway.New(gateway.Config{
		Name: cfg.Name, Conn: conn, Mode: mode, TrackingColumn: cfg.TrackingColumn, Cache: cache.c,
		UpstreamTimeout: gc.UpstreamTimeout, Clock: gc.Clock, Logger: log, Metrics: gc.Metrics,
		Shared: fleetShared(gc.Fleet), Throttle: fleetThrottle(gc.Fleet),
	})
	if err != nil {
		cache.release()
		conn.Close()
		return nil, err
	}
	return &gatewayBackend{cfg: cfg, conn: conn, gw: gw, cache: cache,
		orders: newAnswerMemo[gateway.Order](), customers: newAnswerMemo[gateway.Customer]()}, nil
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
	cfg   IntegrationConfig
	conn  *dataverse.Conn
	gw    *gateway.Gateway
	cache *sharedCache
	// Encoded answers (encoded.go).
	orders    *answerMemo[gateway.Order]
	customers *answerMemo[gateway.Customer]
}

func (b *gatewayBackend) Close() {
	b.gw.Close()
	b.conn.Close()
	b.cache.release()
}

func (b *gatewayBackend) ThrottledUntil() time.Time { return b.conn.ThrottledUntil() }

func meta(m gateway.Meta) Meta { return Meta{Outcome: m.Outcome.String(), Age: m.Age} }

func (b *gatewayBackend) Customer(ctx context.Context, email string, mode Mode) (Customer, Meta, error) {
	c, m, err := b.customer(ctx, email, mode)
	if err != nil {
		return Customer{}, Meta{}, err
	}
	return customerOf(c), meta(m), nil
}

func customerOf(c *gateway.Customer) Customer {
	out := Customer{Type: CustomerType(c.Type), Id: c.ID, Name: c.Name, Email: c.Email, Account: ref(c.Account)}
	if c.Phone != "" {
		p := c.Phone
		out.Phone = &p
	}
	return out
}

// customer is the gateway's answer, or an *APIError.
func (b *gatewayBackend) customer(ctx context.Context, email string, mode Mode) (*gateway.Customer, gateway.Meta, error) {
	var (
		c   *gateway.Customer
		m   gateway.Meta
		err error
	)
	if mode == "" {
		c, m, err = b.gw.Customer(ctx, email)
	} else {
		gm, perr := gateway.ParseMode(string(mode))
		if perr != nil {
			return nil, gateway.Meta{}, errInvalid("The mode %q is not one of both, contacts, accounts.", mode)
		}
		c, m, err = b.gw.CustomerIn(ctx, email, gm)
	}
	if err != nil {
		return nil, gateway.Meta{}, apiError(err, "No contact or account has this email address.")
	}
	return c, m, nil
}

func ref(r *gateway.Ref) *Ref {
	if r == nil {
		return nil
	}
	out := &Ref{Id: r.ID, Name: r.Name}
	if r.Type != "" {
		t := CustomerType(r.Type)
		out.Type = &t
	}
	return out
}

func money(m gateway.Money) Money {
	return Money{Amount: gateway.AmountString(m.Amount), Currency: m.Currency, Formatted: m.Formatted}
}

func (b *gatewayBackend) Order(ctx context.Context, orderRef string) (Order, Meta, error) {
	o, m, err := b.gw.Order(ctx, orderRef)
	if err != nil {
		return Order{}, Meta{}, apiError(err, "No sales order has this number or id.")
	}
	return orderOf(o), meta(m), nil
}

func orderOf(o *gateway.Order) Order {
	out := Order{Id: o.ID, Number: o.Number, Name: o.Name, Status: o.Status,
		State: Choice{Value: o.State.Value, Label: o.State.Label}, StatusReason: Choice{Value: o.StatusReason.Value, Label: o.StatusReason.Label},
		Total: money(o.Total), RequestedDeliveryBy: o.RequestedDeliveryBy, Customer: ref(o.Customer),
		TrackingNumber: o.TrackingNumber, Lines: make([]OrderLine, 0, len(o.Lines))}
	for _, l := range o.Lines {
		ol := OrderLine{Number: l.Number, Description: l.Description, WriteIn: l.WriteIn,
			Quantity: l.Quantity.String(), UnitPrice: gateway.AmountString(l.UnitPrice), Amount: gateway.AmountString(l.Amount)}
		if l.Product != nil {
			ol.Product = &Product{Id: l.Product.ID, Name: l.Product.Name, Sku: l.Product.SKU}
		}
		out.Lines = append(out.Lines, ol)
	}
	return out
}

func (b *gatewayBackend) RecentOrders(ctx context.Context, t CustomerType, id string, limit int) ([]OrderSummary, Meta, error) {
	list, m, err := b.gw.RecentOrders(ctx, string(t), id, limit)
	if err != nil {
		return nil, Meta{}, apiError(err, "No such customer.")
	}
	out := make([]OrderSummary, 0, len(list))
	for _, s := range list {
		st, sr := Choice{Value: s.State.Value, Label: s.State.Label}, Choice{Value: s.StatusReason.Value, Label: s.StatusReason.Label}
		os := OrderSummary{Id: s.ID, Number: s.Number, Name: s.Name, Status: s.Status, State: &st, StatusReason: &sr, Total: money(s.Total)}
		if !s.CreatedOn.IsZero() {
			c := s.CreatedOn
			os.CreatedOn = &c
		}
		if !s.ModifiedOn.IsZero() {
			mo := s.ModifiedOn
			os.ModifiedOn = &mo
		}
		out = append(out, os)
	}
	return out, meta(m), nil
}

func (b *gatewayBackend) Refunds(ctx context.Context, orderRef string) ([]Refund, error) {
	list, err := b.gw.Refunds(ctx, orderRef)
	if err != nil {
		return nil, apiError(err, "No sales order has this number or id.")
	}
	return make([]Refund, 0, len(list)), nil
}

func (b *gatewayBackend) Test(ctx context.Context) (TestResult, error) {
	r, err := b.gw.Test(ctx)
	if err != nil {
		return TestResult{}, apiError(err, "WhoAmI found nothing.")
	}
	return TestResult{Ok: true, OrganizationId: r.OrganizationID, UserId: r.UserID, BusinessUnitId: r.BusinessUnitID}, nil
}

// apiError turns a gateway or dataverse error into the API's error, with
// gateway.ErrorCode as the one table of codes and statuses. The message is
// the dataverse remedy for what an admin must fix, the input error's text
// for bad input, or notFound.
func apiError(err error, notFound string) *APIError {
	code, status := gateway.ErrorCode(err)
	e := &APIError{Code: ErrorCode(code), Status: status, Err: err}
	if !e.Code.Valid() {
		e.Code, e.Status = ErrorCodeInternal, http.StatusInternalServerError
	}
	var (
		de *dataverse.Error
		ie *gateway.InputError
	)
	switch {
	case errors.As(err, &ie):
		e.Message = ie.Message
		if ie.Field != "" {
			e.Message = fmt.Sprintf("The %s is not valid: %s.", ie.Field, ie.Message)
		}
	case errors.Is(err, gateway.ErrNotFound):
		e.Message = notFound
	case errors.As(err, &de):
		e.Message, e.DataverseCode, e.RetryAfter, e.UpstreamStatus = de.Remedy, de.Code, de.RetryAfter, de.Status
	}
	if e.Message == "" {
		e.Message = defaultMessages[e.Code]
	}
	if e.Message == "" {
		e.Message = "The gateway failed unexpectedly; the log has the details under this request id."
	}
	return e
}

var defaultMessages = map[ErrorCode]string{
	ErrorCodeInvalidInput: "The request is not valid.",
	ErrorCodeNotFound:     "Not found.",
	ErrorCodeAuth:         "The gateway could not sign in to Dataverse; check the app registration's credentials.",
	ErrorCodePermission:   "Dataverse refused access; check the application user and its security roles.",
	ErrorCodeConfig:       "The integration's configuration is wrong; check the Dataverse URL and app registration.",
	ErrorCodeThrottled:    "Dataverse is throttling requests; try again after the indicated time.",
	ErrorCodeUnavailable:  "Dataverse is unavailable; try again shortly.",
	ErrorCodeTimeout:      "Dataverse did not answer in time; try again.",
}
