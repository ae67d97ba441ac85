package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/shopspring/decimal"
)

// TestToolsList checks what a client sees before calling anything: the
// five tools, read-only, each with an input and an output schema in which
// every value has a type (a decimal.Decimal would appear as an object
// without properties, and every answer would then fail validation).
func TestToolsList(t *testing.T) {
	t.Parallel()
	cs := connect(t, NewServer(Options{Registry: fakeRegistry{}}))
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		if tool.Annotations == nil || !tool.Annotations.ReadOnlyHint {
			t.Errorf("%s: not marked read-only", tool.Name)
		}
		if len(tool.Description) < 100 {
			t.Errorf("%s: description too short for a model: %q", tool.Name, tool.Description)
		}
		if tool.InputSchema == nil || tool.OutputSchema == nil {
			t.Fatalf("%s: schemas %v / %v", tool.Name, tool.InputSchema, tool.OutputSchema)
		}
		checkTyped(t, tool.Name+".output", tool.OutputSchema)
		checkTyped(t, tool.Name+".input", tool.InputSchema)
	}
	want := []string{"check_connection", "find_customer", "get_customer_summary", "get_order", "list_recent_orders", "list_refunds"}
	if diff := cmp.Diff(want, names, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

// checkTyped fails for the problems schemaProblems finds.
func checkTyped(t *testing.T, path string, s any) {
	t.Helper()
	for _, p := range schemaProblems(path, s) {
		t.Error(p)
	}
}

// schemaProblems lists the schema nodes without a type or with several,
// and the objects without properties other than refunds' items (Refund is
// an empty object): what a type the inference does not know (a
// decimal.Decimal) turns into.
func schemaProblems(path string, s any) []string {
	m, ok := s.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema %T", path, s)}
	}
	var out []string
	if m["type"] == nil && !strings.HasSuffix(path, ".fields{}.value") {
		// A configured field's value is any JSON (its column's type).
		out = append(out, fmt.Sprintf("%s: no type: %v", path, m))
	}
	if _, ok := m["type"].([]any); ok {
		out = append(out, fmt.Sprintf("%s: type %v: one type per value is what one-type schema dialects (Gemini) accept", path, m["type"]))
	}
	props, _ := m["properties"].(map[string]any)
	extra, isMap := m["additionalProperties"].(map[string]any)
	if isMap {
		out = append(out, schemaProblems(path+"{}", extra)...)
	}
	if slices.Contains(toStrings(m["type"]), "object") && len(props) == 0 && !isMap && !strings.HasSuffix(path, "refunds[]") {
		out = append(out, fmt.Sprintf("%s: object without properties (a type the schema inference does not know?)", path))
	}
	for k, v := range props {
		out = append(out, schemaProblems(path+"."+k, v)...)
	}
	if items, ok := m["items"]; ok {
		out = append(out, schemaProblems(path+"[]", items)...)
	}
	return out
}

// TestSchemaProblemsFindsDecimal: the check above catches the pitfall it
// is for, a decimal.Decimal in an output, whose inferred schema is an
// empty object that every answer (a JSON string) then fails.
func TestSchemaProblemsFindsDecimal(t *testing.T) {
	t.Parallel()
	s, err := jsonschema.For[struct {
		Total decimal.Decimal `json:"total"`
	}](nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if got := schemaProblems("out", m); len(got) == 0 {
		t.Errorf("no problem found in %s", b)
	}
}

func toStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// TestToolsAgainstSimulator calls every tool against the simulator, cold
// then warm: the answer (validated by the SDK against the output schema),
// and how many Dataverse requests each call cost.
func TestToolsAgainstSimulator(t *testing.T) {
	t.Parallel()
	delivery := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	alexOrderWant := &Order{ID: alexOrderID, Number: alexOrder, Name: "Order ORD-01001-B2K9P7 for Alex Wu",
		Status: "Submitted / In Progress", Total: Money{Amount: "5178.96", Currency: "USD", Formatted: "$5,178.96"},
		RequestedDeliveryBy: &delivery, Customer: &Ref{Type: "contact", ID: alexID, Name: "Alex Wu"},
		Lines: []Line{
			{Number: 1, SKU: "SKU-GAS-104", Product: "Pro Gasket", Quantity: "12", UnitPrice: "242.12", Amount: "2905.44"},
			{Number: 2, SKU: "SKU-GAS-105", Product: "Mini Gasket", Quantity: "6", UnitPrice: "318.20", Amount: "1909.20"},
			{Number: 3, Description: "Custom engraving", Quantity: "4", UnitPrice: "91.08", Amount: "364.32"},
		}}
	alex := &Customer{Type: "contact", ID: alexID, Name: "Alex Wu", Email: alexEmail,
		Account: &Ref{Type: "account", ID: "f95aa4a4-2834-599a-ad15-aac0e23fd9c1", Name: "Adventure Works Cycles"}}
	ignore := cmpopts.IgnoreFields
	tests := []struct {
		tool string
		args map[string]any
		// check compares the result; cold and warm are the Dataverse
		// requests of the first and of a repeated call.
		check      func(t *testing.T, res *sdk.CallToolResult)
		cold, warm int
	}{
		{"find_customer", map[string]any{"email": "Alex.Wu@Example.com"}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[FindCustomerOut](t, res)
			want := FindCustomerOut{Found: true, Customer: alex, Integration: "default"}
			if diff := cmp.Diff(want, got, ignore(FindCustomerOut{}, "AsOf"), ignore(Customer{}, "Phone")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}, 1, 0},
		{"find_customer", map[string]any{"email": "nobody@example.com", "mode": "both"}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[FindCustomerOut](t, res)
			if got.Found || got.Customer != nil || got.Message == "" {
				t.Errorf("got %+v, want found:false with a message", got)
			}
		}, 2, 0},
		{"get_order", map[string]any{"order": alexOrder}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[GetOrderOut](t, res)
			want := GetOrderOut{Found: true, Order: alexOrderWant, Integration: "default"}
			if diff := cmp.Diff(want, got, ignore(GetOrderOut{}, "AsOf")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}, 1, 0},
		{"get_order", map[string]any{"order": strings.ToUpper(alexOrderID), "email": alexEmail}, func(t *testing.T, res *sdk.CallToolResult) {
			if got := result[GetOrderOut](t, res); !got.Found || got.Order.Number != alexOrder {
				t.Errorf("got %+v", got)
			}
		}, 1, 0},
		{"get_order", map[string]any{"order": "ORD-99999-NOSUCH"}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[GetOrderOut](t, res)
			if diff := cmp.Diff(GetOrderOut{Message: "No sales order has this number or id.", Integration: "default"}, got,
				ignore(GetOrderOut{}, "AsOf")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}, 1, 0},
		{"list_recent_orders", map[string]any{"email": alexEmail, "limit": 3}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[ListRecentOrdersOut](t, res)
			if !got.Found || got.Customer == nil || got.Customer.ID != alexID || len(got.Orders) == 0 || len(got.Orders) > 3 {
				t.Errorf("got %+v", got)
			}
			for _, o := range got.Orders {
				if !strings.Contains(o.Total.Amount, ".") || len(o.Total.Amount)-strings.Index(o.Total.Amount, ".") < 3 || o.Total.Currency == "" {
					t.Errorf("total %+v: want a decimal string with two places and a currency", o.Total)
				}
			}
		}, 2, 0},
		{"list_recent_orders", map[string]any{"customer": map[string]any{"type": "contact", "id": alexID}}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[ListRecentOrdersOut](t, res)
			if !got.Found || got.Customer != nil || len(got.Orders) == 0 || got.Orders[len(got.Orders)-1].Number != alexOrder {
				t.Errorf("got %+v", got)
			}
		}, 1, 0},
		{"list_recent_orders", map[string]any{"email": "nobody@example.com"}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[ListRecentOrdersOut](t, res)
			if got.Found || got.Message == "" || len(got.Orders) != 0 {
				t.Errorf("got %+v", got)
			}
		}, 2, 0},
		{"list_refunds", map[string]any{"order": alexOrder}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[ListRefundsOut](t, res)
			if got.Refunds == nil || len(got.Refunds) != 0 || got.Message == "" || got.Source != "none" {
				t.Errorf("got %+v", got)
			}
		}, 0, 0},
		{"get_customer_summary", map[string]any{"email": alexEmail}, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[GetCustomerSummaryOut](t, res)
			if !got.Found || got.Orders == 0 || got.TotalSpent == nil || got.TotalSpent.Currency != "USD" || got.Customer == nil {
				t.Errorf("got %+v", got)
			}
		}, 4, 0},
		{"check_connection", nil, func(t *testing.T, res *sdk.CallToolResult) {
			got := result[CheckConnectionOut](t, res)
			if !got.OK || got.OrganizationID == "" || got.UserID == "" || !strings.Contains(got.Credential, "expir") {
				t.Errorf("got %+v (the credential sentence says whether expiry is monitored)", got)
			}
		}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t)
			for i, want := range []int{tt.cold, tt.warm} {
				before := e.sim.WebAPIRequests()
				start := time.Now()
				res := call(t, e.cs, tt.tool, tt.args)
				tt.check(t, res)
				if got := e.sim.WebAPIRequests() - before; got != want {
					t.Errorf("call %d: %d Dataverse requests, want %d", i+1, got, want)
				}
				if i == 0 {
					got := result[struct {
						AsOf  time.Time `json:"asOf"`
						Stale bool      `json:"stale"`
					}](t, res)
					if got.AsOf.IsZero() || got.AsOf.After(time.Now()) || got.AsOf.Before(start.Add(-time.Second)) || got.Stale {
						t.Errorf("asOf %v stale %v: want a fresh answer read now", got.AsOf, got.Stale)
					}
				}
			}
		})
	}
}
