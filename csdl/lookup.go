package csdl

import (
	"slices"
)

// maxDepth bounds base-type walks; Read rejects cyclic chains, the bound only
// keeps hand-built models from looping.
const maxDepth = 64

func (m *Model) idx() *index {
	if m.index != nil {
		return m.index
	}
	// A model not built by Read or Select: index it on the fly, without
	// storing it, so that reading stays free of writes.
	return buildIndex(m)
}

// EntityType returns the entity type with the given name: bare ("account",
// resolved against the schemas in order), alias-qualified ("mscrm.account")
// or full ("Microsoft.Dynamics.CRM.account"). Names are case-sensitive. It
// returns nil when there is none.
func (m *Model) EntityType(name string) *EntityType {
	ix := m.idx()
	return lookup(ix, ix.entity, name)
}

// ComplexType returns the complex type with the given name; see EntityType.
func (m *Model) ComplexType(name string) *ComplexType {
	ix := m.idx()
	return lookup(ix, ix.complex, name)
}

// EnumType returns the enum type with the given name; see EntityType.
func (m *Model) EnumType(name string) *EnumType {
	ix := m.idx()
	return lookup(ix, ix.enum, name)
}

// Function returns the function with the given name (the unbound overload
// when there are several); see EntityType.
func (m *Model) Function(name string) *Operation {
	ix := m.idx()
	return lookup(ix, ix.function, name)
}

// Action returns the action with the given name (the unbound overload when
// there are several); see EntityType.
func (m *Model) Action(name string) *Operation {
	ix := m.idx()
	return lookup(ix, ix.action, name)
}

// EntitySet returns the entity set with the given name ("accounts") or nil.
func (m *Model) EntitySet(name string) *EntitySet {
	return m.idx().set[name]
}

// EntitySetOf returns the first entity set whose element type is t, or nil.
func (m *Model) EntitySetOf(t *EntityType) *EntitySet {
	if t == nil {
		return nil
	}
	return m.idx().setOf[t.QualifiedName()]
}

// QualifiedName returns "Namespace.Name".
func (t *EntityType) QualifiedName() string { return t.Namespace + "." + t.Name }

// QualifiedName returns "Namespace.Name".
func (t *ComplexType) QualifiedName() string { return t.Namespace + "." + t.Name }

// QualifiedName returns "Namespace.Name".
func (t *EnumType) QualifiedName() string { return t.Namespace + "." + t.Name }

// QualifiedName returns "Namespace.Name".
func (o *Operation) QualifiedName() string { return o.Namespace + "." + o.Name }

// chain returns t and its base types, most derived first.
func (t *EntityType) chain() []*EntityType {
	var c []*EntityType
	for b := t; b != nil && len(c) < maxDepth; b = b.Base {
		c = append(c, b)
	}
	return c
}

// EffectiveKey returns the key of t: its own, else the nearest base type's.
// It is empty for a keyless (abstract) type.
func (t *EntityType) EffectiveKey() []string {
	for _, b := range t.chain() {
		if len(b.Key) > 0 {
			return b.Key
		}
	}
	return nil
}

// AllProperties returns the structural properties of t including inherited
// ones, base type's first.
func (t *EntityType) AllProperties() []*Property {
	c := t.chain()
	if len(c) == 1 {
		return t.Properties
	}
	var all []*Property
	for _, b := range slices.Backward(c) {
		all = append(all, b.Properties...)
	}
	return all
}

// Property returns the structural property of t (or of a base type) with the
// given name, or nil.
func (t *EntityType) Property(name string) *Property {
	for _, b := range t.chain() {
		for _, p := range b.Properties {
			if p.Name == name {
				return p
			}
		}
	}
	return nil
}

// AllNavigationProperties returns the navigation properties of t including
// inherited ones, base type's first.
func (t *EntityType) AllNavigationProperties() []*NavigationProperty {
	c := t.chain()
	if len(c) == 1 {
		return t.NavigationProperties
	}
	var all []*NavigationProperty
	for _, b := range slices.Backward(c) {
		all = append(all, b.NavigationProperties...)
	}
	return all
}

// NavigationProperty returns the navigation property of t (or of a base type)
// with the given name, or nil.
func (t *EntityType) NavigationProperty(name string) *NavigationProperty {
	for _, b := range t.chain() {
		for _, n := range b.NavigationProperties {
			if n.Name == name {
				return n
			}
		}
	}
	return nil
}

// Lookup is a lookup column and the single-valued navigation properties that
// set it. A polymorphic lookup (salesorder's _customerid_value) has one
// navigation property per target table (customerid_account,
// customerid_contact); most have one.
type Lookup struct {
	// Column is the read-only "_x_value" property.
	Column *Property
	// Navigations are in document order.
	Navigations []*NavigationProperty
}

// Lookups groups the single-valued navigation properties of t (including
// inherited ones) by the lookup column of their referential constraint, in
// the order of the columns in AllProperties. Navigation properties whose
// constraint names no property of t are left out.
func (t *EntityType) Lookups() []Lookup {
	props := t.AllProperties()
	order := make(map[string]int, len(props))
	for i, p := range props {
		order[p.Name] = i
	}
	at := make(map[int]int) // property index -> index in out
	var out []Lookup
	for _, n := range t.AllNavigationProperties() {
		if n.Collection {
			continue
		}
		for _, rc := range n.ReferentialConstraints {
			pi, ok := order[rc.Property]
			if !ok {
				continue
			}
			if li, ok := at[pi]; ok {
				if !slices.Contains(out[li].Navigations, n) {
					out[li].Navigations = append(out[li].Navigations, n)
				}
				continue
			}
			at[pi] = len(out)
			out = append(out, Lookup{Column: props[pi], Navigations: []*NavigationProperty{n}})
		}
	}
	slices.SortStableFunc(out, func(a, b Lookup) int { return order[a.Column.Name] - order[b.Column.Name] })
	return out
}
