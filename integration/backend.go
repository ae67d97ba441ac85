package integration

import (
	"context"
	"time"

	"github.com/dvgate/dvgate/gateway"
)

// Backend is one live connection of an integration: the lookups the front
// ends serve, plus what readiness needs. Answers are gateway's types; an
// answer a Backend returns is shared (it may be the cached value itself)
// and must not be modified. Errors are *Error (see ErrorOf for anything
// else). Implementations must be safe for concurrent use; Close is called
// once, after the last request using the backend has finished.
type Backend interface {
	// Customer finds a contact or account by email; mode is "both",
	// "contacts" or "accounts", and "" means the integration's configured
	// mode.
	Customer(ctx context.Context, email, mode string) (*gateway.Customer, gateway.Meta, error)
	// Order finds a sales order by number or id, with its lines.
	Order(ctx context.Context, ref string) (*gateway.Order, gateway.Meta, error)
	// RecentOrders lists a customer's most recent orders; customerType is
	// "contact" or "account".
	RecentOrders(ctx context.Context, customerType, customerID string, limit int) ([]gateway.OrderSummary, gateway.Meta, error)
	Refunds(ctx context.Context, orderRef string) ([]gateway.Refund, error)
	// Summary returns a customer's order count, open orders, first and
	// last order and total spent in the org's base currency (customerType
	// "contact" or "account"). When the figures are not cached and
	// Dataverse has not computed them within a short wait, it answers the
	// stale figures if it has them (Meta.Outcome Stale), else an error
	// matching gateway.ErrPending (a *gateway.PendingError with its
	// RetryAfter, passed through as it is, not an *Error): not a failure,
	// the computation goes on in the background (HTTP: 202 Accepted).
	Summary(ctx context.Context, customerType, customerID string) (*gateway.Summary, gateway.Meta, error)
	// Test signs in and calls WhoAmI, bypassing any cache.
	Test(ctx context.Context) (*gateway.TestResult, error)
	// ThrottledUntil is when Dataverse service protection lets the
	// connection send again (zero or past: not throttled).
	ThrottledUntil() time.Time
	Close()
}

// Connector builds a Backend for an integration's configuration. Connect
// must not call the network (validation is a separate Test call), so a
// configuration error is reported before anything is sent. prev is the
// backend being replaced (nil for a new integration), so an implementation
// can keep its cache across a credential-only change.
type Connector interface {
	Connect(cfg Config, prev Backend) (Backend, error)
}

// broken is the Backend of an integration that cannot start: every call
// answers its configuration error, so the front ends tell the caller what
// to fix while the other integrations serve.
type broken struct{ err *Error }

func newBroken(cause error) *broken {
	return &broken{err: &Error{Code: CodeConfig, Message: remedyOf(cause), Err: cause}}
}

func (b *broken) Customer(context.Context, string, string) (*gateway.Customer, gateway.Meta, error) {
	return nil, gateway.Meta{}, b.err
}

func (b *broken) Order(context.Context, string) (*gateway.Order, gateway.Meta, error) {
	return nil, gateway.Meta{}, b.err
}

func (b *broken) RecentOrders(context.Context, string, string, int) ([]gateway.OrderSummary, gateway.Meta, error) {
	return nil, gateway.Meta{}, b.err
}

func (b *broken) Refunds(context.Context, string) ([]gateway.Refund, error) { return nil, b.err }
func (b *broken) Test(context.Context) (*gateway.TestResult, error)         { return nil, b.err }
func (b *broken) ThrottledUntil() time.Time                                 { return time.Time{} }
func (b *broken) Close()                                                    {}

func (b *broken) Summary(context.Context, string, string) (*gateway.Summary, gateway.Meta, error) {
	return nil, gateway.Meta{}, b.err
}
