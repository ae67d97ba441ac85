package csdl

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// quirksDoc is a small document in the shape of real Dataverse metadata,
// with each quirk dvgate depends on. It starts with a UTF-8 BOM like some
// real responses, and mixes the alias and full namespace.
const quirksDoc = "\ufeff" + `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:Reference Uri="http://vocabularies.odata.org/OData.Community.Keys.V1.xml">
    <edmx:Include Namespace="OData.Community.Keys.V1" Alias="Keys"/>
    <edmx:IncludeAnnotations TermNamespace="OData.Community.Keys.V1"/>
  </edmx:Reference>
  <edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="crmbaseentity" Abstract="true"/>
      <EntityType Name="account" BaseType="mscrm.crmbaseentity">
        <Key>
          <PropertyRef Name="accountid"/>
        </Key>
        <Property Name="accountid" Type="Edm.Guid">
          <Annotation Term="Org.OData.Core.V1.Description" String="Unique identifier of the account."/>
        </Property>
        <Property Name="name" Type="Edm.String" Unicode="false" MaxLength="max">
          <Annotation Term="Org.OData.Core.V1.Description" String="Type the company &amp; &quot;trade&quot; name&#x2E;"/>
        </Property>
        <Property Name="accountnumber" Type="Edm.String" MaxLength="20"/>
        <Property Name="revenue" Type="Edm.Decimal" Scale="Variable">
          <Annotation Term="Org.OData.Core.V1.Computed" Bool="true"/>
          <Annotation Term="Org.OData.Core.V1.Permissions">
            <EnumMember>Org.OData.Core.V1.PermissionType/Read</EnumMember>
          </Annotation>
        </Property>
        <Property Name="_primarycontactid_value" Type="Edm.Guid"/>
        <Property Name="versionnumber" Type="Edm.Int64" ConcurrencyMode="Fixed"/>
        <NavigationProperty Name="primarycontactid" Type="mscrm.contact" Nullable="false" Partner="account_primary_contact">
          <ReferentialConstraint Property="_primarycontactid_value" ReferencedProperty="contactid"/>
        </NavigationProperty>
        <NavigationProperty Name="order_customer_accounts" Type="Collection(mscrm.salesorder)" Partner="customerid_account"/>
        <Annotation Term="Keys.AlternateKeys">
          <Collection>
            <Record Type="Keys.AlternateKey">
              <PropertyValue Property="Key">
                <Collection>
                  <Record Type="Keys.PropertyRef">
                    <PropertyValue Property="Alias" String="accountnumber"/>
                    <PropertyValue Property="Name" PropertyPath="accountnumber"/>
                  </Record>
                </Collection>
              </PropertyValue>
            </Record>
          </Collection>
        </Annotation>
        <Annotation Term="Org.OData.Core.V1.Description" String="Business that represents a customer."/>
      </EntityType>
      <EntityType Name="contact" BaseType="Microsoft.Dynamics.CRM.crmbaseentity">
        <Key>
          <PropertyRef Name="contactid"/>
        </Key>
        <Property Name="contactid" Type="Edm.Guid"/>
        <Property Name="emailaddress1" Type="Edm.String" Unicode="false"/>
        <Property Name="birthdate" Type="Edm.Date"/>
        <NavigationProperty Name="account_primary_contact" Type="Collection(mscrm.account)" Partner="primarycontactid"/>
        <Annotation Term="OData.Community.Keys.V1.AlternateKeys">
          <Collection>
            <Record>
              <PropertyValue Property="Key">
                <Collection>
                  <PropertyPath>emailaddress1</PropertyPath>
                  <PropertyPath>birthdate</PropertyPath>
                </Collection>
              </PropertyValue>
            </Record>
          </Collection>
        </Annotation>
      </EntityType>
      <EntityType Name="salesorder" BaseType="mscrm.crmbaseentity">
        <Key>
          <PropertyRef Name="salesorderid"/>
        </Key>
        <Property Name="salesorderid" Type="Edm.Guid"/>
        <Property Name="ordernumber" Type="Edm.String" Unicode="false"/>
        <Property Name="_customerid_value" Type="Edm.Guid"/>
        <Property Name="_ownerid_value" Type="Edm.Guid"/>
        <NavigationProperty Name="customerid_contact" Type="mscrm.contact" Nullable="false" Partner="order_customer_contacts">
          <ReferentialConstraint Property="_customerid_value" ReferencedProperty="contactid"/>
        </NavigationProperty>
        <NavigationProperty Name="order_details" Type="Collection(mscrm.salesorderdetail)" Partner="salesorderid"/>
        <NavigationProperty Name="ownerid" Type="mscrm.principal" Nullable="false" Partner="owner_salesorders">
          <ReferentialConstraint Property="_ownerid_value" ReferencedProperty="ownerid"/>
        </NavigationProperty>
        <NavigationProperty Name="customerid_account" Type="mscrm.account" Nullable="false" Partner="order_customer_accounts">
          <ReferentialConstraint Property="_customerid_value" ReferencedProperty="accountid"/>
        </NavigationProperty>
      </EntityType>
      <EntityType Name="salesorderdetail" BaseType="mscrm.crmbaseentity">
        <Key>
          <PropertyRef Name="salesorderdetailid"/>
        </Key>
        <Property Name="salesorderdetailid" Type="Edm.Guid"/>
        <Property Name="_salesorderid_value" Type="Edm.Guid"/>
        <NavigationProperty Name="salesorderid" Type="mscrm.salesorder" Nullable="false" Partner="order_details">
          <ReferentialConstraint Property="_salesorderid_value" ReferencedProperty="salesorderid"/>
        </NavigationProperty>
      </EntityType>
      <EntityType Name="principal" Abstract="true">
        <Key>
          <PropertyRef Name="ownerid"/>
        </Key>
        <Property Name="ownerid" Type="Edm.Guid"/>
      </EntityType>
      <EntityType Name="solution" BaseType="mscrm.crmbaseentity">
        <Key>
          <PropertyRef Name="solutionid"/>
        </Key>
        <Property Name="solutionid" Type="Edm.Guid"/>
        <Property Name="friendlyname" Type="Edm.String"/>
      </EntityType>
      <EntityType Name="expando" BaseType="mscrm.crmbaseentity" OpenType="true"/>
      <ComplexType Name="Solution">
        <Property Name="UniqueName" Type="Edm.String" Nullable="false"/>
        <Property Name="Components" Type="Collection(mscrm.SolutionComponent)"/>
        <Property Name="Kind" Type="mscrm.SolutionKind"/>
      </ComplexType>
      <ComplexType Name="SolutionComponent">
        <Property Name="ObjectId" Type="Edm.Guid"/>
      </ComplexType>
      <ComplexType Name="WhoAmIResponse">
        <Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/>
        <Property Name="UserId" Type="Edm.Guid" Nullable="false"/>
        <Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/>
      </ComplexType>
      <EnumType Name="SolutionKind">
        <Member Name="Managed"/>
        <Member Name="Unmanaged"/>
        <Member Name="Patch" Value="8"/>
      </EnumType>
      <Function Name="WhoAmI">
        <ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/>
      </Function>
      <Function Name="RetrieveVersion">
        <ReturnType Type="Edm.String"/>
      </Function>
      <Action Name="ExportSolution">
        <Parameter Name="Solution" Type="mscrm.Solution" Nullable="false"/>
        <ReturnType Type="Collection(Edm.Binary)"/>
      </Action>
      <EntityContainer Name="System">
        <EntitySet Name="accounts" EntityType="Microsoft.Dynamics.CRM.account">
          <NavigationPropertyBinding Path="primarycontactid" Target="contacts"/>
          <NavigationPropertyBinding Path="order_customer_accounts" Target="salesorders"/>
          <Annotation Term="Org.OData.Capabilities.V1.SkipSupported" Bool="false"/>
          <Annotation Term="Org.OData.Capabilities.V1.CountRestrictions">
            <Record>
              <PropertyValue Property="Countable" Bool="true"/>
            </Record>
          </Annotation>
        </EntitySet>
        <EntitySet Name="contacts" EntityType="Microsoft.Dynamics.CRM.contact"/>
        <EntitySet Name="salesorders" EntityType="mscrm.salesorder">
          <NavigationPropertyBinding Path="customerid_account" Target="accounts"/>
          <NavigationPropertyBinding Path="customerid_contact" Target="contacts"/>
          <NavigationPropertyBinding Path="order_details" Target="salesorderdetails"/>
          <NavigationPropertyBinding Path="ownerid" Target="owners"/>
        </EntitySet>
        <EntitySet Name="salesorderdetails" EntityType="Microsoft.Dynamics.CRM.salesorderdetail"/>
        <EntitySet Name="owners" EntityType="Microsoft.Dynamics.CRM.principal"/>
        <EntitySet Name="solutions" EntityType="Microsoft.Dynamics.CRM.solution"/>
        <FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/>
        <FunctionImport Name="RetrieveVersion" Function="Microsoft.Dynamics.CRM.RetrieveVersion"/>
        <ActionImport Name="ExportSolution" Action="Microsoft.Dynamics.CRM.ExportSolution"/>
        <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
          <Collection>
            <String>contains</String>
            <String>endswith</String>
          </Collection>
        </Annotation>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`

func readQuirks(t *testing.T, opts ...ReadOption) *Model {
	t.Helper()
	m, err := Read(strings.NewReader(quirksDoc), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func navNames(ns []*NavigationProperty) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestReadQuirks(t *testing.T) {
	t.Parallel()
	m := readQuirks(t)
	type keyInfo struct {
		Abstract bool
		Key      []string
		Base     string
	}
	tests := []struct {
		name string
		got  func() any
		want any
	}{
		{"abstract keyless crmbaseentity base", func() any {
			b := m.EntityType("crmbaseentity")
			a := m.EntityType("account")
			return []keyInfo{{b.Abstract, b.EffectiveKey(), ""}, {a.Abstract, a.EffectiveKey(), a.Base.QualifiedName()}}
		}, []keyInfo{{true, nil, ""}, {false, []string{"accountid"}, "Microsoft.Dynamics.CRM.crmbaseentity"}}},
		{"key properties keep the default Nullable", func() any {
			return m.EntityType("account").Property("accountid").Nullable
		}, true},
		{"single-valued navigation is Nullable=false but optional", func() any {
			n := m.EntityType("salesorder").NavigationProperty("customerid_account")
			c := m.EntityType("salesorder").NavigationProperty("order_details")
			return []bool{n.Nullable, n.Optional(), c.Collection, c.Optional()}
		}, []bool{false, true, true, false}},
		{"polymorphic lookup", func() any {
			var out [][]string
			for _, l := range m.EntityType("salesorder").Lookups() {
				out = append(out, append([]string{l.Column.Name}, navNames(l.Navigations)...))
			}
			return out
		}, [][]string{{"_customerid_value", "customerid_contact", "customerid_account"}, {"_ownerid_value", "ownerid"}}},
		{"money is Decimal with Scale=Variable", func() any {
			p := m.EntityType("account").Property("revenue")
			return []any{p.Type, p.Scale, p.Precision, p.Computed, p.ReadOnly}
		}, []any{"Edm.Decimal", "Variable", -1, true, true}},
		{"Unicode=false, MaxLength", func() any {
			a := m.EntityType("account")
			return []any{a.Property("name").Unicode, a.Property("name").MaxLength, a.Property("accountnumber").Unicode, a.Property("accountnumber").MaxLength}
		}, []any{false, -1, true, 20}},
		{"descriptions decode entities", func() any {
			a := m.EntityType("account")
			return []string{a.Description, a.Property("name").Description}
		}, []string{"Business that represents a customer.", `Type the company & "trade" name.`}},
		{"Solution complex type vs solution entity type", func() any {
			return []string{m.ComplexType("Solution").QualifiedName(), m.EntityType("solution").QualifiedName(),
				nilName(m.EntityType("Solution")), nilName(m.ComplexType("solution"))}
		}, []string{"Microsoft.Dynamics.CRM.Solution", "Microsoft.Dynamics.CRM.solution", "<nil>", "<nil>"}},
		{"expando is an open type", func() any {
			return m.EntityType("expando").OpenType
		}, true},
		{"capability annotations on entity sets", func() any {
			return m.EntitySet("accounts").Annotations
		}, []Annotation{
			{Term: "Org.OData.Capabilities.V1.SkipSupported", Value: "false"},
			{Term: "Org.OData.Capabilities.V1.CountRestrictions", Record: map[string]string{"Countable": "true"}},
		}},
		{"container annotation with a collection", func() any {
			return m.Container.Annotations
		}, []Annotation{{Term: "Org.OData.Capabilities.V1.FilterFunctions", Collection: []string{"contains", "endswith"}}}},
		{"alias and full name resolve to the same declaration", func() any {
			return []bool{
				m.EntityType("mscrm.account") == m.EntityType("Microsoft.Dynamics.CRM.account"),
				m.EntityType("account") == m.EntityType("mscrm.account"),
				m.EntitySetOf(m.EntityType("salesorder")) == m.EntitySet("salesorders"),
				m.EntityType("other.account") == nil,
			}
		}, []bool{true, true, true, true}},
		{"type references are stored with full names", func() any {
			return []string{m.EntityType("contact").BaseType, m.EntityType("salesorder").NavigationProperty("order_details").Type,
				m.EntitySet("salesorders").EntityType, m.Function("WhoAmI").ReturnType.Type, m.ComplexType("Solution").Properties[1].Type}
		}, []string{"Microsoft.Dynamics.CRM.crmbaseentity", "Microsoft.Dynamics.CRM.salesorderdetail", "Microsoft.Dynamics.CRM.salesorder",
			"Microsoft.Dynamics.CRM.WhoAmIResponse", "Microsoft.Dynamics.CRM.SolutionComponent"}},
		{"alternate keys, alias and full term", func() any {
			return [][][]string{m.EntityType("account").AlternateKeys, m.EntityType("contact").AlternateKeys}
		}, [][][]string{{{"accountnumber"}}, {{"emailaddress1", "birthdate"}}}},
		{"enum members with implicit values", func() any {
			return m.EnumType("mscrm.SolutionKind").Members
		}, []EnumMember{{"Managed", 0}, {"Unmanaged", 1}, {"Patch", 8}}},
		{"partner and referential constraint", func() any {
			n := m.EntityType("salesorderdetail").NavigationProperty("salesorderid")
			return []any{n.Partner, n.ReferentialConstraints}
		}, []any{"order_details", []ReferentialConstraint{{"_salesorderid_value", "salesorderid"}}}},
		{"schemas and version", func() any {
			return []any{m.Version, m.Schemas}
		}, []any{"4.0", []Schema{{"Microsoft.Dynamics.CRM", "mscrm"}}}},
		{"positions", func() any {
			return []Pos{m.EntityType("crmbaseentity").Pos, m.EntityType("account").Property("accountid").Pos}
		}, []Pos{{10, 7}, {15, 9}}},
		{"operations and imports", func() any {
			return []any{m.Action("ExportSolution").Parameters, m.Action("ExportSolution").ReturnType, len(m.Container.FunctionImports), m.Function("Nope") == nil}
		}, []any{[]Parameter{{"Solution", "Microsoft.Dynamics.CRM.Solution", false, false}}, &ReturnType{"Edm.Binary", true, true}, 2, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.got()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func nilName(v interface{ QualifiedName() string }) string {
	switch x := v.(type) {
	case *EntityType:
		if x == nil {
			return "<nil>"
		}
	case *ComplexType:
		if x == nil {
			return "<nil>"
		}
	}
	return v.QualifiedName()
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	const head = `<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>
<Schema Namespace="NS" Alias="ns">
<EntityType Name="base" Abstract="true"/>
`
	const tail = `</Schema></edmx:DataServices></edmx:Edmx>`
	tests := []struct {
		name string
		doc  string
		want Error
	}{
		{"dangling base type", head + `<EntityType Name="a" BaseType="ns.missing"><Key><PropertyRef Name="id"/></Key></EntityType>` + tail,
			Error{Pos{4, 1}, "EntityType", `base type "NS.missing" of a is not declared`}},
		{"dangling property type", head + `<EntityType Name="a"><Key><PropertyRef Name="id"/></Key>
  <Property Name="id" Type="Edm.Guid"/>
  <Property Name="c" Type="ns.Nope"/></EntityType>` + tail,
			Error{Pos{6, 3}, "Property", `property c: type "NS.Nope" is not declared`}},
		{"dangling navigation type", head + `<EntityType Name="a"><Key><PropertyRef Name="id"/></Key>
    <NavigationProperty Name="n" Type="Collection(ns.b)"/></EntityType>` + tail,
			Error{Pos{5, 5}, "NavigationProperty", `navigation property n: entity type "NS.b" is not declared`}},
		{"dangling entity set type", head + `<EntityContainer Name="C">
 <EntitySet Name="bs" EntityType="NS.b"/></EntityContainer>` + tail,
			Error{Pos{5, 2}, "EntitySet", `entity set bs: entity type "NS.b" is not declared`}},
		{"concrete type without key", head + `  <EntityType Name="a" BaseType="ns.base"/>` + tail,
			Error{Pos{4, 3}, "EntityType", `entity type a has no key: it is not abstract and neither it nor a base type declares one`}},
		{"cyclic base types", head + `<EntityType Name="a" BaseType="ns.b"/><EntityType Name="b" BaseType="ns.a"/>` + tail,
			Error{Pos{4, 1}, "EntityType", `base type chain of a is cyclic`}},
		{"mismatched end tag", head + `<EntityType Name="a">
</ComplexType>` + tail,
			Error{Pos{5, 1}, "", `element <EntityType> closed by </ComplexType>`}},
		{"unterminated document", head, Error{Pos{4, 1}, "", `unexpected end of document: <Schema> not closed`}},
		{"bad entity", head + `<EntityType Name="a&bogus;"/>` + tail, Error{Pos{4, 19}, "", `attribute Name in <EntityType>: invalid entity reference &bogus;`}},
		{"unquoted attribute", head + `<EntityType Name=a/>` + tail, Error{Pos{4, 18}, "", `attribute Name in <EntityType> is not quoted`}},
		{"bad boolean", head + `<EntityType Name="a" Abstract="yes"/>` + tail, Error{Pos{4, 1}, "EntityType", `attribute Abstract: invalid boolean "yes"`}},
		{"not edmx", `<root/>`, Error{Pos{1, 1}, "root", "root element is not edmx:Edmx"}},
		{"empty", ``, Error{Pos{1, 1}, "", "no root element"}},
		{"text after root", `<edmx:Edmx/>x`, Error{Pos{1, 13}, "", "text outside the root element"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Read(strings.NewReader(tt.doc))
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("Read error = %v, want an *Error", err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	e := &Error{Pos{12, 5}, "Property", "boom"}
	if got, want := e.Error(), "csdl: line 12, column 5: <Property>: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
