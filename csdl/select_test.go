package csdl

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// selection summarizes a selected model for comparisons.
type selection struct {
	Types     []string
	Navs      map[string][]string
	Sets      []string
	Bindings  map[string][]string
	Complex   []string
	Enums     []string
	Functions []string
	Actions   []string
	Imports   []string
}

func summarize(m *Model) selection {
	s := selection{Navs: map[string][]string{}, Bindings: map[string][]string{}}
	for _, t := range m.EntityTypes {
		s.Types = append(s.Types, t.Name)
		s.Navs[t.Name] = navNames(t.NavigationProperties)
	}
	for _, t := range m.ComplexTypes {
		s.Complex = append(s.Complex, t.Name)
	}
	for _, t := range m.EnumTypes {
		s.Enums = append(s.Enums, t.Name)
	}
	for _, o := range m.Functions {
		s.Functions = append(s.Functions, o.Name)
	}
	for _, o := range m.Actions {
		s.Actions = append(s.Actions, o.Name)
	}
	for _, es := range m.Container.EntitySets {
		s.Sets = append(s.Sets, es.Name)
		for _, b := range es.Bindings {
			s.Bindings[es.Name] = append(s.Bindings[es.Name], b.Path+"->"+b.Target)
		}
	}
	for _, i := range m.Container.FunctionImports {
		s.Imports = append(s.Imports, i.Name)
	}
	return s
}

func TestSelect(t *testing.T) {
	t.Parallel()
	m := readQuirks(t)
	tests := []struct {
		name   string
		tables []string
		want   selection
	}{
		{"one table drops navigations to others", []string{"salesorder"}, selection{
			Types:     []string{"crmbaseentity", "salesorder"},
			Navs:      map[string][]string{"crmbaseentity": nil, "salesorder": nil},
			Sets:      []string{"salesorders"},
			Bindings:  map[string][]string{},
			Complex:   []string{"WhoAmIResponse"},
			Functions: []string{"WhoAmI"},
			Imports:   []string{"WhoAmI"},
		}},
		{"related tables keep their navigations, any order and name form", []string{"Microsoft.Dynamics.CRM.salesorderdetail", "mscrm.account", "salesorder", "salesorder"}, selection{
			Types:     []string{"crmbaseentity", "account", "salesorder", "salesorderdetail"},
			Navs:      map[string][]string{"crmbaseentity": nil, "account": {"order_customer_accounts"}, "salesorder": {"order_details", "customerid_account"}, "salesorderdetail": {"salesorderid"}},
			Sets:      []string{"accounts", "salesorders", "salesorderdetails"},
			Bindings:  map[string][]string{"accounts": {"order_customer_accounts->salesorders"}, "salesorders": {"customerid_account->accounts", "order_details->salesorderdetails"}},
			Complex:   []string{"WhoAmIResponse"},
			Functions: []string{"WhoAmI"},
			Imports:   []string{"WhoAmI"},
		}},
		{"complex and enum types used by properties", []string{"solution"}, selection{
			Types:     []string{"crmbaseentity", "solution"},
			Navs:      map[string][]string{"crmbaseentity": nil, "solution": nil},
			Sets:      []string{"solutions"},
			Bindings:  map[string][]string{},
			Complex:   []string{"WhoAmIResponse"},
			Functions: []string{"WhoAmI"},
			Imports:   []string{"WhoAmI"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sel, err := Select(m, tt.tables)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(sel)); diff != "" {
				t.Errorf("Select(%q) (-want +got)\n%s", tt.tables, diff)
			}
			rev := slices.Clone(tt.tables)
			slices.Reverse(rev)
			sel2, err := Select(m, rev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(summarize(sel), summarize(sel2)); diff != "" {
				t.Errorf("Select depends on the order of tables (-forward +reverse)\n%s", diff)
			}
			read, err := Read(strings.NewReader(quirksDoc), Tables(tt.tables...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(summarize(sel), summarize(read)); diff != "" {
				t.Errorf("Read with Tables differs from Select (-select +read)\n%s", diff)
			}
		})
	}
}

func TestSelectKeepsLookupColumnsAndInput(t *testing.T) {
	t.Parallel()
	m := readQuirks(t)
	sel, err := Select(m, []string{"salesorder"})
	if err != nil {
		t.Fatal(err)
	}
	so := sel.EntityType("salesorder")
	if so.Property("_customerid_value") == nil || so.Property("_ownerid_value") == nil {
		t.Error("lookup columns dropped with their navigation properties")
	}
	if len(so.Lookups()) != 0 {
		t.Errorf("Lookups() = %d, want none: all targets are unselected", len(so.Lookups()))
	}
	if got := len(m.EntityType("salesorder").NavigationProperties); got != 4 {
		t.Errorf("Select changed its input: salesorder has %d navigation properties, want 4", got)
	}
	if sel.EntityType("salesorder").Base != sel.EntityType("crmbaseentity") {
		t.Error("selected salesorder's Base is not the selected crmbaseentity")
	}
	if sel.ComplexType("Solution") != nil || sel.EntityType("account") != nil {
		t.Error("unselected declarations in the selection")
	}
}

func TestSelectUsesComplexAndEnumTypes(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(quirksDoc, `<Property name="friendlyname" Type="Edm.String"/>`, ``, 1)
	doc = strings.Replace(doc, `<Property Name="friendlyname" Type="Edm.String"/>`, `<Property Name="info" Type="mscrm.Solution"/>`, 1)
	m, err := Read(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Select(m, []string{"solution"})
	if err != nil {
		t.Fatal(err)
	}
	got := summarize(sel)
	want := []any{[]string{"Solution", "SolutionComponent", "WhoAmIResponse"}, []string{"SolutionKind"}}
	if diff := cmp.Diff(want, []any{got.Complex, got.Enums}); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestSelectUnknownTables(t *testing.T) {
	t.Parallel()
	m := readQuirks(t)
	_, err := Select(m, []string{"acount", "salesorder", "zzzzzzzzzzzzzzzz", "Account"})
	if err == nil {
		t.Fatal("Select accepted unknown tables")
	}
	want := `csdl: unknown table "acount"; did you mean "account"?
csdl: unknown table "zzzzzzzzzzzzzzzz"
csdl: unknown table "Account"; did you mean "account"?`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if _, err := Read(strings.NewReader(quirksDoc), Tables("acount")); err == nil || !strings.Contains(err.Error(), `did you mean "account"`) {
		t.Errorf("Read(Tables(acount)) error = %v, want a suggestion", err)
	}
}
