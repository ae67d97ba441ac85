package gateway

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/generated"
	"github.com/google/go-cmp/cmp"
)

// DefaultOrderColumns must list exactly the generated model's salesorder
// columns (both come from testdata/csdl/org.xml), so that TrackingColumn is
// validated against what the generated client knows.
func TestDefaultOrderColumnsMatchGeneratedModel(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(generated.SalesOrderColumns)
	var gen []string
	for i := range v.NumField() {
		if c, ok := v.Field(i).Interface().(interface{ ColumnName() string }); ok {
			gen = append(gen, c.ColumnName())
		}
	}
	want := slices.Sorted(slices.Values(gen))
	got := slices.Sorted(slices.Values(DefaultOrderColumns))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultOrderColumns vs generated.SalesOrderColumns (-generated +ours):\n%s", diff)
	}
}

func TestOrderColumnsFromCSDL(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../testdata/csdl/org-custom.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := csdl.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := OrderColumnsFromCSDL(m)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cols, "contoso_trackingnumber") || !slices.Contains(cols, "ordernumber") {
		t.Errorf("columns %v lack contoso_trackingnumber or ordernumber", cols)
	}
	g, err := New(Config{Conn: newFake(), TrackingColumn: "contoso_trackingnumber", OrderColumns: cols})
	if err != nil {
		t.Fatalf("New with the org's columns: %v", err)
	}
	g.Close()
	if _, err := New(Config{Conn: newFake(), TrackingColumn: "contoso_trackingnumber"}); err == nil {
		t.Error("New accepted a custom column without the org's columns")
	}
}

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
	if _, err := New(Config{Conn: newFake(), Model: read(), TrackingColumn: "contoso_nosuchcolumn"}); err == nil {
		t.Error("New accepted a tracking column the org does not have")
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
