package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// Canned answers in the shapes Dataverse sends (annotations included).
const (
	contactsAlex = `{"@odata.context":"` + fakeBase + `$metadata#contacts(contactid,fullname)","value":[
 {"@odata.etag":"W/\"1\"","contactid":"c0000000-0000-0000-0000-000000000003","fullname":"Alex Wu (old)",
  "emailaddress1":"alex.wu@example.com","emailaddress2":null,"emailaddress3":null,"telephone1":null,"mobilephone":"+1 555 0100",
  "statecode@OData.Community.Display.V1.FormattedValue":"Inactive","statecode":1,"modifiedon":"2026-02-20T10:00:00Z",
  "_parentcustomerid_value":null},
 {"@odata.etag":"W/\"2\"","contactid":"c0000000-0000-0000-0000-000000000002","fullname":"Alex Wu",
  "emailaddress1":"alex@home.example","emailaddress2":"Alex.Wu@Example.com","emailaddress3":null,"telephone1":"+1 555 0199","mobilephone":"+1 555 0100",
  "statecode@OData.Community.Display.V1.FormattedValue":"Active","statecode":0,"modifiedon":"2026-01-05T08:00:00Z",
  "_parentcustomerid_value@OData.Community.Display.V1.FormattedValue":"Fabrikam, Inc.",
  "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"account",
  "_parentcustomerid_value":"a0000000-0000-0000-0000-000000000001"},
 {"@odata.etag":"W/\"3\"","contactid":"c0000000-0000-0000-0000-000000000009","fullname":"Alex Wu (dup)",
  "emailaddress1":"alex.wu@example.com","telephone1":null,"mobilephone":null,
  "statecode":0,"modifiedon":"2026-01-05T08:00:00Z","_parentcustomerid_value":null}]}`
	contactsEmpty = `{"@odata.context":"x","value":[]}`
	accountsFab   = `{"@odata.context":"x","value":[{"accountid":"a0000000-0000-0000-0000-000000000001","name":"Fabrikam, Inc.",
  "emailaddress1":"Orders@Fabrikam.example","telephone1":"+1 555 0142","statecode":0,"modifiedon":"2026-01-01T00:00:00Z"}]}`
	orderJSON = `{"@odata.context":"x","@odata.etag":"W/\"9\"",
  "salesorderid":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","ordernumber":"ORD-01001-B2K9P7","name":"Spring restock",
  "statecode@OData.Community.Display.V1.FormattedValue":"Submitted","statecode":1,
  "statuscode@OData.Community.Display.V1.FormattedValue":"In Progress","statuscode":3,
  "totalamount@OData.Community.Display.V1.FormattedValue":"$1,234.56","totalamount":1234.56,
  "requestdeliveryby":"2026-03-15T08:00:00Z",
  "_customerid_value@OData.Community.Display.V1.FormattedValue":"Fabrikam, Inc.",
  "_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty":"customerid_account",
  "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"account",
  "_customerid_value":"a0000000-0000-0000-0000-000000000001",
  "_transactioncurrencyid_value":"e0000000-0000-0000-0000-000000000001",
  "contoso_trackingnumber":"1Z999AA10123456784",
  "transactioncurrencyid":{"isocurrencycode":"USD","transactioncurrencyid":"e0000000-0000-0000-0000-000000000001"},
  "order_details":[
   {"salesorderdetailid":"d0000000-0000-0000-0000-000000000002","lineitemnumber":2,"sequencenumber":2,"quantity":3.00000,"priceperunit":0.10,"baseamount":0.30,
    "productdescription":"Gift wrap","isproductoverridden":true,"_productid_value":null,"productid":null},
   {"salesorderdetailid":"d0000000-0000-0000-0000-000000000001","lineitemnumber":1,"sequencenumber":1,"quantity":2.00000,"priceperunit":617.13,"baseamount":1234.26,
    "productdescription":null,"isproductoverridden":false,"_productid_value":"b0000000-0000-0000-0000-000000000001",
    "productid":{"name":"Espresso machine","productnumber":"SKU-EM-100","productid":"b0000000-0000-0000-0000-000000000001"}}],
  "order_details@odata.nextLink":"` + fakeBase + `salesorders(0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d)/order_details?$select=quantity"}`
	orderID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

func newTestGateway(t *testing.T, up Upstream, cfg Config) (*Gateway, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg.Conn, cfg.Clock, cfg.Logger = up, clk.Now, discardLogger
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, clk
}

func TestCustomerModesAndFallback(t *testing.T) {
	t.Parallel()
	alex := &Customer{Type: "contact", ID: "c0000000-0000-0000-0000-000000000002", Name: "Alex Wu",
		Email: "Alex.Wu@Example.com", Phone: "+1 555 0199",
		Account: &Ref{Type: "account", ID: "a0000000-0000-0000-0000-000000000001", Name: "Fabrikam, Inc."}}
	fab := &Customer{Type: "account", ID: "a0000000-0000-0000-0000-000000000001", Name: "Fabrikam, Inc.",
		Email: "Orders@Fabrikam.example", Phone: "+1 555 0142"}
	tests := []struct {
		name      string
		mode      Mode
		contacts  string
		accounts  string
		email     string
		want      *Customer
		wantErr   error
		wantPaths []string
	}{
		{"both: contact found", ModeBoth, contactsAlex, accountsFab, "alex.wu@example.com", alex, nil, []string{"contacts"}},
		{"both: falls back to accounts", ModeBoth, contactsEmpty, accountsFab, "ORDERS@fabrikam.example", fab, nil, []string{"contacts", "accounts"}},
		{"both: neither", ModeBoth, contactsEmpty, contactsEmpty, "nobody@example.com", nil, ErrNotFound, []string{"contacts", "accounts"}},
		{"contacts only: no fallback", ModeContacts, contactsEmpty, accountsFab, "orders@fabrikam.example", nil, ErrNotFound, []string{"contacts"}},
		{"accounts only", ModeAccounts, contactsAlex, accountsFab, "orders@fabrikam.example", fab, nil, []string{"accounts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newFake()
			up.reply("contacts", tc.contacts)
			up.reply("accounts", tc.accounts)
			g, _ := newTestGateway(t, up, Config{})
			got, meta, err := g.CustomerIn(context.Background(), tc.email, tc.mode)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("customer (-want +got):\n%s", diff)
			}
			if meta.Outcome != Miss {
				t.Errorf("outcome %v, want miss", meta.Outcome)
			}
			if diff := cmp.Diff(tc.wantPaths, up.paths()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			// The answer (or the not-found) is cached: no more requests.
			if _, meta, _ := g.CustomerIn(context.Background(), tc.email, tc.mode); meta.Outcome != Hit || len(up.requests()) != len(tc.wantPaths) {
				t.Errorf("second lookup: outcome %v after %d requests", meta.Outcome, len(up.requests()))
			}
		})
	}
}

func TestCustomerQueryShape(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.reply("contacts", contactsEmpty)
	up.reply("accounts", contactsEmpty)
	g, _ := newTestGateway(t, up, Config{Mode: ModeContacts})
	_, _, err := g.Customer(context.Background(), "  O'Brien+Orders@Example.com ")
	if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	r := up.requests()[0]
	want := map[string]string{
		"$select":  "contactid,fullname,emailaddress1,emailaddress2,emailaddress3,telephone1,mobilephone,_parentcustomerid_value,statecode,modifiedon",
		"$filter":  "emailaddress1 eq 'o''brien+orders@example.com' or emailaddress2 eq 'o''brien+orders@example.com' or emailaddress3 eq 'o''brien+orders@example.com'",
		"$orderby": "statecode asc,modifiedon desc,contactid asc",
		"$top":     "5",
	}
	got := map[string]string{}
	for k := range r.Query {
		got[k] = r.Query.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if strings.Contains(r.RawQuery, "+") || !strings.Contains(r.RawQuery, "%2B") {
		t.Errorf("raw query %q: '+' must be sent as %%2B and spaces as %%20", r.RawQuery)
	}
	if !strings.Contains(r.Prefer, "FormattedValue") || !strings.Contains(r.Prefer, "lookuplogicalname") {
		t.Errorf("Prefer = %q", r.Prefer)
	}
}

func TestInvalidInputMakesNoRequest(t *testing.T) {
	t.Parallel()
	up := newFake()
	g, _ := newTestGateway(t, up, Config{})
	ctx := context.Background()
	_, _, e1 := g.Customer(ctx, "not-an-email")
	_, _, e2 := g.Order(ctx, "   ")
	_, _, e3 := g.RecentOrders(ctx, "lead", orderID, 5)
	_, _, e4 := g.RecentOrders(ctx, "account", orderID, 51)
	_, e5 := g.Refunds(ctx, "")
	for i, err := range []error{e1, e2, e3, e4, e5} {
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("case %d: err = %v, want *InputError", i, err)
		}
		if code := ErrorCode(err); code != "invalid_input" {
			t.Errorf("case %d: ErrorCode = %s", i, code)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("%d upstream requests for invalid input", n)
	}
}

func TestOrderLookup(t *testing.T) {
	t.Parallel()
	tracking := "1Z999AA10123456784"
	delivery := time.Date(2026, 3, 15, 8, 0, 0, 0, time.UTC)
	want := &Order{
		ID: orderID, Number: "ORD-01001-B2K9P7", Name: "Spring restock",
		Status: "Submitted / In Progress", State: Choice{1, "Submitted"}, StatusReason: Choice{3, "In Progress"},
		Total:               Money{Amount: decimal.RequireFromString("1234.56"), Currency: "USD", Formatted: "$1,234.56"},
		RequestedDeliveryBy: &delivery,
		Customer:            &Ref{Type: "account", ID: "a0000000-0000-0000-0000-000000000001", Name: "Fabrikam, Inc."},
		Lines: []Line{
			{Number: 1, Product: &Product{ID: "b0000000-0000-0000-0000-000000000001", Name: "Espresso machine", SKU: "SKU-EM-100"},
				Quantity: decimal.RequireFromString("2"), UnitPrice: decimal.RequireFromString("617.13"), Amount: decimal.RequireFromString("1234.26")},
			{Number: 2, Description: "Gift wrap", WriteIn: true,
				Quantity: decimal.RequireFromString("3"), UnitPrice: decimal.RequireFromString("0.1"), Amount: decimal.RequireFromString("0.3")},
		},
		TrackingNumber: &tracking,
	}
	for _, ref := range []string{orderID, "{" + strings.ToUpper(orderID) + "}", "ORD-01001-B2K9P7"} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			up := newFake()
			up.on("salesorders", func(_ url.Values, path string) (string, error) {
				if strings.Contains(path, "(") {
					return orderJSON, nil
				}
				return `{"value":[` + orderJSON + `]}`, nil
			})
			g, _ := newTestGateway(t, up, Config{TrackingColumn: "contoso_trackingnumber", Model: customModel(t)})
			got, _, err := g.Order(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			reqs := up.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1: %v", len(reqs), up.paths())
			}
			r := reqs[0]
			if !strings.HasSuffix(r.Query.Get("$select"), ",contoso_trackingnumber") ||
				!strings.HasPrefix(r.Query.Get("$expand"), "order_details($select=") {
				t.Errorf("query: %v", r.Query)
			}
			if strings.HasPrefix(ref, "ORD") {
				if r.Path != "salesorders" || r.Query.Get("$filter") != "ordernumber eq 'ord-01001-b2k9p7'" {
					t.Errorf("by number: path %q filter %q", r.Path, r.Query.Get("$filter"))
				}
			} else if r.Path != "salesorders("+orderID+")" {
				t.Errorf("by id: path %q", r.Path)
			}
			// JSON shape the sidecar serves.
			b, _ := json.Marshal(got)
			for _, part := range []string{`"amount":"1234.56"`, `"status":"Submitted / In Progress"`, `"sku":"SKU-EM-100"`, `"trackingNumber":"1Z999AA10123456784"`} {
				if !strings.Contains(string(b), part) {
					t.Errorf("JSON lacks %s: %s", part, b)
				}
			}
		})
	}
}

func TestOrderNotFoundAndNoTracking(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.on("salesorders", func(_ url.Values, path string) (string, error) {
		if strings.Contains(path, "(") {
			return "", &dataverse.Error{Kind: dataverse.KindNotFound, Status: 404}
		}
		return `{"value":[` + orderJSON + `]}`, nil
	})
	g, _ := newTestGateway(t, up, Config{})
	if _, _, err := g.Order(context.Background(), orderID); !errors.Is(err, ErrNotFound) {
		t.Errorf("by id: err = %v, want ErrNotFound", err)
	}
	o, _, err := g.Order(context.Background(), "ORD-01001-B2K9P7")
	if err != nil {
		t.Fatal(err)
	}
	if o.TrackingNumber != nil || strings.Contains(up.requests()[1].Query.Get("$select"), "tracking") {
		t.Errorf("tracking column not configured, got %v", o.TrackingNumber)
	}
	if b, _ := json.Marshal(o); !strings.Contains(string(b), `"trackingNumber":null`) {
		t.Errorf("JSON: %s", b)
	}
}

func TestTrackingColumnValidatedAtNew(t *testing.T) {
	t.Parallel()
	// new_trackingnumber is a column of other orgs, not of this one.
	for _, col := range []string{"new_trackingnumber", "Contoso_TrackingNumber", "name;drop"} {
		_, err := New(Config{Conn: newFake(), TrackingColumn: col, Model: customModel(t)})
		if err == nil || !strings.Contains(err.Error(), "salesorder has no column") {
			t.Errorf("TrackingColumn %q: err = %v", col, err)
		}
	}
	g, err := New(Config{Conn: newFake(), TrackingColumn: "shipto_name", Model: customModel(t)})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

func TestRecentOrdersQuery(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.reply("salesorders", `{"value":[`+orderJSON+`]}`)
	g, _ := newTestGateway(t, up, Config{})
	got, _, err := g.RecentOrders(context.Background(), "Account", "{A0000000-0000-0000-0000-000000000001}", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Number != "ORD-01001-B2K9P7" || got[0].Total.Currency != "USD" || got[0].Status != "Submitted / In Progress" {
		t.Errorf("got %+v", got)
	}
	q := up.requests()[0].Query
	// Fetched once at the largest limit, whatever the limit asked for.
	if q.Get("$filter") != "_customerid_value eq a0000000-0000-0000-0000-000000000001" ||
		q.Get("$orderby") != "createdon desc,salesorderid asc" || q.Get("$top") != "50" {
		t.Errorf("query %v", q)
	}
}

// Every limit is cut from one cached answer: one request for all of them,
// and the list handed out cannot be appended into the cached array.
func TestRecentOrdersSlicedFromOneAnswer(t *testing.T) {
	t.Parallel()
	up := newFake()
	var rows []string
	for i := range 7 {
		rows = append(rows, strings.Replace(orderJSON, "ORD-01001-B2K9P7", fmt.Sprintf("ORD-%d", i), 1))
	}
	up.reply("salesorders", `{"value":[`+strings.Join(rows, ",")+`]}`)
	g, _ := newTestGateway(t, up, Config{})
	ctx := context.Background()
	for _, tc := range []struct{ limit, want int }{{1, 1}, {3, 3}, {7, 7}, {50, 7}, {2, 2}} {
		got, _, err := g.RecentOrders(ctx, "account", "a0000000-0000-0000-0000-000000000001", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var nums []string
		for _, o := range got {
			nums = append(nums, o.Number)
		}
		var want []string
		for i := range tc.want {
			want = append(want, fmt.Sprintf("ORD-%d", i))
		}
		if diff := cmp.Diff(want, nums); diff != "" {
			t.Errorf("limit %d (-want +got):\n%s", tc.limit, diff)
		}
		if cap(got) != len(got) {
			t.Errorf("limit %d: cap %d > len %d: an append would write into the cached list", tc.limit, cap(got), len(got))
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("%d requests for five limits, want 1", n)
	}
}

func TestStaleIfErrorWithDataverseKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind      dataverse.Kind
		wantStale bool
	}{
		{dataverse.KindThrottled, true},
		{dataverse.KindUnavailable, true},
		{dataverse.KindNetwork, true},
		{dataverse.KindTimeout, true},
		{dataverse.KindAuth, false},
		{dataverse.KindPermission, false},
		{dataverse.KindBadRequest, false},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			up := newFake()
			up.reply("accounts", accountsFab)
			g, clk := newTestGateway(t, up, Config{Mode: ModeAccounts})
			ctx := context.Background()
			if _, _, err := g.Customer(ctx, "orders@fabrikam.example"); err != nil {
				t.Fatal(err)
			}
			up.fail("accounts", tc.kind, 500)
			clk.Advance(6 * time.Minute)
			c, meta, err := g.Customer(ctx, "orders@fabrikam.example")
			if tc.wantStale {
				if err != nil || meta.Outcome != Stale || meta.Age != 6*time.Minute || c.Name != "Fabrikam, Inc." {
					t.Errorf("got %v, %+v, %v; want stale answer aged 6m", c, meta, err)
				}
			} else if dataverse.KindOf(err) != tc.kind {
				t.Errorf("err = %v, want kind %v passed through", err, tc.kind)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code string
	}{
		{&InputError{Field: "email"}, "invalid_input"},
		{ErrNotFound, "not_found"},
		{&dataverse.Error{Kind: dataverse.KindAuth}, "auth"},
		{&dataverse.Error{Kind: dataverse.KindPermission}, "permission"},
		{&dataverse.Error{Kind: dataverse.KindConfig}, "config"},
		{&dataverse.Error{Kind: dataverse.KindBadRequest}, "config"},
		{&dataverse.Error{Kind: dataverse.KindCanceled}, "unavailable"},
		{context.Canceled, "unavailable"},
		{&dataverse.Error{Kind: dataverse.KindThrottled, RetryAfter: time.Minute}, "throttled"},
		{&dataverse.Error{Kind: dataverse.KindUnavailable}, "unavailable"},
		{&dataverse.Error{Kind: dataverse.KindNetwork}, "unavailable"},
		{&dataverse.Error{Kind: dataverse.KindTimeout}, "timeout"},
		{&dataverse.Error{Kind: dataverse.KindBusy, RetryAfter: time.Second}, "busy"},
		{fmt.Errorf("lookup: %w", &dataverse.Error{Kind: dataverse.KindBusy}), "busy"},
		{context.DeadlineExceeded, "timeout"},
		{&PanicError{Value: "x"}, "internal"},
	} {
		if code := ErrorCode(tc.err); code != tc.code {
			t.Errorf("ErrorCode(%v) = %s, want %s", tc.err, code, tc.code)
		}
	}
	if d := RetryAfter(&dataverse.Error{Kind: dataverse.KindThrottled, RetryAfter: time.Minute}); d != time.Minute {
		t.Errorf("RetryAfter = %v", d)
	}
}

func TestTestAndRefunds(t *testing.T) {
	t.Parallel()
	up := newFake()
	g, _ := newTestGateway(t, up, Config{})
	res, err := g.Test(context.Background())
	if err != nil || *res != (TestResult{OrganizationID: "org-1", UserID: "user-1", BusinessUnitID: "bu-1"}) {
		t.Errorf("Test = %+v, %v", res, err)
	}
	r, err := g.Refunds(context.Background(), "ORD-1")
	if err != nil || r == nil || len(r) != 0 {
		t.Errorf("Refunds = %#v, %v; want empty non-nil list", r, err)
	}
}
