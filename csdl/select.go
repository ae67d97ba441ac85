package csdl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Select returns the part of m that code generation needs for the named
// tables (logical names such as "account", or qualified names): those entity
// types and their base types; their entity sets; their navigation
// properties to selected types only (the _x_value lookup columns stay); the
// complex and enum types their properties use; the WhoAmI function with its
// return type and import; and a container holding only the selected sets,
// whose bindings to other sets are dropped.
//
// The result is in m's document order whatever the order of tables, and
// shares unchanged declarations (properties, complex types) with m; both
// stay read-only. An unknown table name is an error that suggests close
// matches; all unknown names are reported at once.
func Select(m *Model, tables []string) (*Model, error) {
	chosen := make(map[*EntityType]bool, len(tables))
	var errs []error
	for _, name := range tables {
		t := m.EntityType(name)
		if t == nil {
			var names []string
			for _, t := range m.EntityTypes {
				names = append(names, t.Name)
			}
			errs = append(errs, unknownTable(names, name))
			continue
		}
		chosen[t] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	keep := make(map[*EntityType]bool)
	for t := range chosen {
		for _, b := range t.chain() {
			keep[b] = true
		}
	}

	out := &Model{Version: m.Version, Schemas: append([]Schema(nil), m.Schemas...)}
	copies := make(map[*EntityType]*EntityType, len(keep))
	for _, t := range m.EntityTypes {
		if !keep[t] {
			continue
		}
		c := *t
		c.NavigationProperties = nil
		for _, n := range t.NavigationProperties {
			if keep[m.EntityType(n.Type)] {
				c.NavigationProperties = append(c.NavigationProperties, n)
			}
		}
		copies[t] = &c
		out.EntityTypes = append(out.EntityTypes, &c)
	}
	for t, c := range copies {
		c.Base = copies[t.Base]
	}

	// Complex and enum types used, transitively.
	needComplex := make(map[*ComplexType]bool)
	needEnum := make(map[*EnumType]bool)
	var use func(typ string)
	use = func(typ string) {
		if strings.HasPrefix(typ, "Edm.") {
			return
		}
		if e := m.EnumType(typ); e != nil {
			needEnum[e] = true
			return
		}
		ct := m.ComplexType(typ)
		for n := 0; ct != nil && !needComplex[ct] && n < maxDepth; n++ {
			needComplex[ct] = true
			for _, p := range ct.Properties {
				use(p.Type)
			}
			ct = ct.Base
		}
	}
	for _, t := range out.EntityTypes {
		for _, p := range t.Properties {
			use(p.Type)
		}
	}
	who := m.Function(whoAmI)
	if who != nil {
		out.Functions = []*Operation{who}
		if who.ReturnType != nil {
			use(who.ReturnType.Type)
		}
	}
	for _, t := range m.ComplexTypes {
		if needComplex[t] {
			out.ComplexTypes = append(out.ComplexTypes, t)
		}
	}
	for _, t := range m.EnumTypes {
		if needEnum[t] {
			out.EnumTypes = append(out.EnumTypes, t)
		}
	}

	if c := m.Container; c != nil {
		oc := &EntityContainer{Name: c.Name, Annotations: c.Annotations}
		sets := make(map[string]bool)
		for _, s := range c.EntitySets {
			if keep[m.EntityType(s.EntityType)] {
				sets[s.Name] = true
			}
		}
		for _, s := range c.EntitySets {
			if !sets[s.Name] {
				continue
			}
			t := copies[m.EntityType(s.EntityType)]
			cs := *s
			cs.Bindings = nil
			for _, b := range s.Bindings {
				if sets[b.Target] && bindingKept(t, b.Path) {
					cs.Bindings = append(cs.Bindings, b)
				}
			}
			oc.EntitySets = append(oc.EntitySets, &cs)
		}
		if who != nil {
			for _, imp := range c.FunctionImports {
				if imp.Operation == who.QualifiedName() {
					oc.FunctionImports = append(oc.FunctionImports, imp)
				}
			}
		}
		out.Container = oc
	}
	out.index = buildIndex(out)
	return out, nil
}

// bindingKept reports whether the navigation property a binding path ends in
// survived selection. Paths may be cast-qualified ("ns.type/nav").
func bindingKept(t *EntityType, path string) bool {
	nav := path[strings.LastIndexByte(path, '/')+1:]
	if t == nil || strings.Contains(path, "/") {
		// A path through a derived type or a complex property: keep it; its
		// target set is selected.
		return true
	}
	return t.NavigationProperty(nav) != nil
}

// unknownTable reports an unknown table name with the closest of names
// (entity type names in document order) as suggestions.
func unknownTable(names []string, name string) error {
	best := Nearest(bareName(name), names)
	if len(best) == 0 {
		return fmt.Errorf("csdl: unknown table %q", name)
	}
	return fmt.Errorf("csdl: unknown table %q; did you mean %s?", name, quoteOr(best))
}

// Nearest returns the candidates closest to name by edit distance (at
// most three, all at the smallest distance found, in the candidates'
// order), or none when even the closest differs in more than about half of
// name: the suggestions of a "did you mean" message.
func Nearest(name string, candidates []string) []string {
	best, bestD := []string(nil), len(name)/2+2
	for _, n := range candidates {
		d := editDistance(name, n)
		switch {
		case d < bestD:
			best, bestD = []string{n}, d
		case d == bestD && len(best) < 3 && !slices.Contains(best, n):
			best = append(best, n)
		}
	}
	return best
}

func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
