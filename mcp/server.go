package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
)

// Registry is what the tools need of integration.Registry (which
// implements it): the backend of a named integration, and the names for
// the message about an unknown one.
type Registry interface {
	Acquire(name string) (b integration.Backend, release func(), ok bool)
	Names() []string
	Config(name string) (integration.Config, bool)
	Credential(name string) (integration.Credential, bool)
}

// Options configure NewServer.
type Options struct {
	Registry Registry
	// Integration is the integration a call that names none uses; "" =
	// integration.Default. With Fixed, it is the only one: a call naming
	// another is invalid (the /v1/integrations/{name}/mcp endpoint).
	Integration string
	Fixed       bool
	// CallTimeout bounds one tool call, so an agent gets a tool error
	// rather than waiting on Dataverse; 0 = 25s.
	CallTimeout time.Duration
	Clock       func() time.Time // asOf; nil = time.Now
	// Logger receives a line per failed call (with the cause the tool
	// error's text leaves out); nil = discard.
	Logger *slog.Logger
	// Version is the server's version in the MCP handshake.
	Version string
	// SchemaCache keeps the tools' schemas across servers (one server per
	// HTTP request); nil = reflect them per server.
	SchemaCache *sdk.SchemaCache

	schemas *schemas // built once per NewHTTPHandler; nil = per server
}

// tools holds the configuration the tool handlers share; read-only after
// NewServer, so the handlers are safe for concurrent use.
type tools struct {
	Options
	log *slog.Logger
	now func() time.Time
}

// NewServer returns an MCP server with dvgate's tools over o.Registry. It
// may serve any number of sessions concurrently.
func NewServer(o Options) *sdk.Server {
	t := &tools{Options: o, log: o.Logger, now: o.Clock}
	if t.Integration == "" {
		t.Integration = integration.Default
	}
	if t.CallTimeout <= 0 {
		t.CallTimeout = 25 * time.Second
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.Version == "" {
		t.Version = "dev"
	}
	if t.schemas == nil {
		var err error
		if t.schemas, err = newSchemas(); err != nil {
			panic(err) // a type above the schema inference cannot map: a bug, as sdk.AddTool's panic
		}
	}
	s := sdk.NewServer(&sdk.Implementation{Name: "dvgate", Title: "dvgate: Dataverse customers and sales orders", Version: t.Version},
		&sdk.ServerOptions{Instructions: instructions, SchemaCache: o.SchemaCache, Capabilities: &sdk.ServerCapabilities{}})
	ro := func(title string) *sdk.ToolAnnotations {
		no := false
		return &sdk.ToolAnnotations{Title: title, ReadOnlyHint: true, IdempotentHint: true, DestructiveHint: &no, OpenWorldHint: &no}
	}
	sdk.AddTool(s, &sdk.Tool{Name: "find_customer", InputSchema: t.schemas.in["find_customer"], OutputSchema: t.schemas.out["find_customer"], Annotations: ro("Find a customer by email"), Description: descFindCustomer}, t.findCustomer)
	sdk.AddTool(s, &sdk.Tool{Name: "get_order", InputSchema: t.schemas.in["get_order"], OutputSchema: t.schemas.out["get_order"], Annotations: ro("Get a sales order"), Description: descGetOrder}, t.getOrder)
	sdk.AddTool(s, &sdk.Tool{Name: "list_recent_orders", InputSchema: t.schemas.in["list_recent_orders"], OutputSchema: t.schemas.out["list_recent_orders"], Annotations: ro("List a customer's recent orders"), Description: descRecent}, t.listRecentOrders)
	sdk.AddTool(s, &sdk.Tool{Name: "list_refunds", InputSchema: t.schemas.in["list_refunds"], OutputSchema: t.schemas.out["list_refunds"], Annotations: ro("List an order's refunds"), Description: descRefunds}, t.listRefunds)
	sdk.AddTool(s, &sdk.Tool{Name: "get_customer_summary", InputSchema: t.schemas.in["get_customer_summary"], OutputSchema: t.schemas.out["get_customer_summary"], Annotations: ro("Summarize a customer's orders and total spent"), Description: descSummary}, t.getCustomerSummary)
	sdk.AddTool(s, &sdk.Tool{Name: "check_connection", InputSchema: t.schemas.in["check_connection"], OutputSchema: t.schemas.out["check_connection"], Annotations: ro("Check the Dataverse connection"), Description: descCheck}, t.checkConnection)
	return s
}

const instructions = `dvgate looks up customers (contacts and accounts) and sales orders in the company's Dynamics 365 / Dataverse, for answering support tickets. Identify the customer by the ticket requester's verified email (find_customer), then answer about their orders (list_recent_orders, get_order with that email). Every answer has asOf: say "as of <time>" when quoting status. Never guess an order's status when a tool says found:false or fails.`

const descFindCustomer = `Find the customer (a contact, i.e. a person, or an account, i.e. a company) that has this email address. Call it first when a ticket comes in, with the requester's email. Returns the customer's type, id, name, phone and, for a contact, their company (account). found:false means no contact or account has this address: do not guess another. Answers are cached; asOf says when the data was read.`

const descGetOrder = `Get one sales order by its order number (e.g. ORD-01001-B2K9P7) or record id: its status (state / status reason), total with currency, requested delivery date, tracking number and lines (SKU, product, quantity, unit price, amount). When acting for a customer always pass their verified email: then an order that does not belong to them (the contact with that email, that contact's company, or the account with that email) answers found:false exactly like an order that does not exist, so do not reveal anything about it. found:false: no such order for this customer; ask them to check the number.`

const descRecent = `List a customer's most recent sales orders (newest first) with number, status, total and creation date. Give the customer's email, or the customer's type and id from find_customer. Use it when the customer does not quote an order number. found:false means no customer has this email; a customer without orders is found with an empty list. Then call get_order for the lines or tracking of one order.`

const descRefunds = `List the refunds of a sales order (number or GUID), most recent first, with amount, status, date and reason, from the org's own refunds table. Dynamics 365 Sales has no refund table of its own: when source is "none" the org keeps refunds outside Dataverse, so do not tell the customer that no refund exists, say that you cannot see refunds.`

const descSummary = `Summarize a customer's history (by the requester's email, or the customer from find_customer): how many orders, how many still open, the first and last order dates, and the total spent in the org's base currency (canceled orders do not count). Use it to judge how valued the customer is, not to quote amounts of single orders. pending:true means the figures are being computed: answer without them or ask again after retryAfterSeconds.`

const descCheck = `Check that dvgate can sign in to Dataverse and read (the "Test" button): returns the organization and application user ids, or a tool error saying what an administrator must fix. For diagnosing failures of the other tools, not for answering customers.`

// backend resolves the integration a call names.
func (t *tools) backend(name string) (integration.Backend, func(), string, error) {
	switch {
	case name == "":
		name = t.Integration
	case t.Fixed && name != t.Integration:
		return nil, nil, name, &integration.Error{Code: integration.CodeInvalidInput,
			Message: fmt.Sprintf("This endpoint serves the integration %q only; omit the integration argument.", t.Integration)}
	}
	b, release, ok := t.Registry.Acquire(name)
	if !ok {
		// The other integrations' names are not listed: an agent (or a
		// ticket's text steering it) must not learn other tenants'.
		return nil, nil, name, &integration.Error{Code: integration.CodeNotFound, Message: fmt.Sprintf("No integration is named %q.", name)}
	}
	return b, release, name, nil
}

// asOf is when an answer with meta was read from Dataverse.
func (t *tools) asOf(m gateway.Meta) time.Time {
	return t.now().Add(-m.Age).UTC().Truncate(time.Second)
}

// ToolError is the error of a failed tool call: the SDK returns its text
// as the tool result's (isError), for the model to read.
type ToolError struct {
	Tool        string
	Integration string
	Err         *integration.Error
}

// Error is "<code>: <remedy>[ Retry after <n>s.]".
func (e *ToolError) Error() string {
	msg := string(e.Err.Code) + ": " + e.Err.Message
	if e.Err.RetryAfter > 0 {
		msg += fmt.Sprintf(" Retry after %ds.", int((e.Err.RetryAfter+time.Second-1)/time.Second))
	}
	return msg
}

func (e *ToolError) Unwrap() error { return e.Err }

// fail turns err into the tool error and logs it.
func (t *tools) fail(ctx context.Context, tool, name string, err error) error {
	e := integration.ErrorOf(err, "")
	level := slog.LevelInfo
	if e.Code == integration.CodeInternal {
		level = slog.LevelError
	}
	t.log.Log(ctx, level, "tool call failed", "tool", tool, "integration", name, "code", string(e.Code), "error", err)
	return &ToolError{Tool: tool, Integration: name, Err: e}
}

// notFound reports whether err is a CodeNotFound from the backend, and its
// message.
func notFound(err error) (string, bool) {
	var e *integration.Error
	if errors.As(err, &e) && e.Code == integration.CodeNotFound {
		return e.Message, true
	}
	return "", false
}

func (t *tools) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.CallTimeout)
}

func (t *tools) findCustomer(ctx context.Context, _ *sdk.CallToolRequest, in FindCustomerIn) (*sdk.CallToolResult, FindCustomerOut, error) {
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, FindCustomerOut{}, t.fail(ctx, "find_customer", name, err)
	}
	defer release()
	ctx, cancel := t.call(ctx)
	defer cancel()
	c, meta, err := b.Customer(ctx, in.Email, in.Mode)
	if msg, ok := notFound(err); ok {
		return nil, FindCustomerOut{Message: msg, Integration: name, AsOf: t.asOf(meta)}, nil
	}
	if err != nil {
		return nil, FindCustomerOut{}, t.fail(ctx, "find_customer", name, err)
	}
	return nil, FindCustomerOut{Found: true, Customer: customerOf(c), Integration: name,
		AsOf: t.asOf(meta), Stale: meta.Outcome == gateway.Stale}, nil
}

func (t *tools) getOrder(ctx context.Context, _ *sdk.CallToolRequest, in GetOrderIn) (*sdk.CallToolResult, GetOrderOut, error) {
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, GetOrderOut{}, t.fail(ctx, "get_order", name, err)
	}
	defer release()
	ctx, cancel := t.call(ctx)
	defer cancel()
	o, meta, err := integration.OrderFor(ctx, b, in.Order, in.Email)
	err = integration.RenameParam(err, "ref", "order") // the tool's argument
	if msg, ok := notFound(err); ok {
		return nil, GetOrderOut{Message: msg, Integration: name, AsOf: t.asOf(meta)}, nil
	}
	if err != nil {
		return nil, GetOrderOut{}, t.fail(ctx, "get_order", name, err)
	}
	return nil, GetOrderOut{Found: true, Order: orderOf(o), Integration: name,
		AsOf: t.asOf(meta), Stale: meta.Outcome == gateway.Stale}, nil
}

func (t *tools) listRecentOrders(ctx context.Context, _ *sdk.CallToolRequest, in ListRecentOrdersIn) (*sdk.CallToolResult, ListRecentOrdersOut, error) {
	const tool = "list_recent_orders"
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, ListRecentOrdersOut{}, t.fail(ctx, tool, name, err)
	}
	defer release()
	if (in.Email == "") == (in.Customer == nil) {
		return nil, ListRecentOrdersOut{}, t.fail(ctx, tool, name, &integration.Error{Code: integration.CodeInvalidInput,
			Message: "Give either email or customer {type, id}, not both or neither."})
	}
	limit := in.Limit
	if limit == 0 {
		limit = 10
	}
	if limit < 1 || limit > gateway.MaxRecentOrders {
		// Checked before the customer lookup, which would cost a request.
		return nil, ListRecentOrdersOut{}, t.fail(ctx, tool, name, &integration.Error{Code: integration.CodeInvalidInput,
			Message: fmt.Sprintf("The limit is not valid: must be between 1 and %d.", gateway.MaxRecentOrders)})
	}
	ctx, cancel := t.call(ctx)
	defer cancel()
	out := ListRecentOrdersOut{Integration: name, Orders: []OrderSummary{}}
	var meta gateway.Meta
	typ, id := "", ""
	if in.Email != "" {
		c, m, err := b.Customer(ctx, in.Email, "")
		if msg, ok := notFound(err); ok {
			out.Message, out.AsOf = msg, t.asOf(m)
			return nil, out, nil
		}
		if err != nil {
			return nil, ListRecentOrdersOut{}, t.fail(ctx, tool, name, err)
		}
		out.Customer, typ, id, meta = customerOf(c), c.Type, c.ID, m
	} else {
		typ, id = in.Customer.Type, in.Customer.ID
	}
	list, m, err := b.RecentOrders(ctx, typ, id, limit)
	if msg, ok := notFound(err); ok {
		out.Message, out.AsOf = msg, t.asOf(m)
		return nil, out, nil
	}
	if err != nil {
		return nil, ListRecentOrdersOut{}, t.fail(ctx, tool, name, err)
	}
	if m.Age > meta.Age {
		meta.Age = m.Age
	}
	if m.Outcome == gateway.Stale {
		meta.Outcome = gateway.Stale
	}
	for i := range list {
		out.Orders = append(out.Orders, summaryOf(&list[i]))
	}
	out.Found, out.AsOf, out.Stale = true, t.asOf(meta), meta.Outcome == gateway.Stale
	return nil, out, nil
}

func (t *tools) listRefunds(ctx context.Context, _ *sdk.CallToolRequest, in ListRefundsIn) (*sdk.CallToolResult, ListRefundsOut, error) {
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, ListRefundsOut{}, t.fail(ctx, "list_refunds", name, err)
	}
	defer release()
	ctx, cancel := t.call(ctx)
	defer cancel()
	list, err := b.Refunds(ctx, in.Order)
	if err != nil {
		err = integration.RenameParam(err, "ref", "order") // the tool's argument
		return nil, ListRefundsOut{}, t.fail(ctx, "list_refunds", name, err)
	}
	out := ListRefundsOut{Order: in.Order, Refunds: make([]Refund, 0, len(list)), Source: "none", Integration: name, AsOf: t.asOf(gateway.Meta{}),
		Message: "This org has no refunds table configured: refunds are handled outside Dataverse, so none can be listed here."}
	if cfg, ok := t.Registry.Config(name); ok && cfg.Refunds != nil {
		out.Source = cfg.Refunds.Table
		out.Message = fmt.Sprintf("%d refund(s) of this order in the org's %s table, most recent first.", len(list), cfg.Refunds.Table)
	}
	for _, r := range list {
		out.Refunds = append(out.Refunds, Refund{ID: r.ID, Amount: money(r.Amount), Status: r.Status, Date: r.Date, Reason: r.Reason})
	}
	return nil, out, nil
}

func (t *tools) getCustomerSummary(ctx context.Context, _ *sdk.CallToolRequest, in GetCustomerSummaryIn) (*sdk.CallToolResult, GetCustomerSummaryOut, error) {
	const tool = "get_customer_summary"
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, GetCustomerSummaryOut{}, t.fail(ctx, tool, name, err)
	}
	defer release()
	if (in.Email == "") == (in.Customer == nil) {
		return nil, GetCustomerSummaryOut{}, t.fail(ctx, tool, name, &integration.Error{Code: integration.CodeInvalidInput,
			Message: "Give either email or customer {type, id}, not both or neither."})
	}
	ctx, cancel := t.call(ctx)
	defer cancel()
	out := GetCustomerSummaryOut{Integration: name}
	typ, id := "", ""
	if in.Email != "" {
		c, m, err := b.Customer(ctx, in.Email, "")
		if msg, ok := notFound(err); ok {
			out.Message, out.AsOf = msg, t.asOf(m)
			return nil, out, nil
		}
		if err != nil {
			return nil, GetCustomerSummaryOut{}, t.fail(ctx, tool, name, err)
		}
		out.Customer, typ, id = customerOf(c), c.Type, c.ID
	} else {
		typ, id = in.Customer.Type, in.Customer.ID
	}
	s, m, err := b.Summary(ctx, typ, id)
	var pe *gateway.PendingError
	if errors.As(err, &pe) {
		out.Pending, out.RetryAfterSeconds = true, max(1, int((pe.RetryAfter+time.Second-1)/time.Second))
		out.Message, out.AsOf = "The summary is being computed; ask again shortly.", t.now().UTC()
		return nil, out, nil
	}
	if msg, ok := notFound(err); ok {
		out.Message, out.AsOf = msg, t.asOf(m)
		return nil, out, nil
	}
	if err != nil {
		return nil, GetCustomerSummaryOut{}, t.fail(ctx, tool, name, err)
	}
	total := money(s.TotalSpent)
	out.Found, out.Orders, out.OpenOrders, out.FirstOrder, out.LastOrder, out.TotalSpent = true, s.Orders.Count, s.Orders.Open,
		s.Orders.First, s.Orders.Last, &total
	out.AsOf, out.Stale = s.AsOf.UTC(), s.Stale || m.Outcome == gateway.Stale
	return nil, out, nil
}

func (t *tools) checkConnection(ctx context.Context, _ *sdk.CallToolRequest, in CheckConnectionIn) (*sdk.CallToolResult, CheckConnectionOut, error) {
	b, release, name, err := t.backend(in.Integration)
	if err != nil {
		return nil, CheckConnectionOut{}, t.fail(ctx, "check_connection", name, err)
	}
	defer release()
	ctx, cancel := t.call(ctx)
	defer cancel()
	r, err := b.Test(ctx)
	if err != nil {
		return nil, CheckConnectionOut{}, t.fail(ctx, "check_connection", name, err)
	}
	out := CheckConnectionOut{OK: true, Integration: name, OrganizationID: r.OrganizationID, UserID: r.UserID,
		BusinessUnitID: r.BusinessUnitID, AsOf: t.asOf(gateway.Meta{})}
	if c, ok := t.Registry.Credential(name); ok {
		now := t.now()
		out.Credential = c.Describe(now)
		if d, ok := c.DaysLeft(now); ok {
			out.CredentialExpiresInDays = &d
		}
	}
	return nil, out, nil
}
