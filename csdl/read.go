package csdl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadOption configures Read.
type ReadOption func(*readConfig)

type readConfig struct {
	tables   []string
	filtered bool
}

// Tables makes Read keep only the named entity types (logical names such as
// "account", or qualified names) and what code generation needs with them:
// the same closure as Select. Types outside the selection are skipped while
// reading, so memory grows with the selection, not with the document.
//
// Read keeps the content of abstract types and of base types named after
// their derived types; a non-abstract base type declared before a selected
// type that derives from it must be named too, or Read reports it.
func Tables(names ...string) ReadOption {
	return func(c *readConfig) {
		c.tables = append(c.tables, names...)
		c.filtered = true
	}
}

// Read reads an OData v4 CSDL document (Edmx 4.0 XML) in one streaming pass.
// Without options it keeps every declaration; see Tables.
//
// Names in the returned model are qualified with full namespaces; type
// references are resolved (EntityType.Base and friends) and checked after the
// pass, so declarations may refer forward. A malformed document, a reference
// to a type that no schema declares, or an entity type that is neither
// abstract nor open (like Dataverse's expando) and has no key is reported as
// an *Error naming the element and its position; several are joined.
func Read(r io.Reader, opts ...ReadOption) (*Model, error) {
	var cfg readConfig
	for _, o := range opts {
		o(&cfg)
	}
	p := newParser(r, cfg)
	if err := p.run(); err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if cfg.filtered {
		// Report unknown names against every declared type, not only
		// the kept ones, so that suggestions match an unfiltered read.
		var errs []error
		for _, t := range cfg.tables {
			if p.m.EntityType(t) == nil {
				errs = append(errs, unknownTable(p.typeNames, t))
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return Select(p.m, cfg.tables)
	}
	return p.m, nil
}

// kind is what a parser stack frame stands for.
type kind uint8

const (
	kNone kind = iota
	kSkip
	kEdmx
	kReference
	kDataServices
	kSchema
	kEntityType
	kKey
	kProperty
	kNav
	kComplexType
	kEnumType
	kOperation
	kContainer
	kEntitySet
	kAnnotation
	kAnnotNode
)

type parser struct {
	s   *scanner
	m   *Model
	cfg readConfig

	strs map[string]string // interned strings

	// aliases maps schema and include aliases to namespaces.
	aliases map[string]string
	// declared holds "namespace.name" of every entity type in the document,
	// kept or not, so that references to skipped types are not dangling.
	declared  map[string]bool
	typeNames []string // bare names of all entity types, in document order
	// typeDefs holds "namespace.name" of type definitions.
	typeDefs map[string]bool
	// wanted holds the bare names of entity types to keep (filtered reads);
	// dropped the bare names of entity types skipped so far.
	wanted  map[string]bool
	dropped map[string]bool

	stack []kind
	ns    string // namespace of the current schema

	et   *EntityType
	ct   *ComplexType
	prop *Property
	nav  *NavigationProperty
	enum *EnumType
	op   *Operation
	set  *EntitySet

	annTarget kind
	ann       []*anode // open annotation expression elements; ann[0] is the <Annotation>
	annRoot   anode

	errs []error
}

// anode is an element inside an <Annotation>, kept as a tiny tree until the
// annotation ends, because annotations are small and their meaning depends
// on the whole expression.
type anode struct {
	name  string
	attrs []aattr
	text  string
	kids  []*anode
}

type aattr struct{ name, value string }

func (n *anode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.name == name {
			return a.value, true
		}
	}
	return "", false
}

func newParser(r io.Reader, cfg readConfig) *parser {
	p := &parser{
		s:        newScanner(r),
		m:        &Model{},
		cfg:      cfg,
		strs:     make(map[string]string, 4096),
		aliases:  make(map[string]string),
		declared: make(map[string]bool),
		typeDefs: make(map[string]bool),
	}
	if cfg.filtered {
		p.wanted = make(map[string]bool)
		p.dropped = make(map[string]bool)
		for _, t := range cfg.tables {
			p.wanted[bareName(t)] = true
		}
	}
	return p
}

func bareName(q string) string {
	if i := strings.LastIndexByte(q, '.'); i >= 0 {
		return q[i+1:]
	}
	return q
}

func (p *parser) intern(b []byte) string {
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	p.strs[s] = s
	return s
}

func (p *parser) run() error {
	s := p.s
	if err := s.skipBOM(); err != nil {
		return err
	}
	for {
		if err := s.next(); err != nil {
			return p.scanErr(err)
		}
		switch s.kind {
		case tokEOF:
			return nil
		case tokStart:
			k, err := p.start()
			if err != nil {
				return err
			}
			p.stack = append(p.stack, k)
			if s.selfClose {
				p.end()
			}
		case tokEnd:
			p.end()
		case tokText:
			if n := len(p.ann); n > 0 && p.stack[len(p.stack)-1] == kAnnotNode {
				if t := p.ann[n-1]; t.text == "" {
					t.text = p.value(s.text)
				} else {
					t.text += string(s.text)
				}
			}
		}
	}
}

func (p *parser) scanErr(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return &Error{Pos: p.s.posOf(se.off), Msg: se.msg}
	}
	return fmt.Errorf("csdl: reading document: %w", err)
}

// errorf records a semantic error at the current token.
func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: p.s.tokPos(), Element: string(p.s.name), Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) top() kind {
	if len(p.stack) == 0 {
		return kNone
	}
	return p.stack[len(p.stack)-1]
}

// start handles a start element and returns the frame kind to push.
func (p *parser) start() (kind, error) {
	s := p.s
	name := s.name
	switch p.top() {
	case kNone:
		if string(name) != "Edmx" {
			return 0, &Error{Pos: s.tokPos(), Element: string(name), Msg: "root element is not edmx:Edmx"}
		}
		for _, a := range s.attrs {
			if string(a.name) == "Version" {
				p.m.Version = p.intern(a.value)
			}
		}
		return kEdmx, nil
	case kSkip:
		return kSkip, nil
	case kEdmx:
		switch string(name) {
		case "Reference":
			return kReference, nil
		case "DataServices":
			return kDataServices, nil
		}
	case kReference:
		if string(name) == "Include" {
			var ns, alias string
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Namespace":
					ns = p.intern(a.value)
				case "Alias":
					alias = p.intern(a.value)
				}
			}
			if alias != "" {
				p.aliases[alias] = ns
			}
		}
	case kDataServices:
		if string(name) == "Schema" {
			var sc Schema
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Namespace":
					sc.Namespace = p.intern(a.value)
				case "Alias":
					sc.Alias = p.intern(a.value)
				}
			}
			if sc.Namespace == "" {
				p.errorf("missing Namespace")
			}
			if sc.Alias != "" {
				p.aliases[sc.Alias] = sc.Namespace
			}
			p.ns = sc.Namespace
			p.m.Schemas = append(p.m.Schemas, sc)
			return kSchema, nil
		}
	case kSchema:
		return p.schemaChild(name), nil
	case kEntityType:
		switch string(name) {
		case "Key":
			return kKey, nil
		case "Property":
			p.prop = p.property()
			p.et.Properties = append(p.et.Properties, p.prop)
			return kProperty, nil
		case "NavigationProperty":
			p.nav = p.navigation()
			p.et.NavigationProperties = append(p.et.NavigationProperties, p.nav)
			return kNav, nil
		case "Annotation":
			return p.startAnnotation(kEntityType), nil
		}
	case kKey:
		if string(name) == "PropertyRef" {
			for _, a := range s.attrs {
				if string(a.name) == "Name" {
					p.et.Key = append(p.et.Key, p.intern(a.value))
				}
			}
		}
	case kComplexType:
		switch string(name) {
		case "Property":
			p.prop = p.property()
			p.ct.Properties = append(p.ct.Properties, p.prop)
			return kProperty, nil
		case "NavigationProperty":
			p.nav = p.navigation()
			p.ct.NavigationProperties = append(p.ct.NavigationProperties, p.nav)
			return kNav, nil
		case "Annotation":
			return p.startAnnotation(kComplexType), nil
		}
	case kProperty:
		if string(name) == "Annotation" {
			return p.startAnnotation(kProperty), nil
		}
	case kNav:
		switch string(name) {
		case "ReferentialConstraint":
			var rc ReferentialConstraint
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Property":
					rc.Property = p.intern(a.value)
				case "ReferencedProperty":
					rc.ReferencedProperty = p.intern(a.value)
				}
			}
			p.nav.ReferentialConstraints = append(p.nav.ReferentialConstraints, rc)
		case "Annotation":
			return p.startAnnotation(kNav), nil
		}
	case kEnumType:
		if string(name) == "Member" {
			p.member()
		}
	case kOperation:
		switch string(name) {
		case "Parameter":
			var pa Parameter
			pa.Nullable = true
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Name":
					pa.Name = p.intern(a.value)
				case "Type":
					pa.Type, pa.Collection = p.typeRef(a.value)
				case "Nullable":
					pa.Nullable = p.boolAttr(a, true)
				}
			}
			p.op.Parameters = append(p.op.Parameters, pa)
		case "ReturnType":
			rt := &ReturnType{Nullable: true}
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Type":
					rt.Type, rt.Collection = p.typeRef(a.value)
				case "Nullable":
					rt.Nullable = p.boolAttr(a, true)
				}
			}
			p.op.ReturnType = rt
		}
	case kContainer:
		switch string(name) {
		case "EntitySet":
			return p.entitySet(), nil
		case "FunctionImport", "ActionImport":
			p.operationImport(string(name) == "FunctionImport")
		case "Annotation":
			return p.startAnnotation(kContainer), nil
		}
	case kEntitySet:
		switch string(name) {
		case "NavigationPropertyBinding":
			var b NavigationPropertyBinding
			for _, a := range s.attrs {
				switch string(a.name) {
				case "Path":
					b.Path = p.intern(a.value)
				case "Target":
					b.Target = p.intern(a.value)
				}
			}
			p.set.Bindings = append(p.set.Bindings, b)
		case "Annotation":
			return p.startAnnotation(kEntitySet), nil
		}
	case kAnnotation, kAnnotNode:
		n := &anode{name: p.intern(s.name)}
		for _, a := range s.attrs {
			n.attrs = append(n.attrs, aattr{p.intern(a.name), p.value(a.value)})
		}
		parent := p.ann[len(p.ann)-1]
		parent.kids = append(parent.kids, n)
		p.ann = append(p.ann, n)
		return kAnnotNode, nil
	}
	return kSkip, nil
}

func (p *parser) schemaChild(name []byte) kind {
	s := p.s
	switch string(name) {
	case "EntityType":
		et := &EntityType{Namespace: p.ns, Pos: s.tokPos()}
		for _, a := range s.attrs {
			switch string(a.name) {
			case "Name":
				et.Name = p.intern(a.value)
			case "BaseType":
				et.BaseType = p.intern(a.value)
			case "Abstract":
				et.Abstract = p.boolAttr(a, false)
			case "OpenType":
				et.OpenType = p.boolAttr(a, false)
			}
		}
		if et.Name == "" {
			p.errorf("missing Name")
		}
		p.declared[et.Namespace+"."+et.Name] = true
		p.typeNames = append(p.typeNames, et.Name)
		if p.cfg.filtered && !et.Abstract && !p.wanted[et.Name] {
			p.dropped[et.Name] = true
			return kSkip
		}
		if p.cfg.filtered && et.BaseType != "" {
			p.wanted[bareName(et.BaseType)] = true
		}
		p.et = et
		p.m.EntityTypes = append(p.m.EntityTypes, et)
		return kEntityType
	case "ComplexType":
		ct := &ComplexType{Namespace: p.ns, Pos: s.tokPos()}
		for _, a := range s.attrs {
			switch string(a.name) {
			case "Name":
				ct.Name = p.intern(a.value)
			case "BaseType":
				ct.BaseType = p.intern(a.value)
			case "Abstract":
				ct.Abstract = p.boolAttr(a, false)
			case "OpenType":
				ct.OpenType = p.boolAttr(a, false)
			}
		}
		if ct.Name == "" {
			p.errorf("missing Name")
		}
		p.ct = ct
		p.m.ComplexTypes = append(p.m.ComplexTypes, ct)
		return kComplexType
	case "EnumType":
		e := &EnumType{Namespace: p.ns, UnderlyingType: "Edm.Int32", Pos: s.tokPos()}
		for _, a := range s.attrs {
			switch string(a.name) {
			case "Name":
				e.Name = p.intern(a.value)
			case "UnderlyingType":
				e.UnderlyingType = p.intern(a.value)
			case "IsFlags":
				e.IsFlags = p.boolAttr(a, false)
			}
		}
		if e.Name == "" {
			p.errorf("missing Name")
		}
		p.enum = e
		p.m.EnumTypes = append(p.m.EnumTypes, e)
		return kEnumType
	case "Function", "Action":
		op := &Operation{Namespace: p.ns, Pos: s.tokPos()}
		for _, a := range s.attrs {
			switch string(a.name) {
			case "Name":
				op.Name = p.intern(a.value)
			case "IsBound":
				op.IsBound = p.boolAttr(a, false)
			case "IsComposable":
				op.IsComposable = p.boolAttr(a, false)
			case "EntitySetPath":
				op.EntitySetPath = p.intern(a.value)
			}
		}
		if op.Name == "" {
			p.errorf("missing Name")
		}
		if p.cfg.filtered && op.Name != whoAmI {
			return kSkip
		}
		p.op = op
		if string(name) == "Function" {
			p.m.Functions = append(p.m.Functions, op)
		} else {
			p.m.Actions = append(p.m.Actions, op)
		}
		return kOperation
	case "EntityContainer":
		if p.m.Container == nil {
			c := &EntityContainer{}
			for _, a := range s.attrs {
				if string(a.name) == "Name" {
					c.Name = p.intern(a.value)
				}
			}
			p.m.Container = c
		}
		return kContainer
	case "TypeDefinition":
		for _, a := range s.attrs {
			if string(a.name) == "Name" {
				p.typeDefs[p.ns+"."+string(a.value)] = true
			}
		}
	}
	return kSkip
}

const whoAmI = "WhoAmI"

func (p *parser) property() *Property {
	s := p.s
	pr := &Property{Nullable: true, Unicode: true, Precision: -1, Pos: s.tokPos()}
	for _, a := range s.attrs {
		switch string(a.name) {
		case "Name":
			pr.Name = p.intern(a.value)
		case "Type":
			pr.Type, pr.Collection = p.typeRef(a.value)
		case "Nullable":
			pr.Nullable = p.boolAttr(a, true)
		case "MaxLength":
			if string(a.value) == "max" || string(a.value) == "MAX" {
				pr.MaxLength = -1
			} else {
				pr.MaxLength = p.intAttr(a)
			}
		case "Precision":
			pr.Precision = p.intAttr(a)
		case "Scale":
			pr.Scale = p.intern(a.value)
		case "Unicode":
			pr.Unicode = p.boolAttr(a, true)
		case "ConcurrencyMode":
			pr.ConcurrencyMode = p.intern(a.value)
		}
	}
	if pr.Name == "" {
		p.errorf("missing Name")
	}
	if pr.Type == "" {
		p.errorf("missing Type")
	}
	return pr
}

func (p *parser) navigation() *NavigationProperty {
	s := p.s
	n := &NavigationProperty{Nullable: true, Pos: s.tokPos()}
	for _, a := range s.attrs {
		switch string(a.name) {
		case "Name":
			n.Name = p.intern(a.value)
		case "Type":
			n.Type, n.Collection = p.typeRef(a.value)
		case "Nullable":
			n.Nullable = p.boolAttr(a, true)
		case "Partner":
			n.Partner = p.intern(a.value)
		case "ContainsTarget":
			n.ContainsTarget = p.boolAttr(a, false)
		}
	}
	if n.Name == "" {
		p.errorf("missing Name")
	}
	if n.Type == "" {
		p.errorf("missing Type")
	}
	return n
}

func (p *parser) member() {
	m := EnumMember{Value: int64(len(p.enum.Members))}
	for _, a := range p.s.attrs {
		switch string(a.name) {
		case "Name":
			m.Name = p.intern(a.value)
		case "Value":
			v, err := strconv.ParseInt(string(a.value), 10, 64)
			if err != nil {
				p.errorf("invalid Value %q", a.value)
			}
			m.Value = v
		}
	}
	p.enum.Members = append(p.enum.Members, m)
}

func (p *parser) entitySet() kind {
	s := p.s
	es := &EntitySet{Pos: s.tokPos()}
	for _, a := range s.attrs {
		switch string(a.name) {
		case "Name":
			es.Name = p.intern(a.value)
		case "EntityType":
			es.EntityType = p.intern(a.value)
		}
	}
	if es.Name == "" {
		p.errorf("missing Name")
	}
	if p.cfg.filtered && !p.wanted[bareName(es.EntityType)] {
		return kSkip
	}
	p.set = es
	p.m.Container.EntitySets = append(p.m.Container.EntitySets, es)
	return kEntitySet
}

func (p *parser) operationImport(function bool) {
	imp := &OperationImport{}
	for _, a := range p.s.attrs {
		switch string(a.name) {
		case "Name":
			imp.Name = p.intern(a.value)
		case "Function", "Action":
			imp.Operation = p.intern(a.value)
		case "EntitySet":
			imp.EntitySet = p.intern(a.value)
		}
	}
	if p.cfg.filtered && bareName(imp.Operation) != whoAmI {
		return
	}
	c := p.m.Container
	if function {
		c.FunctionImports = append(c.FunctionImports, imp)
	} else {
		c.ActionImports = append(c.ActionImports, imp)
	}
}

// typeRef parses a Type attribute: "Collection(X)" gives X and true.
func (p *parser) typeRef(v []byte) (string, bool) {
	if bytes.HasPrefix(v, []byte("Collection(")) && bytes.HasSuffix(v, []byte(")")) {
		return p.intern(v[len("Collection(") : len(v)-1]), true
	}
	return p.intern(v), false
}

func (p *parser) boolAttr(a attr, def bool) bool {
	switch string(a.value) {
	case "true":
		return true
	case "false":
		return false
	}
	p.errorf("attribute %s: invalid boolean %q", a.name, a.value)
	return def
}

func (p *parser) intAttr(a attr) int {
	n, err := strconv.Atoi(string(a.value))
	if err != nil || n < 0 {
		p.errorf("attribute %s: invalid number %q", a.name, a.value)
		return 0
	}
	return n
}

func (p *parser) startAnnotation(target kind) kind {
	// The <Annotation> node is reused: most annotations are one element,
	// and the model keeps only strings taken from it.
	n := &p.annRoot
	n.attrs, n.kids, n.text = n.attrs[:0], nil, ""
	for _, a := range p.s.attrs {
		n.attrs = append(n.attrs, aattr{p.intern(a.name), p.value(a.value)})
	}
	p.annTarget = target
	p.ann = append(p.ann[:0], n)
	return kAnnotation
}

// value returns v as a string, interned when short: short annotation values
// ("true", enum members) repeat, long ones (descriptions) rarely do.
func (p *parser) value(v []byte) string {
	if len(v) <= 40 {
		return p.intern(v)
	}
	return string(v)
}

// end handles an end element (or the end of an empty element).
func (p *parser) end() {
	k := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	switch k {
	case kEntityType:
		p.et = nil
	case kComplexType:
		p.ct = nil
	case kProperty:
		p.prop = nil
	case kNav:
		p.nav = nil
	case kEnumType:
		p.enum = nil
	case kOperation:
		p.op = nil
	case kEntitySet:
		p.set = nil
	case kSchema:
		p.ns = ""
	case kAnnotNode:
		p.ann = p.ann[:len(p.ann)-1]
	case kAnnotation:
		p.applyAnnotation(p.ann[0])
		p.ann = p.ann[:0]
	}
}
