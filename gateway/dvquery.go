package gateway

// This file holds everything that knows Dataverse's tables: the queries,
// built with the generated client's typed columns and navigation properties
// (package generated over odataq), and the mapping of the generated models
// to the gateway's answers.

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Upstream is the Dataverse connection a Gateway uses; *dataverse.Conn
// implements it. The generated client sends its requests through Do.
type Upstream interface {
	// Do sends a request built against BaseURL; a non-2xx answer is
	// returned as (nil, *dataverse.Error).
	Do(req *http.Request) (*http.Response, error)
	BaseURL() string
	// WhoAmI is used by Gateway.Test: unlike the generated Service.WhoAmI
	// it reports a URL that is not a Dataverse Web API (an HTML page, a
	// wrong path) as a configuration error with a remedy.
	WhoAmI(ctx context.Context) (dataverse.WhoAmIResult, error)
}

// upstreamErr passes errors of the connection (*dataverse.Error) and of
// the context through. Anything else comes from decoding the answer (not
// JSON, truncated, a value of the wrong type): a transient upstream fault,
// reported as KindUnavailable so that a stale entry may answer.
func upstreamErr(op string, err error) error {
	var de *dataverse.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &dataverse.Error{Kind: dataverse.KindUnavailable, Op: op, Err: err,
		Message: "the answer is not the expected JSON", Remedy: dataverse.RemedyUnavailable}
}

// errNoKey: every query selects the table's primary key, so a row without
// it answers some other question (a misrouted or proxied response).
var errNoKey = errors.New("a row lacks the primary key the query selected")

// str dereferences an optional string column.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func idString(p *uuid.UUID) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func dec(p *decimal.Decimal) decimal.Decimal {
	if p == nil {
		return decimal.Decimal{}
	}
	return *p
}

// choice returns an option-set value with its label: the formatted value
// (the caller's language) or, when the answer has none, the label the
// generated code took from EntityDefinitions.
func choice[V interface {
	~int32
	Label() string
}](v *V, formatted *string) Choice {
	if v == nil {
		return Choice{Label: str(formatted)}
	}
	l := str(formatted)
	if l == "" {
		l = (*v).Label()
	}
	return Choice{Value: int(*v), Label: l}
}

// annotations are the two instance annotations every query asks for: the
// formatted values (labels, money, lookup names) and the table of a
// polymorphic lookup.
var annotations = []string{odataq.FormattedValues, odataq.LookupLogicalName}

// The columns each query selects, per table; checkModel checks them
// against the org's $metadata when the gateway is given one.
var (
	contactSelect = []odataq.Column[generated.Contact]{generated.ContactColumns.ContactID,
		generated.ContactColumns.FullName, generated.ContactColumns.EMailAddress1, generated.ContactColumns.EMailAddress2,
		generated.ContactColumns.EMailAddress3, generated.ContactColumns.Telephone1, generated.ContactColumns.MobilePhone,
		generated.ContactColumns.ParentCustomerIDValue, generated.ContactColumns.StateCode, generated.ContactColumns.ModifiedOn}
	accountSelect = []odataq.Column[generated.Account]{generated.AccountColumns.AccountID,
		generated.AccountColumns.Name, generated.AccountColumns.EMailAddress1, generated.AccountColumns.EMailAddress2,
		generated.AccountColumns.EMailAddress3, generated.AccountColumns.Telephone1, generated.AccountColumns.StateCode,
		generated.AccountColumns.ModifiedOn}
	orderSelect = []odataq.Column[generated.SalesOrder]{generated.SalesOrderColumns.SalesOrderID,
		generated.SalesOrderColumns.OrderNumber, generated.SalesOrderColumns.Name, generated.SalesOrderColumns.StateCode,
		generated.SalesOrderColumns.StatusCode, generated.SalesOrderColumns.TotalAmount,
		generated.SalesOrderColumns.RequestDeliveryBy, generated.SalesOrderColumns.CustomerIDValue,
		generated.SalesOrderColumns.TransactionCurrencyIDValue}
	summarySelect = []odataq.Column[generated.SalesOrder]{generated.SalesOrderColumns.SalesOrderID,
		generated.SalesOrderColumns.OrderNumber, generated.SalesOrderColumns.Name, generated.SalesOrderColumns.StateCode,
		generated.SalesOrderColumns.StatusCode, generated.SalesOrderColumns.TotalAmount,
		generated.SalesOrderColumns.TransactionCurrencyIDValue, generated.SalesOrderColumns.CreatedOn,
		generated.SalesOrderColumns.ModifiedOn}
	lineSelect = []odataq.Column[generated.SalesOrderDetail]{generated.SalesOrderDetailColumns.SalesOrderDetailID,
		generated.SalesOrderDetailColumns.LineItemNumber, generated.SalesOrderDetailColumns.SequenceNumber,
		generated.SalesOrderDetailColumns.Quantity, generated.SalesOrderDetailColumns.PricePerUnit,
		generated.SalesOrderDetailColumns.BaseAmount, generated.SalesOrderDetailColumns.ProductDescription,
		generated.SalesOrderDetailColumns.IsProductOverridden, generated.SalesOrderDetailColumns.ProductIDValue}
	productSelect  = []odataq.Column[generated.Product]{generated.ProductColumns.Name, generated.ProductColumns.ProductNumber}
	currencySelect = []odataq.Column[generated.TransactionCurrency]{generated.TransactionCurrencyColumns.ISOCurrencyCode}
	// The order's customer, expanded in the order's own request so that an
	// order can be scoped to the customer asking (Order.CustomerEmails)
	// without another one.
	orderContactSelect = []odataq.Column[generated.Contact]{generated.ContactColumns.EMailAddress1,
		generated.ContactColumns.EMailAddress2, generated.ContactColumns.EMailAddress3,
		generated.ContactColumns.ParentCustomerIDValue}
	orderAccountSelect = []odataq.Column[generated.Account]{generated.AccountColumns.EMailAddress1,
		generated.AccountColumns.EMailAddress2, generated.AccountColumns.EMailAddress3}
)

// tableColumns are the columns one table must have.
type tableColumns struct {
	table string
	cols  []string
}

func names[T any](cols ...[]odataq.Column[T]) []string {
	var out []string
	for _, cs := range cols {
		for _, c := range cs {
			out = append(out, c.ColumnName())
		}
	}
	return out
}

// selectedColumns lists the columns every query selects, per table.
func selectedColumns() []tableColumns {
	return []tableColumns{
		{"contact", names(contactSelect, orderContactSelect)},
		{"account", names(accountSelect, orderAccountSelect)},
		{"salesorder", names(orderSelect, summarySelect)},
		{"salesorderdetail", names(lineSelect)},
		{"product", names(productSelect)},
		{"transactioncurrency", names(currencySelect)},
	}
}

// ---- customers

// customerTop bounds the matches we read: the server orders them (active
// first, then most recently modified, then id) so the first is the answer;
// the few extra rows only let us re-check that order.
const customerTop = 5

// customerRow is a contact or an account reduced to what a Customer needs.
type customerRow struct {
	id, name, phone    string
	emails             [3]string
	state              int32
	modified           time.Time
	parent, parentName string
	parentLogical      string
	model              any // the decoded row (*generated.Contact or *generated.Account), for configured fields
}

func contactRow(c *generated.Contact) customerRow {
	r := customerRow{id: idString(c.ContactID), name: str(c.FullName), phone: str(c.Telephone1),
		emails: [3]string{str(c.EMailAddress1), str(c.EMailAddress2), str(c.EMailAddress3)}, model: c}
	if r.phone == "" {
		r.phone = str(c.MobilePhone) // contacts often only have a mobile
	}
	if c.StateCode != nil {
		r.state = int32(*c.StateCode)
	}
	if c.ModifiedOn != nil {
		r.modified = *c.ModifiedOn
	}
	if c.ParentCustomerIDValue != nil {
		r.parent = c.ParentCustomerIDValue.String()
		r.parentName = str(c.ParentCustomerIDFormatted)
		r.parentLogical = str(c.ParentCustomerIDLookupLogicalName)
	}
	return r
}

func accountRow(a *generated.Account) customerRow {
	r := customerRow{id: idString(a.AccountID), name: str(a.Name), phone: str(a.Telephone1),
		emails: [3]string{str(a.EMailAddress1), str(a.EMailAddress2), str(a.EMailAddress3)}, model: a}
	if a.StateCode != nil {
		r.state = int32(*a.StateCode)
	}
	if a.ModifiedOn != nil {
		r.modified = *a.ModifiedOn
	}
	return r
}

// contactQuery and accountQuery are the one request per table for an
// email (already normalized, lowercase; Dataverse's eq is case-insensitive
// anyway): any of the three addresses, active first, then most recently
// modified, then id.
func contactQuery(email string, extra []string) odataq.Query[generated.Contact] {
	c := generated.ContactColumns
	sel := contactSelect
	for _, x := range extra {
		sel = append(slices.Clip(sel), odataq.StringCol[generated.Contact](x))
	}
	return odataq.Query[generated.Contact]{}.
		Select(sel...).
		Filter(odataq.Or(c.EMailAddress1.Eq(email), c.EMailAddress2.Eq(email), c.EMailAddress3.Eq(email))).
		OrderBy(c.StateCode.Asc(), c.ModifiedOn.Desc(), c.ContactID.Asc()).
		Top(customerTop).
		Annotations(annotations...)
}

func accountQuery(email string, extra []string) odataq.Query[generated.Account] {
	c := generated.AccountColumns
	sel := accountSelect
	for _, x := range extra {
		sel = append(slices.Clip(sel), odataq.StringCol[generated.Account](x))
	}
	return odataq.Query[generated.Account]{}.
		Select(sel...).
		Filter(odataq.Or(c.EMailAddress1.Eq(email), c.EMailAddress2.Eq(email), c.EMailAddress3.Eq(email))).
		OrderBy(c.StateCode.Asc(), c.ModifiedOn.Desc(), c.AccountID.Asc()).
		Top(customerTop).
		Annotations(annotations...)
}

// firstPage reads the rows of the first page of a List (the queries ask
// for $top rows, so there is no second one) and maps them.
func firstPage[M any](rows iter.Seq2[M, error], conv func(*M) customerRow) ([]customerRow, error) {
	var out []customerRow
	for m, err := range rows {
		if err != nil {
			return nil, err
		}
		out = append(out, conv(&m))
		if len(out) == customerTop {
			break // do not follow a nextLink
		}
	}
	return out, nil
}

// findCustomerRows asks one table ("contact" or "account") for the rows
// with email, with the configured fields (specs) in $select: the typed
// model keeps those it has no field for in Extra.
func findCustomerRows(ctx context.Context, svc *generated.Service, typ, email string, specs []fieldSpec) ([]customerRow, error) {
	if typ == "contact" {
		return firstPage(svc.Contacts().List(ctx, contactQuery(email, props(specs))), contactRow)
	}
	return firstPage(svc.Accounts().List(ctx, accountQuery(email, props(specs))), accountRow)
}

// findCustomer asks one table ("contact" or "account"); ErrNotFound when
// no row matches. specs are the configured fields of that table.
func findCustomer(ctx context.Context, svc *generated.Service, typ, email string, specs []fieldSpec) (*Customer, error) {
	rows, err := findCustomerRows(ctx, svc, typ, email, specs)
	if err != nil {
		return nil, upstreamErr("GET "+typ+"s", err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	for _, r := range rows {
		if r.id == "" {
			return nil, upstreamErr("GET "+typ+"s", errNoKey)
		}
	}
	// Same order as $orderby, so the answer does not depend on the server
	// honouring it exactly (ties on modifiedon are broken by id).
	slices.SortStableFunc(rows, func(a, b customerRow) int {
		if a.state != b.state {
			return int(a.state - b.state)
		}
		if c := b.modified.Compare(a.modified); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	r := rows[0]
	c := &Customer{Type: typ, ID: r.id, Name: r.name, Phone: r.phone, Email: r.emails[0]}
	for _, e := range r.emails {
		if strings.EqualFold(e, email) {
			c.Email = e
			break
		}
	}
	// parentcustomerid is polymorphic (account or contact): only an
	// account is a company.
	if r.parent != "" && r.parentLogical == "account" {
		c.Account = &Ref{Type: "account", ID: r.parent, Name: r.parentName}
	}
	if len(specs) > 0 {
		row, err := rowMembers(r.model, specs)
		if err != nil {
			return nil, upstreamErr("GET "+typ+"s", err)
		}
		if c.Fields, err = readFields(row, specs); err != nil {
			return nil, upstreamErr("GET "+typ+"s", err)
		}
	}
	return c, nil
}

// ---- orders

// orderQuery is the one request for an order: its columns (and the
// tracking column), the lines with their products, the currency, and the
// customer's email addresses (and a contact's parent account). The
// lines cannot be ordered server side ($orderby is rejected inside a nested
// $expand, 0x80060888), so they are sorted here. No $top/$orderby next to a
// nested collection $expand either: order numbers are unique in practice;
// if not, the smallest id wins (see findOrder).
func orderQuery(extra []string) odataq.Query[generated.SalesOrder] {
	sel := orderSelect
	for _, c := range extra {
		// Columns of this org that the generated model may not have
		// (resolved against the org's schema at New).
		sel = append(slices.Clip(sel), odataq.StringCol[generated.SalesOrder](c))
	}
	lines := odataq.Query[generated.SalesOrderDetail]{}.
		Select(lineSelect...).
		Expand(generated.SalesOrderDetailNav.ProductID.Expand(odataq.Query[generated.Product]{}.Select(productSelect...)))
	return odataq.Query[generated.SalesOrder]{}.
		Select(sel...).
		Expand(generated.SalesOrderNav.OrderDetails.Expand(lines), currencyExpand,
			generated.SalesOrderNav.CustomerIDContact.Expand(odataq.Query[generated.Contact]{}.Select(orderContactSelect...)),
			generated.SalesOrderNav.CustomerIDAccount.Expand(odataq.Query[generated.Account]{}.Select(orderAccountSelect...))).
		Annotations(annotations...)
}

var currencyExpand = generated.SalesOrderNav.TransactionCurrencyID.Expand(
	odataq.Query[generated.TransactionCurrency]{}.Select(currencySelect...))

// findOrder reads an order by id (key lookup) or by order number. The
// configured columns (tracking, fields) are in the $select; the model keeps
// those it was generated without in Extra, and so the paged lines' nextLink.
func findOrder(ctx context.Context, svc *generated.Service, ref orderRef, x *extraColumns) (*Order, error) {
	extra := x.orderProps()
	q := orderQuery(extra)
	const op = "GET salesorders"
	var row *generated.SalesOrder
	if ref.id != "" {
		id, err := uuid.Parse(ref.id)
		if err != nil {
			return nil, err // normalizeOrderRef returned a GUID
		}
		if row, err = svc.SalesOrders().Get(ctx, id, q); err != nil {
			if dataverse.KindOf(err) == dataverse.KindNotFound {
				return nil, ErrNotFound
			}
			return nil, upstreamErr(op, err)
		}
	} else {
		q = q.Filter(generated.SalesOrderColumns.OrderNumber.Eq(ref.number))
		var rows []generated.SalesOrder
		for r, err := range svc.SalesOrders().List(ctx, q) {
			if err != nil {
				return nil, upstreamErr(op, err)
			}
			rows = append(rows, r)
			if len(rows) == maxNumberMatches {
				break
			}
		}
		if len(rows) == 0 {
			return nil, ErrNotFound
		}
		best := 0
		for i := range rows {
			if idString(rows[i].SalesOrderID) < idString(rows[best].SalesOrderID) {
				best = i
			}
		}
		row = &rows[best]
	}
	if row.SalesOrderID == nil {
		return nil, upstreamErr(op, errNoKey)
	}
	if err := moreLines(ctx, svc, row, q.Prefer()); err != nil {
		return nil, err
	}
	o := toOrder(row)
	noteLines(ctx, row) // for the change feed (deps.go): a deleted line is reported by id only
	if len(extra) > 0 {
		if err := x.readOrder(o, row); err != nil {
			return nil, upstreamErr(op, err)
		}
	}
	return o, nil
}

// maxNumberMatches bounds the rows one order number may match (numbers are
// unique in practice), so that a server answering with links forever cannot
// hold a lookup.
const maxNumberMatches = 100

// linesLink is the member a paged order_details expansion carries (in the
// order's Extra: the model has no field for it).
const linesLink = "order_details@odata.nextLink"

// maxLinePages bounds how many further pages of lines one order may take,
// so that a server answering with links forever cannot hold a lookup.
const maxLinePages = 100

// moreLines appends the order's remaining lines. The order query has a
// nested $expand (lines, and their products), and Dataverse then pages
// each expanded collection: order_details holds the first page and
// order_details@odata.nextLink, with a $skiptoken, leads to the rest
// (join-tables.md; wire facts §1.7, §11.3). Without following it an order
// with more lines than a page would be cut short silently. A link without a
// $skiptoken (a single, unpaged $expand) restates rows already returned and
// is not followed.
func moreLines(ctx context.Context, svc *generated.Service, row *generated.SalesOrder, prefer string) error {
	const op = "GET salesorders(...)/order_details"
	link, ok, err := odataq.Extra[string](row.Extra, linesLink)
	if err != nil {
		return upstreamErr(op, err)
	}
	if !ok || !strings.Contains(strings.ToLower(link), "skiptoken") {
		return nil
	}
	for range maxLinePages {
		p, err := svc.SalesOrderDetails().Next(ctx, link, prefer)
		if err != nil {
			return upstreamErr(op, err)
		}
		row.OrderDetails = append(row.OrderDetails, p.Value...)
		if p.NextLink == "" {
			return nil
		}
		link = p.NextLink
	}
	return upstreamErr(op, errors.New("the order's lines did not end after 100 pages"))
}

func currencyOf(r *generated.SalesOrder) string {
	if r.TransactionCurrencyID == nil {
		return ""
	}
	return str(r.TransactionCurrencyID.ISOCurrencyCode)
}

// toOrder maps a salesorder with its expanded lines and currency.
func toOrder(r *generated.SalesOrder) *Order {
	state, status := choice(r.StateCode, r.StateCodeFormatted), choice(r.StatusCode, r.StatusCodeFormatted)
	o := &Order{
		ID: idString(r.SalesOrderID), Number: str(r.OrderNumber), Name: str(r.Name),
		Status: joinStatus(state.Label, status.Label), State: state, StatusReason: status,
		Total:               Money{Amount: dec(r.TotalAmount), Currency: currencyOf(r), Formatted: str(r.TotalAmountFormatted)},
		RequestedDeliveryBy: r.RequestDeliveryBy,
		Lines:               make([]Line, 0, len(r.OrderDetails)),
	}
	if r.CustomerIDValue != nil {
		// customerid is polymorphic: the annotation names the table.
		o.Customer = &Ref{Type: str(r.CustomerIDLookupLogicalName), ID: r.CustomerIDValue.String(), Name: str(r.CustomerIDFormatted)}
		o.CustomerEmails, o.CustomerAccount = customerOfOrder(r)
	}
	lines := slices.Clone(r.OrderDetails)
	slices.SortStableFunc(lines, func(a, b generated.SalesOrderDetail) int {
		if c := cmpIntPtr(a.SequenceNumber, b.SequenceNumber); c != 0 {
			return c
		}
		if c := cmpIntPtr(a.LineItemNumber, b.LineItemNumber); c != 0 {
			return c
		}
		return strings.Compare(idString(a.SalesOrderDetailID), idString(b.SalesOrderDetailID))
	})
	for _, l := range lines {
		line := Line{WriteIn: l.IsProductOverridden != nil && *l.IsProductOverridden, Description: str(l.ProductDescription),
			Quantity: dec(l.Quantity), UnitPrice: dec(l.PricePerUnit), Amount: dec(l.BaseAmount)}
		if l.LineItemNumber != nil {
			line.Number = int(*l.LineItemNumber)
		}
		if !line.WriteIn && l.ProductIDValue != nil {
			p := &Product{ID: l.ProductIDValue.String()}
			if l.ProductID != nil {
				p.Name, p.SKU = str(l.ProductID.Name), str(l.ProductID.ProductNumber)
			}
			line.Product = p
		}
		o.Lines = append(o.Lines, line)
	}
	return o
}

// customerOfOrder reads the expanded customer of an order: its email
// addresses (lowercase, non-empty) and, for a contact, its parent account.
func customerOfOrder(r *generated.SalesOrder) (emails []string, parent *Ref) {
	var e [3]*string
	switch {
	case r.CustomerIDContact != nil:
		c := r.CustomerIDContact
		e = [3]*string{c.EMailAddress1, c.EMailAddress2, c.EMailAddress3}
		if c.ParentCustomerIDValue != nil && str(c.ParentCustomerIDLookupLogicalName) == "account" {
			parent = &Ref{Type: "account", ID: c.ParentCustomerIDValue.String(), Name: str(c.ParentCustomerIDFormatted)}
		}
	case r.CustomerIDAccount != nil:
		a := r.CustomerIDAccount
		e = [3]*string{a.EMailAddress1, a.EMailAddress2, a.EMailAddress3}
	}
	for _, p := range e {
		if s := strings.ToLower(strings.TrimSpace(str(p))); s != "" && !slices.Contains(emails, s) {
			emails = append(emails, s)
		}
	}
	return emails, parent
}

// cmpIntPtr orders nil (unset) after any number.
func cmpIntPtr(a, b *int32) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return int(*a) - int(*b)
}

func joinStatus(state, status string) string {
	switch {
	case state == "":
		return status
	case status == "" || status == state:
		return state
	}
	return state + " / " + status
}

// ---- recent orders

func recentOrdersQuery(customerID uuid.UUID, limit int) odataq.Query[generated.SalesOrder] {
	o := generated.SalesOrderColumns
	return odataq.Query[generated.SalesOrder]{}.
		Select(summarySelect...).
		Filter(o.CustomerIDValue.Eq(customerID)).
		OrderBy(o.CreatedOn.Desc(), o.SalesOrderID.Asc()).
		Top(limit).
		Expand(currencyExpand).
		Annotations(annotations...)
}

func findRecentOrders(ctx context.Context, svc *generated.Service, customerID string, limit int) ([]OrderSummary, error) {
	id, err := uuid.Parse(customerID)
	if err != nil {
		return nil, err // normalizeCustomer returned a GUID
	}
	out := make([]OrderSummary, 0, limit)
	for r, err := range svc.SalesOrders().List(ctx, recentOrdersQuery(id, limit)) {
		if err != nil {
			return nil, upstreamErr("GET salesorders", err)
		}
		if r.SalesOrderID == nil {
			return nil, upstreamErr("GET salesorders", errNoKey)
		}
		state, status := choice(r.StateCode, r.StateCodeFormatted), choice(r.StatusCode, r.StatusCodeFormatted)
		s := OrderSummary{
			ID: idString(r.SalesOrderID), Number: str(r.OrderNumber), Name: str(r.Name),
			Status: joinStatus(state.Label, status.Label), State: state, StatusReason: status,
			Total: Money{Amount: dec(r.TotalAmount), Currency: currencyOf(&r), Formatted: str(r.TotalAmountFormatted)},
		}
		if r.CreatedOn != nil {
			s.CreatedOn = *r.CreatedOn
		}
		if r.ModifiedOn != nil {
			s.ModifiedOn = *r.ModifiedOn
		}
		out = append(out, s)
		if len(out) == limit {
			break // $top rows: do not follow a nextLink
		}
	}
	return out, nil
}
