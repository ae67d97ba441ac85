package sidecar

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
)

// fakeBackend answers from fixed data; its behaviour comes from its
// configuration's ClientSecret ("bad" fails Test) so rotation tests can
// drive it through a Source.
type fakeBackend struct {
	cfg       integration.Config
	err       error         // returned by every lookup when set
	block     chan struct{} // when set, Order waits for it to close
	entered   chan struct{} // when set, Order signals it arrived
	throttled time.Time

	mu     sync.Mutex
	closed bool
	calls  int
}

func (f *fakeBackend) count() {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
}

func (f *fakeBackend) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *fakeBackend) Customer(ctx context.Context, email, mode string) (*gateway.Customer, gateway.Meta, error) {
	f.count()
	if f.err != nil {
		return nil, gateway.Meta{}, f.err
	}
	if !strings.Contains(email, "@") {
		return nil, gateway.Meta{}, &integration.Error{Code: integration.CodeInvalidInput, Message: fmt.Sprintf("The email %q is not an email address.", email)}
	}
	if email == "nobody@example.com" {
		return nil, gateway.Meta{}, &integration.Error{Code: integration.CodeNotFound, Message: "No contact or account has this email address."}
	}
	if mode == "accounts" {
		return &gateway.Customer{Type: "account", ID: "a1", Name: "Fabrikam", Email: email}, gateway.Meta{Outcome: gateway.Miss}, nil
	}
	return &gateway.Customer{Type: "contact", ID: "c1", Name: "Alex Wu", Email: email, Phone: "555-0100",
		Account: &gateway.Ref{Type: "account", ID: "a1", Name: "Fabrikam"}}, gateway.Meta{Outcome: gateway.Hit, Age: 42 * time.Second}, nil
}

func (f *fakeBackend) Order(ctx context.Context, ref string) (*gateway.Order, gateway.Meta, error) {
	f.count()
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, gateway.Meta{}, f.err
	}
	return &gateway.Order{ID: "o1", Number: ref, Name: "Order", Status: "Active / New",
		State: gateway.Choice{Value: 0, Label: "Active"}, StatusReason: gateway.Choice{Value: 1, Label: "New"},
		Total: gateway.Money{Amount: decimal.RequireFromString("1234.56"), Currency: "USD", Formatted: "$1,234.56"}, Lines: []gateway.Line{{
			Number: 1, Product: &gateway.Product{ID: "p1", Name: "Widget", SKU: "W-1"}, Quantity: decimal.NewFromInt(2),
			UnitPrice: decimal.RequireFromString("10"), Amount: decimal.RequireFromString("20")}},
	}, gateway.Meta{Outcome: gateway.Stale, Age: 90 * time.Second}, nil
}

func (f *fakeBackend) RecentOrders(ctx context.Context, t, id string, limit int) ([]gateway.OrderSummary, gateway.Meta, error) {
	f.count()
	if f.err != nil {
		return nil, gateway.Meta{}, f.err
	}
	return nil, gateway.Meta{Outcome: gateway.Miss}, nil
}

func (f *fakeBackend) Refunds(ctx context.Context, ref string) ([]gateway.Refund, error) {
	f.count()
	return nil, f.err
}

func (f *fakeBackend) Summary(ctx context.Context, t, id string) (*gateway.Summary, gateway.Meta, error) {
	f.count()
	if f.err != nil {
		return nil, gateway.Meta{}, f.err
	}
	return &gateway.Summary{Customer: gateway.Ref{Type: t, ID: id, Name: "Fabrikam, Inc."},
		Orders:     gateway.SummaryOrders{Count: 2, Open: 1},
		TotalSpent: gateway.Money{Amount: decimal.RequireFromString("1234.5678"), Currency: "USD", Formatted: "$1,234.57"},
	}, gateway.Meta{Outcome: gateway.Hit, Age: 30 * time.Second}, nil
}

func (f *fakeBackend) Test(ctx context.Context) (*gateway.TestResult, error) {
	f.count()
	if f.cfg.Dataverse.ClientSecret == "bad" {
		return nil, &integration.Error{Code: integration.CodeAuth, Message: "The client secret is wrong.", DataverseCode: "AADSTS7000215"}
	}
	if f.err != nil {
		return nil, f.err
	}
	return &gateway.TestResult{OrganizationID: "org", UserID: "user", BusinessUnitID: "bu"}, nil
}

func (f *fakeBackend) ThrottledUntil() time.Time { return f.throttled }

func (f *fakeBackend) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		panic("closed twice")
	}
	f.closed = true
}

// fakeConnector builds fakeBackends and remembers them.
type fakeConnector struct {
	mu    sync.Mutex
	built []*fakeBackend
	setup func(*fakeBackend)
}

func (c *fakeConnector) Connect(cfg integration.Config, prev integration.Backend) (integration.Backend, error) {
	b := &fakeBackend{cfg: cfg}
	if c.setup != nil {
		c.setup(b)
	}
	c.mu.Lock()
	c.built = append(c.built, b)
	c.mu.Unlock()
	return b, nil
}

func (c *fakeConnector) all() []*fakeBackend {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*fakeBackend(nil), c.built...)
}

// memFiles is an in-memory file system for Source.ReadFile.
type memFiles struct {
	mu    sync.Mutex
	files map[string]string
}

func (m *memFiles) set(name, content string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]string{}
	}
	m.files[name] = content
}

func (m *memFiles) read(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}
