package mcp

import (
	"context"
	"time"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
)

// fakeRegistry has one integration, "default", whose backend fails every
// call with err (nil: an empty fake).
type fakeRegistry struct{ err *integration.Error }

func (r fakeRegistry) Acquire(name string) (integration.Backend, func(), bool) {
	if name != "default" {
		return nil, nil, false
	}
	return failing(r), func() {}, true
}

func (fakeRegistry) Names() []string { return []string{"default"} }

func (fakeRegistry) Credential(string) (integration.Credential, bool) {
	return integration.Credential{}, false
}

func (fakeRegistry) Config(name string) (integration.Config, bool) {
	return integration.Config{Name: name}, name == "default"
}

type failing struct{ err *integration.Error }

func (f failing) Customer(context.Context, string, string) (*gateway.Customer, gateway.Meta, error) {
	return nil, gateway.Meta{}, f.err
}

func (f failing) Order(context.Context, string) (*gateway.Order, gateway.Meta, error) {
	return nil, gateway.Meta{}, f.err
}

func (f failing) Summary(context.Context, string, string) (*gateway.Summary, gateway.Meta, error) {
	return nil, gateway.Meta{}, f.err
}

func (f failing) RecentOrders(context.Context, string, string, int) ([]gateway.OrderSummary, gateway.Meta, error) {
	return nil, gateway.Meta{}, f.err
}

func (f failing) Refunds(context.Context, string) ([]gateway.Refund, error) { return nil, f.err }
func (f failing) Test(context.Context) (*gateway.TestResult, error)         { return nil, f.err }
func (failing) ThrottledUntil() time.Time                                   { return time.Time{} }
func (failing) Close()                                                      {}
