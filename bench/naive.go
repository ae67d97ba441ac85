package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync/atomic"

	"github.com/dvgate/dvgate/dataverse"
)

// Naive is baseline (b): the lookups a team would write without dvgate, on
// the same connection runtime (sign-in, retries) but with no cache and no
// deduplication, reading an order the obvious way: the order, then its
// lines, then each line's product, one request at a time. It is safe for
// concurrent use.
type Naive struct {
	Conn *dataverse.Conn
	n    atomic.Int64
}

// Requests counts the Web API requests made so far (round trips).
func (c *Naive) Requests() int64 { return c.n.Load() }

func (c *Naive) get(ctx context.Context, pathAndQuery string, v any) error {
	c.n.Add(1)
	r, err := c.Conn.Get(ctx, pathAndQuery)
	if err != nil {
		return err
	}
	return json.Unmarshal(r.Body, v)
}

type page[T any] struct {
	Value []T `json:"value"`
}

// Customer looks in contacts, then in accounts; it reports whether one was
// found.
func (c *Naive) Customer(ctx context.Context, email string) (bool, error) {
	lit := url.QueryEscape(odataLiteral(email))
	filter := fmt.Sprintf("emailaddress1 eq %s or emailaddress2 eq %s or emailaddress3 eq %s", lit, lit, lit)
	for _, q := range []string{
		"contacts?$select=contactid,fullname,emailaddress1,telephone1,mobilephone,_parentcustomerid_value&$top=1&$filter=" + filter,
		"accounts?$select=accountid,name,emailaddress1,telephone1&$top=1&$filter=" + filter,
	} {
		var p page[map[string]any]
		if err := c.get(ctx, q, &p); err != nil {
			return false, err
		}
		if len(p.Value) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Order reads an order by number, then its lines, then each product; it
// reports whether the order was found.
func (c *Naive) Order(ctx context.Context, number string) (bool, error) {
	var orders page[struct {
		ID string `json:"salesorderid"`
	}]
	if err := c.get(ctx, "salesorders?$select=salesorderid,ordernumber,name,statecode,statuscode,totalamount,_customerid_value,_transactioncurrencyid_value&$filter=ordernumber eq "+
		url.QueryEscape(odataLiteral(number)), &orders); err != nil {
		return false, err
	}
	if len(orders.Value) == 0 {
		return false, nil
	}
	var lines page[struct {
		Product string `json:"_productid_value"`
	}]
	if err := c.get(ctx, "salesorderdetails?$select=salesorderdetailid,lineitemnumber,quantity,priceperunit,baseamount,productdescription,_productid_value&$filter=_salesorderid_value eq "+
		orders.Value[0].ID, &lines); err != nil {
		return false, err
	}
	for _, l := range lines.Value {
		if l.Product == "" {
			continue
		}
		var p map[string]any
		if err := c.get(ctx, "products("+l.Product+")?$select=name,productnumber", &p); err != nil {
			return false, err
		}
	}
	return true, nil
}

// odataLiteral quotes s as an OData string literal.
func odataLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
