package codegen

import (
	"bytes"
	"go/ast"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/csdl"
	"github.com/google/go-cmp/cmp"
)

func TestInitialisms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"AccountId", "AccountID"},
		{"ParentCustomerIdValue", "ParentCustomerIDValue"},
		{"Idle", "Idle"},
		{"Identity", "Identity"},
		{"IdType", "IDType"},
		{"WebsiteUrl", "WebsiteURL"},
		{"ProductSku", "ProductSKU"},
		{"ISOCurrencyCode", "ISOCurrencyCode"},
		{"EMailAddress1", "EMailAddress1"},
		{"Ids", "Ids"},
		{"Id2", "ID2"},
		{"accountid", "accountid"},
	} {
		if got := initialisms(tc.in); got != tc.want {
			t.Errorf("initialisms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSetGoName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, logical, tableGo, collection, want string }{
		{"salesorders", "salesorder", "SalesOrder", "", "SalesOrders"},
		{"transactioncurrencies", "transactioncurrency", "TransactionCurrency", "", "TransactionCurrencies"},
		{"analyses", "analysis", "Analysis", "", "Analyses"},
		{"transactioncurrencies", "transactioncurrency", "TransactionCurrency", "TransactionCurrencies", "TransactionCurrencies"},
		{"contoso_deliveries", "contoso_delivery", "ContosoDelivery", "", "ContosoDeliveries"},
		{"people", "person", "Person", "", "People"},
		{"people", "person", "Person", "People", "People"},
		{"accounts", "account", "Account", "", "Accounts"},
		{"systemusers", "systemuser", "SystemUser", "SystemUsers", "SystemUsers"},
		{"entitlementtemplates", "entitlementtemplate", "EntitlementTemplate", "", "EntitlementTemplates"},
	} {
		if got := setGoName(tc.set, tc.logical, tc.tableGo, tc.collection); got != tc.want {
			t.Errorf("setGoName(%q, %q, %q, %q) = %q, want %q", tc.set, tc.logical, tc.tableGo, tc.collection, got, tc.want)
		}
	}
}

// exportedNames lists every exported name the generated Go files declare,
// one a line: "type X", "func F", "const C", "var V", "X.Field" (fields of
// struct types and of struct-typed vars such as XxxColumns), "X.Method".
func exportedNames(t *testing.T, files map[string][]byte) []string {
	t.Helper()
	var out []string
	fields := func(owner string, st *ast.StructType) {
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() {
					out = append(out, owner+"."+n.Name)
				}
			}
		}
	}
	for _, f := range parseGo(t, files) {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					out = append(out, "func "+d.Name.Name)
					continue
				}
				recv := strings.TrimPrefix(types(d.Recv.List[0].Type), "*")
				out = append(out, recv+"."+d.Name.Name)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						out = append(out, "type "+s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							fields(s.Name.Name, st)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if !n.IsExported() {
								continue
							}
							out = append(out, d.Tok.String()+" "+n.Name)
							if cl, ok := s.Values[0].(*ast.CompositeLit); ok {
								if st, ok := cl.Type.(*ast.StructType); ok {
									fields(n.Name, st)
								}
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestExportedNames keeps the list of every generated exported name in
// testdata/golden/<case>/names.txt.golden, so that a rename is a visible
// diff, and checks the naming rules on it: Go initialisms (no word Id, Sku,
// Url, ...), and, with EntityDefinitions, entity-set methods named after the
// table's SchemaName ("TransactionCurrencies", not "Transactioncurrencies").
func TestExportedNames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		dir   string
		files func(t *testing.T) map[string][]byte
		defs  bool
	}{
		{"org", func(t *testing.T) map[string][]byte {
			return generateFixture(t, false, append(slices.Clone(fiveTables), "transactioncurrency"))
		}, true},
		{"org-custom", func(t *testing.T) map[string][]byte {
			return generateFixture(t, true, append(slices.Clone(fiveTables), "contoso_delivery", "transactioncurrency"))
		}, true},
		{"real-2016", func(t *testing.T) map[string][]byte {
			if _, err := os.Stat(realMetadata); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is absent (CI must provide ../shared/realworld)", realMetadata)
				}
				t.Skipf("%s is absent (../shared/realworld is not part of the repository)", realMetadata)
			}
			files, err := Generate(Config{Model: readModel(t, realMetadata), Tables: append(slices.Clone(fiveTables), "transactioncurrency"),
				Package: "real", Invocation: "dvgen"})
			if err != nil {
				t.Fatal(err)
			}
			return files
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			names := exportedNames(t, tc.files(t))
			got := []byte(strings.Join(names, "\n") + "\n")
			path := filepath.Join("..", "testdata", "golden", tc.dir, "names.txt.golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(path); err != nil {
				t.Fatalf("%v (run go test ./codegen -update)", err)
			} else if !bytes.Equal(want, got) {
				t.Errorf("%s differs (go test ./codegen -update):\n%s", path, ShortDiff("names", string(want), string(got), 20))
			}

			sets := map[string]bool{} // the XxxSet types' table names
			for _, n := range names {
				if tab, ok := strings.CutSuffix(strings.TrimPrefix(n, "type "), "Set"); ok && strings.HasPrefix(n, "type ") {
					sets[tab] = true
				}
				name := n[strings.LastIndexAny(n, " .")+1:]
				for _, w := range words(name) {
					if _, ok := commonInitialisms[w]; ok {
						t.Errorf("%s: word %q is not spelled as a Go initialism", n, w)
					}
				}
			}
			if !tc.defs {
				return
			}
			for _, n := range names {
				m, ok := strings.CutPrefix(n, "Service.")
				if !ok || m == "BaseURL" || m == "WhoAmI" {
					continue
				}
				if !slices.ContainsFunc(slices.Collect(maps.Keys(sets)), func(tab string) bool {
					return len(tab) > 2 && strings.HasPrefix(m, tab[:len(tab)-2])
				}) {
					t.Errorf("%s is not named after a table's SchemaName", n)
				}
			}
		})
	}
	if diff := cmp.Diff([]string{"Account", "Id", "Value"}, words("AccountIdValue")); diff != "" {
		t.Errorf("words: %s", diff)
	}
}

// words splits an identifier before each upper-case letter that follows a
// lower-case letter or digit, and before the last upper-case letter of a
// run that a lower-case letter follows ("ISOCode" -> ISO, Code).
func words(id string) []string {
	var out []string
	r := []rune(id)
	start := 0
	for i := 1; i < len(r); i++ {
		up := r[i] >= 'A' && r[i] <= 'Z'
		prevLower := r[i-1] >= 'a' && r[i-1] <= 'z' || r[i-1] >= '0' && r[i-1] <= '9'
		nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
		prevUp := r[i-1] >= 'A' && r[i-1] <= 'Z'
		if up && (prevLower || prevUp && nextLower) {
			out = append(out, string(r[start:i]))
			start = i
		}
	}
	return append(out, string(r[start:]))
}

// TestColumnsNamedLikeGeneratedFields: a column whose Go name would be one
// the model itself declares (Extra) gets a suffix instead of a duplicate
// field, and an entity set outside the plural rules keeps its own casing.
func TestColumnsNamedLikeGeneratedFields(t *testing.T) {
	t.Parallel()
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="person">
        <Key><PropertyRef Name="personid"/></Key>
        <Property Name="personid" Type="Edm.Guid"/>
        <Property Name="extra" Type="Edm.String"/>
        <Property Name="websiteurl" Type="Edm.String"/>
      </EntityType>
      <EntityContainer Name="System">
        <EntitySet Name="people" EntityType="Microsoft.Dynamics.CRM.person"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>`
	m, err := csdl.Read(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(Config{Model: m, Tables: []string{"person"}, Package: "x"})
	if err != nil {
		t.Fatal(err)
	}
	names := exportedNames(t, files)
	for _, want := range []string{"Person.Extra", "Person.Extra2", "PersonColumns.Extra2", "Person.PersonID", "Service.People"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
}
