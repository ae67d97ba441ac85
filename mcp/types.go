package mcp

import (
	"encoding/json"
	"time"

	"github.com/dvgate/dvgate/gateway"
)

// The tools' inputs and outputs. Their JSON is the tools' schema (the
// jsonschema tag is the description a model reads); nothing here may hold
// a decimal.Decimal, whose inferred schema is an empty object that every
// answer would fail (amounts are strings, see money).

// FindCustomerIn is find_customer's input.
type FindCustomerIn struct {
	Email       string `json:"email" jsonschema:"the email address to look up, exactly as the customer wrote it (for example the ticket requester's address)"`
	Mode        string `json:"mode,omitempty" jsonschema:"which records to search: both (the default of the integration, usually), contacts or accounts"`
	Integration string `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to ask; omit for the default one"`
}

// GetOrderIn is get_order's input.
type GetOrderIn struct {
	Order       string `json:"order" jsonschema:"the sales order number (for example ORD-01001-B2K9P7) or the order's record id (a GUID)"`
	Email       string `json:"email,omitempty" jsonschema:"the verified email address of the customer asking; when given, an order that is not this customer's answers found:false. Always pass it when acting for a customer."`
	Integration string `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to ask; omit for the default one"`
}

// CustomerRef names a customer record.
type CustomerRef struct {
	Type string `json:"type" jsonschema:"contact or account"`
	ID   string `json:"id" jsonschema:"the record id (GUID) from find_customer"`
}

// ListRecentOrdersIn is list_recent_orders' input.
type ListRecentOrdersIn struct {
	Email       string       `json:"email,omitempty" jsonschema:"the customer's email address; give this or customer"`
	Customer    *CustomerRef `json:"customer,omitempty" jsonschema:"the customer record (type and id from find_customer); give this or email"`
	Limit       int          `json:"limit,omitempty" jsonschema:"how many orders, newest first: 1 to 50, default 10"`
	Integration string       `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to ask; omit for the default one"`
}

// GetCustomerSummaryIn is get_customer_summary's input.
type GetCustomerSummaryIn struct {
	Email       string       `json:"email,omitempty" jsonschema:"the customer's email address; give this or customer"`
	Customer    *CustomerRef `json:"customer,omitempty" jsonschema:"the customer record (type and id from find_customer); give this or email"`
	Integration string       `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to ask; omit for the default one"`
}

// GetCustomerSummaryOut is get_customer_summary's result.
type GetCustomerSummaryOut struct {
	Found bool `json:"found"`
	// Pending: Dataverse is still computing the figures; ask again after
	// RetryAfterSeconds.
	Pending           bool       `json:"pending,omitempty"`
	RetryAfterSeconds int        `json:"retryAfterSeconds,omitempty"`
	Message           string     `json:"message,omitempty"`
	Customer          *Customer  `json:"customer,omitempty"`
	Orders            int        `json:"orders" jsonschema:"how many orders count (not canceled, unless the integration says otherwise)"`
	OpenOrders        int        `json:"openOrders" jsonschema:"orders still active or submitted"`
	FirstOrder        *time.Time `json:"firstOrder,omitempty"`
	LastOrder         *time.Time `json:"lastOrder,omitempty"`
	TotalSpent        *Money     `json:"totalSpent,omitempty" jsonschema:"the sum of the counted orders' totals, in the org's base currency"`
	Integration       string     `json:"integration"`
	AsOf              time.Time  `json:"asOf"`
	Stale             bool       `json:"stale"`
}

// ListRefundsIn is list_refunds' input.
type ListRefundsIn struct {
	Order       string `json:"order" jsonschema:"the sales order number or record id"`
	Integration string `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to ask; omit for the default one"`
}

// CheckConnectionIn is check_connection's input.
type CheckConnectionIn struct {
	Integration string `json:"integration,omitempty" jsonschema:"the integration (Dataverse org) to check; omit for the default one"`
}

// Ref names a related record.
type Ref struct {
	Type string `json:"type,omitempty" jsonschema:"contact or account"`
	ID   string `json:"id" jsonschema:"record id (GUID)"`
	Name string `json:"name"`
}

// Customer is a contact or account.
type Customer struct {
	Type    string           `json:"type" jsonschema:"contact (a person) or account (a company)"`
	ID      string           `json:"id" jsonschema:"record id (GUID), for list_recent_orders"`
	Name    string           `json:"name"`
	Email   string           `json:"email" jsonschema:"the address that matched, as stored"`
	Phone   string           `json:"phone,omitempty"`
	Account *Ref             `json:"account,omitempty" jsonschema:"a contact's company (parent account)"`
	Fields  map[string]Field `json:"fields,omitempty" jsonschema:"the integration's configured columns of the record, by logical name"`
}

// Field is a configured column of the org (customerFields, orderFields).
type Field struct {
	Value any    `json:"value" jsonschema:"the value: a string for text, dates, ids, decimals and money (exact, 12.50); a number for whole numbers and choices; a boolean; null when empty"`
	Label string `json:"label,omitempty" jsonschema:"Dataverse's formatted value: a choice's label, Yes/No, a lookup's name"`
	Table string `json:"table,omitempty" jsonschema:"a lookup's related table"`
}

// FindCustomerOut is find_customer's result.
type FindCustomerOut struct {
	Found       bool      `json:"found" jsonschema:"false: no contact or account has this address (see message)"`
	Message     string    `json:"message,omitempty"`
	Customer    *Customer `json:"customer,omitempty"`
	Integration string    `json:"integration"`
	AsOf        time.Time `json:"asOf" jsonschema:"when this answer was read from Dataverse (UTC); tell the customer 'as of' this time"`
	Stale       bool      `json:"stale" jsonschema:"true: Dataverse could not be reached and this is an older cached answer"`
}

// Money is an amount in a currency.
type Money struct {
	Amount    string `json:"amount" jsonschema:"decimal string with at least two places, e.g. 1909.20"`
	Currency  string `json:"currency" jsonschema:"ISO 4217 code, e.g. USD"`
	Formatted string `json:"formatted,omitempty" jsonschema:"as Dataverse formats it for people, e.g. $1,909.20"`
}

// Line is one order line.
type Line struct {
	Number      int    `json:"number"`
	SKU         string `json:"sku,omitempty" jsonschema:"the product's number; empty for a write-in line"`
	Product     string `json:"product,omitempty" jsonschema:"the catalogue product's name"`
	Description string `json:"description,omitempty" jsonschema:"a write-in line's description"`
	Quantity    string `json:"quantity" jsonschema:"decimal string"`
	UnitPrice   string `json:"unitPrice" jsonschema:"decimal string in the order's currency"`
	Amount      string `json:"amount" jsonschema:"unit price times quantity less volume discount, before tax"`
}

// Order is a sales order with its lines.
type Order struct {
	ID                  string           `json:"id"`
	Number              string           `json:"number"`
	Name                string           `json:"name"`
	Status              string           `json:"status" jsonschema:"state and status reason, e.g. Submitted / In Progress, Fulfilled / Complete"`
	Total               Money            `json:"total"`
	RequestedDeliveryBy *time.Time       `json:"requestedDeliveryBy,omitempty" jsonschema:"the requested delivery date (UTC instant of a date-only value); absent when unset"`
	TrackingNumber      string           `json:"trackingNumber,omitempty" jsonschema:"the shipment's tracking number; absent when none is recorded"`
	Customer            *Ref             `json:"customer,omitempty"`
	Fields              map[string]Field `json:"fields,omitempty" jsonschema:"the integration's configured columns of the order, by logical name"`
	Lines               []Line           `json:"lines"`
}

// GetOrderOut is get_order's result.
type GetOrderOut struct {
	Found       bool      `json:"found" jsonschema:"false: no such order, or (with email) not this customer's (see message)"`
	Message     string    `json:"message,omitempty"`
	Order       *Order    `json:"order,omitempty"`
	Integration string    `json:"integration"`
	AsOf        time.Time `json:"asOf" jsonschema:"when this answer was read from Dataverse (UTC)"`
	Stale       bool      `json:"stale" jsonschema:"true: Dataverse could not be reached and this is an older cached answer"`
}

// OrderSummary is one of a customer's orders.
type OrderSummary struct {
	ID        string    `json:"id"`
	Number    string    `json:"number"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Total     Money     `json:"total"`
	CreatedOn time.Time `json:"createdOn"`
}

// ListRecentOrdersOut is list_recent_orders' result.
type ListRecentOrdersOut struct {
	Found       bool           `json:"found" jsonschema:"false: no customer has this email (see message); a customer without orders is found with an empty list"`
	Message     string         `json:"message,omitempty"`
	Customer    *Customer      `json:"customer,omitempty" jsonschema:"the customer found by email"`
	Orders      []OrderSummary `json:"orders" jsonschema:"newest first"`
	Integration string         `json:"integration"`
	AsOf        time.Time      `json:"asOf" jsonschema:"when this answer was read from Dataverse (UTC)"`
	Stale       bool           `json:"stale" jsonschema:"true: Dataverse could not be reached and this is an older cached answer"`
}

// Refund is a refund of an order (none exist in Dynamics 365 Sales).
type Refund struct {
	ID     string     `json:"id"`
	Amount Money      `json:"amount"`
	Status string     `json:"status" jsonschema:"the refund's status as the org labels it, e.g. Approved"`
	Date   *time.Time `json:"date,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// ListRefundsOut is list_refunds' result.
type ListRefundsOut struct {
	Order   string   `json:"order"`
	Refunds []Refund `json:"refunds"`
	// Source is the org's refunds table, or "none" when it has none.
	Source      string    `json:"source"`
	Message     string    `json:"message"`
	Integration string    `json:"integration"`
	AsOf        time.Time `json:"asOf"`
	Stale       bool      `json:"stale"`
}

// CheckConnectionOut is check_connection's result.
type CheckConnectionOut struct {
	OK             bool      `json:"ok" jsonschema:"true: signed in and Dataverse answered WhoAmI"`
	Integration    string    `json:"integration"`
	OrganizationID string    `json:"organizationId"`
	UserID         string    `json:"userId" jsonschema:"the application user dvgate signs in as"`
	BusinessUnitID string    `json:"businessUnitId"`
	AsOf           time.Time `json:"asOf"`
	Stale          bool      `json:"stale" jsonschema:"always false: the check bypasses the cache"`
	// Credential says when the app registration's secret or certificate
	// expires, as an admin should read it.
	Credential string `json:"credential,omitempty" jsonschema:"when the secret or certificate dvgate signs in with expires, e.g. The client secret expires on 2027-06-30 (207 days left)."`
	// CredentialExpiresInDays is the days left, when the expiry is known.
	CredentialExpiresInDays *int `json:"credentialExpiresInDays,omitempty"`
}

func money(m gateway.Money) Money {
	return Money{Amount: gateway.AmountString(m.Amount), Currency: m.Currency, Formatted: m.Formatted}
}

func ref(r *gateway.Ref) *Ref {
	if r == nil {
		return nil
	}
	return &Ref{Type: r.Type, ID: r.ID, Name: r.Name}
}

func customerOf(c *gateway.Customer) *Customer {
	return &Customer{Type: c.Type, ID: c.ID, Name: c.Name, Email: c.Email, Phone: c.Phone, Account: ref(c.Account), Fields: fields(c.Fields)}
}

// fields copies configured columns; their values are gateway's JSON
// (decimals already exact strings).
func fields(in map[string]gateway.Field) map[string]Field {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]Field, len(in))
	for k, f := range in {
		out[k] = Field{Value: json.RawMessage(f.Value), Label: f.Label, Table: f.Table}
	}
	return out
}

func orderOf(o *gateway.Order) *Order {
	out := &Order{ID: o.ID, Number: o.Number, Name: o.Name, Status: o.Status, Total: money(o.Total),
		RequestedDeliveryBy: o.RequestedDeliveryBy, Customer: ref(o.Customer), Fields: fields(o.Fields), Lines: make([]Line, 0, len(o.Lines))}
	if o.TrackingNumber != nil {
		out.TrackingNumber = *o.TrackingNumber
	}
	for _, l := range o.Lines {
		line := Line{Number: l.Number, Description: l.Description, Quantity: l.Quantity.String(),
			UnitPrice: gateway.AmountString(l.UnitPrice), Amount: gateway.AmountString(l.Amount)}
		if l.Product != nil {
			line.SKU, line.Product = l.Product.SKU, l.Product.Name
		}
		out.Lines = append(out.Lines, line)
	}
	return out
}

func summaryOf(s *gateway.OrderSummary) OrderSummary {
	return OrderSummary{ID: s.ID, Number: s.Number, Name: s.Name, Status: s.Status, Total: money(s.Total), CreatedOn: s.CreatedOn}
}
