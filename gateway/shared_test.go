package gateway

import (
	"context"
	"errors"
	"sync"
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
		{kindSummary, &entry{value: &Summary{Customer: Ref{Type: "account", ID: "a1", Name: "Fabrikam"},
			Orders:     SummaryOrders{Count: 3, Open: 1, First: &due, Last: &due},
			TotalSpent: Money{Amount: decimal.RequireFromString("24154.9183"), Currency: "USD", Formatted: "$24,154.92"}, AsOf: due},
			fetched: fetched, fresh: time.Hour, stale: time.Hour}},
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
		case *Summary:
			want.cost = v.size()
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

// TestCheckShared: a shared entry fetched in the future beyond the skew, or
// with windows longer than this gateway's TTLs, is refused; one within the
// skew is brought back to now, so it lives no longer than a local load.
func TestCheckShared(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_772_355_600_000)
	g, err := New(Config{Conn: newFake(), Clock: func() time.Time { return now }, CustomerTTL: 5 * time.Minute,
		NotFoundTTL: 30 * time.Second, StaleTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := spec{kind: kindCustomer, key: "k", fresh: 5 * time.Minute}
	found := func(fetched time.Time, fresh, stale time.Duration) *entry {
		return &entry{value: &Customer{ID: "c1"}, fetched: fetched, fresh: fresh, stale: stale}
	}
	tests := []struct {
		name        string
		e           *entry
		want        string
		wantFetched time.Time
	}{
		{"written just now", found(now.Add(-time.Second), 5*time.Minute, time.Hour), "", now.Add(-time.Second)},
		{"clock a little ahead", found(now.Add(SharedClockSkew), 5*time.Minute, time.Hour), "", now},
		{"clock far ahead", found(now.Add(SharedClockSkew+time.Millisecond), 5*time.Minute, time.Hour), "future", time.Time{}},
		{"ten years ahead", found(now.AddDate(10, 0, 0), time.Minute, 0), "future", time.Time{}},
		{"fresher than the TTL", found(now, 5*time.Minute+time.Millisecond, time.Hour), "windows", time.Time{}},
		{"staler than StaleTTL", found(now, time.Minute, time.Hour+time.Millisecond), "windows", time.Time{}},
		{"not found within NotFoundTTL", &entry{notFound: true, fetched: now, fresh: 30 * time.Second}, "", now},
		{"not found for a found answer's TTL", &entry{notFound: true, fetched: now, fresh: 5 * time.Minute}, "windows", time.Time{}},
	}
	for _, tt := range tests {
		got := g.checkShared(s, tt.e)
		if got != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.name, got, tt.want)
		}
		if got == "" && !tt.e.fetched.Equal(tt.wantFetched) {
			t.Errorf("%s: fetched %v, want %v", tt.name, tt.e.fetched, tt.wantFetched)
		}
	}
}

// rejectingShared is a SharedCache holding one payload per key that
// records the gateway's refusals.
type rejectingShared struct {
	mu       sync.Mutex
	payloads map[string][]byte
	rejected []string
}

func (r *rejectingShared) Get(_ context.Context, _, key string) ([]byte, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.payloads[key]
	return b, ok, nil
}

func (r *rejectingShared) Set(_ context.Context, _, key string, p []byte, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.payloads[key] = p
	return nil
}

func (r *rejectingShared) Lock(context.Context, string, string) (func(), bool, error) {
	return func() {}, true, nil
}

func (r *rejectingShared) RejectShared(kind, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, kind+"/"+reason)
}

// TestSharedRejected: a future-dated shared answer is not served; the
// lookup asks Dataverse and the store hears why.
func TestSharedRejected(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_772_355_600_000)
	f := newFake()
	f.reply("contacts", contactsAlex)
	sh := &rejectingShared{payloads: map[string][]byte{}}
	g, err := New(Config{Conn: f, Clock: func() time.Time { return now }, Shared: sh})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	forged, err := encodeShared(kindCustomer, &entry{value: &Customer{Type: "contact", ID: "forged", Name: "Forged"},
		fetched: now.AddDate(10, 0, 0), fresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	key := g.customerPrefix[ModeBoth] + "alex.wu@example.com"
	sh.payloads[key] = forged
	c, meta, err := g.Customer(context.Background(), "alex.wu@example.com")
	if err != nil || c.ID == "forged" || meta.Outcome != Miss {
		t.Fatalf("lookup over a future-dated shared answer = %+v %v %v; want Dataverse's answer", c, meta.Outcome, err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if d := cmp.Diff([]string{"customer/future", "customer/future"}, sh.rejected); d != "" {
		t.Errorf("rejections (-want +got):\n%s", d)
	}
}
