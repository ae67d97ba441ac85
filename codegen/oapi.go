package codegen

import (
	"fmt"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	oapi "github.com/oapi-codegen/oapi-codegen/v2/pkg/codegen"
)

// oapiMu serializes calls into oapi-codegen, whose Generate keeps its
// configuration in package-level variables and mutates the document it is
// given. Each call gets a freshly loaded document.
var oapiMu sync.Mutex

// importsTemplate replaces oapi-codegen's header, which names the tool
// version (churn on every upgrade), with ours. goimports, which
// oapi-codegen runs on its output, drops the imports the code does not use.
const importsTemplate = `{{.Header}}
package {{.PackageName}}

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oapi-codegen/runtime"
	openapi_types "github.com/oapi-codegen/runtime/types"
	{{- range .ExternalImports}}
	{{ . }}
	{{- end}}
)
`

// runOAPI generates the models and the client from the JSON document.
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
		Generate:    oapi.GenerateOptions{Models: true, Client: true},
		OutputOptions: oapi.OutputOptions{
			UserTemplates: map[string]string{"imports.tmpl": tmpl},
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
