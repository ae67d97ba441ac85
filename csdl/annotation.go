package csdl

import "strings"

// Well-known annotation terms, with full namespaces.
const (
	termDescription   = "Org.OData.Core.V1.Description"
	termComputed      = "Org.OData.Core.V1.Computed"
	termPermissions   = "Org.OData.Core.V1.Permissions"
	termAlternateKeys = "OData.Community.Keys.V1.AlternateKeys"
)

// constAttrs are the attribute notations of constant and path expressions.
var constAttrs = [...]string{
	"String", "Bool", "Int", "Decimal", "Float", "EnumMember", "Date",
	"DateTimeOffset", "TimeOfDay", "Duration", "Guid", "Binary",
	"Path", "PropertyPath", "NavigationPropertyPath", "AnnotationPath",
}

// constValue returns the constant expression of n, given as an attribute
// or as a single constant child element.
func constValue(n *anode) (string, bool) {
	for _, a := range n.attrs {
		for _, c := range constAttrs {
			if a.name == c {
				return a.value, true
			}
		}
	}
	for _, k := range n.kids {
		for _, c := range constAttrs {
			if k.name == c {
				return strings.TrimSpace(k.text), true
			}
		}
	}
	return "", false
}

// qualifyTerm replaces an alias prefix of a term with its namespace.
func (p *parser) qualifyTerm(t string) string {
	i := strings.LastIndexByte(t, '.')
	if i < 0 {
		return t
	}
	if ns, ok := p.aliases[t[:i]]; ok {
		return ns + t[i:]
	}
	return t
}

func (p *parser) applyAnnotation(n *anode) {
	term, _ := n.attr("Term")
	term = p.qualifyTerm(term)
	val, hasVal := constValue(n)
	switch p.annTarget {
	case kProperty:
		pr := p.prop
		switch term {
		case termDescription:
			pr.Description = val
		case termComputed:
			pr.Computed = !hasVal || val == "true"
		case termPermissions:
			pr.ReadOnly = readOnly(val)
		default:
			pr.Annotations = append(pr.Annotations, p.annotation(term, n))
		}
	case kNav:
		if term == termDescription {
			p.nav.Description = val
		}
	case kComplexType:
		if term == termDescription {
			p.ct.Description = val
		}
	case kEntityType:
		switch term {
		case termDescription:
			p.et.Description = val
		case termAlternateKeys:
			p.et.AlternateKeys = append(p.et.AlternateKeys, alternateKeys(n)...)
		default:
			p.et.Annotations = append(p.et.Annotations, p.annotation(term, n))
		}
	case kEntitySet:
		p.set.Annotations = append(p.set.Annotations, p.annotation(term, n))
	case kContainer:
		p.m.Container.Annotations = append(p.m.Container.Annotations, p.annotation(term, n))
	}
}

// readOnly reports whether a Core.Permissions value grants Read only.
func readOnly(v string) bool {
	read := false
	for _, f := range strings.Fields(v) {
		switch f[strings.LastIndexByte(f, '/')+1:] {
		case "Read":
			read = true
		case "Write", "ReadWrite", "Invoke":
			return false
		}
	}
	return read
}

func (p *parser) annotation(term string, n *anode) Annotation {
	a := Annotation{Term: term}
	a.Qualifier, _ = n.attr("Qualifier")
	a.Value, _ = constValue(n)
	for _, k := range n.kids {
		switch k.name {
		case "Record":
			a.Record = record(k)
		case "Collection":
			for _, item := range k.kids {
				if item.name == "Record" {
					continue
				}
				a.Collection = append(a.Collection, strings.TrimSpace(item.text))
			}
		}
	}
	return a
}

// record flattens a <Record> to its PropertyValue constants.
func record(n *anode) map[string]string {
	m := make(map[string]string, len(n.kids))
	for _, pv := range n.kids {
		if pv.name != "PropertyValue" {
			continue
		}
		name, _ := pv.attr("Property")
		v, _ := constValue(pv)
		m[name] = v
	}
	return m
}

// alternateKeys interprets OData.Community.Keys.V1.AlternateKeys:
//
//	<Collection><Record Type="Keys.AlternateKey">
//	  <PropertyValue Property="Key"><Collection>
//	    <Record Type="Keys.PropertyRef">
//	      <PropertyValue Property="Alias" String="accountnumber"/>
//	      <PropertyValue Property="Name" PropertyPath="accountnumber"/>
//	    </Record>
//	  </Collection></PropertyValue>
//	</Record></Collection>
//
// Each key is the list of its property paths (Name), in order.
func alternateKeys(n *anode) [][]string {
	var keys [][]string
	for _, coll := range n.kids {
		if coll.name != "Collection" {
			continue
		}
		for _, rec := range coll.kids {
			if rec.name != "Record" {
				continue
			}
			var key []string
			for _, pv := range rec.kids {
				if prop, _ := pv.attr("Property"); pv.name != "PropertyValue" || prop != "Key" {
					continue
				}
				for _, kc := range pv.kids {
					if kc.name != "Collection" {
						continue
					}
					for _, ref := range kc.kids {
						switch ref.name {
						case "Record":
							for _, f := range ref.kids {
								if prop, _ := f.attr("Property"); f.name == "PropertyValue" && prop == "Name" {
									if v, ok := constValue(f); ok {
										key = append(key, v)
									}
								}
							}
						case "PropertyPath":
							key = append(key, strings.TrimSpace(ref.text))
						}
					}
				}
			}
			if len(key) > 0 {
				keys = append(keys, key)
			}
		}
	}
	return keys
}
