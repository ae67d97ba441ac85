package entitydefs

// Checks of the shared fixtures in testdata/csdl and testdata/entitydefs: the
// CSDL documents are well formed and self-contained, org-custom.xml only adds
// to org.xml, and every CSDL column has an EntityDefinitions attribute. The
// CSDL is read with encoding/xml so that these checks do not depend on the
// csdl package they help to test.

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// node is a generic XML element.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []*node    `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) all(local string) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.XMLName.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// walk calls f for n and every descendant.
func (n *node) walk(f func(*node)) {
	f(n)
	for _, c := range n.Children {
		c.walk(f)
	}
}

type schemaDoc struct {
	types     map[string]*node // EntityType and ComplexType by unqualified name
	entitySet map[string]*node
	root      *node
}

func readCSDL(t *testing.T, name string) *schemaDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "csdl", name))
	if err != nil {
		t.Fatal(err)
	}
	var root node
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("%s is not well-formed XML: %v", name, err)
	}
	doc := &schemaDoc{types: map[string]*node{}, entitySet: map[string]*node{}, root: &root}
	root.walk(func(n *node) {
		switch n.XMLName.Local {
		case "EntityType", "ComplexType":
			if doc.types[n.attr("Name")] != nil {
				t.Errorf("%s: type %s declared twice", name, n.attr("Name"))
			}
			doc.types[n.attr("Name")] = n
		case "EntitySet":
			doc.entitySet[n.attr("Name")] = n
		}
	})
	return doc
}

// resolve maps "mscrm.x", "Microsoft.Dynamics.CRM.x" and "Collection(...)" to the declared type x.
func (d *schemaDoc) resolve(qname string) (*node, bool) {
	qname = strings.TrimSuffix(strings.TrimPrefix(qname, "Collection("), ")")
	for _, p := range []string{"mscrm.", "Microsoft.Dynamics.CRM."} {
		if n, ok := strings.CutPrefix(qname, p); ok {
			typ, ok := d.types[n]
			return typ, ok
		}
	}
	return nil, false
}

// chain returns the type and its base types.
func (d *schemaDoc) chain(typ *node) []*node {
	var out []*node
	for typ != nil && len(out) < 10 {
		out = append(out, typ)
		typ, _ = d.resolve(typ.attr("BaseType"))
	}
	return out
}

func (d *schemaDoc) member(typ *node, kind, name string) *node {
	for _, tt := range d.chain(typ) {
		for _, m := range tt.all(kind) {
			if m.attr("Name") == name {
				return m
			}
		}
	}
	return nil
}

var primitive = map[string]bool{
	"Edm.Guid": true, "Edm.String": true, "Edm.Int32": true, "Edm.Int64": true, "Edm.Decimal": true,
	"Edm.Double": true, "Edm.Boolean": true, "Edm.DateTimeOffset": true, "Edm.Date": true, "Edm.Binary": true,
}

// problems lists every reference in the document that does not resolve.
func (d *schemaDoc) problems() []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for name, typ := range d.types {
		if b := typ.attr("BaseType"); b != "" {
			if _, ok := d.resolve(b); !ok {
				bad("%s: BaseType %s", name, b)
			}
		}
		for _, key := range typ.all("Key") {
			for _, ref := range key.all("PropertyRef") {
				if d.member(typ, "Property", ref.attr("Name")) == nil {
					bad("%s: key %s is not a property", name, ref.attr("Name"))
				}
			}
		}
		if typ.XMLName.Local == "EntityType" && typ.attr("Abstract") != "true" && typ.attr("OpenType") != "true" {
			hasKey := false
			for _, tt := range d.chain(typ) {
				hasKey = hasKey || len(tt.all("Key")) > 0
			}
			if !hasKey {
				bad("%s: no key", name)
			}
		}
		for _, p := range typ.all("Property") {
			if t := p.attr("Type"); !primitive[t] {
				if _, ok := d.resolve(t); !ok {
					bad("%s.%s: type %s", name, p.attr("Name"), t)
				}
			}
		}
		for _, nav := range typ.all("NavigationProperty") {
			n, typeName := nav.attr("Name"), nav.attr("Type")
			target, ok := d.resolve(typeName)
			if !ok {
				bad("%s.%s: type %s", name, n, typeName)
				continue
			}
			collection := strings.HasPrefix(typeName, "Collection(")
			if !collection && nav.attr("Nullable") != "false" {
				bad("%s.%s: single-valued but not Nullable=false", name, n)
			}
			partner := d.member(target, "NavigationProperty", nav.attr("Partner"))
			if partner == nil {
				bad("%s.%s: partner %s not on %s", name, n, nav.attr("Partner"), typeName)
			} else if partner.attr("Partner") != n {
				bad("%s.%s: partner %s points back to %s", name, n, nav.attr("Partner"), partner.attr("Partner"))
			}
			rcs := nav.all("ReferentialConstraint")
			if !collection && len(rcs) == 0 {
				bad("%s.%s: single-valued without ReferentialConstraint", name, n)
			}
			for _, rc := range rcs {
				if d.member(typ, "Property", rc.attr("Property")) == nil {
					bad("%s.%s: constraint property %s", name, n, rc.attr("Property"))
				}
				if d.member(target, "Property", rc.attr("ReferencedProperty")) == nil {
					bad("%s.%s: referenced property %s", name, n, rc.attr("ReferencedProperty"))
				}
			}
		}
	}
	d.root.walk(func(n *node) {
		switch n.XMLName.Local {
		case "ReturnType":
			if _, ok := d.resolve(n.attr("Type")); !ok && !primitive[n.attr("Type")] {
				bad("ReturnType %s", n.attr("Type"))
			}
		case "PropertyValue":
			// Alternate keys name their columns with PropertyPath; the
			// enclosing EntityType is checked below.
		case "FunctionImport":
			found := false
			d.root.walk(func(f *node) {
				found = found || (f.XMLName.Local == "Function" && "Microsoft.Dynamics.CRM."+f.attr("Name") == n.attr("Function"))
			})
			if !found {
				bad("FunctionImport %s: function %s", n.attr("Name"), n.attr("Function"))
			}
		}
	})
	for name, typ := range d.types {
		typ.walk(func(n *node) {
			if p := n.attr("PropertyPath"); p != "" && d.member(typ, "Property", p) == nil {
				bad("%s: PropertyPath %s", name, p)
			}
		})
	}
	for name, set := range d.entitySet {
		typ, ok := d.resolve(set.attr("EntityType"))
		if !ok {
			bad("set %s: type %s", name, set.attr("EntityType"))
			continue
		}
		for _, b := range set.all("NavigationPropertyBinding") {
			nav := d.member(typ, "NavigationProperty", b.attr("Path"))
			target := d.entitySet[b.attr("Target")]
			if nav == nil || target == nil {
				bad("set %s: binding %s -> %s", name, b.attr("Path"), b.attr("Target"))
				continue
			}
			navType, _ := d.resolve(nav.attr("Type"))
			setType, _ := d.resolve(target.attr("EntityType"))
			if navType != setType {
				bad("set %s: binding %s targets a set of another type", name, b.attr("Path"))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestCSDLFixturesResolve(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"org.xml", "org-custom.xml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := readCSDL(t, name)
			for _, p := range d.problems() {
				t.Error(p)
			}
			for _, table := range []string{"account", "contact", "salesorder", "salesorderdetail", "product"} {
				if d.types[table] == nil {
					t.Errorf("no EntityType %s", table)
				}
			}
		})
	}
}

// TestProblemsDetected keeps TestCSDLFixturesResolve honest: a broken
// reference must be reported.
func TestProblemsDetected(t *testing.T) {
	t.Parallel()
	d := readCSDL(t, "org.xml")
	so := d.types["salesorder"]
	for _, nav := range so.all("NavigationProperty") {
		if nav.attr("Name") == "order_details" {
			for i := range nav.Attrs {
				if nav.Attrs[i].Name.Local == "Partner" {
					nav.Attrs[i].Value = "nosuchnav"
				}
			}
		}
	}
	if got := d.problems(); len(got) == 0 {
		t.Error("a broken Partner was not reported")
	}
}

// TestCustomOnlyAdds checks that org-custom.xml is org.xml plus inserted
// lines, so golden diffs of generated code show only the customisations.
func TestCustomOnlyAdds(t *testing.T) {
	t.Parallel()
	read := func(name string) []string {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "csdl", name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(data), "\n")
	}
	base, custom := read("org.xml"), read("org-custom.xml")
	i := 0
	for _, line := range custom {
		if i < len(base) && line == base[i] {
			i++
		}
	}
	if i != len(base) {
		t.Errorf("org.xml line %d %q is missing or changed in org-custom.xml", i+1, base[i])
	}
	if len(custom) <= len(base) {
		t.Error("org-custom.xml adds nothing")
	}
}

// attributeTypes lists the AttributeTypes each Edm type may come from.
var attributeTypes = map[string][]string{
	"Edm.Guid":           {"Uniqueidentifier", "Lookup", "Customer", "Owner"},
	"Edm.String":         {"String", "Memo"},
	"Edm.Int32":          {"Integer", "Picklist", "State", "Status"},
	"Edm.Int64":          {"BigInt"},
	"Edm.Decimal":        {"Money", "Decimal"},
	"Edm.Double":         {"Double"},
	"Edm.Boolean":        {"Boolean"},
	"Edm.DateTimeOffset": {"DateTime"},
	"Edm.Date":           {"DateTime"},
}

func TestEveryColumnHasAnAttribute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ csdl, defs string }{{"org.xml", "org.json"}, {"org-custom.xml", "org-custom.json"}} {
		t.Run(tc.csdl, func(t *testing.T) {
			t.Parallel()
			doc := readCSDL(t, tc.csdl)
			defs := readFixture(t, tc.defs)
			tables := 0
			for name, set := range doc.entitySet {
				typeName := strings.TrimPrefix(set.attr("EntityType"), "Microsoft.Dynamics.CRM.")
				typ := doc.types[typeName]
				e := defs.Entity(typeName)
				if e == nil {
					t.Errorf("%s: no entity definition for %s", tc.defs, typeName)
					continue
				}
				tables++
				if e.EntitySetName != name {
					t.Errorf("%s: EntitySetName %q, CSDL set %q", typeName, e.EntitySetName, name)
				}
				for _, col := range []string{e.PrimaryIdAttribute, e.PrimaryNameAttribute} {
					if e.Attribute(col) == nil || typ == nil || doc.member(typ, "Property", col) == nil {
						t.Errorf("%s: primary attribute %q is not a column", typeName, col)
					}
				}
				for _, p := range typ.all("Property") {
					col := p.attr("Name")
					a := e.Attribute(col)
					if a == nil {
						t.Errorf("%s.%s: no attribute", typeName, col)
						continue
					}
					if strings.HasPrefix(col, "_") != a.IsLookup() {
						t.Errorf("%s.%s: property form does not match AttributeType %s", typeName, col, a.AttributeType)
					}
					if !slices.Contains(attributeTypes[p.attr("Type")], a.AttributeType) {
						t.Errorf("%s.%s: %s column has AttributeType %s", typeName, col, p.attr("Type"), a.AttributeType)
					}
					if a.SchemaName == "" || !strings.EqualFold(strings.TrimSuffix(strings.TrimPrefix(col, "_"), "_value"), a.SchemaName) {
						t.Errorf("%s.%s: SchemaName %q", typeName, col, a.SchemaName)
					}
					switch a.AttributeType {
					case "Picklist", "State", "Status", "Boolean":
						if a.OptionSet == nil || len(a.OptionSet.Options) == 0 {
							t.Errorf("%s.%s: %s without options", typeName, col, a.AttributeType)
						}
					}
					if a.IsLookup() {
						for _, target := range a.Targets {
							if defs.Entity(target) == nil {
								t.Errorf("%s.%s: target %s has no definition", typeName, col, target)
							}
						}
					}
				}
			}
			if tables < 5 {
				t.Errorf("only %d tables checked", tables)
			}
		})
	}
}

// TestStatusOptionsBelongToStates checks that every status reason names an
// existing state, and every state's default status exists.
func TestStatusOptionsBelongToStates(t *testing.T) {
	t.Parallel()
	defs := readFixture(t, "org-custom.json")
	for _, e := range defs.Entities {
		state, status := e.Attribute("statecode"), e.Attribute("statuscode")
		if state == nil || status == nil {
			continue
		}
		for _, s := range status.OptionSet.Options {
			if s.State == nil {
				t.Errorf("%s statuscode %d: no State", e.LogicalName, s.Value)
			} else if _, ok := state.Option(*s.State); !ok {
				t.Errorf("%s statuscode %d: state %d does not exist", e.LogicalName, s.Value, *s.State)
			}
		}
		for _, s := range state.OptionSet.Options {
			if s.DefaultStatus == nil || s.InvariantName == "" {
				t.Errorf("%s statecode %d: DefaultStatus or InvariantName missing", e.LogicalName, s.Value)
			} else if o, ok := status.Option(*s.DefaultStatus); !ok || o.State == nil || *o.State != s.Value {
				t.Errorf("%s statecode %d: default status %d is not one of its reasons", e.LogicalName, s.Value, *s.DefaultStatus)
			}
		}
	}
}
