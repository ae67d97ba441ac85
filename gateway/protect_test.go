package gateway

import (
	"context"
	"errors"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/google/go-cmp/cmp"
)

// The bucket: Burst tokens at first, Rate per second after, never more
// than Burst, and a clock stepping back adds nothing.
func TestBucket(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b, err := newBucket(Budget{Rate: 2, Burst: 3}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	type take struct {
		advance time.Duration
		ok      bool
		wait    time.Duration
	}
	steps := []take{
		{0, true, 0}, {0, true, 0}, {0, true, 0},
		{0, false, 500 * time.Millisecond},
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{250 * time.Millisecond, true, 0},
		{-time.Hour, false, 500 * time.Millisecond}, // clock stepped back
		{time.Hour + 10*time.Second, true, 0},       // refilled to Burst, not more
		{0, true, 0}, {0, true, 0},
		{0, false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		ok, wait := b.take()
		if ok != s.ok || wait != s.wait {
			t.Errorf("step %d: take = %v, %v; want %v, %v", i, ok, wait, s.ok, s.wait)
		}
	}
}

func TestBudgetConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		b       Budget
		off     bool
		errPart string
	}{
		{b: Budget{}},
		{b: Budget{Rate: 1}},
		{b: Budget{Rate: -1}, off: true},
		{b: Budget{Rate: -1, Burst: -5}, off: true},
		{b: Budget{Burst: -1}, errPart: "Burst -1 is negative"},
		{b: Budget{Rate: math.NaN()}, errPart: "not a number"},
		{b: Budget{Rate: math.Inf(1)}, errPart: "not a number"},
	} {
		g, err := New(Config{Conn: newFake(), Budget: tc.b})
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("Budget %+v: err = %v, want %q", tc.b, err, tc.errPart)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Budget %+v: %v", tc.b, err)
		}
		if _, isBudgeted := g.up.(budgeted); isBudgeted == tc.off {
			t.Errorf("Budget %+v: budgeted = %v, want %v", tc.b, isBudgeted, !tc.off)
		}
		g.Close()
	}
}

// When the budget is spent, a lookup that needs Dataverse fails at once
// with busy (503, RetryAfter when the next token is due) without a
// request, a lookup with a stale entry gets it, and cached answers keep
// serving.
func TestBudgetShedsMissesOnly(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.on("contacts", func(q url.Values, _ string) (string, error) {
		if strings.Contains(q.Get("$filter"), "'kept@example.com'") {
			return contactsAlex, nil
		}
		return contactsEmpty, nil
	})
	g, clk := newTestGateway(t, up, Config{Mode: ModeContacts, Budget: Budget{Rate: 0.001, Burst: 3}})
	ctx := context.Background()
	type lookup struct {
		advance time.Duration
		email   string
		outcome Outcome
		code    string // ErrorCode of the error, "" for an answer
	}
	steps := []lookup{
		{0, "kept@example.com", Miss, ""},
		{0, "a@example.com", Miss, "not_found"},
		{0, "b@example.com", Miss, "not_found"},
		{0, "c@example.com", 0, "busy"},        // spent
		{0, "kept@example.com", Hit, ""},       // cached: served
		{0, "a@example.com", Hit, "not_found"}, // a cached not-found too
		{6 * time.Minute, "kept@example.com", Stale, ""},
		{0, "c@example.com", 0, "busy"},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		before := len(up.requests())
		_, meta, err := g.Customer(ctx, s.email)
		code := ErrorCode(err)
		if code != s.code || (err == nil || errors.Is(err, ErrNotFound)) && meta.Outcome != s.outcome {
			t.Errorf("step %d %s: outcome %v, code %q (%v); want %v, %q", i, s.email, meta.Outcome, code, err, s.outcome, s.code)
		}
		if code == "busy" {
			if RetryAfter(err) < time.Second {
				t.Errorf("step %d: busy with RetryAfter %v; want at least 1s", i, RetryAfter(err))
			}
			if n := len(up.requests()) - before; n != 0 {
				t.Errorf("step %d: busy lookup sent %d requests", i, n)
			}
			if strings.Contains(err.Error(), "@") || !strings.Contains(err.Error(), "GET contacts") {
				t.Errorf("step %d: busy error %q: want the operation without the query", i, err)
			}
		}
	}
	if n := len(up.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (the burst)", n)
	}
}

// A request of a shared call whose waiters have all left takes no token.
func TestBudgetSpendsNothingOnAbandonedCalls(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b, _ := newBucket(Budget{Rate: 1, Burst: 1}, clk.Now)
	u := budgeted{Upstream: newFake(), b: b}
	gone, abandon := context.WithCancel(context.Background())
	abandon()
	if _, err := u.WhoAmI(withAbandon(context.Background(), gone)); !errors.Is(err, dataverse.ErrAbandoned) {
		t.Fatalf("abandoned WhoAmI = %v, want ErrAbandoned", err)
	}
	if _, err := u.WhoAmI(context.Background()); err != nil {
		t.Errorf("the token was spent by the abandoned call: %v", err)
	}
}

// Not-found answers are fresh as long as found ones unless NotFoundTTL
// says otherwise.
func TestNotFoundTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		notFoundTTL time.Duration
		after       time.Duration
		wantReqs    int
	}{
		{"default: as long as a customer, still fresh", 0, 4*time.Minute + 59*time.Second, 1},
		{"default: as long as a customer, then asked again", 0, 5 * time.Minute, 2},
		{"configured shorter", 30 * time.Second, 31 * time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newFake()
			up.reply("contacts", contactsEmpty)
			g, clk := newTestGateway(t, up, Config{Mode: ModeContacts, NotFoundTTL: tc.notFoundTTL})
			for _, adv := range []time.Duration{0, tc.after} {
				clk.Advance(adv)
				if _, _, err := g.Customer(context.Background(), "nobody@example.com"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v", err)
				}
			}
			if n := len(up.requests()); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

// whoAmICounter counts WhoAmI calls and holds each until release is closed.
type whoAmICounter struct {
	*fakeUpstream
	calls   atomic.Int32
	release chan struct{}
	fail    atomic.Bool
}

func (w *whoAmICounter) WhoAmI(ctx context.Context) (dataverse.WhoAmIResult, error) {
	w.calls.Add(1)
	<-w.release
	if w.fail.Load() {
		return dataverse.WhoAmIResult{}, &dataverse.Error{Kind: dataverse.KindAuth, Op: "sign in"}
	}
	return w.fakeUpstream.WhoAmI(ctx)
}

// Test: concurrent calls share one WhoAmI, the answer is kept TestTTL,
// errors are not kept.
func TestTestCoalescedAndKept(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		up := &whoAmICounter{fakeUpstream: newFake(), release: make(chan struct{})}
		g, clk := newTestGateway(t, up, Config{})
		const n = 500
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				r, err := g.Test(context.Background())
				if err != nil || r.OrganizationID != "org-1" {
					t.Errorf("Test = %+v, %v", r, err)
				}
			})
		}
		synctest.Wait()
		close(up.release)
		wg.Wait()
		got := []int32{up.calls.Load()}
		for _, adv := range []time.Duration{4 * time.Second, time.Second} {
			clk.Advance(adv)
			if _, err := g.Test(context.Background()); err != nil {
				t.Fatal(err)
			}
			got = append(got, up.calls.Load())
		}
		up.fail.Store(true)
		clk.Advance(5 * time.Second)
		for range 2 {
			if _, err := g.Test(context.Background()); dataverse.KindOf(err) != dataverse.KindAuth {
				t.Errorf("Test after the credential broke = %v, want auth", err)
			}
		}
		got = append(got, up.calls.Load())
		if diff := cmp.Diff([]int32{1, 1, 2, 4}, got); diff != "" {
			t.Errorf("WhoAmI calls after 500 concurrent, +4s, +5s, two failures (-want +got):\n%s", diff)
		}
	})
}

// slotLoad stands in for a Dataverse request queued for a concurrency
// slot: it returns ErrAbandoned (as dataverse.Conn does) when its call is
// abandoned before send is closed; once sent, it finishes regardless.
type slotLoad struct {
	send      chan struct{}
	calls     atomic.Int32
	abandoned atomic.Int32
}

func (l *slotLoad) load(ctx context.Context) (any, int64, error) {
	l.calls.Add(1)
	select {
	case <-abandoned(ctx):
		l.abandoned.Add(1)
		return nil, 0, &dataverse.Error{Kind: dataverse.KindCanceled, Err: dataverse.ErrAbandoned}
	case <-l.send:
		return "answer", 6, nil
	}
}

// A shared call whose last waiter leaves before it has sent anything is
// dropped; one with a waiter left carries on; a caller arriving after the
// drop starts a new call.
func TestCoreDropsCallsWhoseWaitersLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		stay          bool // a second waiter stays
		wantAbandoned int32
	}{
		{"last waiter leaves", false, 1},
		{"one of two leaves", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c, _ := newTestCore(t, CacheConfig{})
				l := &slotLoad{send: make(chan struct{})}
				s := spec{kind: "customer", key: "k", fresh: time.Minute, load: l.load}
				ctx, leave := context.WithCancel(context.Background())
				left := make(chan error, 1)
				go func() {
					_, _, err := c.get(ctx, s)
					left <- err
				}()
				stayed := make(chan any, 1)
				if tc.stay {
					go func() {
						v, _, _ := c.get(context.Background(), s)
						stayed <- v
					}()
				}
				synctest.Wait()
				leave()
				if err := <-left; !errors.Is(err, context.Canceled) {
					t.Errorf("leaver got %v", err)
				}
				synctest.Wait()
				if got := l.abandoned.Load(); got != tc.wantAbandoned {
					t.Errorf("abandoned loads = %d, want %d", got, tc.wantAbandoned)
				}
				close(l.send)
				if tc.stay {
					if v := <-stayed; v != "answer" {
						t.Errorf("the waiter who stayed got %v", v)
					}
				}
				// Whether dropped or not, the next caller gets the answer:
				// from the cache, or from a new call.
				v, _, err := c.get(context.Background(), s)
				if err != nil || v != "answer" {
					t.Errorf("next caller: %v, %v", v, err)
				}
				wantCalls := int32(1) + tc.wantAbandoned
				if got := l.calls.Load(); got != wantCalls {
					t.Errorf("loads = %d, want %d", got, wantCalls)
				}
			})
		})
	}
}

// A call that has sent its request completes after its waiters left, and
// its answer is cached.
func TestCoreKeepsSentCalls(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, _ := newTestCore(t, CacheConfig{})
		sent, finish := make(chan struct{}), make(chan struct{})
		s := spec{kind: "customer", key: "k", fresh: time.Minute, load: func(ctx context.Context) (any, int64, error) {
			close(sent) // past the slot: the connection no longer looks at abandon
			<-finish
			return "answer", 6, nil
		}}
		ctx, leave := context.WithCancel(context.Background())
		go func() { _, _, _ = c.get(ctx, s) }()
		<-sent
		leave()
		synctest.Wait()
		close(finish)
		synctest.Wait()
		if _, m, err := c.get(context.Background(), s); err != nil || m.Outcome != Hit {
			t.Errorf("after: %v, %v; want a hit", m.Outcome, err)
		}
	})
}

// The Kelvin sign in an address is refused, not folded into the address
// of the customer whose email has a "k" there.
func TestKelvinSignDoesNotReachAnotherCustomer(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.reply("contacts", contactsAlex)
	g, _ := newTestGateway(t, up, Config{Mode: ModeContacts})
	ctx := context.Background()
	if _, _, err := g.Customer(ctx, "kate@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"\u212Aate@example.com", "\u212AATE@EXAMPLE.COM"} {
		c, _, err := g.Customer(ctx, email)
		var ie *InputError
		if !errors.As(err, &ie) || c != nil {
			t.Errorf("Customer(%q) = %+v, %v; want an input error", email, c, err)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// A lookup admitted by its first request's token completes: the fallback
// to accounts borrows instead of failing the lookup halfway.
func TestBudgetAdmittedLookupCompletes(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.reply("contacts", contactsEmpty)
	up.reply("accounts", contactsEmpty)
	g, clk := newTestGateway(t, up, Config{Mode: ModeBoth, Budget: Budget{Rate: 1, Burst: 1}})
	ctx := context.Background()
	var got []string
	for _, s := range []struct {
		advance time.Duration
		email   string
	}{
		{0, "a@example.com"},           // admitted: two requests, one borrowed
		{0, "b@example.com"},           // in debt
		{time.Second, "b@example.com"}, // the debt repaid, nothing left
		{time.Second, "b@example.com"},
	} {
		clk.Advance(s.advance)
		_, _, err := g.Customer(ctx, s.email)
		code := ErrorCode(err)
		got = append(got, code)
	}
	if diff := cmp.Diff([]string{"not_found", "busy", "busy", "not_found"}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if n := len(up.requests()); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}
