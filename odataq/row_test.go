package odataq

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// row is shaped like a generated model.
type row struct {
	Extra     map[string]json.RawMessage `json:"-"`
	Name      *string                    `json:"name,omitempty"`
	Total     *decimal.Decimal           `json:"totalamount,omitempty"`
	Formatted *string                    `json:"totalamount@OData.Community.Display.V1.FormattedValue,omitempty"`
}

func (r *row) UnmarshalJSON(b []byte) error {
	type plain row
	extra, err := DecodeRow(b, (*plain)(r), Names[row]())
	r.Extra = extra
	return err
}

func TestNames(t *testing.T) {
	t.Parallel()
	want := map[string]bool{"name": true, "totalamount": true, "totalamount@OData.Community.Display.V1.FormattedValue": true}
	if diff := cmp.Diff(want, Names[row]()); diff != "" {
		t.Error(diff)
	}
}

func TestDecodeRowKeepsUnknownMembers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		wantName  string
		wantExtra map[string]string
	}{
		{`{"name":"A","totalamount":12.50}`, "A", nil},
		{`{"name":"A","contoso_trackingnumber":"TRK-1","order_details@odata.nextLink":"https://x/next"}`, "A",
			map[string]string{"contoso_trackingnumber": `"TRK-1"`, "order_details@odata.nextLink": `"https://x/next"`}},
		{`{"name":"B","contoso_count":null}`, "B", map[string]string{"contoso_count": "null"}},
	} {
		var r row
		if err := json.Unmarshal([]byte(tc.in), &r); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		var extra map[string]string
		for k, v := range r.Extra {
			if extra == nil {
				extra = map[string]string{}
			}
			extra[k] = string(v)
		}
		if *r.Name != tc.wantName {
			t.Errorf("%s: Name = %q, want %q", tc.in, *r.Name, tc.wantName)
		}
		if diff := cmp.Diff(tc.wantExtra, extra); diff != "" {
			t.Errorf("%s: Extra (-want +got):\n%s", tc.in, diff)
		}
	}
	var r row
	if err := json.Unmarshal([]byte(`{"name":1}`), &r); err == nil {
		t.Error("a member of the wrong type decoded without error")
	}
}

func TestExtraAndMember(t *testing.T) {
	t.Parallel()
	var r row
	if err := json.Unmarshal([]byte(`{"name":"A","totalamount":12.5,"contoso_trackingnumber":"TRK-1","contoso_qty":3,"contoso_none":null}`), &r); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := Extra[string](r.Extra, "contoso_trackingnumber"); v != "TRK-1" || !ok || err != nil {
		t.Errorf("Extra[string](contoso_trackingnumber) = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := Extra[int](r.Extra, "contoso_qty"); v != 3 || !ok || err != nil {
		t.Errorf("Extra[int](contoso_qty) = %d, %v, %v", v, ok, err)
	}
	if _, ok, err := Extra[string](r.Extra, "contoso_qty"); ok || err == nil {
		t.Errorf("Extra[string] of a number: ok %v, err %v; want an error", ok, err)
	}
	for _, name := range []string{"contoso_none", "contoso_absent"} {
		if _, ok, err := Extra[string](r.Extra, name); ok || err != nil {
			t.Errorf("Extra(%s): ok %v, err %v; want absent", name, ok, err)
		}
	}

	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"name", `"A"`, true},                                                // a field
		{"totalamount", `"12.5"`, true},                                      // a field, encoded again
		{"contoso_trackingnumber", `"TRK-1"`, true},                          // from Extra
		{"totalamount@OData.Community.Display.V1.FormattedValue", "", false}, // a nil field
		{"contoso_none", "", false},
		{"nosuch", "", false},
	} {
		raw, ok, err := Member(&r, tc.name)
		if err != nil || ok != tc.ok || string(raw) != tc.want {
			t.Errorf("Member(%s) = %s, %v, %v; want %s, %v", tc.name, raw, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := Member(42, "name"); err == nil {
		t.Error("Member of an int: no error")
	}
}

func TestGetPage(t *testing.T) {
	t.Parallel()
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		if r.URL.Path == "/missing" {
			http.Error(w, `{"error":{"code":"0x80040217"}}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":[{"name":"A","contoso_x":1},{"name":"B"}],"@odata.nextLink":"` + "http://" + r.Host + `/rows?$skiptoken=2"}`))
	}))
	defer srv.Close()
	p, err := GetPage[row](context.Background(), srv.Client(), srv.URL+"/rows", Editor("$top=2", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Value) != 2 || *p.Value[1].Name != "B" || string(p.Value[0].Extra["contoso_x"]) != "1" {
		t.Errorf("page = %+v", p)
	}
	if p.NextLink != srv.URL+"/rows?$skiptoken=2" {
		t.Errorf("NextLink = %q", p.NextLink)
	}
	if diff := cmp.Diff([]string{"$top=2"}, queries); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	_, err = GetPage[row](context.Background(), srv.Client(), srv.URL+"/missing", nil)
	if se, ok := err.(*StatusError); !ok || se.StatusCode != http.StatusNotFound {
		t.Errorf("404: err = %v, want a *StatusError", err)
	}
}

// TestDecodeRowAgreesWithEncodingJSON: the light member scan finds exactly
// the members encoding/json finds, with the same raw values, whatever the
// spacing, nesting and escaping.
func TestDecodeRowAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`,
		` { "name" : "A" , "x" : [ 1 , { "y" : "}]" } ] , "z":{"a":[]} } `,
		"{\n\t\"name\":\"a\\\"b\",\"q\\u0075ote\":\"\\\\\",\"n\":-1.5e3,\"t\":true,\"f\":false,\"nil\":null}",
		`{"totalamount":1,"e\u0078tra":"{[\"","name":"A"}`,
	} {
		var r row
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &all); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for k, v := range all {
			if !Names[row]()[k] {
				want[k] = string(v)
			}
		}
		got := map[string]string{}
		for k, v := range r.Extra {
			got[k] = string(v)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Extra (-encoding/json +DecodeRow):\n%s", in, diff)
		}
	}
}

// FuzzMembers: for any JSON object, the light scan yields the members
// encoding/json yields, with the same raw values.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a" : [ "]}" , {"b":"\""} ] , "c":null}`, `{"\u0061":"x","a\\b":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil || want == nil {
			return // not a JSON object
		}
		got := map[string]json.RawMessage{}
		err := members([]byte(in), func(key, raw []byte) error {
			var k string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				return err
			}
			got[k] = raw // a repeated key: the last wins, as in encoding/json
			return nil
		})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-encoding/json +members):\n%s", in, diff)
		}
	})
}
