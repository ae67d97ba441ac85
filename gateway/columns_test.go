package gateway

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/csdl"
	"github.com/google/go-cmp/cmp"
)

// Config.Model: the org's $metadata supplies the salesorder columns (so a
// custom tracking column is accepted) and New refuses an org that lacks a
// column the lookups read, naming it.
func TestModelAtNew(t *testing.T) {
	t.Parallel()
	read := func() *csdl.Model {
		f, err := os.Open("../testdata/csdl/org-custom.xml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := csdl.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	g, err := New(Config{Conn: newFake(), Model: read(), TrackingColumn: "contoso_trackingnumber"})
	if err != nil {
		t.Fatalf("New with the org's model: %v", err)
	}
	g.Close()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TrackingColumn: "contoso_trackingno"}, `trackingColumn: salesorder has no column "contoso_trackingno" in this org: did you mean contoso_trackingnumber?`},
		{Config{TrackingColumn: "totalamount"}, `trackingColumn: column "totalamount" of salesorder is not a text column or a lookup`},
		{Config{OrderFields: []string{"prioritycode", "contoso_deliverid"}}, `orderFields: salesorder has no column "contoso_deliverid" in this org: did you mean contoso_deliveryid?`},
		{Config{CustomerFields: []string{"nosuchfield"}}, `customerFields: contact or account has no column "nosuchfield"`},
		{Config{TrackingColumn: "Contoso TrackingNumber"}, `has no column "Contoso TrackingNumber"`},
	} {
		tc.cfg.Conn, tc.cfg.Model = newFake(), read()
		_, err := New(tc.cfg)
		var ce *ColumnError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want a ColumnError with %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{Conn: newFake(), TrackingColumn: "contoso_trackingnumber"}); err == nil {
		t.Error("New accepted a custom column without the org's schema")
	}
	g, err = New(Config{Conn: newFake(), Model: read(), TrackingColumn: "contoso_deliveryid",
		OrderFields:    []string{"prioritycode", "_contoso_deliveryid_value", "freightamount", "willcall", "datefulfilled"},
		CustomerFields: []string{"emailaddress2", "accountnumber", "birthdate"}})
	if err != nil {
		t.Fatalf("a lookup tracking column and fields of every kind: %v", err)
	}
	x := g.extra
	g.Close()
	got := []any{x.tracking.prop, x.orderProps(), props(x.contact), props(x.account)}
	want := []any{"_contoso_deliveryid_value",
		[]string{"_contoso_deliveryid_value", "prioritycode", "_contoso_deliveryid_value", "freightamount", "willcall", "datefulfilled"},
		[]string{"emailaddress2", "birthdate"}, []string{"emailaddress2", "accountnumber"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resolved columns (-want +got):\n%s", d)
	}

	m := read()
	for _, et := range m.EntityTypes {
		if et.Name == "salesorderdetail" {
			et.Properties = slices.DeleteFunc(et.Properties, func(p *csdl.Property) bool { return p.Name == "sequencenumber" })
		}
	}
	_, err = New(Config{Conn: newFake(), Model: m})
	if err == nil || !strings.Contains(err.Error(), "salesorderdetail.sequencenumber") {
		t.Errorf("org without salesorderdetail.sequencenumber: err = %v", err)
	}
}
