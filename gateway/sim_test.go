package gateway

// End-to-end tests: the gateway over a real dataverse.Conn against the
// dataversetest simulator with its demo seed (testdata/seed/demo.json).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// Demo seed facts.
const (
	alexID     = "b46d4f35-6f57-5fbb-b866-32977a8faa40"
	fabrikamID = "1668eb0e-eb75-50db-bea5-ce5cf43d3204"
	demoOrder  = "ORD-01001-B2K9P7"
	demoID     = "1405763c-93c3-53b5-9cd3-c3c66513c4ca"
)

type simEnv struct {
	sim *dataversetest.Server
	g   *Gateway
	clk *fakeClock
}

func newSimEnv(t *testing.T, opts dataversetest.Options, cfg Config) *simEnv {
	return newSimEnvWrapped(t, opts, cfg, nil)
}

// newSimEnvWrapped is newSimEnv with the connection wrapped (wrap may be nil).
func newSimEnvWrapped(t *testing.T, opts dataversetest.Options, cfg Config, wrap func(Upstream) Upstream) *simEnv {
	t.Helper()
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	conn, err := dataverse.New(dataverse.Config{
		URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		AuthorityHost: sim.AuthorityHost(), HTTPClient: sim.Client(),
		MaxAttempts: 1, // no retries: each lookup's requests are countable and no backoff sleeps
		Logger:      discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	var up Upstream = conn
	if wrap != nil {
		up = wrap(up)
	}
	g, clk := newTestGateway(t, up, cfg)
	return &simEnv{sim: sim, g: g, clk: clk}
}

// webRequests returns the simulator's Web API requests other than WhoAmI.
func (e *simEnv) webRequests() []dataversetest.Request {
	var out []dataversetest.Request
	for _, r := range e.sim.Requests() {
		if !strings.HasSuffix(r.Path, "/WhoAmI") {
			out = append(out, r)
		}
	}
	return out
}

func setOf(path string) string {
	p := strings.TrimPrefix(path, "/api/data/v9.2/")
	if i := strings.IndexByte(p, '('); i >= 0 {
		p = p[:i]
	}
	return p
}

// emailFilter is the simulator's parse of our email filter.
func emailFilter(email string) dataversetest.Expr {
	c := func(col string) dataversetest.Expr {
		return dataversetest.Compare{Column: col, Op: "eq", Value: email}
	}
	return dataversetest.Or{Left: dataversetest.Or{Left: c("emailaddress1"), Right: c("emailaddress2")}, Right: c("emailaddress3")}
}

func TestSimCustomer(t *testing.T) {
	t.Parallel()
	alex := &Customer{Type: "contact", ID: alexID, Name: "Alex Wu", Email: "alex.wu@example.com", Phone: "+1-206-555-0200",
		Account: &Ref{Type: "account", ID: "f95aa4a4-2834-599a-ad15-aac0e23fd9c1", Name: "Adventure Works Cycles"}}
	fab := &Customer{Type: "account", ID: fabrikamID, Name: "Fabrikam, Inc.", Email: "orders@fabrikam.example", Phone: "+1-425-555-0211"}
	tests := []struct {
		name    string
		mode    Mode
		email   string
		want    *Customer
		wantErr error
		sets    []string // tables asked, in order
	}{
		{"both: contact", ModeBoth, " Alex.Wu@EXAMPLE.com", alex, nil, []string{"contacts"}},
		{"both: falls back to account", ModeBoth, "orders@fabrikam.example", fab, nil, []string{"contacts", "accounts"}},
		{"both: not found", ModeBoth, "nobody@example.com", nil, ErrNotFound, []string{"contacts", "accounts"}},
		{"contacts only", ModeContacts, "orders@fabrikam.example", nil, ErrNotFound, []string{"contacts"}},
		{"accounts only", ModeAccounts, "orders@fabrikam.example", fab, nil, []string{"accounts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, dataversetest.Options{}, Config{})
			got, _, err := e.g.CustomerIn(context.Background(), tc.email, tc.mode)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("customer (-want +got):\n%s", diff)
			}
			reqs := e.webRequests()
			var sets []string
			for _, r := range reqs {
				sets = append(sets, setOf(r.Path))
				if diff := cmp.Diff(emailFilter(strings.ToLower(strings.TrimSpace(tc.email))), r.ParsedFilter); diff != "" {
					t.Errorf("parsed filter (-want +got):\n%s", diff)
				}
				if r.Status != 200 {
					t.Errorf("%s: status %d", r.Path, r.Status)
				}
			}
			if diff := cmp.Diff(tc.sets, sets); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			// Cached, including the not-found answer.
			if _, meta, _ := e.g.CustomerIn(context.Background(), tc.email, tc.mode); meta.Outcome != Hit || len(e.webRequests()) != len(tc.sets) {
				t.Errorf("repeat: outcome %v, %d requests", meta.Outcome, len(e.webRequests()))
			}
		})
	}
}

// Several matches: active first, then most recently modified, then id; the
// matched address is reported as stored; plus-addressing and quotes survive.
func TestSimCustomerOrdering(t *testing.T) {
	t.Parallel()
	seed := []byte(`{"tables":{
 "contact":[
  {"contactid":"00000000-0000-0000-0000-00000000000a","fullname":"Old Inactive","lastname":"x","emailaddress1":"O'Neil+help@Example.com","statecode":1,"statuscode":2,"modifiedon":"2026-02-01T00:00:00Z"},
  {"contactid":"00000000-0000-0000-0000-00000000000c","fullname":"Active Tie C","lastname":"x","emailaddress3":"o'neil+help@example.com","statecode":0,"statuscode":1,"modifiedon":"2026-01-01T00:00:00Z"},
  {"contactid":"00000000-0000-0000-0000-00000000000b","fullname":"Active Tie B","lastname":"x","emailaddress2":"O'NEIL+HELP@EXAMPLE.COM","telephone1":"","mobilephone":"+1 555","statecode":0,"statuscode":1,"modifiedon":"2026-01-01T00:00:00Z"},
  {"contactid":"00000000-0000-0000-0000-00000000000d","fullname":"Active Older","lastname":"x","emailaddress1":"o'neil+help@example.com","statecode":0,"statuscode":1,"modifiedon":"2025-01-01T00:00:00Z"},
  {"contactid":"00000000-0000-0000-0000-00000000000e","fullname":"Other","lastname":"x","emailaddress1":"o'neil help@example.com","statecode":0,"statuscode":1,"modifiedon":"2026-03-01T00:00:00Z"}
 ]}}`)
	e := newSimEnv(t, dataversetest.Options{Seed: seed}, Config{})
	got, _, err := e.g.Customer(context.Background(), "o'neil+help@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := &Customer{Type: "contact", ID: "00000000-0000-0000-0000-00000000000b", Name: "Active Tie B",
		Email: "O'NEIL+HELP@EXAMPLE.COM", Phone: "+1 555"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("customer (-want +got):\n%s", diff)
	}
	reqs := e.webRequests()
	if len(reqs) != 1 || !strings.Contains(reqs[0].RawQuery, "%2B") {
		t.Fatalf("requests: %+v", reqs)
	}
	if diff := cmp.Diff(emailFilter("o'neil+help@example.com"), reqs[0].ParsedFilter); diff != "" {
		t.Errorf("parsed filter (-want +got):\n%s", diff)
	}
}

func TestSimOrder(t *testing.T) {
	t.Parallel()
	delivery := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	want := &Order{
		ID: demoID, Number: demoOrder, Name: "Order ORD-01001-B2K9P7 for Alex Wu",
		Status: "Submitted / In Progress", State: Choice{1, "Submitted"}, StatusReason: Choice{3, "In Progress"},
		Total:               Money{Amount: d("5178.96"), Currency: "USD", Formatted: "$5,178.96"},
		RequestedDeliveryBy: &delivery,
		Customer:            &Ref{Type: "contact", ID: alexID, Name: "Alex Wu"},
		// The customer's emails and parent account come in the same request.
		CustomerEmails:  []string{"alex.wu@example.com"},
		CustomerAccount: &Ref{Type: "account", ID: "f95aa4a4-2834-599a-ad15-aac0e23fd9c1", Name: "Adventure Works Cycles"},
		Lines: []Line{
			{Number: 1, Product: &Product{ID: "c272383a-ba4b-5516-9269-252f751e6630", Name: "Pro Gasket", SKU: "SKU-GAS-104"},
				Quantity: d("12"), UnitPrice: d("242.12"), Amount: d("2905.44")},
			{Number: 2, Product: &Product{ID: "1c905fb0-fccb-5890-875f-9b852d42ae2f", Name: "Mini Gasket", SKU: "SKU-GAS-105"},
				Quantity: d("6"), UnitPrice: d("318.20"), Amount: d("1909.20")},
			{Number: 3, Description: "Custom engraving", WriteIn: true, Quantity: d("4"), UnitPrice: d("91.08"), Amount: d("364.32")},
		},
	}
	decimalEq := cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })
	for _, ref := range []string{demoOrder, strings.ToLower(demoOrder), demoID, "{" + strings.ToUpper(demoID) + "}"} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, dataversetest.Options{}, Config{})
			got, _, err := e.g.Order(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, decimalEq); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			reqs := e.webRequests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if strings.HasPrefix(ref, "ORD") || strings.HasPrefix(ref, "ord") {
				wantF := dataversetest.Compare{Column: "ordernumber", Op: "eq", Value: strings.ToLower(demoOrder)}
				if diff := cmp.Diff(dataversetest.Expr(wantF), r.ParsedFilter); diff != "" || r.Path != "/api/data/v9.2/salesorders" {
					t.Errorf("path %s, filter (-want +got):\n%s", r.Path, diff)
				}
			} else if r.Path != "/api/data/v9.2/salesorders("+demoID+")" || r.ParsedFilter != nil {
				t.Errorf("by id: path %s filter %v", r.Path, r.ParsedFilter)
			}
		})
	}
}

func TestSimOrderNotFound(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{})
	for _, ref := range []string{"ORD-99999-NOPE", "00000000-0000-0000-0000-000000000001"} {
		if _, _, err := e.g.Order(context.Background(), ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Order(%s): err = %v, want ErrNotFound", ref, err)
		}
	}
	if n := len(e.webRequests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestSimTrackingColumn(t *testing.T) {
	t.Parallel()
	// The customised org has salesorder.contoso_trackingnumber.
	csdl, seed := customOrg(t)
	e := newSimEnv(t, dataversetest.Options{CSDL: csdl, Seed: seed},
		Config{TrackingColumn: "contoso_trackingnumber", Model: customModel(t)})
	got, _, err := e.g.Order(context.Background(), demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	if got.TrackingNumber == nil || *got.TrackingNumber != "1Z999AA10123456784" {
		t.Errorf("tracking = %v", got.TrackingNumber)
	}
	// An order without one answers null.
	other, _, err := e.g.Order(context.Background(), "ORD-01002-A7AUCC")
	if err != nil {
		t.Fatal(err)
	}
	if other.TrackingNumber != nil {
		t.Errorf("unset tracking = %q, want nil", *other.TrackingNumber)
	}
}

func TestSimRecentOrders(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{})
	got, _, err := e.g.RecentOrders(context.Background(), "contact", alexID, 3)
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, o := range got {
		created = append(created, o.CreatedOn.Format(time.DateOnly))
	}
	if diff := cmp.Diff([]string{"2025-06-05", "2025-05-06", "2025-04-06"}, created); diff != "" {
		t.Errorf("createdon (-want +got):\n%s", diff)
	}
	if got[0].Total.Currency != "USD" || got[0].Status == "" || got[0].Number == "" {
		t.Errorf("summary %+v", got[0])
	}
	reqs := e.webRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	wantF := dataversetest.Compare{Column: "_customerid_value", Op: "eq", Value: dataversetest.Guid(alexID)}
	if diff := cmp.Diff(dataversetest.Expr(wantF), reqs[0].ParsedFilter); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}
}

func TestSimTest(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{})
	got, err := e.g.Test(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	org, user, bu := e.sim.WhoAmI()
	if diff := cmp.Diff(&TestResult{OrganizationID: org, UserID: user, BusinessUnitID: bu}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// gatedUpstream holds every request until gate is closed.
type gatedUpstream struct {
	Upstream
	gate chan struct{}
}

func (g gatedUpstream) Do(req *http.Request) (*http.Response, error) {
	<-g.gate
	return g.Upstream.Do(req)
}

// 1000 concurrent identical cold lookups make exactly one Dataverse request
// and get 1000 identical answers.
func TestSimCoalescing(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	e := newSimEnvWrapped(t, dataversetest.Options{}, Config{}, func(u Upstream) Upstream { return gatedUpstream{u, gate} })
	const n = 1000
	// Hold the shared call until every caller has started or joined it.
	var joined sync.WaitGroup
	joined.Add(n)
	e.g.testHookJoined = joined.Done
	var wg sync.WaitGroup
	answers := make([]*Order, n)
	metas := make([]Meta, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { answers[i], metas[i], errs[i] = e.g.Order(context.Background(), demoOrder) })
	}
	joined.Wait()
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(answers[0], answers[i]); diff != "" || metas[i].Outcome != Miss {
			t.Fatalf("caller %d (%v) differs:\n%s", i, metas[i].Outcome, diff)
		}
	}
	if got := len(e.webRequests()); got != 1 {
		t.Errorf("simulator saw %d requests, want 1", got)
	}
}

// customOrg returns the customised org's CSDL and the demo seed with a
// tracking number on the demo order.
// customModel is the customised org's schema, as an integration reads it.
func customModel(t *testing.T) *csdl.Model {
	t.Helper()
	f, err := os.Open("../testdata/csdl/org-custom.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := csdl.Read(f, csdl.Tables(SchemaTables...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func customOrg(t *testing.T) (csdlDoc, seed []byte) {
	t.Helper()
	csdlDoc, err := os.ReadFile("../testdata/csdl/org-custom.xml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../testdata/seed/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc.Tables["salesorder"] {
		if r["ordernumber"] == demoOrder {
			r["contoso_trackingnumber"] = "1Z999AA10123456784"
		}
	}
	seed, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return csdlDoc, seed
}

// Stale-if-error against real failure shapes: served stale (with its age)
// for 503, 429, a malformed body and a dropped connection; never for a
// missing privilege.
func TestSimStaleIfError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     dataversetest.Fault
		deny      bool
		wantStale bool
		wantCode  string
	}{
		{name: "503", fault: dataversetest.Fault{Status: 503}, wantStale: true},
		{name: "429", fault: dataversetest.Fault{Status: 429, RetryAfter: time.Second}, wantStale: true},
		{name: "malformed", fault: dataversetest.Fault{Malformed: true}, wantStale: true},
		{name: "reset", fault: dataversetest.Fault{Reset: true}, wantStale: true},
		{name: "no privilege", deny: true, wantCode: "permission"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, dataversetest.Options{}, Config{})
			ctx := context.Background()
			first, _, err := e.g.Order(ctx, demoOrder)
			if err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(2 * time.Minute) // past the 1m order freshness
			if tc.deny {
				e.sim.DenyRead("salesorder")
			} else {
				// Until removed: net/http itself retries a GET once when a
				// reused connection is reset.
				tc.fault.Path = "/api/data/v9.2/salesorders"
				defer e.sim.InjectFault(tc.fault)()
			}
			got, meta, err := e.g.Order(ctx, demoOrder)
			if !tc.wantStale {
				if code := ErrorCode(err); code != tc.wantCode || got != nil {
					t.Fatalf("got %v, err %v (code %s); want error %s", got, err, code, tc.wantCode)
				}
				return
			}
			if err != nil || meta.Outcome != Stale || meta.Age != 2*time.Minute {
				t.Fatalf("meta %+v, err %v; want stale aged 2m", meta, err)
			}
			if diff := cmp.Diff(first, got); diff != "" {
				t.Errorf("stale answer differs:\n%s", diff)
			}
			if n := len(e.webRequests()); n < 2 || (n > 2 && !tc.fault.Reset) {
				t.Errorf("%d requests, want 2 (MaxAttempts 1)", n)
			}
		})
	}
}

// A success after a stale answer replaces the entry.
func TestSimStaleReplacedBySuccess(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{})
	ctx := context.Background()
	if _, _, err := e.g.Customer(ctx, "alex.wu@example.com"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(6 * time.Minute)
	e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/contacts", Count: 1, Status: 503})
	var outcomes []Outcome
	for range 3 {
		_, meta, err := e.g.Customer(ctx, "alex.wu@example.com")
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, meta.Outcome)
	}
	if diff := cmp.Diff([]Outcome{Stale, Miss, Hit}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := len(e.webRequests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestCloseCancelsRunningCalls: Close does not wait out a hanging Dataverse
// call (bounded only by UpstreamTimeout, 30 s by default): it cancels it.
func TestCloseCancelsRunningCalls(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, dataversetest.Options{}, Config{})
	e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/salesorders", Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := e.g.Order(ctx, demoOrder); err == nil {
		t.Fatal("a lookup of a hanging Dataverse succeeded")
	}
	closed := make(chan struct{})
	go func() { e.g.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // a bound on a hang, not a wait for something to happen
		t.Fatal("Close is still waiting for the hanging Dataverse call after 10 s")
	}
}
