package entitydefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr(i int) *int { return &i }

// ignoreIndex compares only the exported fields.
var ignoreIndex = cmpopts.IgnoreUnexported(Definitions{}, Entity{})

const statusAttr = `{"@odata.type":"#Microsoft.Dynamics.CRM.StatusAttributeMetadata","LogicalName":"statuscode","SchemaName":"StatusCode","AttributeType":"Status","MetadataId":"x",
 "OptionSet":{"Name":"salesorder_statuscode","Options":[
  {"@odata.type":"#Microsoft.Dynamics.CRM.StatusOptionMetadata","Value":3,"State":1,"Color":null,"Label":{"LocalizedLabels":[{"Label":"In Bearbeitung","LanguageCode":1031},{"Label":"In Progress","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"In Progress","LanguageCode":1033}}},
  {"@odata.type":"#Microsoft.Dynamics.CRM.StatusOptionMetadata","Value":1,"State":0,"Label":{"LocalizedLabels":[{"Label":"New","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"New","LanguageCode":1033}}}]}}`

const salesorder = `{"LogicalName":"salesorder","SchemaName":"SalesOrder","EntitySetName":"salesorders","PrimaryIdAttribute":"salesorderid","PrimaryNameAttribute":"name","OwnershipType":"UserOwned",
 "Attributes":[` + statusAttr + `,
  {"LogicalName":"customerid","SchemaName":"CustomerId","AttributeType":"Customer","Targets":["account","contact"],"AttributeOf":null},
  {"LogicalName":"customeridname","SchemaName":"CustomerIdName","AttributeType":"String","AttributeOf":"customerid"},
  {"LogicalName":"statecode","SchemaName":"StateCode","AttributeType":"State","OptionSet":{"Name":"salesorder_statecode","Options":[
   {"Value":2,"DefaultStatus":4,"InvariantName":"Canceled","Label":{"LocalizedLabels":[{"Label":"Canceled","LanguageCode":1033}],"UserLocalizedLabel":null}}]}},
  {"LogicalName":"willcall","SchemaName":"WillCall","AttributeType":"Boolean","OptionSet":{"Name":"salesorder_willcall","OptionSetType":"Boolean",
   "TrueOption":{"Value":1,"Label":{"LocalizedLabels":[{"Label":"Will Call","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"Will Call","LanguageCode":1033}}},
   "FalseOption":{"Value":0,"Label":{"LocalizedLabels":[{"Label":"Address","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"Address","LanguageCode":1033}}}}}]}`

var wantSalesorder = &Entity{
	LogicalName: "salesorder", SchemaName: "SalesOrder", EntitySetName: "salesorders",
	PrimaryIdAttribute: "salesorderid", PrimaryNameAttribute: "name",
	Attributes: []*Attribute{
		{LogicalName: "customerid", SchemaName: "CustomerId", AttributeType: "Customer", Targets: []string{"account", "contact"}},
		{LogicalName: "customeridname", SchemaName: "CustomerIdName", AttributeType: "String", AttributeOf: "customerid"},
		{LogicalName: "statecode", SchemaName: "StateCode", AttributeType: "State", OptionSet: &OptionSet{
			Name: "salesorder_statecode", Options: []Option{{Value: 2, Label: "Canceled", DefaultStatus: ptr(4), InvariantName: "Canceled"}}}},
		{LogicalName: "statuscode", SchemaName: "StatusCode", AttributeType: "Status", OptionSet: &OptionSet{
			Name: "salesorder_statuscode", Options: []Option{{Value: 3, Label: "In Progress", State: ptr(1)}, {Value: 1, Label: "New", State: ptr(0)}}}},
		{LogicalName: "willcall", SchemaName: "WillCall", AttributeType: "Boolean", OptionSet: &OptionSet{
			Name: "salesorder_willcall", Options: []Option{{Value: 0, Label: "Address"}, {Value: 1, Label: "Will Call"}}}},
	},
}

func TestRead(t *testing.T) {
	t.Parallel()
	product := `{"LogicalName":"product","SchemaName":"Product","EntitySetName":"products","Attributes":[]}`
	wantProduct := &Entity{LogicalName: "product", SchemaName: "Product", EntitySetName: "products"}
	tests := []struct {
		name string
		in   string
		want []*Entity
	}{
		{"collection response, sorted by name", `{"@odata.context":"x","value":[` + salesorder + `,` + product + `]}`, []*Entity{wantProduct, wantSalesorder}},
		{"bare array", "\n [" + product + "]\n", []*Entity{wantProduct}},
		{"single entity object", salesorder, []*Entity{wantSalesorder}},
		{"byte order mark", "\uFEFF" + product, []*Entity{wantProduct}},
		{"empty collection", `{"value":[]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Read(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Entities, ignoreIndex); diff != "" {
				t.Errorf("Entities (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		kind     error
		detail   string
	}{
		{"empty", "  ", ErrSyntax, "empty input"},
		{"truncated", `{"value":[{"LogicalName":"account"`, ErrSyntax, "unexpected end"},
		{"number", `42`, ErrShape, "neither an object nor an array"},
		{"value is not an array", `{"value":{"LogicalName":"account"}}`, ErrShape, "value:"},
		{"entity without LogicalName", `[{"SchemaName":"Account"}]`, ErrShape, "no LogicalName"},
		{"duplicate entity", `[{"LogicalName":"account"},{"LogicalName":"account"}]`, ErrShape, `"account" appears twice`},
		{"duplicate attribute", `[{"LogicalName":"account","Attributes":[{"LogicalName":"name"},{"LogicalName":"name"}]}]`, ErrShape, `"name" appears twice`},
		{"option without value", `[{"LogicalName":"account","Attributes":[{"LogicalName":"x","OptionSet":{"Options":[{"Label":null}]}}]}]`, ErrShape, "no Value"},
		{"duplicate option value", `[{"LogicalName":"account","Attributes":[{"LogicalName":"x","OptionSet":{"Options":[{"Value":1},{"Value":1}]}}]}]`, ErrShape, "value 1 appears twice"},
		{"attribute of wrong type", `[{"LogicalName":"account","Attributes":[{"LogicalName":7}]}]`, ErrShape, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Read(strings.NewReader(tt.in))
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Read error = %v, want kind %v", err, tt.kind)
			}
			var e *Error
			if !errors.As(err, &e) || e.Remedy == "" {
				t.Errorf("error %v carries no remedy", err)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not mention %q", err, tt.detail)
			}
		})
	}
}

func TestLabelChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, label, want string
	}{
		{"user label wins", `{"LocalizedLabels":[{"Label":"Neu","LanguageCode":1031},{"Label":"New","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"Nouveau","LanguageCode":1036}}`, "Nouveau"},
		{"else English", `{"LocalizedLabels":[{"Label":"Neu","LanguageCode":1031},{"Label":"New","LanguageCode":1033}],"UserLocalizedLabel":null}`, "New"},
		{"else the first", `{"LocalizedLabels":[{"Label":"Neu","LanguageCode":1031},{"Label":"Nouveau","LanguageCode":1036}]}`, "Neu"},
		{"no labels", `{"LocalizedLabels":[],"UserLocalizedLabel":null}`, ""},
		{"null label", `null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := `{"LogicalName":"t","Attributes":[{"LogicalName":"c","AttributeType":"Picklist","OptionSet":{"Options":[{"Value":5,"Label":` + tt.label + `}]}}]}`
			d, err := Read(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := d.Label("t", "c", 5)
			if !ok || got != tt.want {
				t.Errorf("Label = %q, %v; want %q, true", got, ok, tt.want)
			}
		})
	}
}

func readFixture(t *testing.T, name string) *Definitions {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "entitydefs", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Read(f)
	if err != nil {
		t.Fatalf("Read %s: %v", name, err)
	}
	return d
}

func TestLookups(t *testing.T) {
	t.Parallel()
	d := readFixture(t, "org-custom.json")
	labels := []struct {
		table, column string
		value         int
		want          string
		ok            bool
	}{
		{"salesorder", "statuscode", 100001, "Complete", true},
		{"salesorder", "statuscode", 4, "No Money", true},
		{"salesorder", "statecode", 2, "Canceled", true},
		{"salesorder", "shippingmethodcode", 5, "Postal Mail", true},
		{"salesorder", "paymenttermscode", 2, "2% 10, Net 30", true},
		{"salesorder", "willcall", 1, "Will Call", true},
		{"salesorderdetail", "isproductoverridden", 1, "Write In", true},
		{"salesorderdetail", "producttypecode", 5, "Project-based Service", true},
		{"product", "statuscode", 0, "Draft", true},
		{"contact", "cr5b2_preferredchannel", 826150002, "E-mail", true},
		{"contoso_delivery", "contoso_carrier", 100000000, "Ground", true}, // UserLocalizedLabel over the German one
		{"contoso_delivery", "contoso_carrier", 100000003, "Express", true},
		{"contoso_delivery", "contoso_carrier", 100000002, "2-Day / Air", true},
		{"salesorder", "statuscode", 690970000, "", false}, // Field Service only
		{"salesorder", "name", 1, "", false},               // not a choice
		{"salesorder", "nosuchcolumn", 1, "", false},
		{"nosuchtable", "statuscode", 1, "", false},
	}
	for _, tt := range labels {
		got, ok := d.Label(tt.table, tt.column, tt.value)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Label(%s, %s, %d) = %q, %v; want %q, %v", tt.table, tt.column, tt.value, got, ok, tt.want, tt.ok)
		}
	}

	so := d.Entity("salesorder")
	if so == nil {
		t.Fatal("no salesorder")
	}
	state, ok := so.Attribute("statecode").Option(3)
	if diff := cmp.Diff(Option{Value: 3, Label: "Fulfilled", DefaultStatus: ptr(100001), InvariantName: "Fulfilled"}, state); !ok || diff != "" {
		t.Errorf("statecode 3 (-want +got):\n%s", diff)
	}
	attrs := []struct{ name, schema string }{
		{"_customerid_value", "CustomerId"},
		{"_transactioncurrencyid_value", "TransactionCurrencyId"},
		{"_ownerid_value", "OwnerId"},
		{"_contoso_deliveryid_value", "contoso_DeliveryId"},
		{"ordernumber", "OrderNumber"},
		{"requestdeliveryby", "RequestDeliveryBy"},
		{"_ordernumber_value", ""}, // not a lookup
		{"_value", ""},
		{"customerid_value", ""},
	}
	for _, tt := range attrs {
		a := so.Attribute(tt.name)
		got := ""
		if a != nil {
			got = a.SchemaName
		}
		if got != tt.schema {
			t.Errorf("Attribute(%q).SchemaName = %q, want %q", tt.name, got, tt.schema)
		}
	}
	if diff := cmp.Diff([]string{"account", "contact"}, so.Attribute("_customerid_value").Targets); diff != "" {
		t.Errorf("customerid targets (-want +got):\n%s", diff)
	}
}

// TestHandBuilt checks that the methods work on a Definitions built without Read.
func TestHandBuilt(t *testing.T) {
	t.Parallel()
	d := &Definitions{Entities: []*Entity{{LogicalName: "account", Attributes: []*Attribute{
		{LogicalName: "primarycontactid", AttributeType: "Lookup"},
		{LogicalName: "statecode", AttributeType: "State", OptionSet: &OptionSet{Options: []Option{{Value: 1, Label: "Inactive"}}}},
	}}}}
	if a := d.Entity("account").Attribute("_primarycontactid_value"); a == nil {
		t.Error("lookup by _x_value not found")
	}
	if got, ok := d.Label("account", "statecode", 1); !ok || got != "Inactive" {
		t.Errorf("Label = %q, %v", got, ok)
	}
	var nilDefs *Definitions
	if nilDefs.Entity("account") != nil {
		t.Error("nil Definitions found an entity")
	}
}
