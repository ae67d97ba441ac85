package odataq_test

import (
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
)

// FuzzFilterLiteral checks the literal encoding the way Dataverse sees it:
// whatever the string, the encoded query has exactly the options set, and
// its $filter, parsed by the simulator's OData parser, is exactly one
// comparison whose value is the input. An injection attempt can only ever
// be a value.
func FuzzFilterLiteral(f *testing.F) {
	for _, s := range []string{"", "ORD-01001-B2K9P7", "x' or ordernumber ne 'y", "'", "''", "a&$top=1", "#", "100%", "%27",
		"a+b", "é ü", "a;b", "')", "(", "x' eq 'x' or 'a", "\t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("Dataverse strings are UTF-8; the gateway rejects anything else before querying")
		}
		raw := odataq.Query[generated.SalesOrder]{}.Filter(generated.SalesOrderColumns.OrderNumber.Eq(s)).Top(2).Encode()
		vals, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("ParseQuery(%q): %v", raw, err)
		}
		if len(vals) != 2 || len(vals["$filter"]) != 1 || vals.Get("$top") != "2" {
			t.Fatalf("options of %q = %v, want exactly $filter and $top=2", raw, vals)
		}
		got, err := dataversetest.ParseFilter(vals.Get("$filter"))
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", vals.Get("$filter"), err)
		}
		want := dataversetest.Compare{Column: "ordernumber", Op: "eq", Value: s}
		if diff := cmp.Diff(dataversetest.Expr(want), got); diff != "" {
			t.Fatalf("filter %q (-want +got):\n%s", vals.Get("$filter"), diff)
		}
	})
}
