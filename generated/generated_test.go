package generated

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/odataq"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// orderJSON has the shapes Dataverse sends: money with four decimals,
// lower-case GUIDs, UTC seconds, formatted values and lookup annotations,
// an expanded polymorphic lookup and expanded lines.
const orderJSON = `{
  "@odata.etag": "W/\"81052965\"",
  "salesorderid": "5c4b8f0e-2a9b-ed11-aad1-000d3a4f6f4b",
  "ordernumber": "ORD-01001-X",
  "name": "Order for a+b@example.com",
  "totalamount": 20000.0000,
  "totalamount@OData.Community.Display.V1.FormattedValue": "$20,000.00",
  "exchangerate": 12345678901234567.8901,
  "statecode": 1,
  "statecode@OData.Community.Display.V1.FormattedValue": "Submitted",
  "statuscode": 3,
  "statuscode@OData.Community.Display.V1.FormattedValue": "In Progress",
  "modifiedon": "2023-04-07T21:59:01Z",
  "versionnumber": 81052965,
  "_customerid_value@OData.Community.Display.V1.FormattedValue": "Susanna Stubberod (sample)",
  "_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty": "customerid_contact",
  "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact",
  "_customerid_value": "70bf4d48-34cb-ed11-b596-0022481d68cd",
  "customerid_contact": {"contactid": "70bf4d48-34cb-ed11-b596-0022481d68cd", "fullname": "Susanna Stubberod (sample)", "birthdate": "1980-02-29"},
  "customerid_account": null,
  "order_details": [{"salesorderdetailid": "6c4b8f0e-2a9b-ed11-aad1-000d3a4f6f4b", "quantity": 2.00000, "priceperunit": 10000.0000}]
}`

func TestDecodeRealShapes(t *testing.T) {
	t.Parallel()
	var o SalesOrder
	if err := json.Unmarshal([]byte(orderJSON), &o); err != nil {
		t.Fatal(err)
	}
	if got := *o.StateCodeFormatted + " / " + *o.StatusCodeFormatted; got != "Submitted / In Progress" {
		t.Errorf("status from formatted values = %q", got)
	}
	if got := o.StateCode.Label() + " / " + o.StatusCode.Label(); got != "Submitted / In Progress" {
		t.Errorf("status from option-set labels = %q", got)
	}
	if *o.StateCode != SalesOrderStateCodeSubmitted || *o.StatusCode != SalesOrderStatusCodeInProgress {
		t.Errorf("state/status = %v/%v", *o.StateCode, *o.StatusCode)
	}
	if !o.TotalAmount.Equal(decimal.RequireFromString("20000")) || o.TotalAmount.Exponent() != -4 {
		t.Errorf("totalamount = %v (exponent %d), want 20000.0000 exactly", o.TotalAmount, o.TotalAmount.Exponent())
	}
	if o.ExchangeRate.String() != "12345678901234567.8901" {
		t.Errorf("exchangerate = %s: not exact", o.ExchangeRate)
	}
	if want := time.Date(2023, 4, 7, 21, 59, 1, 0, time.UTC); !o.ModifiedOn.Equal(want) {
		t.Errorf("modifiedon = %v", o.ModifiedOn)
	}
	if o.CustomerIDContact == nil || *o.CustomerIDContact.FullName != "Susanna Stubberod (sample)" || o.CustomerIDAccount != nil {
		t.Errorf("polymorphic lookup: contact %+v account %+v", o.CustomerIDContact, o.CustomerIDAccount)
	}
	if o.CustomerIDContact.BirthDate.String() != "1980-02-29" {
		t.Errorf("birthdate = %v", o.CustomerIDContact.BirthDate)
	}
	if *o.CustomerIDLookupLogicalName != "contact" || *o.CustomerIDNavigationProperty != "customerid_contact" ||
		*o.CustomerIDFormatted != "Susanna Stubberod (sample)" || o.CustomerIDValue.String() != "70bf4d48-34cb-ed11-b596-0022481d68cd" {
		t.Errorf("lookup annotations: %q %q %q %v", *o.CustomerIDLookupLogicalName, *o.CustomerIDNavigationProperty, *o.CustomerIDFormatted, o.CustomerIDValue)
	}
	if len(o.OrderDetails) != 1 || o.OrderDetails[0].Quantity.String() != "2" {
		t.Errorf("order_details = %+v", o.OrderDetails)
	}
	if *o.ETag != `W/"81052965"` {
		t.Errorf("etag = %q", *o.ETag)
	}

	// Re-encoding loses no value: decoding the result gives the same order.
	// (decimal.Decimal encodes as a JSON string holding the exact value.)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var again SalesOrder
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, again, cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
}

// TestServiceWire checks what reaches the server: a + in a filter value
// arrives as %2B (not a space), $select stays literal, the Prefer header
// carries annotations and page size, and List follows @odata.nextLink.
func TestServiceWire(t *testing.T) {
	t.Parallel()
	var raw []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw = append(raw, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
		switch {
		case r.URL.Path == "/api/data/v9.2/contacts" && strings.Contains(r.URL.RawQuery, "skiptoken"):
			w.Write([]byte(`{"value":[{"contactid":"00000000-0000-0000-0000-000000000002"}]}`))
		case r.URL.Path == "/api/data/v9.2/contacts":
			if got := r.Header.Get("Prefer"); got != `odata.include-annotations="*",odata.maxpagesize=1` {
				t.Errorf("Prefer = %q", got)
			}
			if got := r.URL.Query().Get("$filter"); got != "emailaddress1 eq 'a+b@x.com'" {
				t.Errorf("server decoded $filter = %q", got)
			}
			w.Write([]byte(`{"value":[{"contactid":"00000000-0000-0000-0000-000000000001","fullname":"A"}],"@odata.nextLink":"` + srv.URL + `/api/data/v9.2/contacts?$select=fullname&$skiptoken=2"}`))
		case r.URL.Path == "/api/data/v9.2/salesorders(5c4b8f0e-2a9b-ed11-aad1-000d3a4f6f4b)":
			w.Write([]byte(orderJSON))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	svc, err := NewService(srv.URL+"/api/data/v9.2", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := svc.Contacts().Query().
		Select(ContactColumns.FullName, ContactColumns.EMailAddress1).
		Filter(ContactColumns.EMailAddress1.Eq("a+b@x.com")).
		Annotations(odataq.AllAnnotations).PageSize(1)
	var ids []string
	for c, err := range svc.Contacts().List(ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ContactID.String())
	}
	if len(ids) != 2 {
		t.Errorf("List yielded %v, want both pages", ids)
	}
	if want := "$select=fullname,emailaddress1&$filter=emailaddress1%20eq%20'a%2Bb%40x.com'"; raw[0] != want {
		t.Errorf("raw query = %q, want %q", raw[0], want)
	}

	o, err := svc.SalesOrders().Get(ctx, uuid.MustParse("5c4b8f0e-2a9b-ed11-aad1-000d3a4f6f4b"),
		svc.SalesOrders().Query().Select(SalesOrderColumns.Name).Expand(SalesOrderNav.OrderDetails.Expand(
			odataq.Query[SalesOrderDetail]{}.Select(SalesOrderDetailColumns.Quantity))))
	if err != nil {
		t.Fatal(err)
	}
	if *o.OrderNumber != "ORD-01001-X" {
		t.Errorf("ordernumber = %q", *o.OrderNumber)
	}
	if want := "$select=name&$expand=order_details($select=quantity)"; raw[len(raw)-1] != want {
		t.Errorf("raw query = %q, want %q", raw[len(raw)-1], want)
	}

	_, err = svc.SalesOrders().Get(ctx, uuid.New(), odataq.Query[SalesOrder]{})
	var se *odataq.StatusError
	if !errorsAs(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Errorf("Get of a missing order: %v, want a 404 StatusError", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestExtraKeepsUnknownMembers: members the model has no field for (a
// column added after generation, a nested collection's nextLink) land in
// Extra, on the row and on expanded rows; known columns and annotations
// do not.
func TestExtraKeepsUnknownMembers(t *testing.T) {
	t.Parallel()
	in := strings.Replace(orderJSON, `"ordernumber"`, `"contoso_trackingnumber": "1Z999", "order_details@odata.nextLink": "https://org.example/api/data/v9.2/salesorderdetails?$skiptoken=x", "ordernumber"`, 1)
	in = strings.Replace(in, `"quantity": 2.00000`, `"quantity": 2.00000, "contoso_linenote": "gift"`, 1)
	var o SalesOrder
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range o.Extra {
		got[k] = string(v)
	}
	want := map[string]string{
		"contoso_trackingnumber":       `"1Z999"`,
		"order_details@odata.nextLink": `"https://org.example/api/data/v9.2/salesorderdetails?$skiptoken=x"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extra (-want +got):\n%s", diff)
	}
	if n, ok, err := odataq.Extra[string](o.OrderDetails[0].Extra, "contoso_linenote"); n != "gift" || !ok || err != nil {
		t.Errorf("line's contoso_linenote = %q, %v, %v", n, ok, err)
	}
	if o.CustomerIDContact.Extra != nil {
		t.Errorf("expanded contact's Extra = %v, want nil (all its members are known)", o.CustomerIDContact.Extra)
	}
	if *o.OrderNumber != "ORD-01001-X" || o.ETag == nil {
		t.Errorf("known members not decoded: %+v", o)
	}
}
