package gateway

// This file holds the customer summary: how many orders a customer has,
// how many are open, the first and the last, and the total spent in the
// org's base currency, computed by Dataverse with one $apply request
// (never by downloading orders), cached like any lookup with its own TTL,
// and never waited for longer than SummaryConfig.Wait.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/odataq"
	"github.com/shopspring/decimal"
)

// Order states of salesorder (statecode), fixed by Dataverse.
const (
	StateActive    = 0
	StateSubmitted = 1
	StateCanceled  = 2
	StateFulfilled = 3
	StateInvoiced  = 4
)

// DefaultSummaryStates are the order states whose orders a summary counts
// when SummaryConfig.States is empty: every state but Canceled (Active,
// Submitted, Fulfilled, Invoiced). An order a customer placed and did not
// cancel is money they committed, even before it is invoiced.
var DefaultSummaryStates = []int{StateActive, StateSubmitted, StateFulfilled, StateInvoiced}

// SummaryConfig configures Gateway.Summary. Zero fields take the defaults.
type SummaryConfig struct {
	// States are the salesorder statecodes whose orders make up the count,
	// the first and last order and the total spent; empty =
	// DefaultSummaryStates (all but 2 Canceled). Open orders are always
	// those in state 0 Active or 1 Submitted.
	States []int
	// IncludeContacts makes an account's summary count the orders of its
	// contacts (the contacts whose Company Name, parentcustomerid, is the
	// account) as well as its own. A contact's summary is unaffected.
	IncludeContacts bool
	// TTL is how long a summary is fresh (1h): lifetime value changes
	// slowly, and computing it costs Dataverse an aggregate over the
	// customer's orders.
	TTL time.Duration
	// Wait is how long Summary waits for a summary that is not in the cache
	// (2s). Past it, the computation carries on in the background and lands
	// in the cache, and Summary answers the stale figure if it has one, or
	// a *PendingError.
	Wait time.Duration
}

// Summary is a customer's orders at a glance, computed by Dataverse.
type Summary struct {
	// Customer is the customer asked for; Name is empty when none of the
	// orders counted names it (a customer without orders).
	Customer Ref           `json:"customer"`
	Orders   SummaryOrders `json:"orders"`
	// TotalSpent is the sum of totalamount_base (the order total in the
	// org's base currency, converted by Dataverse at each order's exchange
	// rate) over the orders of the counted states, exact (Amount keeps the
	// _base columns' four decimals), with Currency the base currency's ISO
	// code and Formatted rounded to the cent with its symbol.
	TotalSpent Money `json:"totalSpent"`
	// AsOf is when Dataverse computed the figures.
	AsOf time.Time `json:"asOf"`
	// Stale is true when the figures are past their freshness and a new
	// computation is under way.
	Stale bool `json:"stale"`
}

// SummaryOrders counts a customer's orders.
type SummaryOrders struct {
	// Count is the number of orders in the counted states.
	Count int `json:"count"`
	// Open is the number of orders in state Active or Submitted.
	Open int `json:"open"`
	// First and Last are the creation times of the first and the last
	// order counted; nil when there is none.
	First *time.Time `json:"first"`
	Last  *time.Time `json:"last"`
}

func (s *Summary) size() int64 {
	return 256 + decimalSize + strSize(s.Customer.Type) + strSize(s.Customer.ID) + strSize(s.Customer.Name) +
		strSize(s.TotalSpent.Currency) + strSize(s.TotalSpent.Formatted)
}

// ErrPending is what a *PendingError matches with errors.Is.
var ErrPending = errors.New("gateway: the summary is being computed")

// PendingError reports that a summary was not in the cache and Dataverse
// did not compute it within SummaryConfig.Wait: the computation goes on and
// its answer lands in the cache; ask again after RetryAfter. It is not a
// failure (the HTTP API answers 202 Accepted with Retry-After).
type PendingError struct {
	RetryAfter time.Duration
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("gateway: the summary is being computed; retry after %v", e.RetryAfter)
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

// Lookup kinds of the summary.
const (
	kindSummary      = "summary"
	kindBaseCurrency = "base_currency" // the org's base currency, read once a day; not a lookup
)

// baseCurrencyTTL is how long the base currency is kept: it cannot change
// once the org is created.
const baseCurrencyTTL = 24 * time.Hour

// maxSplitDepth bounds the halvings of a createdon range that exceeds the
// aggregate limit (2^40 seconds is 35,000 years).
const maxSplitDepth = 40

// summaries is a Gateway's summary state. Safe for concurrent use.
type summaries struct {
	cfg    SummaryConfig
	states []int  // counted states, sorted, distinct
	asked  []int  // states of the $apply filter: counted and open ones
	prefix string // cache key prefix
	// retryAfter is what a pending answer tells the caller.
	retryAfter time.Duration

	mu     sync.Mutex
	closed bool           // guarded by mu
	bg     sync.WaitGroup // the background waiters of Summary; Add only under mu while !closed
}

// newSummaries validates cfg and applies its defaults.
func newSummaries(g *Gateway, cfg SummaryConfig) (*summaries, error) {
	if cfg.TTL < 0 || cfg.Wait < 0 {
		return nil, errors.New("gateway: summary TTL and Wait must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	if cfg.Wait == 0 {
		cfg.Wait = 2 * time.Second
	}
	states := slices.Clone(cfg.States)
	if len(states) == 0 {
		states = slices.Clone(DefaultSummaryStates)
	}
	slices.Sort(states)
	states = slices.Compact(states)
	for _, s := range states {
		if s < StateActive || s > StateInvoiced {
			return nil, fmt.Errorf("gateway: summary state %d is not a salesorder statecode (0 Active, 1 Submitted, 2 Canceled, 3 Fulfilled, 4 Invoiced)", s)
		}
	}
	asked := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(states), StateActive, StateSubmitted))))
	stateKey := make([]string, len(states))
	for i, s := range states {
		stateKey[i] = strconv.Itoa(s)
	}
	contacts := ""
	if cfg.IncludeContacts {
		contacts = "contacts"
	}
	return &summaries{
		cfg: cfg, states: states, asked: asked,
		// The counted states and the contacts flag are part of the key: a
		// cache kept across a configuration change must not answer with
		// figures counted differently.
		prefix:     g.key(kindSummary, strings.Join(stateKey, ","), contacts, ""),
		retryAfter: max(time.Second, cfg.Wait.Round(time.Second)),
	}, nil
}

// start registers a background waiter; false after close.
func (s *summaries) start() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.bg.Add(1)
	return true
}

// close waits for the background waiters. They end with their shared
// call, which core.close ends first.
func (s *summaries) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.bg.Wait()
}

// Summary returns a customer's summary (customerType "contact" or
// "account", customerID its GUID): the number of orders, how many are open,
// the first and the last, and the total spent in the org's base currency.
//
// A fresh cached summary answers at once. Otherwise it is computed by one
// $apply request (more only when the customer has more orders than
// Dataverse aggregates at once, see aggregateOrders), in a shared call of
// its own, so customer and order lookups never wait for it; Summary waits
// for it at most SummaryConfig.Wait (or until ctx ends), then answers the
// previous figure marked stale (Meta.Outcome Stale, Summary.Stale) when it
// has one, else a *PendingError, while the computation finishes and lands
// in the cache (and the shared level). A customer without orders has a
// summary of zeros.
//
// The answer is shared with the cache and other callers: do not modify it.
func (g *Gateway) Summary(ctx context.Context, customerType, customerID string) (*Summary, Meta, error) {
	typ, id, err := normalizeCustomer(customerType, customerID)
	if err != nil {
		return nil, Meta{}, err
	}
	sm := g.summaries
	kc := g.counters[kindSummary]
	s := spec{kind: kindSummary, key: sm.prefix + typ + "\x1f" + id, fresh: sm.cfg.TTL,
		load: func(ctx context.Context) (any, int64, error) {
			v, err := g.computeSummary(ctx, typ, id)
			if err != nil {
				return nil, 0, err
			}
			return v, v.size(), nil
		}}
	if v, m, err, ok := g.cached(s.key, kc); ok {
		sv, _ := v.(*Summary)
		return sv, m, err
	}
	type result struct {
		v   any
		m   Meta
		err error
	}
	done := make(chan result, 1)
	if !sm.start() {
		return nil, Meta{}, errClosed
	}
	// The background waiter keeps the shared call wanted after this caller
	// stops waiting, so that it is sent and its answer cached (a call whose
	// waiters all left is dropped, see core). It keeps ctx's values, not
	// its deadline; the call itself is bounded by UpstreamTimeout.
	go func() {
		defer sm.bg.Done()
		v, m, err := g.get(context.WithoutCancel(ctx), s)
		done <- result{v, m, err}
	}()
	t := time.NewTimer(sm.cfg.Wait)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.m, r.err
		}
		return r.v.(*Summary), r.m, nil
	case <-t.C:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, Meta{}, fmt.Errorf("gateway: summary: %w", context.Cause(ctx))
		}
	}
	now := g.clock()
	if e, ok := g.cache.get(s.key); ok && !e.notFound && e.usableStale(now) {
		old, _ := e.value.(*Summary)
		if old != nil {
			c := *old
			c.Stale = !e.isFresh(now)
			out := Stale
			if !c.Stale {
				out = Hit // the computation stored its answer just now
			}
			kc.inc(outcomeOf(out))
			return &c, Meta{Outcome: out, Age: e.age(now)}, nil
		}
	}
	return nil, Meta{}, &PendingError{RetryAfter: sm.retryAfter}
}

// computeSummary asks Dataverse for one customer's figures.
func (g *Gateway) computeSummary(ctx context.Context, typ, id string) (*Summary, error) {
	cur, err := g.baseCurrency(ctx)
	if err != nil {
		return nil, err
	}
	sm := g.summaries
	q := summaryQuery{id: id, contacts: sm.cfg.IncludeContacts && typ == "account", states: sm.asked}
	rows, requests, err := g.aggregateOrders(ctx, q)
	if err != nil {
		return nil, err
	}
	s := &Summary{Customer: Ref{Type: typ, ID: id}, AsOf: g.clock().UTC()}
	total := decimal.Zero
	for _, r := range rows {
		if strings.EqualFold(r.Customer, id) && r.Name != "" {
			s.Customer.Name = r.Name
		}
		if r.State == StateActive || r.State == StateSubmitted {
			s.Orders.Open += r.Count
		}
		if !slices.Contains(sm.states, r.State) || r.Count == 0 {
			continue
		}
		s.Orders.Count += r.Count
		if r.Total != nil {
			total = total.Add(*r.Total)
		}
		if r.First != nil && (s.Orders.First == nil || r.First.Before(*s.Orders.First)) {
			f := r.First.UTC()
			s.Orders.First = &f
		}
		if r.Last != nil && (s.Orders.Last == nil || r.Last.After(*s.Orders.Last)) {
			l := r.Last.UTC()
			s.Orders.Last = &l
		}
	}
	s.TotalSpent = Money{Amount: total, Currency: cur.ISO, Formatted: formatMoney(cur.Symbol, total)}
	g.log.Debug("summary computed", "integration", g.name, "requests", requests, "orders", s.Orders.Count)
	return s, nil
}

// summaryQuery is the filter of one summary, without a createdon range.
type summaryQuery struct {
	id       string // a validated, lowercase GUID: safe in a filter as is
	contacts bool   // also the orders of the account's contacts
	states   []int
}

// filter returns the OData filter (not URL-encoded). Every part is a
// validated GUID, an integer or a formatted time: no caller text reaches
// it. A zero from or to leaves that side open.
func (q summaryQuery) filter(from, to time.Time) string {
	var b strings.Builder
	if q.contacts {
		// The orders of the account's contacts: their customer is a contact
		// whose parentcustomerid is the account (a path through the
		// single-valued customerid_contact navigation).
		b.WriteString("(_customerid_value eq " + q.id + " or customerid_contact/_parentcustomerid_value eq " + q.id + ")")
	} else {
		b.WriteString("_customerid_value eq " + q.id)
	}
	b.WriteString(" and (")
	for i, s := range q.states {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString("statecode eq " + strconv.Itoa(s))
	}
	b.WriteString(")")
	const layout = "2006-01-02T15:04:05Z"
	if !from.IsZero() {
		b.WriteString(" and createdon ge " + from.UTC().Format(layout))
	}
	if !to.IsZero() {
		b.WriteString(" and createdon lt " + to.UTC().Format(layout))
	}
	return b.String()
}

// apply is the $apply of one request: per customer and state (the
// customer's name comes with its id; the state tells open orders from the
// counted ones), the sum of the base-currency totals, the count and the
// first and last creation times. The groupby form measured on the
// simulator; the documented service accepts it with a lookup and a choice
// column (aggregate-data.md: no groupby on a datetime column, which this
// does not do). The aliases are the wire facts' (total_base, orders), none
// a word OData reserves.
func (q summaryQuery) apply(from, to time.Time) string {
	return "filter(" + q.filter(from, to) + ")/groupby((_customerid_value,statecode),aggregate(" +
		"totalamount_base with sum as total_base,$count as orders,createdon with min as first_on,createdon with max as last_on))"
}

// aggRow is one group of the $apply answer.
type aggRow struct {
	Customer string           `json:"_customerid_value"`
	Name     string           `json:"_customerid_value@OData.Community.Display.V1.FormattedValue"`
	State    int              `json:"statecode"`
	Total    *decimal.Decimal `json:"total_base"` // exact: decoded from the number's text
	Count    int              `json:"orders"`
	First    *time.Time       `json:"first_on"`
	Last     *time.Time       `json:"last_on"`
}

// isAggregateLimit reports Dataverse's refusal to aggregate more than
// 50,000 rows (AggregateQueryRecordLimit, 0x8004E023).
func isAggregateLimit(err error) bool {
	var de *dataverse.Error
	return errors.As(err, &de) && (strings.EqualFold(de.Code, "0x8004E023") || de.Code == "-2147164125")
}

// aggregateOrders returns the groups of q and the number of requests it
// took: one, unless Dataverse refuses because the customer has more orders
// than it aggregates at once (0x8004E023). Then it reads the first and last
// creation times of the customer's orders (two plain requests, which have
// no such limit) and halves that range until each part can be aggregated;
// the groups of the parts are added up by the caller (exact decimals).
func (g *Gateway) aggregateOrders(ctx context.Context, q summaryQuery) ([]aggRow, int, error) {
	rows, err := g.aggregate(ctx, q, time.Time{}, time.Time{})
	requests := 1
	if !isAggregateLimit(err) {
		return rows, requests, err
	}
	first, err := g.orderBound(ctx, q, "asc")
	requests++
	if err != nil {
		return nil, requests, err
	}
	last, err := g.orderBound(ctx, q, "desc")
	requests++
	if err != nil {
		return nil, requests, err
	}
	// Whole seconds: createdon is stored to the second, and the bounds are
	// written to the second in the filter.
	lo, hi := first.Truncate(time.Second), last.Truncate(time.Second).Add(time.Second)
	rows, err = g.splitAggregate(ctx, q, lo, hi, 1, &requests)
	return rows, requests, err
}

// splitAggregate aggregates [lo, hi), known to exceed the limit, in two
// halves, each halved again while it still does.
func (g *Gateway) splitAggregate(ctx context.Context, q summaryQuery, lo, hi time.Time, depth int, requests *int) ([]aggRow, error) {
	if hi.Sub(lo) <= time.Second || depth > maxSplitDepth {
		return nil, &dataverse.Error{Kind: dataverse.KindUnavailable, Op: "summary", Code: "0x8004E023",
			Message: "more orders than Dataverse aggregates at once were created in one second",
			Remedy:  "The customer's total cannot be computed by Dataverse aggregates; ask an admin to check the customer's orders."}
	}
	mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
	if !mid.After(lo) {
		mid = lo.Add(time.Second)
	}
	var out []aggRow
	for _, r := range [][2]time.Time{{lo, mid}, {mid, hi}} {
		rows, err := g.aggregate(ctx, q, r[0], r[1])
		*requests++
		if isAggregateLimit(err) {
			rows, err = g.splitAggregate(ctx, q, r[0], r[1], depth+1, requests)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// aggregate sends one $apply request.
func (g *Gateway) aggregate(ctx context.Context, q summaryQuery, from, to time.Time) ([]aggRow, error) {
	var page struct {
		Value []aggRow `json:"value"`
	}
	if err := g.getJSON(ctx, "GET salesorders?$apply", "salesorders?$apply="+odataq.Escape(q.apply(from, to)), &page); err != nil {
		return nil, err
	}
	return page.Value, nil
}

// orderBound returns the creation time of the customer's first (dir
// "asc") or last ("desc") order of q.
func (g *Gateway) orderBound(ctx context.Context, q summaryQuery, dir string) (time.Time, error) {
	var page struct {
		Value []struct {
			CreatedOn *time.Time `json:"createdon"`
		} `json:"value"`
	}
	rel := "salesorders?$select=createdon&$filter=" + odataq.Escape(q.filter(time.Time{}, time.Time{})+" and createdon ne null") +
		"&$orderby=" + odataq.Escape("createdon "+dir) + "&$top=1"
	if err := g.getJSON(ctx, "GET salesorders", rel, &page); err != nil {
		return time.Time{}, err
	}
	if len(page.Value) == 0 || page.Value[0].CreatedOn == nil {
		// The aggregate said there were too many; now there are none.
		return time.Time{}, upstreamErr("GET salesorders", errors.New("no order to bound the split by"))
	}
	return *page.Value[0].CreatedOn, nil
}

// maxSummaryBody bounds an answer read by getJSON; an aggregate answer is a
// few groups.
const maxSummaryBody = 4 << 20

// getJSON sends GET rel (relative to the Web API root, already encoded)
// with formatted values, and decodes the answer into v.
func (g *Gateway) getJSON(ctx context.Context, op, rel string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.baseURL+rel, nil)
	if err != nil {
		return fmt.Errorf("gateway: %s: %w", op, err)
	}
	req.Header.Set("Prefer", `odata.include-annotations="`+odataq.FormattedValues+`"`)
	resp, err := g.up.Do(req)
	if err != nil {
		return upstreamErr(op, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSummaryBody)).Decode(v); err != nil {
		return upstreamErr(op, err)
	}
	return nil
}

// currency is the org's base currency.
type currency struct {
	ISO    string `json:"isocurrencycode"`
	Symbol string `json:"currencysymbol"`
}

// baseCurrency returns the org's base currency, read once a day: the
// organization's basecurrencyid (the documented source), or, when the org
// has no organization table to read (the simulator's demo org), the one
// currency whose exchange rate is 1 (the base currency's rate is fixed at
// 1; the others are quoted against it).
func (g *Gateway) baseCurrency(ctx context.Context) (currency, error) {
	v, _, err := g.get(ctx, spec{kind: kindBaseCurrency, key: g.key(kindBaseCurrency), fresh: baseCurrencyTTL, local: true,
		load: func(ctx context.Context) (any, int64, error) {
			c, err := g.readBaseCurrency(ctx)
			if err != nil {
				return nil, 0, err
			}
			return &c, 64 + strSize(c.ISO) + strSize(c.Symbol), nil
		}})
	if err != nil {
		return currency{}, err
	}
	return *v.(*currency), nil
}

func (g *Gateway) readBaseCurrency(ctx context.Context) (currency, error) {
	var org struct {
		Value []struct {
			Base *currency `json:"basecurrencyid"`
		} `json:"value"`
	}
	err := g.getJSON(ctx, "GET organizations", "organizations?$select=_basecurrencyid_value&$expand="+
		odataq.Escape("basecurrencyid($select=isocurrencycode,currencysymbol)"), &org)
	if err == nil && len(org.Value) == 1 && org.Value[0].Base != nil && org.Value[0].Base.ISO != "" {
		return *org.Value[0].Base, nil
	}
	if k := dataverse.KindOf(err); err != nil && k != dataverse.KindNotFound && k != dataverse.KindBadRequest {
		return currency{}, err
	}
	var curs struct {
		Value []currency `json:"value"`
	}
	if err := g.getJSON(ctx, "GET transactioncurrencies", "transactioncurrencies?$select=isocurrencycode,currencysymbol&$filter="+
		odataq.Escape("exchangerate eq 1"), &curs); err != nil {
		return currency{}, err
	}
	if len(curs.Value) != 1 || curs.Value[0].ISO == "" {
		return currency{}, &dataverse.Error{Kind: dataverse.KindConfig, Op: "GET transactioncurrencies",
			Message: fmt.Sprintf("the org's base currency is unknown: the organization table cannot be read and %d currencies have exchange rate 1", len(curs.Value)),
			Remedy:  "Give the application user read access to the organization table (every security role has it by default)."}
	}
	return curs.Value[0], nil
}

// formatMoney writes an amount rounded to the cent with the currency symbol
// and thousands separators, as Dataverse formats money for en-US:
// "$1,234.56", "-€0.50".
func formatMoney(symbol string, d decimal.Decimal) string {
	s := d.Abs().StringFixed(2)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if d.Round(2).IsNegative() {
		b.WriteByte('-')
	}
	b.WriteString(symbol)
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	b.WriteString("." + frac)
	return b.String()
}
