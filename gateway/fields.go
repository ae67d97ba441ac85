package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
)

// Field is the value of a configured column of the org (Config.OrderFields,
// CustomerFields) in an answer, typed by the column's type in the org's
// $metadata.
type Field struct {
	// Value is the column's value as JSON: a string for text, dates
	// ("2026-12-02"), date-times, GUIDs, and decimals and money (exact,
	// "12.50": never a float); a number for whole numbers and choices; a
	// boolean; null when empty. For a lookup it is the related row's id.
	Value json.RawMessage `json:"value"`
	// Label is Dataverse's formatted value, when it has one: the label of
	// a choice or a yes/no column, a lookup's primary name, a formatted
	// amount.
	Label string `json:"label,omitempty"`
	// Table is a lookup's related table ("contoso_delivery").
	Table string `json:"table,omitempty"`
}

// fieldKind is how a column's JSON value is read.
type fieldKind int

const (
	fieldText fieldKind = iota
	fieldNumber
	fieldDecimal
	fieldBool
	fieldLookup
)

// fieldSpec is one configured column, resolved against the org's schema.
type fieldSpec struct {
	name  string // as configured: the logical name (a lookup's without _..._value)
	prop  string // the JSON property: name, or "_name_value" for a lookup
	kind  fieldKind
	scale int // decimals: digits after the point; -1 = Scale="Variable" (money)
}

// ColumnError says that a configured column does not fit the org's schema:
// it does not exist (Nearest lists the closest existing names), or has a
// type the setting cannot use.
type ColumnError struct {
	Setting string // "trackingColumn", "orderFields", ...
	Table   string // "salesorder"
	Column  string // as configured
	Problem string // "" = no such column; else what is wrong with its type
	Nearest []string
}

func (e *ColumnError) Error() string {
	if e.Table == "" { // a setting that names a table
		return e.Setting + ": " + e.Problem
	}
	var b strings.Builder
	if e.Problem == "" {
		fmt.Fprintf(&b, "%s: %s has no column %q in this org", e.Setting, e.Table, e.Column)
		if len(e.Nearest) > 0 {
			fmt.Fprintf(&b, ": did you mean %s?", strings.Join(e.Nearest, " or "))
		}
		b.WriteString(" (use the column's logical name, lowercase, as the org's $metadata or the table's columns in make.powerapps.com show it)")
		return b.String()
	}
	fmt.Fprintf(&b, "%s: column %q of %s %s", e.Setting, e.Column, e.Table, e.Problem)
	return b.String()
}

// resolveField finds column name of t. A lookup may be named by its
// logical name ("contoso_deliveryid"), its navigation property or its
// "_x_value" property.
func resolveField(t *csdl.EntityType, setting, name string) (fieldSpec, error) {
	name = strings.TrimSpace(name)
	if !columnName.MatchString(name) && !(strings.HasPrefix(name, "_") && strings.HasSuffix(name, "_value")) {
		return fieldSpec{}, &ColumnError{Setting: setting, Table: t.Name, Column: name, Nearest: nearest(t, name)}
	}
	logical := strings.TrimSuffix(strings.TrimPrefix(name, "_"), "_value")
	if p := t.Property("_" + logical + "_value"); p != nil {
		return fieldSpec{name: logical, prop: p.Name, kind: fieldLookup}, nil
	}
	p := t.Property(name)
	if p == nil || p.Collection {
		return fieldSpec{}, &ColumnError{Setting: setting, Table: t.Name, Column: name, Nearest: nearest(t, name)}
	}
	s := fieldSpec{name: name, prop: name, scale: -1}
	switch p.Type {
	case "Edm.String", "Edm.Guid", "Edm.Date", "Edm.DateTimeOffset":
		s.kind = fieldText
	case "Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.Double", "Edm.Single":
		s.kind = fieldNumber
	case "Edm.Decimal":
		s.kind = fieldDecimal
		if n, err := strconv.Atoi(p.Scale); err == nil {
			s.scale = n
		}
	case "Edm.Boolean":
		s.kind = fieldBool
	default:
		return fieldSpec{}, &ColumnError{Setting: setting, Table: t.Name, Column: name,
			Problem: fmt.Sprintf("has type %s, which dvgate cannot return", p.Type)}
	}
	return s, nil
}

// readFields reads the configured columns from a row's JSON.
func readFields(row map[string]json.RawMessage, specs []fieldSpec) (map[string]Field, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := make(map[string]Field, len(specs))
	for _, s := range specs {
		v, ok := row[s.prop]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			out[s.name] = Field{Value: json.RawMessage("null")}
			continue
		}
		f := Field{Value: v}
		if l, ok := row[s.prop+"@"+formattedSuffix]; ok {
			if err := json.Unmarshal(l, &f.Label); err != nil {
				return nil, fmt.Errorf("column %s: formatted value: %w", s.prop, err)
			}
		}
		switch s.kind {
		case fieldDecimal:
			d, err := decimal.NewFromString(string(bytes.Trim(v, `"`)))
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", s.prop, err)
			}
			// Dataverse declares money Scale="Variable": written as the
			// order's amounts are; a decimal with a scale keeps it ("12.50").
			str := AmountString(d)
			if s.scale >= 0 {
				str = d.StringFixed(int32(s.scale))
			}
			f.Value, _ = json.Marshal(str)
		case fieldLookup:
			if l, ok := row[s.prop+"@"+lookupSuffix]; ok {
				_ = json.Unmarshal(l, &f.Table)
			}
		}
		out[s.name] = f
	}
	return out, nil
}

// The instance annotations readFields reads (see annotations).
const (
	formattedSuffix = "OData.Community.Display.V1.FormattedValue"
	lookupSuffix    = "Microsoft.Dynamics.CRM.lookuplogicalname"
)

// nearest returns the existing column names of t closest to name (lookups
// by their logical name), for "did you mean".
func nearest(t *csdl.EntityType, name string) []string {
	var names []string
	seen := map[string]bool{}
	for _, p := range t.AllProperties() {
		n := p.Name
		if strings.HasPrefix(n, "_") && strings.HasSuffix(n, "_value") {
			n = strings.TrimSuffix(strings.TrimPrefix(n, "_"), "_value")
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return csdl.Nearest(strings.ToLower(name), names)
}

// extraColumns are the configured columns of an org, resolved against its
// schema: read in the same request as the rest of an answer.
type extraColumns struct {
	tracking *fieldSpec // nil = none
	order    []fieldSpec
	contact  []fieldSpec // the CustomerFields that contact has
	account  []fieldSpec // ... and account
}

// SchemaTables are the tables whose $metadata the gateway needs as
// Config.Model (csdl.Tables(SchemaTables...) reads only those).
var SchemaTables = []string{"contact", "account", "salesorder", "salesorderdetail", "product", "transactioncurrency"}

// resolveExtras checks the configured columns against the org's schema.
// A customer field must be a column of contact or of account (or both);
// it is returned for the customers of the tables that have it.
func resolveExtras(m *csdl.Model, tracking string, orderFields, customerFields []string) (extraColumns, error) {
	var x extraColumns
	order, contact, account := m.EntityType("Microsoft.Dynamics.CRM.salesorder"), m.EntityType("Microsoft.Dynamics.CRM.contact"),
		m.EntityType("Microsoft.Dynamics.CRM.account")
	if order == nil || contact == nil || account == nil {
		return x, fmt.Errorf("gateway: the org's metadata lacks salesorder, contact or account (is the Sales app installed?)")
	}
	if tracking != "" {
		s, err := resolveField(order, "trackingColumn", tracking)
		if err != nil {
			return x, err
		}
		if s.kind != fieldText && s.kind != fieldLookup || order.Property(s.prop).Type != "Edm.String" && s.kind == fieldText {
			return x, &ColumnError{Setting: "trackingColumn", Table: "salesorder", Column: tracking,
				Problem: "is not a text column or a lookup; the tracking number must be one of those"}
		}
		x.tracking = &s
	}
	for _, f := range orderFields {
		s, err := resolveField(order, "orderFields", f)
		if err != nil {
			return x, err
		}
		x.order = append(x.order, s)
	}
	for _, f := range customerFields {
		sc, errC := resolveField(contact, "customerFields", f)
		sa, errA := resolveField(account, "customerFields", f)
		if errC != nil && errA != nil {
			ce := errC.(*ColumnError)
			ce.Table = "contact or account"
			if ae, ok := errA.(*ColumnError); ok {
				ce.Nearest = slices.Compact(slices.Sorted(slices.Values(append(ce.Nearest, ae.Nearest...))))
			}
			return x, ce
		}
		if errC == nil {
			x.contact = append(x.contact, sc)
		}
		if errA == nil {
			x.account = append(x.account, sa)
		}
	}
	return x, nil
}

// orderProps are the JSON properties an order query adds to its $select.
func (x *extraColumns) orderProps() []string {
	var out []string
	if x.tracking != nil {
		out = append(out, x.tracking.prop)
	}
	for _, f := range x.order {
		out = append(out, f.prop)
	}
	return out
}

func props(specs []fieldSpec) []string {
	out := make([]string, 0, len(specs))
	for _, f := range specs {
		out = append(out, f.prop)
	}
	return out
}

// orderKey and customerKey identify the configuration in cache keys.
func (x *extraColumns) orderKey() string { return strings.Join(x.orderProps(), ",") }

func (x *extraColumns) customerKey() string {
	return strings.Join(props(x.contact), ",") + "/" + strings.Join(props(x.account), ",")
}

// readOrder fills the tracking number and fields of o from its row.
func (x *extraColumns) readOrder(o *Order, order *generated.SalesOrder) error {
	specs := x.order
	if x.tracking != nil {
		specs = append(slices.Clip(specs), *x.tracking)
	}
	row, err := rowMembers(order, specs)
	if err != nil {
		return err
	}
	if t := x.tracking; t != nil {
		var s *string
		prop := t.prop
		if t.kind == fieldLookup {
			prop += "@" + formattedSuffix // the related row's primary name
		}
		if v, ok := row[prop]; ok {
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("column %s: %w", prop, err)
			}
		}
		if s != nil && *s != "" {
			o.TrackingNumber = s
		}
	}
	o.Fields, err = readFields(row, x.order)
	return err
}

// rowMembers collects, for readFields, the configured columns and their
// annotations from a decoded model row (a *generated.Xxx): from its fields,
// or from its Extra for the columns it was generated without. The body is
// decoded once, into the model.
func rowMembers(model any, specs []fieldSpec) (map[string]json.RawMessage, error) {
	row := make(map[string]json.RawMessage, 2*len(specs))
	for _, s := range specs {
		for _, name := range []string{s.prop, s.prop + "@" + formattedSuffix, s.prop + "@" + lookupSuffix} {
			v, ok, err := odataq.Member(model, name)
			if err != nil {
				return nil, err
			}
			if ok {
				row[name] = v
			}
		}
	}
	return row, nil
}
