package sidecar

import (
	"context"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fakeBackend answers from fixed data; its behaviour comes from its
// configuration's ClientSecret ("bad" fails Test) so rotation tests can
// drive it through a Source.
type fakeBackend struct {
	cfg       IntegrationConfig
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

func (f *fakeBackend) Customer(ctx context.Context, email string, mode Mode) (Customer, Meta, error) {
	f.count()
	if f.err != nil {
		return Customer{}, Meta{}, f.err
	}
	if !strings.Contains(email, "@") {
		return Customer{}, Meta{}, errInvalid("The email %q is not an email address.", email)
	}
	if email == "nobody@example.com" {
		return Customer{}, Meta{}, errNotFound("No contact or account has this email address.")
	}
	if mode == Accounts {
		return Customer{Type: Account, Id: "a1", Name: "Fabrikam", Email: email}, Meta{Outcome: "miss"}, nil
	}
	phone := "555-0100"
	acct := Account
	return Customer{Type: Contact, Id: "c1", Name: "Alex Wu", Email: email, Phone: &phone,
		Account: &Ref{Type: &acct, Id: "a1", Name: "Fabrikam"}}, Meta{Outcome: "hit", Age: 42 * time.Second}, nil
}

func (f *fakeBackend) Order(ctx context.Context, ref string) (Order, Meta, error) {
	f.count()
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return Order{}, Meta{}, f.err
	}
	return Order{Id: "o1", Number: ref, Name: "Order", Status: "Active / New",
		State: Choice{Value: 0, Label: "Active"}, StatusReason: Choice{Value: 1, Label: "New"},
		Total: Money{Amount: "1234.56", Currency: "USD", Formatted: "$1,234.56"}, Lines: []OrderLine{{
			Number: 1, Product: &Product{Id: "p1", Name: "Widget", Sku: "W-1"}, Quantity: "2", UnitPrice: "10.00", Amount: "20.00"}},
	}, Meta{Outcome: "stale", Age: 90 * time.Second}, nil
}

func (f *fakeBackend) RecentOrders(ctx context.Context, t CustomerType, id string, limit int) ([]OrderSummary, Meta, error) {
	f.count()
	if f.err != nil {
		return nil, Meta{}, f.err
	}
	return nil, Meta{Outcome: "miss"}, nil
}

func (f *fakeBackend) Refunds(ctx context.Context, ref string) ([]Refund, error) {
	f.count()
	return nil, f.err
}

func (f *fakeBackend) Test(ctx context.Context) (TestResult, error) {
	f.count()
	if f.cfg.Dataverse.ClientSecret == "bad" {
		return TestResult{}, &APIError{Code: ErrorCodeAuth, Status: http.StatusBadGateway,
			Message: "The client secret is wrong.", DataverseCode: "AADSTS7000215"}
	}
	if f.err != nil {
		return TestResult{}, f.err
	}
	return TestResult{OrganizationId: "org", UserId: "user", BusinessUnitId: "bu"}, nil
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

func (c *fakeConnector) Connect(cfg IntegrationConfig, prev Backend) (Backend, error) {
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
