package csdl

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// realMetadata is the real 2016 org $metadata, outside the repository.
var realMetadata = filepath.Join("..", "..", "shared", "realworld", "DynamicsCRM-2016-metadata.xml")

func openReal(tb testing.TB) *os.File {
	tb.Helper()
	f, err := os.Open(realMetadata)
	if err != nil {
		tb.Skipf("real metadata not available (%v); skipping", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

func TestRealMetadataCounts(t *testing.T) {
	t.Parallel()
	m, err := Read(openReal(t))
	if err != nil {
		t.Fatal(err)
	}
	got := [6]int{len(m.EntityTypes), len(m.Container.EntitySets), len(m.Functions), len(m.Actions), len(m.ComplexTypes), len(m.EnumTypes)}
	// Counted with grep -o in the file: the brief's 265/237/139/132 are
	// those of a later, edited copy of the same document.
	want := [6]int{264, 236, 166, 138, 131, 33}
	if got != want {
		t.Errorf("counts (EntityType, EntitySet, Function, Action, ComplexType, EnumType) = %v, want %v", got, want)
	}
}

// TestRealMetadataTables pins the five tables dvgate generates code for.
// Counts verified with grep on the file (properties / navigation properties
// between each <EntityType Name="..."> and its </EntityType>).
func TestRealMetadataTables(t *testing.T) {
	t.Parallel()
	full, err := Read(openReal(t))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Select(full, fiveTables)
	if err != nil {
		t.Fatal(err)
	}
	read, err := Read(openReal(t), Tables(fiveTables...))
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		Key         []string
		Props, Navs int
	}
	want := map[string]shape{
		"account":          {[]string{"accountid"}, 154, 70},
		"contact":          {[]string{"contactid"}, 192, 76},
		"salesorder":       {[]string{"salesorderid"}, 98, 39},
		"salesorderdetail": {[]string{"salesorderdetailid"}, 66, 15},
		"product":          {[]string{"productid"}, 58, 36},
	}
	got := map[string]shape{}
	for name := range want {
		et := full.EntityType(name)
		got[name] = shape{et.EffectiveKey(), len(et.AllProperties()), len(et.AllNavigationProperties())}
		// The selection keeps every column, and only navigations among the five.
		for _, m := range []*Model{sel, read} {
			st := m.EntityType(name)
			if len(st.AllProperties()) != len(et.AllProperties()) {
				t.Errorf("%s: selection has %d properties, want %d", name, len(st.AllProperties()), len(et.AllProperties()))
			}
			for _, n := range st.AllNavigationProperties() {
				if _, ok := want[bareName(n.Type)]; !ok {
					t.Errorf("%s: selection keeps navigation %s to %s", name, n.Name, n.Type)
				}
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(summarize(sel), summarize(read)); diff != "" {
		t.Errorf("Read with Tables differs from Read+Select (-select +read)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"crmbaseentity", "account", "contact", "product", "salesorderdetail", "salesorder"}, summarize(read).Types); diff != "" {
		t.Errorf("selected types (-want +got)\n%s", diff)
	}

	so := read.EntityType("salesorder")
	var customer []string
	for _, l := range full.EntityType("salesorder").Lookups() {
		if l.Column.Name == "_customerid_value" {
			customer = navNames(l.Navigations)
		}
	}
	slices.Sort(customer)
	if diff := cmp.Diff([]string{"customerid_account", "customerid_contact"}, customer); diff != "" {
		t.Errorf("salesorder _customerid_value lookup (-want +got)\n%s", diff)
	}
	od := so.NavigationProperty("order_details")
	if od == nil || !od.Collection || od.Type != "Microsoft.Dynamics.CRM.salesorderdetail" || od.Partner != "salesorderid" {
		t.Errorf("salesorder.order_details = %+v, want Collection(Microsoft.Dynamics.CRM.salesorderdetail) partner salesorderid", od)
	}
	for _, m := range []*Model{full, read} {
		who := m.Function("WhoAmI")
		if who == nil || who.ReturnType == nil || who.ReturnType.Type != "Microsoft.Dynamics.CRM.WhoAmIResponse" || m.ComplexType(who.ReturnType.Type) == nil {
			t.Errorf("WhoAmI = %+v, want a function returning Microsoft.Dynamics.CRM.WhoAmIResponse", who)
		}
	}
	if es := read.EntitySetOf(so); es == nil || es.Name != "salesorders" || len(es.Annotations) != 6 {
		t.Errorf("salesorders entity set = %+v, want it with its 6 capability annotations", es)
	}
}
