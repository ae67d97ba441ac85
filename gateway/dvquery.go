package gateway

// This file holds everything that knows Dataverse's wire format: the query
// URLs and the JSON shapes of the answers. It uses small decoding structs of
// its own (with the formatted-value and lookup annotations as fields)
// rather than the generated client, which was not available when the
// gateway was written; switching to it only touches this file.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/shopspring/decimal"
)

// Annotation suffixes (Prefer: odata.include-annotations).
const (
	// preferAnnotations asks for exactly the two annotations we read.
	preferAnnotations = `odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname"`
)

// Upstream is the Dataverse connection a Gateway uses; *dataverse.Conn
// implements it.
type Upstream interface {
	// Do sends a request built against BaseURL; a non-2xx answer is
	// returned as (nil, *dataverse.Error).
	Do(req *http.Request) (*http.Response, error)
	BaseURL() string
	WhoAmI(ctx context.Context) (dataverse.WhoAmIResult, error)
}

// query is an ordered list of OData system query options.
type query [][2]string

// encode writes the options as a query string. Every byte outside the
// unreserved set and the OData punctuation , ( ) / : ' $ @ = is
// percent-encoded, so a '+' in an email becomes %2B (Dataverse would read a
// raw '+' as a space), a space %20, and '&', '#', '%' or ';' inside a
// literal cannot end or split an option (Go servers reject a raw ';').
func (q query) encode() string {
	var b strings.Builder
	for i, kv := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[0]) // "$select": option names stay literal
		b.WriteByte('=')
		for _, c := range []byte(kv[1]) {
			if isLiteralByte(c) {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	return b.String()
}

func isLiteralByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~,()/:'$@=", c) >= 0
}

// fetch GETs path?query with the annotation Prefer header and returns the
// body. Non-2xx answers come back from Upstream.Do as *dataverse.Error.
func fetch(ctx context.Context, up Upstream, pathAndQuery string) ([]byte, error) {
	u := pathAndQuery
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = up.BaseURL() + pathAndQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("gateway: building request: %w", err)
	}
	req.Header.Set("Prefer", preferAnnotations)
	req.Header.Set("Accept", "application/json")
	resp, err := up.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &dataverse.Error{Kind: dataverse.KindNetwork, Op: opOf(req), Err: err,
			Remedy: dataverse.RemedyNetwork}
	}
	return body, nil
}

// opOf names a request without its query (which holds customer data).
func opOf(req *http.Request) string {
	p := req.URL.Path
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	if i := strings.IndexByte(p, '('); i >= 0 {
		p = p[:i]
	}
	return "GET " + p
}

// decode unmarshals a Dataverse answer; a body that is not the JSON we
// asked for is a transient upstream fault (a truncated response), so it is
// reported as KindUnavailable and may be answered from a stale entry.
func decode(op string, body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return &dataverse.Error{Kind: dataverse.KindUnavailable, Op: op, Err: err,
			Message: "the answer is not the expected JSON", Remedy: dataverse.RemedyUnavailable}
	}
	return nil
}

// ---- customers

type customerRow struct {
	ContactID     string    `json:"contactid"`
	AccountID     string    `json:"accountid"`
	FullName      string    `json:"fullname"`
	Name          string    `json:"name"`
	Email1        string    `json:"emailaddress1"`
	Email2        string    `json:"emailaddress2"`
	Email3        string    `json:"emailaddress3"`
	Telephone1    string    `json:"telephone1"`
	MobilePhone   string    `json:"mobilephone"`
	StateCode     int       `json:"statecode"`
	ModifiedOn    time.Time `json:"modifiedon"`
	Parent        string    `json:"_parentcustomerid_value"`
	ParentName    string    `json:"_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"`
	ParentLogical string    `json:"_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"`
}

func (r *customerRow) id() string { return r.ContactID + r.AccountID }

// customerTable describes the two tables a customer can be in.
type customerTable struct {
	typ, set, key string
	selects       []string
}

var (
	contactTable = customerTable{typ: "contact", set: "contacts", key: "contactid",
		selects: []string{"contactid", "fullname", "emailaddress1", "emailaddress2", "emailaddress3",
			"telephone1", "mobilephone", "_parentcustomerid_value", "statecode", "modifiedon"}}
	accountTable = customerTable{typ: "account", set: "accounts", key: "accountid",
		selects: []string{"accountid", "name", "emailaddress1", "emailaddress2", "emailaddress3",
			"telephone1", "statecode", "modifiedon"}}
)

// customerTop bounds the matches we read: the server orders them (active
// first, then most recently modified, then id) so the first is the answer;
// the few extra rows only let us re-check that order.
const customerTop = 5

// customerQuery is the one request per table for an email (already
// normalized, lowercase; Dataverse's eq is case-insensitive anyway).
func customerQuery(t customerTable, email string) string {
	lit := odataString(email)
	filter := fmt.Sprintf("emailaddress1 eq %s or emailaddress2 eq %s or emailaddress3 eq %s", lit, lit, lit)
	return t.set + "?" + query{
		{"$select", strings.Join(t.selects, ",")},
		{"$filter", filter},
		{"$orderby", "statecode asc,modifiedon desc," + t.key + " asc"},
		{"$top", fmt.Sprint(customerTop)},
	}.encode()
}

// findCustomer asks one table; ErrNotFound when no row matches.
func findCustomer(ctx context.Context, up Upstream, t customerTable, email string) (*Customer, error) {
	body, err := fetch(ctx, up, customerQuery(t, email))
	if err != nil {
		return nil, err
	}
	var page struct {
		Value []customerRow `json:"value"`
	}
	if err := decode("GET "+t.set, body, &page); err != nil {
		return nil, err
	}
	if len(page.Value) == 0 {
		return nil, ErrNotFound
	}
	// Same order as $orderby, so the answer does not depend on the server
	// honouring it exactly (ties on modifiedon are broken by id).
	rows := page.Value
	slices.SortStableFunc(rows, func(a, b customerRow) int {
		if a.StateCode != b.StateCode {
			return a.StateCode - b.StateCode
		}
		if c := b.ModifiedOn.Compare(a.ModifiedOn); c != 0 {
			return c
		}
		return strings.Compare(a.id(), b.id())
	})
	r := rows[0]
	c := &Customer{Type: t.typ, ID: r.id(), Name: r.FullName + r.Name, Phone: r.Telephone1}
	if c.Phone == "" {
		c.Phone = r.MobilePhone
	}
	c.Email = r.Email1
	for _, e := range []string{r.Email1, r.Email2, r.Email3} {
		if strings.EqualFold(e, email) {
			c.Email = e
			break
		}
	}
	if r.Parent != "" && r.ParentLogical == "account" {
		c.Account = &Ref{Type: "account", ID: r.Parent, Name: r.ParentName}
	}
	return c, nil
}

// ---- orders

// orderSelect are the salesorder columns of an order answer (the tracking
// column is appended when configured).
var orderSelect = []string{"salesorderid", "ordernumber", "name", "statecode", "statuscode",
	"totalamount", "requestdeliveryby", "_customerid_value", "_transactioncurrencyid_value"}

// orderExpand fetches the lines with their products and the currency in the
// same request. The lines cannot be ordered server side ($orderby is
// rejected inside a nested $expand, 0x80060888), so they are sorted here.
const orderExpand = "order_details($select=salesorderdetailid,lineitemnumber,sequencenumber,quantity,priceperunit," +
	"baseamount,productdescription,isproductoverridden,_productid_value;" +
	"$expand=productid($select=name,productnumber))," +
	"transactioncurrencyid($select=isocurrencycode)"

type orderRow struct {
	ID           string              `json:"salesorderid"`
	Number       string              `json:"ordernumber"`
	Name         string              `json:"name"`
	State        int                 `json:"statecode"`
	StateLabel   string              `json:"statecode@OData.Community.Display.V1.FormattedValue"`
	Status       int                 `json:"statuscode"`
	StatusLabel  string              `json:"statuscode@OData.Community.Display.V1.FormattedValue"`
	Total        decimal.NullDecimal `json:"totalamount"`
	TotalFmt     string              `json:"totalamount@OData.Community.Display.V1.FormattedValue"`
	RequestedBy  *time.Time          `json:"requestdeliveryby"`
	Customer     string              `json:"_customerid_value"`
	CustomerName string              `json:"_customerid_value@OData.Community.Display.V1.FormattedValue"`
	CustomerType string              `json:"_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"`
	CreatedOn    time.Time           `json:"createdon"`
	ModifiedOn   time.Time           `json:"modifiedon"`
	Currency     *struct {
		ISO string `json:"isocurrencycode"`
	} `json:"transactioncurrencyid"`
	Lines         []lineRow `json:"order_details"`
	LinesNextLink string    `json:"order_details@odata.nextLink"`
}

type lineRow struct {
	ID          string              `json:"salesorderdetailid"`
	Number      *int                `json:"lineitemnumber"`
	Sequence    *int                `json:"sequencenumber"`
	Quantity    decimal.NullDecimal `json:"quantity"`
	UnitPrice   decimal.NullDecimal `json:"priceperunit"`
	Amount      decimal.NullDecimal `json:"baseamount"`
	Description string              `json:"productdescription"`
	WriteIn     bool                `json:"isproductoverridden"`
	ProductID   string              `json:"_productid_value"`
	Product     *struct {
		Name   string `json:"name"`
		Number string `json:"productnumber"`
	} `json:"productid"`
}

// orderQuery is the one request for an order: by key for a GUID, by
// $filter on ordernumber otherwise.
func orderQuery(ref orderRef, tracking string) string {
	sel := orderSelect
	if tracking != "" {
		sel = append(slices.Clone(sel), tracking)
	}
	q := query{{"$select", strings.Join(sel, ",")}}
	if ref.id != "" {
		return "salesorders(" + ref.id + ")?" + append(q, [2]string{"$expand", orderExpand}).encode()
	}
	// No $top/$orderby next to a nested collection $expand: order numbers
	// are unique in practice; if not, the smallest id wins (see findOrder).
	q = append(q, [2]string{"$filter", "ordernumber eq " + odataString(ref.number)}, [2]string{"$expand", orderExpand})
	return "salesorders?" + q.encode()
}

func findOrder(ctx context.Context, up Upstream, ref orderRef, tracking string) (*Order, error) {
	body, err := fetch(ctx, up, orderQuery(ref, tracking))
	if err != nil {
		if ref.id != "" && dataverse.KindOf(err) == dataverse.KindNotFound {
			return nil, ErrNotFound
		}
		return nil, err
	}
	var row orderRow
	var raw map[string]json.RawMessage
	if ref.id != "" {
		if err := decode("GET salesorders", body, &row); err != nil {
			return nil, err
		}
		if tracking != "" {
			if err := decode("GET salesorders", body, &raw); err != nil {
				return nil, err
			}
		}
	} else {
		var page struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := decode("GET salesorders", body, &page); err != nil {
			return nil, err
		}
		if len(page.Value) == 0 {
			return nil, ErrNotFound
		}
		rows := make([]orderRow, len(page.Value))
		best := 0
		for i, v := range page.Value {
			if err := decode("GET salesorders", v, &rows[i]); err != nil {
				return nil, err
			}
			if rows[i].ID < rows[best].ID {
				best = i
			}
		}
		row = rows[best]
		if tracking != "" {
			if err := decode("GET salesorders", page.Value[best], &raw); err != nil {
				return nil, err
			}
		}
	}
	if err := followLines(ctx, up, &row); err != nil {
		return nil, err
	}
	return row.order(raw, tracking), nil
}

// followLines reads further pages of lines. A nested collection $expand is
// paged only under odata.maxpagesize (which we do not send), so in practice
// this never requests; a nextLink without a $skiptoken carries no paging
// information and is ignored.
func followLines(ctx context.Context, up Upstream, row *orderRow) error {
	link := row.LinesNextLink
	for strings.Contains(link, "skiptoken") {
		body, err := fetch(ctx, up, link)
		if err != nil {
			return err
		}
		var page struct {
			Value    []lineRow `json:"value"`
			NextLink string    `json:"@odata.nextLink"`
		}
		if err := decode("GET salesorderdetails", body, &page); err != nil {
			return err
		}
		row.Lines = append(row.Lines, page.Value...)
		link = page.NextLink
	}
	return nil
}

func (r *orderRow) currency() string {
	if r.Currency == nil {
		return ""
	}
	return r.Currency.ISO
}

func (r *orderRow) order(raw map[string]json.RawMessage, tracking string) *Order {
	o := &Order{
		ID: r.ID, Number: r.Number, Name: r.Name,
		Status:              joinStatus(r.StateLabel, r.StatusLabel),
		State:               Choice{Value: r.State, Label: r.StateLabel},
		StatusReason:        Choice{Value: r.Status, Label: r.StatusLabel},
		Total:               Money{Amount: r.Total.Decimal, Currency: r.currency(), Formatted: r.TotalFmt},
		RequestedDeliveryBy: r.RequestedBy,
		Lines:               make([]Line, 0, len(r.Lines)),
	}
	if r.Customer != "" {
		o.Customer = &Ref{Type: r.CustomerType, ID: r.Customer, Name: r.CustomerName}
	}
	if tracking != "" {
		var s *string
		if v, ok := raw[tracking]; ok && json.Unmarshal(v, &s) == nil && s != nil && *s != "" {
			o.TrackingNumber = s
		}
	}
	lines := slices.Clone(r.Lines)
	slices.SortStableFunc(lines, func(a, b lineRow) int {
		if c := cmpIntPtr(a.Sequence, b.Sequence); c != 0 {
			return c
		}
		if c := cmpIntPtr(a.Number, b.Number); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, l := range lines {
		line := Line{WriteIn: l.WriteIn, Description: l.Description,
			Quantity: l.Quantity.Decimal, UnitPrice: l.UnitPrice.Decimal, Amount: l.Amount.Decimal}
		if l.Number != nil {
			line.Number = *l.Number
		}
		if !l.WriteIn && l.ProductID != "" {
			p := &Product{ID: l.ProductID}
			if l.Product != nil {
				p.Name, p.SKU = l.Product.Name, l.Product.Number
			}
			line.Product = p
		}
		o.Lines = append(o.Lines, line)
	}
	return o
}

// cmpIntPtr orders nil (unset) after any number.
func cmpIntPtr(a, b *int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return *a - *b
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

func recentOrdersQuery(customerID string, limit int) string {
	return "salesorders?" + query{
		{"$select", "salesorderid,ordernumber,name,statecode,statuscode,totalamount,_transactioncurrencyid_value,createdon,modifiedon"},
		{"$filter", "_customerid_value eq " + customerID},
		{"$orderby", "createdon desc,salesorderid asc"},
		{"$top", fmt.Sprint(limit)},
		{"$expand", "transactioncurrencyid($select=isocurrencycode)"},
	}.encode()
}

func findRecentOrders(ctx context.Context, up Upstream, customerID string, limit int) ([]OrderSummary, error) {
	body, err := fetch(ctx, up, recentOrdersQuery(customerID, limit))
	if err != nil {
		return nil, err
	}
	var page struct {
		Value []orderRow `json:"value"`
	}
	if err := decode("GET salesorders", body, &page); err != nil {
		return nil, err
	}
	out := make([]OrderSummary, 0, len(page.Value))
	for _, r := range page.Value {
		out = append(out, OrderSummary{
			ID: r.ID, Number: r.Number, Name: r.Name,
			Status:       joinStatus(r.StateLabel, r.StatusLabel),
			State:        Choice{Value: r.State, Label: r.StateLabel},
			StatusReason: Choice{Value: r.Status, Label: r.StatusLabel},
			Total:        Money{Amount: r.Total.Decimal, Currency: r.currency(), Formatted: r.TotalFmt},
			CreatedOn:    r.CreatedOn, ModifiedOn: r.ModifiedOn,
		})
	}
	return out, nil
}

// DefaultOrderColumns are the salesorder columns of a default org (the
// testdata/csdl/org.xml fixture), against which Config.TrackingColumn is
// checked when Config.OrderColumns is nil. A custom column (publisher
// prefix, e.g. contoso_trackingnumber) must be listed in OrderColumns, taken
// from the org's $metadata (see OrderColumnsFromCSDL) or generated model.
var DefaultOrderColumns = []string{"salesorderid", "ordernumber", "name", "description", "_customerid_value",
	"_accountid_value", "_contactid_value", "emailaddress", "requestdeliveryby", "datefulfilled", "submitdate",
	"totalamount", "totalamount_base", "totallineitemamount", "totallineitemamount_base", "totaldiscountamount",
	"totaldiscountamount_base", "totaltax", "totaltax_base", "totalamountlessfreight", "totalamountlessfreight_base",
	"freightamount", "freightamount_base", "discountamount", "discountamount_base", "discountpercentage",
	"_transactioncurrencyid_value", "exchangerate", "shippingmethodcode", "paymenttermscode", "freighttermscode",
	"prioritycode", "willcall", "shipto_name", "shipto_contactname", "shipto_line1", "shipto_line2", "shipto_line3",
	"shipto_city", "shipto_stateorprovince", "shipto_postalcode", "shipto_country", "shipto_telephone", "shipto_fax",
	"shipto_composite", "shipto_freighttermscode", "billto_name", "billto_contactname", "billto_line1", "billto_line2",
	"billto_line3", "billto_city", "billto_stateorprovince", "billto_postalcode", "billto_country", "billto_telephone",
	"billto_fax", "billto_composite", "statecode", "statuscode", "_ownerid_value", "createdon", "modifiedon",
	"versionnumber"}
