package gateway

// Customer summaries on the simulator with the demo seed. The expected
// figures are computed here from the seed file (testdata/seed/demo.json),
// never through the gateway.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/testdata"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/shopspring/decimal"
)

// seedOrder is a salesorder of the seed file, as written there.
type seedOrder struct {
	Customer     string          `json:"_customerid_value"`
	State        int             `json:"statecode"`
	Total        decimal.Decimal `json:"totalamount"`
	TotalBase    decimal.Decimal `json:"totalamount_base"`
	ExchangeRate decimal.Decimal `json:"exchangerate"`
	CreatedOn    time.Time       `json:"createdon"`
}

// demoSeed is the part of the seed file a summary reads.
type demoSeed struct {
	Tables struct {
		Contact []struct {
			ID     string `json:"contactid"`
			Name   string `json:"fullname"`
			Parent string `json:"_parentcustomerid_value"`
			Kind   string `json:"_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"`
		} `json:"contact"`
		Account []struct {
			ID   string `json:"accountid"`
			Name string `json:"name"`
		} `json:"account"`
		SalesOrder []seedOrder `json:"salesorder"`
		Currency   []struct {
			ISO  string          `json:"isocurrencycode"`
			Rate decimal.Decimal `json:"exchangerate"`
		} `json:"transactioncurrency"`
	} `json:"tables"`
}

func readDemoSeed(t testing.TB) *demoSeed {
	t.Helper()
	var d demoSeed
	if err := json.Unmarshal(testdata.DemoSeed(), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// wantSummary computes a customer's summary from the seed: every order of
// the customer (and, with contacts, of the account's contacts) not
// canceled counts; its base-currency amount is its total divided by its
// exchange rate at the _base columns' precision of 4, as Dataverse stores
// totalamount_base. It also returns the sum of the seed's own
// totalamount_base values, which the gateway's exact amount must equal.
func (d *demoSeed) wantSummary(typ, id string, contacts bool) (want Summary, seedBase decimal.Decimal) {
	ids := []string{id}
	name := ""
	for _, a := range d.Tables.Account {
		if a.ID == id {
			name = a.Name
		}
	}
	for _, c := range d.Tables.Contact {
		if c.ID == id {
			name = c.Name
		}
		if contacts && typ == "account" && c.Parent == id && c.Kind == "account" {
			ids = append(ids, c.ID)
		}
	}
	want = Summary{Customer: Ref{Type: typ, ID: id}}
	total, seedBase := decimal.Zero, decimal.Zero
	base := ""
	for _, c := range d.Tables.Currency {
		if c.Rate.Equal(decimal.NewFromInt(1)) {
			base = c.ISO
		}
	}
	for _, o := range d.Tables.SalesOrder {
		if !slices.Contains(ids, o.Customer) {
			continue
		}
		if o.State == 0 || o.State == 1 {
			want.Orders.Open++
			if o.Customer == id {
				want.Customer.Name = name
			}
		}
		if o.State == 2 { // Canceled
			continue
		}
		if o.Customer == id {
			want.Customer.Name = name
		}
		want.Orders.Count++
		total = total.Add(o.Total.DivRound(o.ExchangeRate, 4))
		seedBase = seedBase.Add(o.TotalBase)
		if want.Orders.First == nil || o.CreatedOn.Before(*want.Orders.First) {
			f := o.CreatedOn
			want.Orders.First = &f
		}
		if want.Orders.Last == nil || o.CreatedOn.After(*want.Orders.Last) {
			l := o.CreatedOn
			want.Orders.Last = &l
		}
	}
	want.TotalSpent = Money{Amount: total.Round(2), Currency: base}
	return want, seedBase
}

// customers lists every contact and account of the seed.
func (d *demoSeed) customers() [][2]string {
	var out [][2]string
	for _, c := range d.Tables.Contact {
		out = append(out, [2]string{"contact", c.ID})
	}
	for _, a := range d.Tables.Account {
		out = append(out, [2]string{"account", a.ID})
	}
	return out
}

// summaryCmp compares summaries to the cent: the gateway's amount is
// exact (four decimals), the expectation is rounded.
var summaryCmp = cmp.Options{
	cmpopts.IgnoreFields(Summary{}, "AsOf"),
	cmpopts.IgnoreFields(Money{}, "Formatted"),
	cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Round(2).Equal(b.Round(2)) }),
}

func TestSummaryEveryDemoCustomer(t *testing.T) {
	t.Parallel()
	seed := readDemoSeed(t)
	for _, contacts := range []bool{false, true} {
		e := newSimEnv(t, dataversetest.Options{}, Config{Budget: Budget{Rate: -1}, Summary: SummaryConfig{IncludeContacts: contacts, Wait: time.Minute}})
		multi := false
		for _, c := range seed.customers() {
			want, seedBase := seed.wantSummary(c[0], c[1], contacts)
			got, _, err := e.g.Summary(context.Background(), c[0], c[1])
			if err != nil {
				t.Fatalf("contacts %v: %s %s: %v", contacts, c[0], c[1], err)
			}
			if diff := cmp.Diff(&want, got, summaryCmp); diff != "" {
				t.Errorf("contacts %v: %s %s (-want +got):\n%s", contacts, c[0], c[1], diff)
			}
			if !got.TotalSpent.Amount.Equal(seedBase) {
				t.Errorf("%s %s: amount %v, want exactly the seed's totalamount_base sum %v", c[0], c[1], got.TotalSpent.Amount, seedBase)
			}
			if got.Customer.ID == "a02d49e0-2b3d-5151-8267-0ce42f01c3f8" && !contacts {
				multi = true
				// Contoso Pharmaceuticals: orders in GBP, USD and EUR.
				if got.TotalSpent.Formatted != "$24,154.92" || got.Orders.Count != 4 {
					t.Errorf("Contoso Pharmaceuticals: %+v", got)
				}
			}
		}
		if !contacts && !multi {
			t.Error("the seed's customer with orders in several currencies was not asked")
		}
	}
}

func TestSummaryStatesAndRequests(t *testing.T) {
	t.Parallel()
	// Only invoiced orders count; open ones are counted all the same.
	e := newSimEnv(t, dataversetest.Options{}, Config{Budget: Budget{Rate: -1}, Summary: SummaryConfig{States: []int{StateInvoiced}, Wait: time.Minute}})
	seed := readDemoSeed(t)
	ctx := context.Background()
	for _, c := range seed.customers() {
		got, _, err := e.g.Summary(ctx, c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		n, open := 0, 0
		total := decimal.Zero
		for _, o := range seed.Tables.SalesOrder {
			if o.Customer != c[1] {
				continue
			}
			if o.State == StateInvoiced {
				n++
				total = total.Add(o.TotalBase)
			}
			if o.State <= StateSubmitted {
				open++
			}
		}
		if got.Orders.Count != n || got.Orders.Open != open || !got.TotalSpent.Amount.Equal(total) {
			t.Errorf("%s: count %d open %d total %v, want %d %d %v", c[1], got.Orders.Count, got.Orders.Open, got.TotalSpent.Amount, n, open, total)
		}
	}
	// One $apply per customer, and the base currency once.
	var apply, other []string
	for _, r := range e.webRequests() {
		if strings.Contains(r.RawQuery, "$apply") {
			apply = append(apply, r.RawQuery)
		} else {
			other = append(other, setOf(r.Path))
		}
	}
	if len(apply) != len(seed.customers()) {
		t.Errorf("%d $apply requests for %d customers", len(apply), len(seed.customers()))
	}
	if diff := cmp.Diff([]string{"organizations", "transactioncurrencies"}, other); diff != "" {
		t.Errorf("base currency requests (-want +got):\n%s", diff)
	}
	// A second ask is a cache hit: no request.
	e.sim.ResetCounters()
	if _, m, err := e.g.Summary(ctx, "contact", alexID); err != nil || m.Outcome != Hit {
		t.Errorf("second ask: %v %v", m.Outcome, err)
	}
	if n := len(e.webRequests()); n != 0 {
		t.Errorf("a cached summary sent %d requests", n)
	}
	for _, bad := range [][2]string{{"lead", alexID}, {"contact", "alex"}, {"contact", alexID + " or 1 eq 1"}} {
		var ie *InputError
		if _, _, err := e.g.Summary(ctx, bad[0], bad[1]); !errors.As(err, &ie) {
			t.Errorf("Summary(%q, %q): %v, want an input error", bad[0], bad[1], err)
		}
	}
	if _, err := New(Config{Conn: e.g.up, Summary: SummaryConfig{States: []int{7}}}); err == nil {
		t.Error("state 7 accepted")
	}
}

// A customer with more orders than the (lowered) aggregate limit gets the
// same figures, through split requests.
func TestSummarySplitsOverAggregateLimit(t *testing.T) {
	t.Parallel()
	seed := readDemoSeed(t)
	const northwind = "account" // Northwind Traders with its contacts: 17 orders
	var nwID string
	for _, a := range seed.Tables.Account {
		if a.Name == "Northwind Traders" {
			nwID = a.ID
		}
	}
	tests := []struct {
		name     string
		typ, id  string
		contacts bool
		limit    int
	}{
		{"Contoso Pharmaceuticals, limit 2", "account", "a02d49e0-2b3d-5151-8267-0ce42f01c3f8", false, 2},
		{"Northwind Traders and contacts, limit 3", northwind, nwID, true, 3},
		{"Northwind Traders and contacts, limit 1", northwind, nwID, true, 1},
		{"Alex, under the limit", "contact", alexID, false, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, dataversetest.Options{Limits: dataversetest.Limits{AggregateRecords: tc.limit}},
				Config{Summary: SummaryConfig{IncludeContacts: tc.contacts, Wait: time.Minute}})
			ctx := context.Background()
			if _, err := e.g.baseCurrency(ctx); err != nil {
				t.Fatal(err)
			}
			e.sim.ResetCounters()
			got, _, err := e.g.Summary(ctx, tc.typ, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			want, seedBase := seed.wantSummary(tc.typ, tc.id, tc.contacts)
			if diff := cmp.Diff(&want, got, summaryCmp); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !got.TotalSpent.Amount.Equal(seedBase) {
				t.Errorf("amount %v, want %v", got.TotalSpent.Amount, seedBase)
			}
			n := len(e.webRequests())
			t.Logf("%d orders counted, aggregate limit %d: %d requests", got.Orders.Count, tc.limit, n)
			if tc.limit >= 50 && n != 1 || tc.limit < 50 && n < 5 {
				t.Errorf("%d requests", n)
			}
		})
	}
}

// blockApply holds every $apply request until release is closed; entered
// receives one value per request held.
type blockApply struct {
	Upstream
	release chan struct{}
	entered chan struct{}
}

func (b *blockApply) Do(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.RawQuery, "$apply") {
		b.entered <- struct{}{}
		select {
		case <-b.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return b.Upstream.Do(req)
}

// A summary that Dataverse has not computed within Wait answers pending at
// once, and a customer lookup made meanwhile is not held up by it; the
// computation lands in the cache; past its TTL the old figure answers,
// marked stale, while a new one is computed.
func TestSummaryPendingNeverDelaysLookups(t *testing.T) {
	t.Parallel()
	b := &blockApply{release: make(chan struct{}), entered: make(chan struct{}, 4)}
	e := newSimEnvWrapped(t, dataversetest.Options{}, Config{Summary: SummaryConfig{Wait: 20 * time.Millisecond}},
		func(up Upstream) Upstream { b.Upstream = up; return b })
	ctx := context.Background()

	_, _, err := e.g.Summary(ctx, "contact", alexID)
	var pe *PendingError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPending) || pe.RetryAfter != time.Second {
		t.Fatalf("cold summary: %v, want pending with Retry-After 1s", err)
	}
	<-b.entered // the $apply is under way, held
	// The customer and its orders answer while the summary's request hangs.
	c, _, err := e.g.Customer(ctx, "alex.wu@example.com")
	if err != nil || c.ID != alexID {
		t.Fatalf("customer lookup during a pending summary: %v %v", c, err)
	}
	if _, _, err := e.g.RecentOrders(ctx, "contact", alexID, 5); err != nil {
		t.Fatal(err)
	}
	// Asked again while pending: still pending, no second computation.
	if _, _, err := e.g.Summary(ctx, "contact", alexID); !errors.Is(err, ErrPending) {
		t.Fatalf("second ask: %v", err)
	}
	close(b.release)
	e.g.summaries.bg.Wait() // the background waiters end once the answer is cached
	s, m, err := e.g.Summary(ctx, "contact", alexID)
	if err != nil || m.Outcome != Hit || s.Stale || s.Orders.Count == 0 {
		t.Fatalf("after the computation: %+v %v %v", s, m, err)
	}
	if n := strings.Count(strings.Join(rawQueries(e), "\n"), "$apply"); n != 1 {
		t.Errorf("%d $apply requests, want 1 (coalesced)", n)
	}

	// Past the TTL, with Dataverse slow again: the old figure, stale.
	b.release = make(chan struct{})
	e.clk.Advance(time.Hour + time.Minute)
	old, m, err := e.g.Summary(ctx, "contact", alexID)
	if err != nil || m.Outcome != Stale || !old.Stale || old.Orders.Count != s.Orders.Count || s.Stale {
		t.Fatalf("stale: %+v %v %v (cached copy stale: %v)", old, m, err, s.Stale)
	}
	<-b.entered
	close(b.release)
	e.g.summaries.bg.Wait()
	if s, m, err := e.g.Summary(ctx, "contact", alexID); err != nil || m.Outcome != Hit || s.Stale {
		t.Fatalf("refreshed: %+v %v %v", s, m, err)
	}
}

func rawQueries(e *simEnv) []string {
	var out []string
	for _, r := range e.webRequests() {
		out = append(out, r.RawQuery)
	}
	return out
}

// Concurrent cold summaries of one customer make one computation.
func TestSummaryCoalesces(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{Summary: SummaryConfig{Wait: time.Minute}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := e.g.Summary(context.Background(), "account", fabrikamID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(strings.Join(rawQueries(e), "\n"), "$apply"); n != 1 {
		t.Errorf("%d $apply requests for 8 concurrent callers", n)
	}
}

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"0": "$0.00", "12.5": "$12.50", "1234.5678": "$1,234.57", "1234567.004": "$1,234,567.00",
		"-0.5": "-$0.50", "-0.001": "$0.00", "999.995": "$1,000.00", "100": "$100.00"} {
		if got := formatMoney("$", decimal.RequireFromString(in)); got != want {
			t.Errorf("formatMoney(%s) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkSummary measures a summary cold (a cache miss: one $apply to
// the simulator over loopback TLS, decoded, added up and cached) and cached
// (a hit).
func BenchmarkSummary(b *testing.B) {
	sim, err := dataversetest.NewServer(dataversetest.Options{Limits: dataversetest.NoLimits})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	conn, err := dataverse.New(dataverse.Config{URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: sim.ClientSecret(), AuthorityHost: sim.AuthorityHost(), HTTPClient: sim.Client(), Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	clk := newFakeClock()
	g, err := New(Config{Conn: conn, Clock: clk.Now, Logger: discardLogger, Budget: Budget{Rate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, _, err := g.Summary(ctx, "contact", alexID); err != nil { // signs in, reads the base currency
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			clk.Advance(time.Hour + time.Second) // past the TTL: a miss
			if _, m, err := g.Summary(ctx, "contact", alexID); err != nil || m.Outcome != Miss {
				b.Fatal(m, err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, m, err := g.Summary(ctx, "contact", alexID); err != nil || m.Outcome != Hit {
				b.Fatal(m, err)
			}
		}
	})
}
