package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// TestSharedCodec: answers survive the shared level exactly (freshness
// windows included), and a payload of another version or kind is a miss.
func TestSharedCodec(t *testing.T) {
	t.Parallel()
	fetched := time.UnixMilli(1_772_355_600_123)
	due := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	track := "1Z999"
	order := &Order{ID: "o1", Number: "ORD-1", Status: "Active / New", State: Choice{0, "Active"},
		Total:    Money{Amount: decimal.RequireFromString("1909.20"), Currency: "EUR", Formatted: "€1,909.20"},
		Customer: &Ref{Type: "account", ID: "a1", Name: "Fabrikam"}, RequestedDeliveryBy: &due, TrackingNumber: &track,
		Lines: []Line{{Number: 1, Product: &Product{ID: "p1", Name: "Widget", SKU: "W-1"}, Quantity: decimal.RequireFromString("2.00000"),
			UnitPrice: decimal.RequireFromString("954.6"), Amount: decimal.RequireFromString("1909.2")}}}
	tests := []struct {
		kind string
		e    *entry
	}{
		{kindCustomer, &entry{value: &Customer{Type: "contact", ID: "c1", Name: "Alex Wu", Email: "alex.wu@example.com",
			Account: &Ref{Type: "account", ID: "a1", Name: "Fabrikam"}}, fetched: fetched, fresh: 5 * time.Minute, stale: time.Hour}},
		{kindOrder, &entry{value: order, fetched: fetched, fresh: time.Minute, stale: time.Hour}},
		{kindRecentOrders, &entry{value: []OrderSummary{{ID: "o1", Number: "ORD-1", CreatedOn: due}}, fetched: fetched, fresh: time.Minute, stale: time.Hour}},
		{kindRecentOrders, &entry{value: []OrderSummary{}, fetched: fetched, fresh: time.Minute, stale: time.Hour}},
		{kindCustomer, &entry{notFound: true, fetched: fetched, fresh: 30 * time.Second}},
	}
	opts := cmp.Options{cmp.AllowUnexported(entry{}), cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })}
	for _, tt := range tests {
		b, err := encodeShared(tt.kind, tt.e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeShared(tt.kind, b)
		if err != nil {
			t.Fatalf("%s: decode: %v", tt.kind, err)
		}
		want := *tt.e
		switch v := want.value.(type) {
		case *Customer:
			want.cost = v.size()
		case *Order:
			want.cost = v.size()
		case []OrderSummary:
			want.cost = summariesSize(v)
		}
		if d := cmp.Diff(&want, got, opts); d != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", tt.kind, d)
		}

		other := append([]byte{SharedFormat + 1}, b[1:]...)
		if _, err := decodeShared(tt.kind, other); !errors.Is(err, errSharedFormat) {
			t.Errorf("%s: payload of format %d: err %v, want a format mismatch", tt.kind, SharedFormat+1, err)
		}
		wrongKind := kindOrder
		if tt.kind == kindOrder {
			wrongKind = kindCustomer
		}
		if _, err := decodeShared(wrongKind, b); err == nil {
			t.Errorf("%s payload decoded as %s", tt.kind, wrongKind)
		}
		if _, err := decodeShared(tt.kind, b[:len(b)/2]); err == nil {
			t.Errorf("%s: truncated payload decoded", tt.kind)
		}
	}
	if _, err := decodeShared(kindCustomer, nil); err == nil {
		t.Error("empty payload decoded")
	}
}
