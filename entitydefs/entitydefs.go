// Package entitydefs reads an org's EntityDefinitions: the table and column
// metadata that the Dataverse Web API serves at /api/data/v9.2/EntityDefinitions
// and that the CSDL $metadata document lacks.
//
// $metadata names every column in lower case and declares choice columns as
// plain Edm.Int32, so code generation needs a second source for the
// SchemaName casing ("EMailAddress1", "RequestDeliveryBy") and for option-set
// labels (salesorder statuscode 100001 = "Complete"). dvgen assembles that
// source as JSON in the shape the Web API returns:
//
//	{"value":[{"LogicalName":"salesorder","SchemaName":"SalesOrder",...,
//	  "Attributes":[{"LogicalName":"statuscode","AttributeType":"Status",
//	    "OptionSet":{"Name":"salesorder_statuscode","Options":[...]}}, ...]}]}
//
// Read also accepts a bare array of entities and a single entity object. It
// keeps only what dvgate uses and ignores every other member.
//
// Entities and attributes are sorted by LogicalName, so the result does not
// depend on the order the server returned them in; options keep the server's
// order, which is the display order. Boolean columns, whose option set has a
// TrueOption and a FalseOption instead of Options, get Options {0, 1}.
//
// A Definitions value is not mutated after Read returns it; any number of
// goroutines may call its methods concurrently.
package entitydefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Definitions is the metadata of a set of tables.
type Definitions struct {
	// Entities is sorted by LogicalName.
	Entities []*Entity

	// byName indexes Entities; nil for a hand-built value (methods then scan).
	byName map[string]*Entity
}

// Entity is one table.
type Entity struct {
	LogicalName          string // "salesorder"
	SchemaName           string // "SalesOrder"
	EntitySetName        string // "salesorders"
	CollectionSchemaName string // "SalesOrders"; "" in files written before dvgen asked for it
	PrimaryIdAttribute   string // "salesorderid"
	PrimaryNameAttribute string // "name"
	// Attributes is sorted by LogicalName. Lookup columns appear under their
	// attribute name ("customerid"), not the Web API property "_customerid_value".
	Attributes []*Attribute

	byName map[string]*Attribute
}

// Attribute is one column.
type Attribute struct {
	LogicalName string // "emailaddress1"
	SchemaName  string // "EMailAddress1"
	// AttributeType is the AttributeTypeCode name: String, Memo, Integer,
	// BigInt, Money, Decimal, Double, Boolean, DateTime, Lookup, Customer,
	// Owner, Picklist, State, Status, Uniqueidentifier, EntityName, Virtual, ...
	AttributeType string
	// AttributeOf names the column this one belongs to ("customeridname" is
	// of "customerid"); "" for an ordinary column.
	AttributeOf string
	// Targets lists the tables a Lookup, Customer or Owner column refers to.
	Targets []string
	// OptionSet is set for Picklist, State, Status and Boolean columns when
	// the definitions include it.
	OptionSet *OptionSet
}

// OptionSet is the set of options of a choice, state, status or yes/no column.
type OptionSet struct {
	Name    string // "salesorder_statuscode"
	Options []Option
}

// Option is one value of an option set.
type Option struct {
	Value int
	// Label is the UserLocalizedLabel, else the 1033 (English) localized
	// label, else the first localized label, else "".
	Label string
	// State is the statecode a Status option belongs to; nil otherwise.
	State *int
	// DefaultStatus is the default statuscode of a State option; nil otherwise.
	DefaultStatus *int
	// InvariantName is the language-independent name of a State option.
	InvariantName string
}

// Errors returned by Read, matched with errors.Is.
var (
	// ErrSyntax: the input is not valid JSON.
	ErrSyntax = errors.New("entitydefs: malformed JSON")
	// ErrShape: the JSON is valid but is not EntityDefinitions.
	ErrShape = errors.New("entitydefs: not EntityDefinitions")
)

// Error is a Read failure. Kind is ErrSyntax or ErrShape; Remedy says what to do.
type Error struct {
	Kind   error
	Detail string
	Remedy string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v: %s (%s)", e.Kind, e.Detail, e.Remedy)
}

// Unwrap returns the kind, so errors.Is(err, ErrShape) works.
func (e *Error) Unwrap() error { return e.Kind }

const (
	remedySyntax = "regenerate the file with dvgen, or check that the Web API response was saved whole"
	remedyShape  = `expected {"value":[entity...]}, [entity...] or one entity object, as returned by GET /api/data/v9.2/EntityDefinitions with $expand=Attributes`
)

func shapeErr(format string, args ...any) error {
	return &Error{Kind: ErrShape, Detail: fmt.Sprintf(format, args...), Remedy: remedyShape}
}

// Wire shapes. Only the members dvgate uses are declared.
type (
	wireEntity struct {
		LogicalName          string
		SchemaName           string
		EntitySetName        string
		CollectionSchemaName string
		PrimaryIdAttribute   string
		PrimaryNameAttribute string
		Attributes           []wireAttribute
	}
	wireAttribute struct {
		LogicalName   string
		SchemaName    string
		AttributeType string
		AttributeOf   *string
		Targets       []string
		OptionSet     *wireOptionSet
	}
	wireOptionSet struct {
		Name        string
		Options     []wireOption
		TrueOption  *wireOption
		FalseOption *wireOption
	}
	wireOption struct {
		Value         *int
		Label         *wireLabel
		State         *int
		DefaultStatus *int
		InvariantName *string
	}
	wireLabel struct {
		LocalizedLabels    []wireLocalized
		UserLocalizedLabel *wireLocalized
	}
	wireLocalized struct {
		Label        string
		LanguageCode int
	}
)

// Read parses EntityDefinitions JSON: a collection response {"value":[...]},
// a bare array of entities, or a single entity object.
func Read(r io.Reader) (*Definitions, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("entitydefs: reading: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a BOM, as some tools save it
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &Error{Kind: ErrSyntax, Detail: "empty input", Remedy: remedySyntax}
	}
	if !json.Valid(trimmed) {
		// Decode again only to get the position of the fault.
		var v any
		err := json.Unmarshal(trimmed, &v)
		return nil, &Error{Kind: ErrSyntax, Detail: fmt.Sprint(err), Remedy: remedySyntax}
	}

	var wire []wireEntity
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &wire); err != nil {
			return nil, shapeErr("%v", err)
		}
	case '{':
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return nil, shapeErr("%v", err)
		}
		if v, ok := probe["value"]; ok {
			if err := json.Unmarshal(v, &wire); err != nil {
				return nil, shapeErr("value: %v", err)
			}
		} else {
			var e wireEntity
			if err := json.Unmarshal(trimmed, &e); err != nil {
				return nil, shapeErr("%v", err)
			}
			wire = []wireEntity{e}
		}
	default:
		return nil, shapeErr("top-level JSON value is neither an object nor an array")
	}

	defs := &Definitions{byName: make(map[string]*Entity, len(wire))}
	for i, we := range wire {
		e, err := convertEntity(we)
		if err != nil {
			return nil, shapeErr("entity %d: %v", i, err)
		}
		if _, dup := defs.byName[e.LogicalName]; dup {
			return nil, shapeErr("entity %q appears twice", e.LogicalName)
		}
		defs.byName[e.LogicalName] = e
		defs.Entities = append(defs.Entities, e)
	}
	slices.SortFunc(defs.Entities, func(a, b *Entity) int { return strings.Compare(a.LogicalName, b.LogicalName) })
	return defs, nil
}

func convertEntity(we wireEntity) (*Entity, error) {
	if we.LogicalName == "" {
		return nil, errors.New("no LogicalName")
	}
	e := &Entity{
		LogicalName:          we.LogicalName,
		SchemaName:           we.SchemaName,
		EntitySetName:        we.EntitySetName,
		CollectionSchemaName: we.CollectionSchemaName,
		PrimaryIdAttribute:   we.PrimaryIdAttribute,
		PrimaryNameAttribute: we.PrimaryNameAttribute,
		byName:               make(map[string]*Attribute, len(we.Attributes)),
	}
	for i, wa := range we.Attributes {
		if wa.LogicalName == "" {
			return nil, fmt.Errorf("%s: attribute %d has no LogicalName", we.LogicalName, i)
		}
		if _, dup := e.byName[wa.LogicalName]; dup {
			return nil, fmt.Errorf("%s: attribute %q appears twice", we.LogicalName, wa.LogicalName)
		}
		a := &Attribute{
			LogicalName:   wa.LogicalName,
			SchemaName:    wa.SchemaName,
			AttributeType: wa.AttributeType,
			Targets:       wa.Targets,
		}
		if wa.AttributeOf != nil {
			a.AttributeOf = *wa.AttributeOf
		}
		if wa.OptionSet != nil {
			os, err := convertOptionSet(*wa.OptionSet)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", we.LogicalName, wa.LogicalName, err)
			}
			a.OptionSet = os
		}
		e.byName[a.LogicalName] = a
		e.Attributes = append(e.Attributes, a)
	}
	slices.SortFunc(e.Attributes, func(a, b *Attribute) int { return strings.Compare(a.LogicalName, b.LogicalName) })
	return e, nil
}

func convertOptionSet(w wireOptionSet) (*OptionSet, error) {
	os := &OptionSet{Name: w.Name}
	wopts := w.Options
	if len(wopts) == 0 && (w.TrueOption != nil || w.FalseOption != nil) {
		for _, o := range []*wireOption{w.FalseOption, w.TrueOption} {
			if o != nil {
				wopts = append(wopts, *o)
			}
		}
	}
	seen := make(map[int]bool, len(wopts))
	for i, wo := range wopts {
		if wo.Value == nil {
			return nil, fmt.Errorf("option %d has no Value", i)
		}
		if seen[*wo.Value] {
			return nil, fmt.Errorf("option value %d appears twice", *wo.Value)
		}
		seen[*wo.Value] = true
		o := Option{Value: *wo.Value, Label: pickLabel(wo.Label), State: wo.State, DefaultStatus: wo.DefaultStatus}
		if wo.InvariantName != nil {
			o.InvariantName = *wo.InvariantName
		}
		os.Options = append(os.Options, o)
	}
	return os, nil
}

// pickLabel chooses the label the calling user would see, else English, else
// whatever there is.
func pickLabel(l *wireLabel) string {
	if l == nil {
		return ""
	}
	if l.UserLocalizedLabel != nil {
		return l.UserLocalizedLabel.Label
	}
	for _, ll := range l.LocalizedLabels {
		if ll.LanguageCode == 1033 {
			return ll.Label
		}
	}
	if len(l.LocalizedLabels) > 0 {
		return l.LocalizedLabels[0].Label
	}
	return ""
}

// Entity returns the table with this logical name, or nil.
func (d *Definitions) Entity(logicalName string) *Entity {
	if d == nil {
		return nil
	}
	if d.byName != nil {
		return d.byName[logicalName]
	}
	for _, e := range d.Entities {
		if e.LogicalName == logicalName {
			return e
		}
	}
	return nil
}

// Attribute returns the column with this logical name, or nil. It also
// accepts the Web API property name of a lookup column: "_customerid_value"
// finds the Lookup, Customer or Owner attribute "customerid".
func (e *Entity) Attribute(logicalName string) *Attribute {
	if e == nil {
		return nil
	}
	if a := e.attribute(logicalName); a != nil {
		return a
	}
	inner, ok := strings.CutPrefix(logicalName, "_")
	if !ok {
		return nil
	}
	inner, ok = strings.CutSuffix(inner, "_value")
	if !ok || inner == "" {
		return nil
	}
	if a := e.attribute(inner); a != nil && a.IsLookup() {
		return a
	}
	return nil
}

func (e *Entity) attribute(name string) *Attribute {
	if e.byName != nil {
		return e.byName[name]
	}
	for _, a := range e.Attributes {
		if a.LogicalName == name {
			return a
		}
	}
	return nil
}

// IsLookup reports whether the column is a Lookup, Customer or Owner column,
// which the Web API exposes as the property _<name>_value.
func (a *Attribute) IsLookup() bool {
	switch a.AttributeType {
	case "Lookup", "Customer", "Owner":
		return true
	}
	return false
}

// Option returns the option with this value, if the column has one.
func (a *Attribute) Option(value int) (Option, bool) {
	if a == nil || a.OptionSet == nil {
		return Option{}, false
	}
	for _, o := range a.OptionSet.Options {
		if o.Value == value {
			return o, true
		}
	}
	return Option{}, false
}

// Label returns the label of an option value of a table's column, and
// whether there is one.
func (d *Definitions) Label(table, column string, value int) (string, bool) {
	o, ok := d.Entity(table).Attribute(column).Option(value)
	return o.Label, ok
}
