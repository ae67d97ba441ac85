package codegen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/tools/go/ast/astutil"

	"github.com/getkin/kin-openapi/openapi3"
	oapi "github.com/oapi-codegen/oapi-codegen/v2/pkg/codegen"
)

// oapiMu serializes calls into oapi-codegen, whose Generate keeps its
// configuration in package-level variables and mutates the document it is
// given. Each call gets a freshly loaded document.
var oapiMu sync.Mutex

// importsTemplate replaces oapi-codegen's header, which names the tool
// version (churn on every upgrade), with ours. It lists every import the
// output may need (oapi-codegen does not list type-mapping imports itself);
// tidy drops the unused ones.
const importsTemplate = `{{.Header}}
package {{.PackageName}}

import (
	"encoding/json"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/shopspring/decimal"
	{{- range .ExternalImports}}
	{{ . }}
	{{- end}}
)
`

// runOAPI generates the models (only: the typed Service in our templates
// replaces oapi-codegen's client) from the JSON document.
func runOAPI(docJSON []byte, pkg, header string) (string, error) {
	doc, err := openapi3.NewLoader().LoadFromData(docJSON)
	if err != nil {
		return "", fmt.Errorf("codegen: loading the OpenAPI document: %w", err)
	}
	// The header goes in through the template text: oapi-codegen's template
	// data has no field for it.
	tmpl := strings.Replace(importsTemplate, "{{.Header}}", strings.ReplaceAll(header, "{{", "{{`{{`}}"), 1)
	cfg := oapi.Configuration{
		PackageName: pkg,
		Generate:    oapi.GenerateOptions{Models: true},
		OutputOptions: oapi.OutputOptions{
			UserTemplates: map[string]string{"imports.tmpl": tmpl},
			// oapi-codegen formats with goimports, which scans GOPATH and
			// the module cache to learn package names: slow, and output
			// would depend on the machine. We prune imports ourselves.
			SkipFmt: true,
			// Without paths nothing references the schemas; keep them all.
			SkipPrune: true,
			TypeMapping: &oapi.TypeMapping{
				Number: oapi.FormatMapping{
					// No float32 anywhere: a number without a known format
					// is a float64, money is exact.
					Default: oapi.SimpleTypeSpec{Type: "float64"},
					Formats: map[string]oapi.SimpleTypeSpec{
						"decimal": {Type: "decimal.Decimal", Import: "github.com/shopspring/decimal"},
						"float":   {Type: "float64"},
					},
				},
			},
		},
		AllowRemoteRefsFrom: []string{},
	}
	oapiMu.Lock()
	defer oapiMu.Unlock()
	out, err := oapi.Generate(doc, cfg)
	if err != nil {
		return "", fmt.Errorf("codegen: oapi-codegen: %w", err)
	}
	return out, nil
}

// tidy removes the imports that src does not use and formats it, without
// looking at any file: every import in importsTemplate (and the type-mapping
// imports) has a package name equal to its last path element or an explicit
// name.
func tidy(name string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("codegen: %s does not parse: %w\n%s", name, err, numbered(src))
	}
	for _, imp := range slices.Clone(f.Imports) {
		path, _ := strconv.Unquote(imp.Path.Value)
		if !astutil.UsesImport(f, path) {
			astutil.DeleteNamedImport(fset, f, nameOf(imp), path)
		}
	}
	ast.SortImports(fset, f)
	var b bytes.Buffer
	if err := format.Node(&b, fset, f); err != nil {
		return nil, fmt.Errorf("codegen: formatting %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func nameOf(imp *ast.ImportSpec) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	return ""
}
