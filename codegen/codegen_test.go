package codegen

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/entitydefs"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var fiveTables = []string{"account", "contact", "salesorder", "salesorderdetail", "product"}

func readModel(t testing.TB, path string) *csdl.Model {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := csdl.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readDefs(t testing.TB, path string) *entitydefs.Definitions {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := entitydefs.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func generateFixture(t testing.TB, custom bool, tables []string) map[string][]byte {
	t.Helper()
	name := "org"
	if custom {
		name = "org-custom"
	}
	files, err := Generate(Config{
		Model:       readModel(t, "../testdata/csdl/"+name+".xml"),
		Definitions: readDefs(t, "../testdata/entitydefs/"+name+".json"),
		Tables:      tables, Package: "generated",
		Invocation: "dvgen --metadata " + name + ".xml --tables " + strings.Join(tables, ","),
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func parseGo(t *testing.T, files map[string][]byte) []*ast.File {
	t.Helper()
	fset := token.NewFileSet()
	var out []*ast.File
	for _, name := range slices.Sorted(mapsKeys(files)) {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, files[name], parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestNoFloat32 fails if any generated struct field (or any other type
// expression) is float32, the lossy default of oapi-codegen for numbers.
func TestNoFloat32(t *testing.T) {
	t.Parallel()
	for _, custom := range []bool{false, true} {
		tables := fiveTables
		if custom {
			tables = append(slices.Clone(fiveTables), "contoso_delivery")
		}
		fields := map[string]string{}
		for _, f := range parseGo(t, generateFixture(t, custom, tables)) {
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.Ident:
					if x.Name == "float32" {
						t.Errorf("float32 at %v", x.Pos())
					}
				case *ast.TypeSpec:
					if st, ok := x.Type.(*ast.StructType); ok {
						for _, fl := range st.Fields.List {
							for _, n := range fl.Names {
								fields[x.Name.Name+"."+n.Name] = types(fl.Type)
							}
						}
					}
				}
				return true
			})
		}
		want := map[string]string{
			"SalesOrder.TotalAmount":         "*decimal.Decimal",
			"SalesOrder.StatusCode":          "*SalesOrderStatusCode",
			"SalesOrder.CustomerIDValue":     "*openapi_types.UUID",
			"SalesOrder.CustomerIDAccount":   "*Account",
			"SalesOrder.CustomerIDContact":   "*Contact",
			"SalesOrder.OrderDetails":        "[]SalesOrderDetail",
			"SalesOrder.StatusCodeFormatted": "*string",
			"SalesOrder.ModifiedOn":          "*time.Time",
			"SalesOrder.VersionNumber":       "*int64",
			"Contact.EMailAddress1":          "*string",
			"Contact.BirthDate":              "*openapi_types.Date",
			"Product.ValidFromDate":          "*openapi_types.Date",
		}
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("custom=%v: field %s has type %q, want %q", custom, k, fields[k], v)
			}
		}
	}
}

func types(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return "*" + types(x.X)
	case *ast.ArrayType:
		return "[]" + types(x.Elt)
	case *ast.SelectorExpr:
		return types(x.X) + "." + x.Sel.Name
	case *ast.Ident:
		return x.Name
	}
	return "?"
}

// TestDeterministic: the same input gives the same bytes, whatever the
// order of the tables.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	want := generateFixture(t, false, fiveTables)
	// The invocation in the header names the tables as given.
	for name := range want {
		if strings.HasSuffix(name, ".go") {
			want[name] = dropHeader(want[name])
		}
	}
	for i := range 2 {
		tables := slices.Clone(fiveTables)
		rand.Shuffle(len(tables), func(i, j int) { tables[i], tables[j] = tables[j], tables[i] })
		tables = append(tables, tables[0]) // a duplicate changes nothing either
		got := generateFixture(t, false, tables)
		for name := range want {
			if strings.HasSuffix(name, ".go") {
				got[name] = dropHeader(got[name])
			}
			if !bytes.Equal(want[name], got[name]) {
				t.Errorf("run %d, tables %v: %s differs:\n%s", i, tables, name, ShortDiff(name, string(want[name]), string(got[name]), 10))
			}
		}
	}
}

func dropHeader(b []byte) []byte {
	_, rest, _ := bytes.Cut(b, []byte("\n\n"))
	return rest
}

// TestOptionSetConstants: every option of every choice, state and status
// column of the fixture has its constant with its value, including
// duplicate labels and values of 100000000 and more.
func TestOptionSetConstants(t *testing.T) {
	t.Parallel()
	defs := readDefs(t, "../testdata/entitydefs/org-custom.json")
	tables := append(slices.Clone(fiveTables), "contoso_delivery")
	consts := map[string]map[int64]bool{} // type -> values
	for _, f := range parseGo(t, generateFixture(t, true, tables)) {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				typ, _ := vs.Type.(*ast.Ident)
				lit, _ := vs.Values[0].(*ast.BasicLit)
				if typ == nil || lit == nil {
					continue
				}
				v, _ := strconv.ParseInt(lit.Value, 10, 64)
				if consts[typ.Name] == nil {
					consts[typ.Name] = map[int64]bool{}
				}
				consts[typ.Name][v] = true
			}
		}
	}
	n := 0
	for _, table := range tables {
		e := defs.Entity(table)
		for _, a := range e.Attributes {
			switch a.AttributeType {
			case "Picklist", "State", "Status":
			default:
				continue
			}
			if a.OptionSet == nil {
				continue
			}
			typ := goIdent(e.SchemaName) + goIdent(a.SchemaName)
			for _, o := range a.OptionSet.Options {
				n++
				if !consts[typ][int64(o.Value)] {
					t.Errorf("%s.%s: no constant of type %s for option %d %q", table, a.LogicalName, typ, o.Value, o.Label)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d options checked; the fixture should have many", n)
	}
}

// TestGolden compares the output for both fixtures with testdata/golden and
// checks that customizing the org only adds lines to the Go files.
func TestGolden(t *testing.T) {
	t.Parallel()
	outs := map[string]map[string][]byte{
		"org":        generateFixture(t, false, fiveTables),
		"org-custom": generateFixture(t, true, append(slices.Clone(fiveTables), "contoso_delivery")),
	}
	for dir, files := range outs {
		for name, b := range files {
			path := filepath.Join("..", "testdata", "golden", dir, name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./codegen -update)", err)
			}
			if !bytes.Equal(want, b) {
				t.Errorf("%s differs from the golden file (go test ./codegen -update):\n%s", path, ShortDiff(name, string(want), string(b), 20))
			}
		}
	}
	if len(outs["org-custom"]) != len(outs["org"])+1 || outs["org-custom"][TableFile("contoso_delivery")] == nil {
		t.Errorf("the custom table did not add exactly its own file: %v", slices.Sorted(mapsKeys(outs["org-custom"])))
	}
	for _, name := range slices.Sorted(mapsKeys(outs["org"])) {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		old, new := string(dropHeader(outs["org"][name])), string(dropHeader(outs["org-custom"][name]))
		added := 0
		for _, e := range LineDiff(old, new) {
			switch e.Op {
			case '-':
				t.Errorf("%s: customizing the org removed or changed the line %q", name, e.Line)
			case '+':
				added++
			}
		}
		if added == 0 && name == TableFile("salesorder") {
			t.Errorf("%s: the customization (new columns) added nothing", name)
		}
	}
	if !bytes.Contains(outs["org-custom"][TableFile("salesorder")], []byte("ContosoTrackingNumber *string `json:\"contoso_trackingnumber,omitempty\"`")) {
		t.Error("custom column contoso_trackingnumber is not in the SalesOrder model")
	}
}

func TestLineDiff(t *testing.T) {
	t.Parallel()
	got := LineDiff("a\nb\nc\n", "a\nx\nb\nd\n")
	want := []Edit{{' ', "a\n"}, {'+', "x\n"}, {' ', "b\n"}, {'-', "c\n"}, {'+', "d\n"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}
