package mcp

import (
	"fmt"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
)

// schemas are the tools' input and output schemas: inferred from the
// types as the SDK would, with every nullable type (["null","object"],
// which the inference gives pointers and slices) made plain. The tools
// never send null: an optional value is omitted (omitempty) and a list is
// empty, never nil; and a single type is what clients that map schemas
// onto a one-type dialect (Gemini's function declarations) accept, as the
// Inspector's portability check warns. Built once per NewHTTPHandler (the
// SDK's schema cache then knows them by pointer); read-only after.
type schemas struct {
	in, out map[string]*jsonschema.Schema // by tool name
}

func newSchemas() (*schemas, error) {
	s := &schemas{in: map[string]*jsonschema.Schema{}, out: map[string]*jsonschema.Schema{}}
	for tool, infer := range map[string]func() (*jsonschema.Schema, *jsonschema.Schema, error){
		"find_customer":        schemaPair[FindCustomerIn, FindCustomerOut],
		"get_order":            schemaPair[GetOrderIn, GetOrderOut],
		"list_recent_orders":   schemaPair[ListRecentOrdersIn, ListRecentOrdersOut],
		"list_refunds":         schemaPair[ListRefundsIn, ListRefundsOut],
		"get_customer_summary": schemaPair[GetCustomerSummaryIn, GetCustomerSummaryOut],
		"check_connection":     schemaPair[CheckConnectionIn, CheckConnectionOut],
	} {
		in, out, err := infer()
		if err != nil {
			return nil, fmt.Errorf("mcp: schema of %s: %w", tool, err)
		}
		s.in[tool], s.out[tool] = in, out
	}
	return s, nil
}

func schemaPair[In, Out any]() (in, out *jsonschema.Schema, err error) {
	if in, err = jsonschema.For[In](nil); err != nil {
		return nil, nil, err
	}
	if out, err = jsonschema.For[Out](nil); err != nil {
		return nil, nil, err
	}
	return plain(in), plain(out), nil
}

// plain replaces ["null", T] by T, throughout s.
func plain(s *jsonschema.Schema) *jsonschema.Schema {
	if s == nil {
		return nil
	}
	if len(s.Types) == 2 && slices.Contains(s.Types, "null") {
		i := slices.Index(s.Types, "null")
		s.Type, s.Types = s.Types[1-i], nil
	}
	for _, p := range s.Properties {
		plain(p)
	}
	plain(s.Items)
	return s
}
