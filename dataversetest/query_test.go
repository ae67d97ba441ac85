package dataversetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
	"github.com/google/go-cmp/cmp"
)

// demo is one server with the demo data shared by the read-only query tests.
func demo(t *testing.T) (*Server, string) {
	t.Helper()
	s := newTestServer(t, Options{})
	return s, secretToken(t, s)
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return m
}

func q(path string, params ...string) string {
	v := make([]string, 0, len(params)/2)
	for i := 0; i+1 < len(params); i += 2 {
		v = append(v, params[i]+"="+url.QueryEscape(params[i+1]))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + strings.Join(v, "&")
}

func TestQueries(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	alexOrder := seedgen.ID("salesorder", seedgen.AlexOrderNumber)
	tests := []struct {
		name       string
		path       string
		status     int
		wantCount  int    // rows in value, -1 = single record
		wantInBody string // substring
	}{
		{"email eq is case-insensitive", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq 'ALEX.WU@EXAMPLE.COM'"), 200, 1, `"fullname":"Alex Wu"`},
		{"plus address", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq 'sam+orders@example.com'"), 200, 1, `"fullname":"Sam Rivera"`},
		{"apostrophe escaped", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq 'mia.o''connor@example.com'"), 200, 1, `"fullname":"Mia O'Connor"`},
		{"any of three emails", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq '"+seedgen.SharedEmail+"' or emailaddress2 eq '"+seedgen.SharedEmail+"' or emailaddress3 eq '"+seedgen.SharedEmail+"'"), 200, 1, ""},
		{"account email", q("accounts", "$select", "name", "$filter", "emailaddress1 eq '"+seedgen.FabrikamOrderEmail+"'"), 200, 1, `"name":"Fabrikam, Inc."`},
		{"no contact has the fabrikam email", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq '"+seedgen.FabrikamOrderEmail+"'"), 200, 0, ""},
		{"order by number", q("salesorders", "$select", "ordernumber,totalamount", "$filter", "ordernumber eq '"+seedgen.AlexOrderNumber+"'"), 200, 1, `"_transactioncurrencyid_value"`},
		{"and with state", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq 'alex.wu@example.com' and statecode eq 0"), 200, 1, ""},
		{"not and parentheses", q("accounts", "$select", "name", "$filter", "not (statecode eq 0) and (customertypecode eq 3 or customertypecode ne 3)"), 200, 2, ""},
		{"contains startswith endswith", q("contacts", "$select", "fullname", "$filter", "contains(fullname,'wu') and startswith(emailaddress1,'ALEX') and endswith(emailaddress1,'.com')"), 200, 1, ""},
		{"guid literal", q("salesorderdetails", "$select", "lineitemnumber", "$filter", "_salesorderid_value eq "+alexOrder), 200, 3, ""},
		{"null", q("salesorderdetails", "$select", "productdescription", "$filter", "_salesorderid_value eq "+alexOrder+" and _productid_value eq null"), 200, 1, `"productdescription":`},
		{"numbers and top", q("products", "$select", "name,price", "$filter", "price gt 10.5", "$orderby", "price desc", "$top", "5"), 200, 5, ""},
		{"nav path", q("contacts", "$select", "fullname", "$filter", "parentcustomerid_account/name eq 'Adventure Works Cycles' and emailaddress1 eq 'alex.wu@example.com'"), 200, 1, ""},
		{"retrieve by key", q("salesorders("+alexOrder+")", "$select", "ordernumber"), 200, -1, `"ordernumber":"` + seedgen.AlexOrderNumber + `"`},
		{"retrieve missing", "salesorders(00000000-0000-0000-0000-000000000001)", 404, 0, `"code":"0x80040217","message":"salesorder With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"`},
		{"alternate key not declared", "salesorders(ordernumber='X')", 400, 0, `0x80060888`},
		{"unknown column", q("contacts", "$select", "x"), 400, 0, `"message":"Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.contact'."`},
		{"unknown filter column", q("contacts", "$filter", "x eq 1"), 400, 0, `Could not find a property named 'x'`},
		// wire facts §3.2: custom-api.md shows 0x8006088a for an unknown segment.
		{"unknown set", "nopes", 404, 0, `"code":"0x8006088a","message":"Resource not found for the segment 'nopes'."`},
		{"unknown navigation", "salesorders(" + alexOrder + ")/nopes", 404, 0, `"code":"0x8006088a","message":"Resource not found for the segment 'nopes'."`},
		{"unterminated literal", q("contacts", "$filter", "lastname eq 'O'Bryan'"), 400, 0, `"message":"There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."`},
		{"top in nested expand", q("salesorders", "$expand", "customerid_contact($select=fullname;$top=1)"), 400, 0, `Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested one-to-many relationship.`},
		{"orderby in expand with nested expand", q("salesorders", "$expand", "order_details($orderby=lineitemnumber;$expand=productid($select=name))"), 400, 0, `Only $select and $filter`},
		{"expand collection with orderby", q("salesorders("+alexOrder+")", "$select", "name", "$expand", "order_details($select=lineitemnumber;$orderby=lineitemnumber desc)"), 200, -1, `"lineitemnumber":3`},
		{"service document", "", 200, 9, `{"name":"salesorders","kind":"EntitySet","url":"salesorders"}`},
		{"navigation", q("salesorders("+alexOrder+")/order_details", "$select", "lineitemnumber"), 200, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := get(t, s, tok, tc.path)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.wantInBody != "" && !strings.Contains(r.body, tc.wantInBody) {
				t.Errorf("body lacks %s:\n%s", tc.wantInBody, r.body)
			}
			if tc.status != 200 {
				return
			}
			m := decode(t, r.body)
			if tc.wantCount >= 0 {
				vals, _ := m["value"].([]any)
				if tc.name != "service document" && len(vals) != tc.wantCount {
					t.Errorf("%d rows, want %d: %s", len(vals), tc.wantCount, r.body)
				}
			} else if !strings.HasSuffix(m["@odata.context"].(string), "/$entity") || r.header.Get("ETag") == "" {
				t.Errorf("single record: context %v ETag %q", m["@odata.context"], r.header.Get("ETag"))
			}
		})
	}
}

func TestParsedFilterRecorded(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	get(t, s, tok, q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq 'a@b.c' or emailaddress2 eq 'a@b.c'"))
	reqs := s.Requests()
	got := reqs[len(reqs)-1]
	want := Or{Compare{"emailaddress1", "eq", "a@b.c"}, Compare{"emailaddress2", "eq", "a@b.c"}}
	if diff := cmp.Diff(any(want), got.ParsedFilter); diff != "" {
		t.Errorf("ParsedFilter (-want +got):\n%s", diff)
	}
	if got.Filter != "emailaddress1 eq 'a@b.c' or emailaddress2 eq 'a@b.c'" {
		t.Errorf("Filter %q", got.Filter)
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Expr
		err  string
	}{
		{"a eq 'x'", Compare{"a", "eq", "x"}, ""},
		{"a eq 'O''Bryan'", Compare{"a", "eq", "O'Bryan"}, ""},
		{"_x_value eq 7D716234-9628-ED11-9DB1-000D3A320482", Compare{"_x_value", "eq", Guid("7d716234-9628-ed11-9db1-000d3a320482")}, ""},
		{"n ge 10.5 and b eq true", And{Compare{"n", "ge", Number("10.5")}, Compare{"b", "eq", true}}, ""},
		{"not (a eq null or b ne false)", Not{Or{Compare{"a", "eq", nil}, Compare{"b", "ne", false}}}, ""},
		{"contains(name,'sample')", Func{"contains", "name", "sample"}, ""},
		{"a eq 'x' or b eq 'y' and c eq 'z'", Or{Compare{"a", "eq", "x"}, And{Compare{"b", "eq", "y"}, Compare{"c", "eq", "z"}}}, ""},
		{"lastname eq 'O'Bryan'", nil, "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."},
		{"a eq", nil, "Syntax error at position 4 in 'a eq'."},
		{"a xx 1", nil, "Syntax error at position 2 in 'a xx 1'."},
	}
	for _, tc := range tests {
		got, err := ParseFilter(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFilter(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseFilter(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestDenyRead(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	s.DenyRead("salesorder")
	r := get(t, s, tok, q("salesorders", "$select", "name"))
	want := "Principal user (Id=" + DefaultUserID + ", type=8, roleCount=1, privilegeCount=431, accessMode=0), is missing prvReadSalesOrder privilege (Id="
	if r.status != http.StatusForbidden || !strings.Contains(r.body, `"code":"0x80040220"`) || !strings.Contains(r.body, want) ||
		!strings.Contains(r.body, "on OTC=1088 for entity 'salesorder'. context.Caller="+DefaultUserID) {
		t.Errorf("got %d %s", r.status, r.body)
	}
	if r := get(t, s, tok, q("contacts", "$select", "fullname", "$expand", "order_customer_contacts($select=name)")); r.status != 403 {
		t.Errorf("expand into a denied table: %d", r.status)
	}
	if r := get(t, s, tok, q("contacts", "$select", "fullname", "$top", "1")); r.status != 200 {
		t.Errorf("other tables readable: %d", r.status)
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	var names []string
	next := q("accounts", "$select", "name", "$top", "3")
	for page := 0; next != ""; page++ {
		if page > 20 {
			t.Fatal("paging does not end")
		}
		r := get(t, s, tok, next, "Prefer", "odata.maxpagesize=7")
		if r.status != 200 || r.header.Get("Preference-Applied") != "odata.maxpagesize=7" {
			t.Fatalf("page %d: %d %q %s", page, r.status, r.header.Get("Preference-Applied"), r.body)
		}
		m := decode(t, r.body)
		for _, v := range m["value"].([]any) {
			names = append(names, v.(map[string]any)["name"].(string))
		}
		next = ""
		if l, ok := m["@odata.nextLink"].(string); ok {
			next = strings.TrimPrefix(l, s.URL()+"/api/data/v9.2/")
		}
	}
	if len(names) != 20 { // $top is ignored with maxpagesize
		t.Errorf("%d accounts over all pages, want 20", len(names))
	}
}
