package csdl

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// maxErrors caps the errors Read reports at once.
const maxErrors = 20

// index maps names to declarations. Keys are full qualified names; bare
// and alias-qualified names are resolved to full ones before the lookup.
type index struct {
	aliases    map[string]string // alias -> namespace
	namespaces []string          // in document order
	entity     map[string]*EntityType
	complex    map[string]*ComplexType
	enum       map[string]*EnumType
	function   map[string]*Operation
	action     map[string]*Operation
	set        map[string]*EntitySet
	setOf      map[string]*EntitySet // full entity type name -> first set
}

func buildIndex(m *Model) *index {
	ix := &index{
		aliases:  make(map[string]string, len(m.Schemas)),
		entity:   make(map[string]*EntityType, len(m.EntityTypes)),
		complex:  make(map[string]*ComplexType, len(m.ComplexTypes)),
		enum:     make(map[string]*EnumType, len(m.EnumTypes)),
		function: make(map[string]*Operation, len(m.Functions)),
		action:   make(map[string]*Operation, len(m.Actions)),
		set:      make(map[string]*EntitySet),
		setOf:    make(map[string]*EntitySet),
	}
	for _, s := range m.Schemas {
		ix.namespaces = append(ix.namespaces, s.Namespace)
		if s.Alias != "" {
			ix.aliases[s.Alias] = s.Namespace
		}
	}
	for _, t := range m.EntityTypes {
		putFirst(ix.entity, t.Namespace+"."+t.Name, t)
	}
	for _, t := range m.ComplexTypes {
		putFirst(ix.complex, t.Namespace+"."+t.Name, t)
	}
	for _, t := range m.EnumTypes {
		putFirst(ix.enum, t.Namespace+"."+t.Name, t)
	}
	// Functions and actions may be overloaded; the unbound overload (the one
	// an import can name) wins, else the first.
	for _, ops := range []struct {
		list []*Operation
		m    map[string]*Operation
	}{{m.Functions, ix.function}, {m.Actions, ix.action}} {
		for _, op := range ops.list {
			k := op.Namespace + "." + op.Name
			if prev, ok := ops.m[k]; !ok || prev.IsBound && !op.IsBound {
				ops.m[k] = op
			}
		}
	}
	if c := m.Container; c != nil {
		for _, s := range c.EntitySets {
			putFirst(ix.set, s.Name, s)
			putFirst(ix.setOf, ix.qualify(s.EntityType), s)
		}
	}
	return ix
}

func putFirst[T any](m map[string]T, k string, v T) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// qualify replaces an alias prefix of a qualified name by its namespace.
func (ix *index) qualify(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name
	}
	if ns, ok := ix.aliases[name[:i]]; ok {
		return ns + name[i:]
	}
	return name
}

// lookup finds a declaration by full, alias-qualified or bare name.
func lookup[T any](ix *index, m map[string]T, name string) T {
	if v, ok := m[name]; ok {
		return v
	}
	var zero T
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if ns, ok := ix.aliases[name[:i]]; ok {
			return m[ns+name[i:]]
		}
		return zero
	}
	for _, ns := range ix.namespaces {
		if v, ok := m[ns+"."+name]; ok {
			return v
		}
	}
	return zero
}

// finish qualifies the type names, links base types, builds the index and
// checks references and keys.
func (p *parser) finish() error {
	m := p.m
	ix := buildIndex(m)
	for a, ns := range p.aliases {
		if _, ok := ix.aliases[a]; !ok {
			ix.aliases[a] = ns
		}
	}
	cache := make(map[string]string)
	q := func(name string) string {
		if name == "" || strings.HasPrefix(name, "Edm.") {
			return name
		}
		if v, ok := cache[name]; ok {
			return v
		}
		v := ix.qualify(name)
		cache[name] = v
		return v
	}
	errs := p.errs
	fail := func(pos Pos, elem, format string, args ...any) {
		errs = append(errs, &Error{Pos: pos, Element: elem, Msg: fmt.Sprintf(format, args...)})
	}
	checkProps := func(props []*Property) {
		for _, pr := range props {
			pr.Type = q(pr.Type)
			t := pr.Type
			if t == "" || strings.HasPrefix(t, "Edm.") || ix.complex[t] != nil || ix.enum[t] != nil || p.typeDefs[t] {
				continue
			}
			fail(pr.Pos, "Property", "property %s: type %q is not declared", pr.Name, t)
		}
	}
	checkNavs := func(navs []*NavigationProperty) {
		for _, n := range navs {
			n.Type = q(n.Type)
			if n.Type != "" && !p.declared[n.Type] {
				fail(n.Pos, "NavigationProperty", "navigation property %s: entity type %q is not declared", n.Name, n.Type)
			}
		}
	}
	for _, t := range m.EntityTypes {
		if t.BaseType != "" {
			t.BaseType = q(t.BaseType)
			t.Base = ix.entity[t.BaseType]
			switch {
			case t.Base != nil:
			case p.declared[t.BaseType]:
				fail(t.Pos, "EntityType", "base type %q of %s was skipped because it is declared before it; name it in Tables", t.BaseType, t.Name)
			default:
				fail(t.Pos, "EntityType", "base type %q of %s is not declared", t.BaseType, t.Name)
			}
		}
		checkProps(t.Properties)
		checkNavs(t.NavigationProperties)
	}
	for _, t := range m.ComplexTypes {
		if t.BaseType != "" {
			t.BaseType = q(t.BaseType)
			if t.Base = ix.complex[t.BaseType]; t.Base == nil {
				fail(t.Pos, "ComplexType", "base type %q of %s is not declared", t.BaseType, t.Name)
			}
		}
		checkProps(t.Properties)
		checkNavs(t.NavigationProperties)
	}
	for _, ops := range [][]*Operation{m.Functions, m.Actions} {
		for _, op := range ops {
			for i := range op.Parameters {
				op.Parameters[i].Type = q(op.Parameters[i].Type)
			}
			if op.ReturnType != nil {
				op.ReturnType.Type = q(op.ReturnType.Type)
			}
		}
	}
	if c := m.Container; c != nil {
		for _, s := range c.EntitySets {
			s.EntityType = q(s.EntityType)
			if !p.declared[s.EntityType] {
				fail(s.Pos, "EntitySet", "entity set %s: entity type %q is not declared", s.Name, s.EntityType)
			}
		}
		for _, imps := range [][]*OperationImport{c.FunctionImports, c.ActionImports} {
			for _, imp := range imps {
				imp.Operation = q(imp.Operation)
			}
		}
	}
	// Base chains: no cycles, and every concrete type has a key.
	for _, t := range m.EntityTypes {
		if t.Base == nil {
			continue
		}
		if baseCycle(t) {
			fail(t.Pos, "EntityType", "base type chain of %s is cyclic", t.Name)
		}
	}
	for _, t := range m.ComplexTypes {
		n := 0
		for b := t.Base; b != nil && n <= len(m.ComplexTypes); b = b.Base {
			n++
		}
		if n > len(m.ComplexTypes) {
			fail(t.Pos, "ComplexType", "base type chain of %s is cyclic", t.Name)
			t.Base = nil
		}
	}
	if len(errs) == 0 {
		for _, t := range m.EntityTypes {
			// Dataverse declares the open type expando without a key (it
			// is only used for operation parameters), so open types are
			// allowed to be keyless.
			if !t.Abstract && !t.OpenType && len(t.EffectiveKey()) == 0 {
				fail(t.Pos, "EntityType", "entity type %s has no key: it is not abstract and neither it nor a base type declares one", t.Name)
			}
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int {
			var ea, eb *Error
			if !errors.As(a, &ea) || !errors.As(b, &eb) {
				return 0
			}
			return cmp.Or(cmp.Compare(ea.Line, eb.Line), cmp.Compare(ea.Column, eb.Column))
		})
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors], fmt.Errorf("csdl: %d more errors", len(errs)-maxErrors))
		}
		if len(errs) == 1 {
			return errs[0]
		}
		return errors.Join(errs...)
	}
	m.index = ix
	return nil
}

// baseCycle reports whether t's base chain loops; it breaks the loop so that
// later walks terminate.
func baseCycle(t *EntityType) bool {
	slow, fast := t, t
	for fast != nil && fast.Base != nil {
		slow, fast = slow.Base, fast.Base.Base
		if slow == fast {
			t.Base = nil
			return true
		}
	}
	return false
}
