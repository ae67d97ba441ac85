package gateway

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Customer is a contact or an account found by one of its email addresses.
type Customer struct {
	// Type is "contact" or "account".
	Type string `json:"type"`
	// ID is the record's GUID (lowercase, hyphenated).
	ID string `json:"id"`
	// Name is the contact's fullname or the account's name.
	Name string `json:"name"`
	// Email is the address that matched, as stored (emailaddress1, 2 or 3).
	Email string `json:"email"`
	// Phone is telephone1, else mobilephone (contacts only have the latter).
	Phone string `json:"phone,omitempty"`
	// Account is a contact's parent account (Company Name) when that lookup
	// points to an account; nil otherwise.
	Account *Ref `json:"account,omitempty"`
	// Fields are the configured CustomerFields of the customer's table by
	// logical name; nil when none are configured.
	Fields map[string]Field `json:"fields,omitempty"`
}

// Ref names a related record.
type Ref struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Order is a sales order with its lines.
type Order struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	Name   string `json:"name"`
	// Status joins the formatted state and status reason: "Submitted / In Progress".
	Status       string `json:"status"`
	State        Choice `json:"state"`
	StatusReason Choice `json:"statusReason"`
	Total        Money  `json:"total"`
	// RequestedDeliveryBy is the UTC instant Dataverse stores for the
	// date-only, user-local "Requested Delivery Date"; nil when unset.
	RequestedDeliveryBy *time.Time `json:"requestedDeliveryBy"`
	Customer            *Ref       `json:"customer"`
	Lines               []Line     `json:"lines"`
	// TrackingNumber is the configured tracking column; nil when not
	// configured or empty.
	TrackingNumber *string `json:"trackingNumber"`
	// Fields are the configured OrderFields by logical name; nil when none
	// are configured.
	Fields map[string]Field `json:"fields,omitempty"`
	// CustomerEmails are the customer's email addresses (emailaddress1-3 of
	// the contact or account, lowercased), and CustomerAccount a contact
	// customer's parent account: read in the order's own request, so that
	// integration.OrderFor can scope an order to the customer asking
	// without another one.
	CustomerEmails  []string `json:"customerEmails,omitempty"`
	CustomerAccount *Ref     `json:"customerAccount,omitempty"`
}

// Choice is an option-set value with its label in the caller's language.
type Choice struct {
	Value int    `json:"value"`
	Label string `json:"label"`
}

// Money is an exact amount with its ISO currency code and Dataverse's own
// formatting ("$1,234.56"). Amount marshals as a JSON string.
type Money struct {
	Amount    decimal.Decimal `json:"amount"`
	Currency  string          `json:"currency"`
	Formatted string          `json:"formatted"`
}

// Line is one order product (salesorderdetail).
type Line struct {
	// Number is the line item number (lineitemnumber); lines are sorted by
	// sequencenumber, then lineitemnumber.
	Number  int      `json:"number"`
	Product *Product `json:"product"`
	// Description is the write-in product description (productdescription).
	Description string `json:"description,omitempty"`
	// WriteIn is isproductoverridden: the line names no catalogue product.
	WriteIn   bool            `json:"writeIn"`
	Quantity  decimal.Decimal `json:"quantity"`
	UnitPrice decimal.Decimal `json:"unitPrice"`
	// Amount is baseamount: price per unit × quantity − volume discount,
	// before the line's manual discount and tax. It is what the order form's
	// "Amount" column shows, so it matches what the customer was quoted per
	// line; extendedamount would also fold in the line's tax and discount.
	Amount decimal.Decimal `json:"amount"`
}

// Product is the catalogue product of a line.
type Product struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// SKU is the product's productnumber ("Product ID").
	SKU string `json:"sku"`
}

// OrderSummary is one entry of a customer's recent orders.
type OrderSummary struct {
	ID           string    `json:"id"`
	Number       string    `json:"number"`
	Name         string    `json:"name"`
	Status       string    `json:"status"`
	State        Choice    `json:"state"`
	StatusReason Choice    `json:"statusReason"`
	Total        Money     `json:"total"`
	CreatedOn    time.Time `json:"createdOn"`
	ModifiedOn   time.Time `json:"modifiedOn"`
}

// Refund is a refund of an order, from the org's own refunds table
// (Config.Refunds): Dynamics 365 Sales has no refund table of its own, and
// companies model refunds their way.
type Refund struct {
	ID     string `json:"id"`
	Amount Money  `json:"amount"`
	// Status is the status column's label (its value when it has none).
	Status string     `json:"status"`
	Date   *time.Time `json:"date"`
	Reason string     `json:"reason,omitempty"`
}

func refundsSize(rs []Refund) int64 {
	n := int64(24)
	for _, r := range rs {
		n += 160 + decimalSize + strSize(r.ID) + strSize(r.Amount.Currency) + strSize(r.Amount.Formatted) +
			strSize(r.Status) + strSize(r.Reason)
	}
	return n
}

// TestResult is the identity the connection signs in as (WhoAmI).
type TestResult struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	BusinessUnitID string `json:"businessUnitId"`
}

// Outcome says where an answer came from.
type Outcome int

const (
	// Miss: loaded from Dataverse for this request (or a coalesced one).
	Miss Outcome = iota
	// Hit: served fresh from the cache.
	Hit
	// Stale: served from the cache past its freshness because Dataverse failed.
	Stale
)

// String returns "miss", "hit" or "stale" (for an X-Cache header).
func (o Outcome) String() string {
	switch o {
	case Hit:
		return "hit"
	case Stale:
		return "stale"
	default:
		return "miss"
	}
}

// Meta describes how an answer was obtained.
type Meta struct {
	Outcome Outcome
	// Age is how long ago the answer was fetched from Dataverse (0 for a miss).
	Age time.Duration
}

// Approximate in-memory sizes, for the cache's byte budget. They count the
// struct headers and each string as its header plus its bytes rounded up to
// the allocator's 16-byte size classes (a 36-byte GUID string takes 48);
// decimals are counted as a small fixed size (a big.Int of one or two words
// plus the exponent). TestCostMatchesHeap checks the estimate against the
// live heap.
const (
	decimalSize = 48
	refSize     = 48
)

// strSize is the heap a string value takes: its header in the struct, and
// its bytes in their own allocation.
func strSize(s string) int64 {
	if s == "" {
		return 16
	}
	return 16 + int64(len(s)+15)&^15
}

func (c *Customer) size() int64 {
	n := 32 + strSize(c.Type) + strSize(c.ID) + strSize(c.Name) + strSize(c.Email) + strSize(c.Phone)
	if c.Account != nil {
		n += refSize + strSize(c.Account.Type) + strSize(c.Account.ID) + strSize(c.Account.Name)
	}
	return n + fieldsSize(c.Fields)
}

// fieldsSize approximates a Fields map's heap: the map, and per field its
// key, value bytes and strings.
func fieldsSize(f map[string]Field) int64 {
	if f == nil {
		return 0
	}
	n := int64(48)
	for k, v := range f {
		n += 64 + strSize(k) + int64(cap(v.Value)) + strSize(v.Label) + strSize(v.Table)
	}
	return n
}

func (o *Order) size() int64 {
	n := 256 + strSize(o.ID) + strSize(o.Number) + strSize(o.Name) + strSize(o.Status) +
		strSize(o.State.Label) + strSize(o.StatusReason.Label) + strSize(o.Total.Currency) + strSize(o.Total.Formatted)
	if o.Customer != nil {
		n += refSize + strSize(o.Customer.Type) + strSize(o.Customer.ID) + strSize(o.Customer.Name)
	}
	if o.TrackingNumber != nil {
		n += 16 + strSize(*o.TrackingNumber)
	}
	n += 32 // CustomerEmails header, CustomerAccount pointer
	for _, e := range o.CustomerEmails {
		n += strSize(e)
	}
	if r := o.CustomerAccount; r != nil {
		n += refSize + strSize(r.Type) + strSize(r.ID) + strSize(r.Name)
	}
	n += fieldsSize(o.Fields)
	for _, l := range o.Lines {
		n += 64 + 3*decimalSize + strSize(l.Description)
		if l.Product != nil {
			n += 48 + strSize(l.Product.ID) + strSize(l.Product.Name) + strSize(l.Product.SKU)
		}
	}
	return n
}

func summariesSize(s []OrderSummary) int64 {
	n := int64(24)
	for _, o := range s {
		n += 160 + decimalSize + strSize(o.ID) + strSize(o.Number) + strSize(o.Name) + strSize(o.Status) +
			strSize(o.State.Label) + strSize(o.StatusReason.Label) + strSize(o.Total.Currency) + strSize(o.Total.Formatted)
	}
	return n
}

// AmountString writes a money amount the way people read one: with at least
// two decimal places ("1909.20", "10.00") and never rounded, so a unit price
// in a finer pricing precision keeps its digits ("0.125"). Dataverse sends
// money with four decimals (1909.2000), and decimal.Decimal.String trims
// trailing zeros to "1909.2".
func AmountString(d decimal.Decimal) string {
	s := d.String()
	places := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		places = len(s) - i - 1
	}
	if places >= 2 {
		return s
	}
	return d.StringFixed(2)
}
