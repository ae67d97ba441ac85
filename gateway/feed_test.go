package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
)

// feedEnv is a gateway following the simulator's change feed, both on one
// fake clock, and a second connection that writes through the Web API as
// another application would.
type feedEnv struct {
	sim *dataversetest.Server
	g   *Gateway
	f   *Follower
	clk *fakeClock
	w   *dataverse.Conn
}

func newFeedEnv(t *testing.T, opts dataversetest.Options) *feedEnv {
	t.Helper()
	return newFeedEnvWith(t, opts, FeedConfig{Interval: 30 * time.Second})
}

func newFeedEnvWith(t *testing.T, opts dataversetest.Options, fc FeedConfig) *feedEnv {
	t.Helper()
	clk := newFakeClock()
	opts.Clock = clk.Now
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	conn := func() *dataverse.Conn { return simConn(t, sim) }
	g, err := New(Config{Conn: conn(), Clock: clk.Now, Logger: discardLogger, Budget: Budget{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	f, err := g.Follow(fc)
	if err != nil {
		t.Fatal(err)
	}
	return &feedEnv{sim: sim, g: g, f: f, clk: clk, w: conn()}
}

// simConn is a connection to sim, closed at the end of the test.
func simConn(t *testing.T, sim *dataversetest.Server) *dataverse.Conn {
	t.Helper()
	c, err := dataverse.New(dataverse.Config{
		URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		AuthorityHost: sim.AuthorityHost(), HTTPClient: sim.Client(), MaxAttempts: 1, Logger: discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// write sends a PATCH or DELETE through the Web API.
func (e *feedEnv) write(t *testing.T, method, path, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.w.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.w.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
}

func (e *feedEnv) poll(t *testing.T) {
	t.Helper()
	if err := e.f.Poll(context.Background()); err != nil {
		t.Fatalf("Poll: %v", err)
	}
}

// outcomes looks up each question and returns its outcome.
func (e *feedEnv) outcomes(t *testing.T, orders []string, emails []string) []string {
	t.Helper()
	var out []string
	for _, ref := range orders {
		_, m, err := e.g.Order(context.Background(), ref)
		if err != nil {
			t.Fatalf("order %s: %v", ref, err)
		}
		out = append(out, ref+" "+m.Outcome.String())
	}
	for _, em := range emails {
		_, m, err := e.g.Customer(context.Background(), em)
		if err != nil && err != ErrNotFound {
			t.Fatalf("customer %s: %v", em, err)
		}
		out = append(out, em+" "+m.Outcome.String())
	}
	return out
}

// An answer lives past its normal TTL while the feed runs, and a change to
// any row it is made of (the order, a line, a line's product, the
// customer) makes exactly the answers built from that row stale.
func TestFeedInvalidatesExactly(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{})
	e.poll(t) // the initial sync: answers may now live long
	ctx := context.Background()
	o1, _, err := e.g.Order(ctx, demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	recent, _, err := e.g.RecentOrders(ctx, "contact", alexID, 50)
	if err != nil || len(recent) < 2 {
		t.Fatalf("recent orders: %v %d", err, len(recent))
	}
	other := recent[0].Number
	if other == demoOrder {
		other = recent[1].Number
	}
	o2, _, err := e.g.Order(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	orders := []string{demoOrder, other}
	// Alex Wu's parent account is Adventure Works Cycles (info@adventure.example).
	emails := []string{"alex.wu@example.com", "orders@fabrikam.example", "nobody@example.com", "info@adventure.example"}
	e.outcomes(t, nil, emails)
	e.clk.Advance(2 * time.Hour) // far past the 1m/5m TTLs
	outcomes := func(o1, o2, alex, fabrikam, nobody, adventure string) []string {
		return []string{demoOrder + " " + o1, other + " " + o2, "alex.wu@example.com " + alex,
			"orders@fabrikam.example " + fabrikam, "nobody@example.com " + nobody, "info@adventure.example " + adventure}
	}
	if diff := cmp.Diff(outcomes("hit", "hit", "hit", "hit", "hit", "hit"), e.outcomes(t, orders, emails)); diff != "" {
		t.Fatalf("before any change (-want +got):\n%s", diff)
	}
	const adventureID = "f95aa4a4-2834-599a-ad15-aac0e23fd9c1"

	steps := []struct {
		name  string
		write func()
		want  []string
	}{
		{"order status", func() { e.write(t, "PATCH", "salesorders("+o1.ID+")", `{"name":"Renamed by the test"}`) },
			outcomes("miss", "hit", "hit", "hit", "hit", "hit")},
		{"a product's price (no answer shows it)", func() {
			e.write(t, "PATCH", "products("+firstProduct(t, o2)+")", `{"price":"999.00"}`)
		}, outcomes("hit", "hit", "hit", "hit", "hit", "hit")},
		{"a product of the other order", func() {
			e.write(t, "PATCH", "products("+firstProduct(t, o2)+")", `{"name":"Renamed product"}`)
		}, nil}, // checked below: every order with that product
		// The customer's phone: their customer answer shows it, their
		// orders do not.
		{"the contact's phone", func() { e.write(t, "PATCH", "contacts("+alexID+")", `{"telephone1":"+1 555 0100"}`) },
			outcomes("hit", "hit", "miss", "hit", "hit", "hit")},
		{"the contact's emails (they scope the orders)", func() {
			e.write(t, "PATCH", "contacts("+alexID+")", `{"emailaddress2":"alex.wu@work.example"}`)
		}, outcomes("miss", "miss", "miss", "hit", "hit", "hit")},
		{"the parent account's phone", func() { e.write(t, "PATCH", "accounts("+adventureID+")", `{"telephone1":"+1 555 0101"}`) },
			outcomes("hit", "hit", "hit", "hit", "hit", "miss")},
		{"the parent account's name (the contact and the orders show it)", func() {
			e.write(t, "PATCH", "accounts("+adventureID+")", `{"name":"Adventure Works"}`)
		}, outcomes("miss", "miss", "miss", "hit", "hit", "miss")},
		{"a new contact with an address that was not found", func() {
			e.write(t, "PATCH", "contacts(0a0a0a0a-0000-4000-8000-000000000001)", `{"lastname":"New","emailaddress1":"Nobody@Example.com"}`)
		}, outcomes("hit", "hit", "hit", "hit", "miss", "hit")},
	}
	for _, s := range steps {
		s.write()
		e.clk.Advance(30 * time.Second)
		e.poll(t)
		got := e.outcomes(t, orders, emails)
		if s.want == nil {
			if !strings.HasSuffix(got[1], "miss") {
				t.Errorf("%s: %v", s.name, got)
			}
			continue
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("after changing %s (-want +got):\n%s", s.name, diff)
		}
	}
	if o, _, _ := e.g.Order(ctx, demoOrder); o.Name != "Renamed by the test" || o.CustomerAccount == nil || o.CustomerAccount.Name != "Adventure Works" ||
		!slices.Contains(o.CustomerEmails, "alex.wu@work.example") {
		t.Errorf("order after the changes: name %q, customer account %+v, customer emails %v", o.Name, o.CustomerAccount, o.CustomerEmails)
	}
	if c, _, _ := e.g.Customer(ctx, "alex.wu@example.com"); c.Phone != "+1 555 0100" || c.Account == nil || c.Account.Name != "Adventure Works" {
		t.Errorf("customer after the changes: phone %q, account %+v", c.Phone, c.Account)
	}
	st := e.f.Stats()
	if st.RowsChanged < 4 || st.Invalidated < 5 || !st.Up || st.Resyncs != 0 {
		t.Errorf("stats %+v", st)
	}
}

func firstProduct(t *testing.T, o *Order) string {
	t.Helper()
	for _, l := range o.Lines {
		if l.Product != nil {
			return l.Product.ID
		}
	}
	t.Fatalf("order %s has no catalogue product", o.Number)
	return ""
}

// A deleted line is reported by id only: the order answer it was part of
// is stale.
func TestFeedDeletedLine(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{})
	e.poll(t)
	o, _, err := e.g.Order(context.Background(), demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.w.Get(context.Background(), "salesorderdetails?$select=salesorderdetailid&$filter=_salesorderid_value eq "+o.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lines struct {
		Value []struct {
			ID string `json:"salesorderdetailid"`
		} `json:"value"`
	}
	if err := json.Unmarshal(r.Body, &lines); err != nil || len(lines.Value) == 0 || len(lines.Value) != len(o.Lines) {
		t.Fatalf("lines: %v %s", err, r.Body)
	}
	e.write(t, "DELETE", "salesorderdetails("+lines.Value[0].ID+")", "")
	e.poll(t)
	o2, m, err := e.g.Order(context.Background(), demoOrder)
	if err != nil || m.Outcome != Miss || len(o2.Lines) != len(o.Lines)-1 {
		t.Errorf("after deleting a line: %v %v, %d lines (had %d)", err, m.Outcome, len(o2.Lines), len(o.Lines))
	}
}

// An expired token: answers fall back to their normal freshness at once,
// the table resyncs at the next poll, and answers live long again.
func TestFeedExpiredTokenFallsBack(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{ChangeTrackingExpiry: 5 * time.Minute})
	e.poll(t)
	ctx := context.Background()
	if _, _, err := e.g.Order(ctx, demoOrder); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10 * time.Minute) // the deltaLinks expire; the answer is past its normal 1m
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Hit {
		t.Fatalf("before the poll: %v", m.Outcome)
	}
	err := e.f.Poll(ctx)
	if dataverse.KindOf(err) != dataverse.KindBadRequest || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("poll with expired tokens: %v", err)
	}
	if st := e.f.Stats(); st.Up || st.Resyncs != 1 {
		t.Errorf("after the failure: %+v", st)
	}
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Miss {
		t.Errorf("after the failure the answer has its normal 1m freshness: %v", m.Outcome)
	}
	e.clk.Advance(2 * time.Minute)
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Miss {
		t.Errorf("while the feed is down, normal TTL: %v", m.Outcome)
	}
	// The next polls resync table by table (each fails on its own expired token once).
	for i := 0; i < 10 && e.f.Poll(ctx) != nil; i++ {
	}
	if st := e.f.Stats(); !st.Up {
		t.Fatalf("no resync: %+v", st)
	}
	e.clk.Advance(2 * time.Minute)
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Miss {
		t.Fatalf("%v", m.Outcome)
	}
	e.clk.Advance(time.Hour)
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Hit {
		t.Errorf("after the resync answers live long again: %v", m.Outcome)
	}
}

// A table without change tracking: the feed reports a config error with
// its remedy, and answers keep their normal freshness.
func TestFeedUntrackedTable(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{UntrackedTables: []string{"salesorder"}})
	err := e.f.Poll(context.Background())
	var de *dataverse.Error
	if !errorsAs(err, &de) || de.Kind != dataverse.KindConfig || !strings.Contains(de.Remedy, "Track changes") {
		t.Fatalf("%v", err)
	}
	if _, _, err := e.g.Order(context.Background(), demoOrder); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(2 * time.Minute)
	if _, m, _ := e.g.Order(context.Background(), demoOrder); m.Outcome != Miss {
		t.Errorf("normal TTL without the feed: %v", m.Outcome)
	}
}

// The index: exact keys per dep, records that leave it once (drop, take),
// and the race check (a load that began before an invalidation of one of
// its rows).
func TestDepIndex(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	x := newDepIndex(&feedState{})
	r1, raced := x.add("k1", []string{"a", "b"}, time.Minute, t0)
	if raced || r1.bytes != recBytes(2) {
		t.Fatal(raced, r1.bytes)
	}
	r2, _ := x.add("k2", []string{"b"}, time.Minute, t0)
	if !x.drop(r1) || x.drop(r1) {
		t.Error("drop: want true once, then false")
	}
	if got := x.take([]string{"a"}, t0, time.Minute); len(got) != 0 {
		t.Errorf("a after k1 left: %v", got)
	}
	if got := x.take([]string{"b"}, t0.Add(time.Second), time.Minute); !cmp.Equal(got, []string{"k2"}) {
		t.Errorf("b: %v", got)
	}
	if indexed, taken := x.state(r2); indexed || !taken {
		t.Errorf("k2 after b changed: indexed %v, taken %v; want false, true", indexed, taken)
	}
	if x.drop(r2) {
		t.Error("a taken record was dropped again")
	}
	if _, raced := x.add("k4", []string{"b"}, time.Minute, t0); !raced {
		t.Error("a load that began before b was invalidated is not raced")
	}
	r5, raced := x.add("k5", []string{"b"}, time.Minute, t0.Add(time.Second))
	if raced {
		t.Error("a load that began when b was invalidated is raced")
	}
	// A newer answer under the same key replaces the record: the older
	// one's eviction must not take the newer one out.
	r5b, _ := x.add("k5", []string{"b", "c"}, time.Minute, t0.Add(time.Second))
	if x.drop(r5) {
		t.Error("the replaced record was dropped")
	}
	if n, b := x.size(); n != 2 || b != recBytes(1)+r5b.bytes {
		t.Errorf("size %d answers, %d bytes", n, b)
	}
}

func errorsAs(err error, target **dataverse.Error) bool { return errors.As(err, target) }

// An answer that leaves the cache leaves the dependency index with it, and
// the copy the recently loaded guard keeps can no longer be made stale by
// a change: it stays fresh at most until the next poll is due, not the
// feed's TTL, so no answer is older than the feed promises. Here the
// cache's budget is smaller than the answer with its index record, so
// ristretto refuses it. (Measured on a 50,000-order org, a FIFO index
// that evicted answers with their normal TTL served them up to 2m23s
// stale.)
func TestFeedIndexEvictionKeepsFreshness(t *testing.T) {
	t.Parallel()
	e := newFeedEnvWith(t, dataversetest.Options{}, FeedConfig{Interval: 10 * time.Second})
	cache, err := NewCache(CacheConfig{MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	g, err := New(Config{Conn: simConn(t, e.sim), Clock: e.clk.Now, Logger: discardLogger, Budget: Budget{Rate: -1}, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	if e.f, err = g.Follow(FeedConfig{Interval: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e.g = g
	e.poll(t)
	ctx := context.Background()
	o, _, err := e.g.Order(ctx, demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	cache.rc.Wait() // ristretto has refused it
	if n, _ := e.f.st.idx.size(); n != 0 {
		t.Errorf("%d answers indexed after the cache refused the only one", n)
	}
	if _, m, _ := e.g.Order(ctx, demoOrder); m.Outcome != Hit {
		t.Errorf("the guard's copy within the interval: %v, want a hit", m.Outcome)
	}
	e.write(t, "PATCH", "salesorders("+o.ID+")", `{"name":"Changed after it left the index"}`)
	e.poll(t)                       // reports the change; the answer is not in the index
	e.clk.Advance(11 * time.Second) // past one interval, within the order's 1m TTL
	got, m, err := e.g.Order(ctx, demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	if m.Outcome != Miss || got.Name != "Changed after it left the index" {
		t.Errorf("an answer out of the index, one interval after a change: %v %q, want a miss with the new name", m.Outcome, got.Name)
	}
}

// The index and the cache hold the same answers: an order answer charges
// its index record to the cache's budget, and ristretto's evictions take
// records out, so with a budget that holds a fraction of the org's orders
// the index never holds more answers than the cache.
func TestFeedIndexFollowsCache(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{})
	cache, err := NewCache(CacheConfig{MaxBytes: 64 << 10, RecentEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	g, err := New(Config{Conn: simConn(t, e.sim), Clock: e.clk.Now, Logger: discardLogger, Budget: Budget{Rate: -1}, Cache: cache, Name: "org"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	f, err := g.Follow(FeedConfig{Interval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	numbers := demoOrderNumbers(t)
	for range 3 {
		for _, n := range numbers {
			if _, _, err := g.Order(context.Background(), n); err != nil {
				t.Fatal(err)
			}
		}
	}
	cache.rc.Wait()
	answers, bytes := f.st.idx.size()
	st := cache.Owner("org")
	t.Logf("%d orders looked up 3 times: cache holds %d answers (%d KiB), index %d answers (%d KiB)", len(numbers), st.Entries, st.Bytes>>10, answers, bytes>>10)
	if answers == 0 || int64(answers) > st.Entries || answers >= len(numbers) {
		t.Errorf("index holds %d answers, cache %d, of %d orders: want 0 < index <= cache < all", answers, st.Entries, len(numbers))
	}
	if bytes >= st.Bytes {
		t.Errorf("index %d bytes, cache (with it) %d", bytes, st.Bytes)
	}
}

// demoOrderNumbers lists the demo seed's order numbers.
func demoOrderNumbers(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../testdata/seed/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tables struct {
			SalesOrder []struct {
				Number string `json:"ordernumber"`
			} `json:"salesorder"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range doc.Tables.SalesOrder {
		out = append(out, o.Number)
	}
	if len(out) < 100 {
		t.Fatalf("demo seed: %d orders", len(out))
	}
	return out
}
