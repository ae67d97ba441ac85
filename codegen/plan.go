package codegen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/entitydefs"
)

// Annotation names that the models expose as fields.
const (
	annFormatted = "OData.Community.Display.V1.FormattedValue"
	annLogical   = "Microsoft.Dynamics.CRM.lookuplogicalname"
	annNav       = "Microsoft.Dynamics.CRM.associatednavigationproperty"
)

// plan is the naming and typing decision for every generated declaration.
// Both emitters (the OpenAPI document for oapi-codegen, and our templates)
// read it, so the names they use always agree.
type plan struct {
	Package string
	Header  string
	Tables  []*table // sorted by logical name
	WhoAmI  *whoAmI  // nil when the document has no WhoAmI function

	// Import needs of the table file.
	NeedTime, NeedDecimal, NeedStrconv bool
}

type whoAmI struct {
	Schema  string // Go type of the result, "WhoAmIResult"
	Columns []*column
}

type table struct {
	Logical     string // "salesorder"
	Go          string // "SalesOrder"
	Set         string // "salesorders"
	SetGo       string // "SalesOrders"
	Description string
	Key         *column // the primary key (a Guid)
	Columns     []*column
	Navs        []*nav
	Annots      []*annot
	AltKeys     []altKey
	Enums       []*enum
}

type altKey struct {
	Method  string // "GetByOrderNumber"
	Columns []*column
}

// Names derived from the table's names, shared by both emitters.
func (t *table) Collection() string { return t.Go + "Collection" }
func (t *table) ListOp() string     { return "List" + t.SetGo }
func (t *table) GetOp() string      { return "Get" + t.Go }

type column struct {
	Name        string // wire name: "statuscode", "_customerid_value"
	Go          string // field name: "StatusCode", "CustomerIdValue"
	Edm         string // "Edm.Int32"
	Description string
	// GoType is the Go type of the model field's value and of the column's
	// comparisons: "string", "openapi_types.UUID", "SalesOrderStatusCode", ...
	GoType string
	Enum   *enum
	Lookup bool
}

// IsString reports whether the column gets string functions.
func (c *column) IsString() bool { return c.Edm == "Edm.String" }

type nav struct {
	Name        string // "order_details"
	Go          string // "OrderDetails"
	Target      *table
	Collection  bool
	Description string
}

// annot is an instance-annotation field: "statecode@OData...FormattedValue".
type annot struct {
	Wire        string
	Go          string
	Description string
}

type enum struct {
	Go      string // "SalesOrderStatusCode"
	Column  *column
	Set     string // option-set name
	Members []member
}

type member struct {
	Go    string // "SalesOrderStatusCodeInProgress"
	Label string
	Value int
	Note  string // "state 1" for a status option
}

// reservedNames are package-level identifiers that the oapi-codegen client
// and our templates always declare.
var reservedNames = []string{"Service", "NewService", "WhoAmIResult", "Service.BaseURL", "Service.WhoAmI"}

// derived lists the package-level names a table with Go name g and entity
// set Go name s occupies.
func derived(g, s string) []string {
	return []string{
		// Collection is a schema of openapi.json, not a Go type, but
		// keeping it reserved keeps the names stable.
		g, g + "Collection", g + "Columns", g + "Nav", g + "Set",
		"Service." + s, // the Service method, beside BaseURL and WhoAmI
	}
}

// buildPlan names and types everything for the selected model.
func buildPlan(m *csdl.Model, defs *entitydefs.Definitions, pkg, header string) (*plan, error) {
	p := &plan{Package: pkg, Header: header}
	var types []*csdl.EntityType
	for _, t := range m.EntityTypes {
		if t.Abstract || m.EntitySetOf(t) == nil {
			continue
		}
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b *csdl.EntityType) int { return strings.Compare(a.Name, b.Name) })

	global := newNamespace(reservedNames...)
	byType := make(map[string]*table)
	for _, et := range types {
		ent := defs.Entity(et.Name)
		t := &table{Logical: et.Name, Set: m.EntitySetOf(et).Name, Description: oneLine(et.Description)}
		base := camel(et.Name)
		if ent != nil && goIdent(ent.SchemaName) != "" {
			base = goIdent(ent.SchemaName)
		}
		collection := ""
		if ent != nil {
			collection = ent.CollectionSchemaName
		}
		setGo := setGoName(t.Set, et.Name, base, collection)
		// Claim the table's name and all names derived from it together.
		name := base
		for i := 1; ; i++ {
			if i > 1 {
				name = base + "Table"
				if i > 2 {
					name = fmt.Sprintf("%sTable%d", base, i-1)
				}
			}
			sg := setGo
			if name != base {
				sg = name + "Set" + strings.TrimPrefix(setGo, base)
			}
			free := true
			for _, d := range derived(name, sg) {
				if global.taken(d) {
					free = false
				}
			}
			if free {
				for _, d := range derived(name, sg) {
					global.claim(d)
				}
				t.Go, t.SetGo = name, sg
				break
			}
		}
		byType[et.QualifiedName()] = t
		p.Tables = append(p.Tables, t)
	}

	for i, et := range types {
		if err := planTable(p, m, et, p.Tables[i], defs.Entity(et.Name), byType, global); err != nil {
			return nil, err
		}
	}
	if who := m.Function("WhoAmI"); who != nil && who.ReturnType != nil {
		if ct := m.ComplexType(who.ReturnType.Type); ct != nil {
			w := &whoAmI{Schema: "WhoAmIResult"}
			ns := newNamespace()
			for _, pr := range ct.Properties {
				w.Columns = append(w.Columns, &column{Name: pr.Name, Go: ns.claim(camel(pr.Name)), Edm: pr.Type, Description: oneLine(pr.Description)})
			}
			p.WhoAmI = w
		}
	}
	return p, nil
}

// setGoName names the entity set (the Service method). In order:
//   - EntityDefinitions' CollectionSchemaName, when given ("TransactionCurrencies");
//   - the table's Go name plus the set name's plural ending, when the set
//     name extends the logical name ("salesorders" -> "SalesOrders");
//   - the table's Go name with its last letters replaced, when the set name
//     differs from the logical name only in its last two letters at most
//     ("transactioncurrencies" -> "TransactionCurrencies", "analyses");
//   - the camel-cased set name ("ContosoDeliveries").
func setGoName(set, logical, tableGo, collectionSchema string) string {
	if id := goIdent(collectionSchema); collectionSchema != "" && id != "" {
		return id
	}
	if rest, ok := strings.CutPrefix(set, logical); ok && rest != "" && goIdent(rest) != "" {
		return tableGo + strings.ToLower(goIdent(rest))
	}
	n := 0
	for n < len(set) && n < len(logical) && set[n] == logical[n] {
		n++
	}
	tail, rest := logical[n:], set[n:]
	if n > 0 && len(tail) <= 2 && rest != "" && len(tableGo) > len(tail) &&
		strings.EqualFold(tableGo[len(tableGo)-len(tail):], tail) && goIdent(rest) != "" {
		return tableGo[:len(tableGo)-len(tail)] + strings.ToLower(goIdent(rest))
	}
	return camel(set)
}

func planTable(p *plan, m *csdl.Model, et *csdl.EntityType, t *table, ent *entitydefs.Entity, byType map[string]*table, global *namespace) error {
	fields := newNamespace("Extra") // the field for unknown members (modelsDoc)
	attrName := func(logical string) string {
		if a := ent.Attribute(logical); a != nil && goIdent(a.SchemaName) != "" {
			return goIdent(a.SchemaName)
		}
		if logical == et.Name+"id" {
			return t.Go + "ID" // the primary key, as Dataverse names it: "personid" -> "PersonID"
		}
		return camel(logical)
	}

	props := slices.Clone(et.AllProperties())
	slices.SortFunc(props, func(a, b *csdl.Property) int { return strings.Compare(a.Name, b.Name) })
	lookups := make(map[string]csdl.Lookup)
	for _, l := range et.Lookups() {
		lookups[l.Column.Name] = l
	}
	byName := make(map[string]*column)
	for _, pr := range props {
		c := &column{Name: pr.Name, Edm: pr.Type, Description: oneLine(pr.Description)}
		if inner, ok := lookupAttr(pr.Name); ok && pr.Type == "Edm.Guid" {
			c.Lookup = true
			c.Go = fields.claim(attrName(inner) + "Value")
		} else {
			c.Go = fields.claim(attrName(pr.Name))
		}
		c.GoType = goValueType(pr)
		switch c.GoType {
		case "time.Time":
			p.NeedTime = true
		case "decimal.Decimal":
			p.NeedDecimal = true
		}
		t.Columns = append(t.Columns, c)
		byName[c.Name] = c
	}
	if key := et.EffectiveKey(); len(key) == 1 {
		if c := byName[key[0]]; c != nil && c.Edm == "Edm.Guid" {
			t.Key = c
		}
	}
	if t.Key == nil {
		return fmt.Errorf("codegen: table %s has no single Edm.Guid key", et.Name)
	}

	navs := slices.Clone(et.AllNavigationProperties())
	slices.SortFunc(navs, func(a, b *csdl.NavigationProperty) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range navs {
		target := byType[qualified(m, n.Type)]
		if target == nil {
			continue
		}
		t.Navs = append(t.Navs, &nav{
			Name: n.Name, Go: fields.claim(navName(n, target, attrName, p.Tables)), Target: target,
			Collection: n.Collection, Description: oneLine(n.Description),
		})
	}

	// Annotation fields claim names after all columns and navigation
	// properties, so a real column never gets renamed because of them.
	for _, c := range t.Columns {
		if c.Lookup {
			inner, _ := lookupAttr(c.Name)
			base := attrName(inner)
			t.Annots = append(t.Annots,
				&annot{Wire: c.Name + "@" + annFormatted, Go: fields.claim(base + "Formatted"),
					Description: "Primary name of the record " + c.Name + " refers to (annotation " + annFormatted + ")."},
				&annot{Wire: c.Name + "@" + annLogical, Go: fields.claim(base + "LookupLogicalName"),
					Description: "Logical name of the table " + c.Name + " refers to (annotation " + annLogical + ")."},
				&annot{Wire: c.Name + "@" + annNav, Go: fields.claim(base + "NavigationProperty"),
					Description: "Navigation property that " + c.Name + " is set through (annotation " + annNav + ")."},
			)
			continue
		}
		if hasFormattedValue(c) {
			t.Annots = append(t.Annots, &annot{Wire: c.Name + "@" + annFormatted, Go: fields.claim(c.Go + "Formatted"),
				Description: "Formatted value of " + c.Name + " in the caller's language and time zone (annotation " + annFormatted + ")."})
		}
	}
	t.Annots = append(t.Annots, &annot{Wire: "@odata.etag", Go: fields.claim("ETag"),
		Description: `Row version for optimistic concurrency, W/"<versionnumber>" (annotation @odata.etag).`})

	// Option sets: typed constants from EntityDefinitions.
	for _, c := range t.Columns {
		a := ent.Attribute(c.Name)
		if a == nil || a.OptionSet == nil || c.Edm != "Edm.Int32" {
			continue
		}
		switch a.AttributeType {
		case "Picklist", "State", "Status":
		default:
			continue
		}
		e := &enum{Go: global.claim(t.Go + c.Go), Column: c, Set: a.OptionSet.Name}
		c.Enum, c.GoType = e, e.Go
		e.Members = planMembers(e.Go, a.OptionSet.Options, global)
		t.Enums = append(t.Enums, e)
		p.NeedStrconv = true
	}

	for _, k := range et.AlternateKeys {
		var ak altKey
		var parts []string
		for _, name := range k {
			c := byName[name]
			if c == nil {
				return fmt.Errorf("codegen: table %s: alternate key names unknown column %q", et.Name, name)
			}
			ak.Columns = append(ak.Columns, c)
			parts = append(parts, c.Go)
		}
		if len(ak.Columns) == 0 {
			continue
		}
		ak.Method = "GetBy" + strings.Join(parts, "And")
		t.AltKeys = append(t.AltKeys, ak)
	}
	return nil
}

// planMembers names the options of one set. A label that yields no
// identifier becomes "Value<n>"; labels that collide (two options called
// "Accounting", or "A-B" and "A B") all get their value appended, so no
// member is dropped and the result does not depend on option order.
func planMembers(typ string, opts []entitydefs.Option, global *namespace) []member {
	count := make(map[string]int)
	base := make([]string, len(opts))
	for i, o := range opts {
		b := goIdent(o.Label)
		if b == "" {
			b = "Value" + valueSuffix(o.Value)
		}
		base[i] = b
		count[b]++
	}
	seen := make(map[int]bool)
	var out []member
	for i, o := range opts {
		if seen[o.Value] {
			continue // the metadata listed a value twice; keep the first
		}
		seen[o.Value] = true
		name := base[i]
		if count[name] > 1 {
			name += valueSuffix(o.Value)
		}
		mb := member{Go: global.claim(typ + name), Label: o.Label, Value: o.Value}
		if o.State != nil {
			mb.Note = fmt.Sprintf("state %d", *o.State)
		}
		out = append(out, mb)
	}
	return out
}

func valueSuffix(v int) string {
	if v < 0 {
		return fmt.Sprintf("Minus%d", -v)
	}
	return fmt.Sprint(v)
}

// navName names a navigation property after its lookup column's SchemaName:
// "primarycontactid" -> "PrimaryContactID"; a polymorphic
// "customerid_account" -> "CustomerID" + "Account". Others are camel-cased
// part by part, with a generated table's Go name for a part that is its
// logical name ("order_details" -> "OrderDetails",
// "transactioncurrency_salesorder" -> "TransactionCurrencySalesOrder").
func navName(n *csdl.NavigationProperty, target *table, attrName func(string) string, tables []*table) string {
	for _, rc := range n.ReferentialConstraints {
		inner, ok := lookupAttr(rc.Property)
		if !ok {
			continue
		}
		if n.Name == inner {
			return attrName(inner)
		}
		if rest, ok := strings.CutPrefix(n.Name, inner+"_"); ok && rest != "" {
			if rest == target.Logical {
				return attrName(inner) + target.Go
			}
			return attrName(inner) + camel(rest)
		}
	}
	var b strings.Builder
	for part := range strings.SplitSeq(n.Name, "_") {
		i := slices.IndexFunc(tables, func(t *table) bool { return t.Logical == part })
		switch {
		case i >= 0:
			b.WriteString(tables[i].Go)
		case part != "":
			b.WriteString(goIdent(part))
		}
	}
	if b.Len() == 0 || goIdent(b.String()) != b.String() {
		return camel(n.Name)
	}
	return b.String()
}

// lookupAttr returns "customerid" for "_customerid_value".
func lookupAttr(prop string) (string, bool) {
	inner, ok := strings.CutPrefix(prop, "_")
	if !ok {
		return "", false
	}
	inner, ok = strings.CutSuffix(inner, "_value")
	return inner, ok && inner != ""
}

func qualified(m *csdl.Model, typ string) string {
	if t := m.EntityType(typ); t != nil {
		return t.QualifiedName()
	}
	return typ
}

// hasFormattedValue reports whether Dataverse sends a FormattedValue
// annotation for the column: it does for numbers, money, dates, booleans
// and choices, not for text, binary data or the primary key.
func hasFormattedValue(c *column) bool {
	switch c.Edm {
	case "Edm.String", "Edm.Binary", "Edm.Guid", "Edm.Stream":
		return false
	}
	return strings.HasPrefix(c.Edm, "Edm.")
}

// goValueType is the Go type of a column's values (without the optional
// pointer). It is never float32: Edm.Single widens to float64, and
// Edm.Decimal (money) is an exact decimal.Decimal.
func goValueType(pr *csdl.Property) string {
	if pr.Collection {
		return "any"
	}
	switch pr.Type {
	case "Edm.String":
		return "string"
	case "Edm.Guid":
		return "openapi_types.UUID"
	case "Edm.Boolean":
		return "bool"
	case "Edm.Byte":
		return "uint8"
	case "Edm.SByte":
		return "int8"
	case "Edm.Int16":
		return "int16"
	case "Edm.Int32":
		return "int32"
	case "Edm.Int64":
		return "int64"
	case "Edm.Single", "Edm.Double":
		return "float64"
	case "Edm.Decimal":
		return "decimal.Decimal"
	case "Edm.DateTimeOffset":
		return "time.Time"
	case "Edm.Date":
		return "openapi_types.Date"
	case "Edm.Binary":
		return "[]byte"
	case "Edm.TimeOfDay", "Edm.Duration":
		return "string"
	}
	return "any"
}

// oneLine collapses a description to one line of single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
