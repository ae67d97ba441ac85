package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dvgate/dvgate/dataverse"
)

// Default request budget of a Gateway (Config.Budget).
//
// Dataverse's service protection allows each user 6,000 requests per 5
// minutes (20 per second on average) and 52 concurrent requests, per web
// server, and a client that keeps sending while throttled extends its
// penalty. The budget keeps one gateway at half the request rate (10 per
// second, 3,000 per 5 minutes), so that a second replica sharing the
// application user still stays under the limit, and its burst below the
// concurrency limit, so that a burst of slow requests cannot take every
// concurrency slot by itself (a real lookup finds a free one). Sender
// addresses are chosen by outsiders, and every never-seen one costs one or
// two requests: without a budget, a flood of them gets the org throttled
// for every customer.
const (
	DefaultBudgetRate  = 10.0 // requests per second
	DefaultBudgetBurst = 40   // requests
)

// Budget is a token bucket in front of every Dataverse request a Gateway
// sends (lookups and Test): each request takes a token; tokens come back
// at Rate per second, up to Burst. A lookup is admitted by its first
// request's token; its further requests (the fallback to accounts in
// ModeBoth) borrow, so that it is not failed halfway. When the bucket is
// empty, a lookup that would need Dataverse fails at once with a busy error (ErrorCode "busy",
// RetryAfter says when a token is due) or answers from a stale entry if
// there is one; cached answers keep serving. The bucket runs on
// Config.Clock.
//
// The zero value means the defaults. Rate < 0 turns the budget off (only
// the connection's own concurrency cap and throttling gate remain), for
// measurements and for deployments whose replicas are limited otherwise.
// The budget is per Gateway, so replicas sharing an application user
// should divide the org's limits between them.
type Budget struct {
	Rate  float64 // tokens per second; 0 = DefaultBudgetRate, < 0 = no budget
	Burst int     // bucket size; 0 = DefaultBudgetBurst
}

// bucket is a token bucket on an injected clock. It is safe for concurrent
// use; its mutex is held only for the arithmetic.
type bucket struct {
	rate  float64 // tokens per second
	burst float64
	clock func() time.Time

	mu     sync.Mutex
	tokens float64   // guarded by mu
	last   time.Time // guarded by mu: when tokens was computed
}

// newBucket validates b and returns its bucket, or nil when the budget is
// off.
func newBucket(b Budget, clock func() time.Time) (*bucket, error) {
	if b.Rate < 0 {
		return nil, nil
	}
	if math.IsNaN(b.Rate) || math.IsInf(b.Rate, 0) {
		return nil, fmt.Errorf("gateway: Budget.Rate %v is not a number of requests per second", b.Rate)
	}
	if b.Burst < 0 {
		return nil, fmt.Errorf("gateway: Budget.Burst %d is negative (use Rate < 0 to turn the budget off)", b.Burst)
	}
	if b.Rate == 0 {
		b.Rate = DefaultBudgetRate
	}
	if b.Burst == 0 {
		b.Burst = DefaultBudgetBurst
	}
	return &bucket{rate: b.Rate, burst: float64(b.Burst), clock: clock, tokens: float64(b.Burst), last: clock()}, nil
}

// take takes one token. When none is left it returns false and how long
// until one is due.
func (b *bucket) take() (ok bool, wait time.Duration) {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 { // a clock stepping back adds nothing
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// borrow takes one token even when none is left (the bucket goes into
// debt, at most Burst deep, repaid by the refill before anything else is
// admitted): for the further requests of a lookup that was admitted, so
// that an admitted lookup is not failed halfway, its first request wasted.
func (b *bucket) borrow() {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	b.tokens = max(b.tokens-1, -b.burst)
}

// admittedKey marks a shared call's context (see core.flight) with the
// number of requests it has spent budget on: the first must find a token,
// the others borrow.
type admittedKey struct{}

func withAdmission(ctx context.Context) context.Context {
	return context.WithValue(ctx, admittedKey{}, new(atomic.Int32))
}

// budgeted puts a bucket in front of an Upstream's requests.
type budgeted struct {
	Upstream
	b *bucket
}

// spend takes a token for one request of op, or returns the busy error. A
// request of a shared call whose waiters have all left takes no token: it
// will not be sent (dataverse.WithAbandon).
func (u budgeted) spend(ctx context.Context, op string) error {
	select {
	case <-abandoned(ctx):
		return &dataverse.Error{Kind: dataverse.KindCanceled, Op: op, Err: dataverse.ErrAbandoned,
			Message: "not sent: everyone waiting for it left"}
	default:
	}
	if n, _ := ctx.Value(admittedKey{}).(*atomic.Int32); n != nil && n.Load() > 0 {
		// A further request of an admitted lookup (ModeBoth's fallback to
		// accounts).
		n.Add(1)
		u.b.borrow()
		return nil
	}
	ok, wait := u.b.take()
	if ok {
		if n, _ := ctx.Value(admittedKey{}).(*atomic.Int32); n != nil {
			n.Add(1)
		}
		return nil
	}
	// Whole seconds, rounded up: the sidecar's Retry-After has no fraction.
	ra := max(time.Second, (wait+time.Second-1)/time.Second*time.Second)
	return &dataverse.Error{Kind: dataverse.KindBusy, Op: op, RetryAfter: ra,
		Message: "not sent: this integration's Dataverse request budget is spent",
		Remedy: fmt.Sprintf("dvgate limits the Dataverse requests of each integration to protect the org's service protection limits: retry after %d seconds, or raise the budget if the load is legitimate.",
			int64(ra/time.Second))}
}

// opName names a request without its key or query, which may hold
// customer data ("GET salesorders"), as dataverse.Conn does.
func opName(req *http.Request) string {
	p := req.URL.Path
	if i := strings.Index(p, dataverse.APIPath); i >= 0 {
		p = p[i+len(dataverse.APIPath):]
	}
	if i := strings.IndexAny(p, "(/"); i >= 0 {
		p = p[:i]
	}
	return req.Method + " " + p
}

func (u budgeted) Do(req *http.Request) (*http.Response, error) {
	if err := u.spend(req.Context(), opName(req)); err != nil {
		return nil, err
	}
	return u.Upstream.Do(req)
}

func (u budgeted) WhoAmI(ctx context.Context) (dataverse.WhoAmIResult, error) {
	if err := u.spend(ctx, "GET WhoAmI"); err != nil {
		return dataverse.WhoAmIResult{}, err
	}
	return u.Upstream.WhoAmI(ctx)
}

// abandonKey carries a shared call's abandon context (see core.flight) to
// the budget, which must not spend a token on a request that will not be
// sent. The same context goes to the connection through
// dataverse.WithAbandon.
type abandonKey struct{}

func withAbandon(ctx, abandon context.Context) context.Context {
	return dataverse.WithAbandon(context.WithValue(ctx, abandonKey{}, abandon), abandon)
}

// abandoned returns the Done channel of withAbandon's context, or nil
// (never ready).
func abandoned(ctx context.Context) <-chan struct{} {
	if a, ok := ctx.Value(abandonKey{}).(context.Context); ok {
		return a.Done()
	}
	return nil
}
