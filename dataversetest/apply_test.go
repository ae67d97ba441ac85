package dataversetest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// aggregate-data.md (wire facts §4.1): $apply aggregates and groups; at
// most 50,000 rows, else 0x8004E023 AggregateQueryRecordLimit.
func TestApply(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	// The expected figures, from plain queries.
	all := decode(t, get(t, s, tok, q("salesorders", "$select", "totalamount,statecode")).body)["value"].([]any)
	sum, perState, maxAmount := decimal.Zero, map[float64]int{}, decimal.Zero
	for _, v := range all {
		o := v.(map[string]any)
		d := decimal.NewFromFloat(o["totalamount"].(float64))
		sum = sum.Add(d)
		maxAmount = decimal.Max(maxAmount, d)
		perState[o["statecode"].(float64)]++
	}

	r := get(t, s, tok, q("salesorders", "$apply", "aggregate(totalamount with sum as total,totalamount with max as biggest,$count as orders)"),
		"Prefer", `odata.include-annotations="OData.Community.Display.V1.FormattedValue"`)
	if r.status != 200 {
		t.Fatalf("aggregate: %d %s", r.status, r.body)
	}
	m := decode(t, r.body)
	row := m["value"].([]any)[0].(map[string]any)
	if got := decimal.NewFromFloat(row["total"].(float64)); !got.Equal(sum.Round(2)) || row["orders"] != float64(len(all)) {
		t.Errorf("sum %v count %v, want %v %d", row["total"], row["orders"], sum, len(all))
	}
	if got := decimal.NewFromFloat(row["biggest"].(float64)); !got.Equal(maxAmount) {
		t.Errorf("max %v, want %v", got, maxAmount)
	}
	if !strings.HasPrefix(row["total@OData.Community.Display.V1.FormattedValue"].(string), "$") ||
		!strings.HasSuffix(m["@odata.context"].(string), "$metadata#salesorders(total,biggest,orders)") {
		t.Errorf("formatted %v, context %v", row["total@OData.Community.Display.V1.FormattedValue"], m["@odata.context"])
	}

	r = get(t, s, tok, q("salesorders", "$apply", "groupby((statecode),aggregate($count as n))"))
	got := map[float64]int{}
	for _, v := range decode(t, r.body)["value"].([]any) {
		o := v.(map[string]any)
		got[o["statecode"].(float64)] = int(o["n"].(float64))
	}
	if diff := cmp.Diff(perState, got); diff != "" {
		t.Errorf("groupby statecode (-want +got):\n%s", diff)
	}

	r = get(t, s, tok, q("salesorders", "$apply", "filter(statecode eq 0)/aggregate($count as n)"))
	if n := decode(t, r.body)["value"].([]any)[0].(map[string]any)["n"]; n != float64(perState[0]) {
		t.Errorf("filter then aggregate: %v, want %d", n, perState[0])
	}

	for _, bad := range []string{"aggregate(nope with sum as x)", "aggregate(totalamount with median as x)", "groupby((modifiedon))", "topcount(1,totalamount)"} {
		if r := get(t, s, tok, q("salesorders", "$apply", bad)); r.status != 400 {
			t.Errorf("$apply=%s: %d, want 400", bad, r.status)
		}
	}

	small := newTestServer(t, Options{Limits: Limits{AggregateRecords: 5}})
	r = get(t, small, secretToken(t, small), q("salesorders", "$apply", "aggregate($count as n)"))
	if r.status != 400 || !strings.Contains(r.body, `"code":"0x8004E023","message":"AggregateQueryRecordLimit exceeded. Cannot perform this operation."`) {
		t.Errorf("over the aggregate limit: %d %s", r.status, r.body)
	}
}
