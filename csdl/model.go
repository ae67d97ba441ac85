// Package csdl reads an OData v4 CSDL document (the Edmx XML that a Dataverse
// org serves at /api/data/v9.2/$metadata) into a model, in one streaming pass,
// and selects the closure of tables that code generation and the simulator need.
//
// Dataverse metadata is large (4 MB for a bare org, 30 MB and more with apps
// installed) and has quirks that generic OData tools trip over: every business
// table derives from the abstract, keyless crmbaseentity; keys are never marked
// Nullable="false"; every single-valued navigation property is marked
// Nullable="false" although lookups are often empty; polymorphic lookups share
// one _x_value column between several navigation properties; money is
// Edm.Decimal with Scale="Variable"; and type names can differ only by case.
// The model keeps what the document says; helpers such as
// NavigationProperty.Optional say how dvgate interprets it.
//
// All type names in the model are qualified with the schema's full namespace
// ("Microsoft.Dynamics.CRM.account"), whatever alias the document used.
// Primitive types keep their Edm names ("Edm.Decimal").
//
// A Model is not safe for concurrent mutation; once Read or Select returns it,
// it is only read, and any number of goroutines may read it.
package csdl

// Model is a parsed CSDL document, or the selection of one.
type Model struct {
	// Version is the Edmx Version attribute ("4.0").
	Version string
	// Schemas lists each schema's namespace and alias in document order.
	Schemas []Schema

	// The declarations of all schemas, in document order.
	EntityTypes  []*EntityType
	ComplexTypes []*ComplexType
	EnumTypes    []*EnumType
	Functions    []*Operation
	Actions      []*Operation
	// Container is the entity container (Dataverse has exactly one, "System").
	Container *EntityContainer

	// index maps qualified names, in both full and alias form, to declarations.
	// Built by Read and Select; unexported so a model stays consistent.
	index *index
}

// Schema is the namespace and alias of one <Schema> element.
type Schema struct {
	Namespace string // "Microsoft.Dynamics.CRM"
	Alias     string // "mscrm"
}

// Pos is a position in the source document, for error messages.
type Pos struct {
	Line, Column int
}

// EntityType is an <EntityType>.
type EntityType struct {
	Namespace string // full namespace of the declaring schema
	Name      string // "account"
	// BaseType is the qualified name of the base type, "" for none.
	BaseType string
	// Base is the resolved base type, nil for none.
	Base     *EntityType
	Abstract bool
	OpenType bool

	// Key holds the names of the declared key properties; empty when the type
	// inherits its key (or, like crmbaseentity, has none). See EffectiveKey.
	Key []string
	// Properties and NavigationProperties are the declared ones, in document
	// order; inherited members are on Base. See AllProperties.
	Properties           []*Property
	NavigationProperties []*NavigationProperty

	// Description is the Org.OData.Core.V1.Description annotation.
	Description string
	// AlternateKeys lists the OData.Community.Keys.V1.AlternateKeys of the
	// type: each is the property names of one key, in order.
	AlternateKeys [][]string
	// Annotations holds the type's other annotations.
	Annotations []Annotation

	Pos Pos
}

// Property is a structural <Property> of an entity or complex type.
type Property struct {
	Name string
	// Type is "Edm.String" etc., or the qualified name of a complex or enum
	// type. For a collection, Type is the element type and Collection is set.
	Type       string
	Collection bool
	// Nullable is as declared; CSDL's default is true.
	Nullable bool
	// MaxLength is the declared maximum length; 0 when not given, -1 for "max".
	MaxLength int
	// Precision is the declared precision, -1 when not given.
	Precision int
	// Scale is the declared scale as written ("Variable", "2"), "" when not given.
	Scale string
	// Unicode is false only when the document says Unicode="false".
	Unicode bool
	// ConcurrencyMode is "Fixed" or "".
	ConcurrencyMode string

	// Description is the Org.OData.Core.V1.Description annotation.
	Description string
	// Computed is Org.OData.Core.V1.Computed.
	Computed bool
	// ReadOnly is Org.OData.Core.V1.Permissions = Read.
	ReadOnly bool
	// Annotations holds the property's other annotations.
	Annotations []Annotation

	Pos Pos
}

// NavigationProperty is a <NavigationProperty>.
type NavigationProperty struct {
	Name string
	// Type is the qualified name of the target entity type; for
	// Collection(...) the element type, with Collection set.
	Type       string
	Collection bool
	// Nullable is as declared. Dataverse declares every single-valued
	// navigation property Nullable="false" although lookups are often empty:
	// use Optional.
	Nullable       bool
	Partner        string
	ContainsTarget bool
	// ReferentialConstraints tie a lookup column (Property, "_customerid_value")
	// to the target's key (ReferencedProperty, "accountid").
	ReferentialConstraints []ReferentialConstraint
	Description            string

	Pos Pos
}

// Optional reports whether a navigation property may be absent or null in a
// response. Collections are never null; single-valued ones are always
// optional, whatever Nullable says, because Dataverse lookups are often empty.
func (n *NavigationProperty) Optional() bool { return !n.Collection }

// ReferentialConstraint is a <ReferentialConstraint>.
type ReferentialConstraint struct {
	Property           string
	ReferencedProperty string
}

// ComplexType is a <ComplexType>.
type ComplexType struct {
	Namespace            string
	Name                 string
	BaseType             string
	Base                 *ComplexType
	Abstract             bool
	OpenType             bool
	Properties           []*Property
	NavigationProperties []*NavigationProperty
	Description          string
	Pos                  Pos
}

// EnumType is an <EnumType>.
type EnumType struct {
	Namespace      string
	Name           string
	UnderlyingType string // "Edm.Int32" when not given
	IsFlags        bool
	Members        []EnumMember
	Pos            Pos
}

// EnumMember is a <Member> of an enum type. Value is implicit (the member's
// index) when the document omits it.
type EnumMember struct {
	Name  string
	Value int64
}

// Operation is a <Function> or an <Action>.
type Operation struct {
	Namespace     string
	Name          string
	IsBound       bool
	IsComposable  bool
	EntitySetPath string
	Parameters    []Parameter
	// ReturnType is nil for an action without a result.
	ReturnType *ReturnType
	Pos        Pos
}

// Parameter is a <Parameter> of an operation.
type Parameter struct {
	Name       string
	Type       string
	Collection bool
	Nullable   bool
}

// ReturnType is the <ReturnType> of an operation.
type ReturnType struct {
	Type       string
	Collection bool
	Nullable   bool
}

// EntityContainer is the <EntityContainer>.
type EntityContainer struct {
	Name            string
	EntitySets      []*EntitySet
	FunctionImports []*OperationImport
	ActionImports   []*OperationImport
	Annotations     []Annotation
}

// EntitySet is an <EntitySet>.
type EntitySet struct {
	Name string // "accounts"
	// EntityType is the qualified name of the element type.
	EntityType string
	Bindings   []NavigationPropertyBinding
	// Annotations holds capability annotations such as
	// Org.OData.Capabilities.V1.SkipSupported.
	Annotations []Annotation
	Pos         Pos
}

// NavigationPropertyBinding is a <NavigationPropertyBinding>.
type NavigationPropertyBinding struct {
	Path   string
	Target string
}

// OperationImport is a <FunctionImport> or <ActionImport>.
type OperationImport struct {
	Name string
	// Operation is the qualified name of the function or action imported.
	Operation string
	EntitySet string
}

// Annotation is an <Annotation> that the model does not turn into a field.
// Term is qualified with the full namespace ("Org.OData.Capabilities.V1.SkipSupported").
// Value holds a constant expression as written (Bool="true" gives "true",
// String="x" gives "x", an EnumMember element gives its text); records and
// collections are kept as their PropertyValue pairs in Record, flattened one
// level, and a collection of constants as its items in Collection.
type Annotation struct {
	Term      string
	Qualifier string
	Value     string
	Record    map[string]string
	// Collection holds the items of a collection of constants, in order.
	Collection []string
}
