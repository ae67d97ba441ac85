package sidecar

import (
	"context"
	"time"
)

// Meta says where a lookup's answer came from.
type Meta struct {
	// Outcome is "hit", "miss" or "stale" (the X-Cache header).
	Outcome string
	// Age is how long ago the answer was fetched from Dataverse.
	Age time.Duration
}

// Backend is one live connection of an integration: the lookups the API
// serves plus what readiness needs. Errors should be *APIError (anything
// else is answered as an internal error). Implementations must be safe for
// concurrent use; Close is called once, after the last request using the
// backend has finished.
type Backend interface {
	// Customer finds a contact or account by email; mode "" means the
	// integration's configured mode.
	Customer(ctx context.Context, email string, mode Mode) (Customer, Meta, error)
	Order(ctx context.Context, ref string) (Order, Meta, error)
	RecentOrders(ctx context.Context, customerType CustomerType, customerID string, limit int) ([]OrderSummary, Meta, error)
	Refunds(ctx context.Context, orderRef string) ([]Refund, error)
	// Test signs in and calls WhoAmI, bypassing any cache.
	Test(ctx context.Context) (TestResult, error)
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
	Connect(cfg IntegrationConfig, prev Backend) (Backend, error)
}
