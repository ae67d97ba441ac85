package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

// The hot path writes answers itself; they must be byte for byte what the
// generated response objects write (field names, HTML escaping, trailing
// newline, headers).
func TestJSONAnswerMatchesGenerated(t *testing.T) {
	t.Parallel()
	tracking := "1Z\u2028999"
	due := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	order := &gateway.Order{ID: "o1", Number: "ORD-1", Name: "Café <b>&</b>", Status: "Active / New",
		Customer: &gateway.Ref{Type: "account", ID: "a1", Name: "Fabrikam"},
		State:    gateway.Choice{Value: 0, Label: "Active"}, StatusReason: gateway.Choice{Value: 1, Label: "New"}, RequestedDeliveryBy: &due,
		TrackingNumber: &tracking, Total: gateway.Money{Amount: d("1909.2"), Currency: "EUR", Formatted: "€1,909.20"},
		Lines: []gateway.Line{{Number: 1, Quantity: d("2"), UnitPrice: d("10"), Amount: d("20"),
			Product: &gateway.Product{ID: "p1", Name: "Widget", SKU: "W-1"}},
			{Number: 2, WriteIn: true, Description: "Setup <install>", Quantity: d("1"), UnitPrice: d("0"), Amount: d("0")}}}
	customer := &gateway.Customer{Type: "contact", ID: "c1", Name: "Alex \"Wu\"", Email: "alex.wu@example.com", Phone: "+1 <555> & 0100",
		Account: &gateway.Ref{Type: "account", ID: "a1", Name: "Fabrikam"}}
	meta := gateway.Meta{Outcome: gateway.Stale, Age: 3599*time.Second + 999*time.Millisecond}
	visit := func(f func(http.ResponseWriter) error) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		if err := f(rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	mustEncode := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	noLines := *order
	noLines.Lines = nil
	for _, tc := range []struct {
		name      string
		generated func(http.ResponseWriter) error
		ours      []byte
	}{
		{"order", httpapi.GetOrder200JSONResponse{OrderFoundJSONResponse: httpapi.OrderFoundJSONResponse{Body: httpapi.OrderResponse{Order: orderOf(order)},
			Headers: httpapi.OrderFoundResponseHeaders{Age: 3599, XCache: "stale"}}}.VisitGetOrderResponse, mustEncode(encodeOrder(order))},
		{"order without lines", httpapi.GetOrderIn200JSONResponse{OrderFoundJSONResponse: httpapi.OrderFoundJSONResponse{Body: httpapi.OrderResponse{Order: orderOf(&noLines)},
			Headers: httpapi.OrderFoundResponseHeaders{Age: 3599, XCache: "stale"}}}.VisitGetOrderInResponse, mustEncode(encodeOrder(&noLines))},
		{"customer", httpapi.GetCustomer200JSONResponse{CustomerFoundJSONResponse: httpapi.CustomerFoundJSONResponse{Body: httpapi.CustomerResponse{Customer: customerOf(customer)},
			Headers: httpapi.CustomerFoundResponseHeaders{Age: 3599, XCache: "stale"}}}.VisitGetCustomerResponse, mustEncode(encodeCustomer(customer))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := visit(tc.generated)
			got := visit(new(jsonAnswer).set(tc.ours, meta).write)
			if diff := cmp.Diff(want.Header(), got.Header()); diff != "" {
				t.Errorf("headers (-generated +ours):\n%s", diff)
			}
			if want.Code != got.Code {
				t.Errorf("status %d, generated %d", got.Code, want.Code)
			}
			if diff := cmp.Diff(want.Body.String(), got.Body.String()); diff != "" {
				t.Errorf("body (-generated +ours):\n%s", diff)
			}
		})
	}
}

func TestAnswerMemo(t *testing.T) {
	t.Parallel()
	m := newAnswerMemo[gateway.Order]()
	var mu sync.Mutex
	encoded := map[*gateway.Order]int{}
	encode := func(o *gateway.Order) ([]byte, error) {
		mu.Lock()
		encoded[o]++
		mu.Unlock()
		return encodeOrder(o)
	}
	a, b := &gateway.Order{Number: "A"}, &gateway.Order{Number: "B"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for _, o := range []*gateway.Order{a, b} {
					body, err := m.get(o, encode)
					if err != nil {
						t.Error(err)
						return
					}
					want, _ := encodeOrder(o)
					if string(body) != string(want) {
						t.Errorf("body of %s: %s", o.Number, body)
					}
				}
			}
		})
	}
	wg.Wait()
	// Racing first calls may each encode, and a and b may share a slot;
	// otherwise every call after the first is answered from the memo.
	if n := encoded[a] + encoded[b]; n > 2*8*2 && n > 100 {
		t.Errorf("encoded %d times for 1600 gets", n)
	}
	// Another answer (a refreshed cache entry) with the same content is
	// encoded again: the key is the answer, not its content.
	a2 := &gateway.Order{Number: "A2"}
	if body, _ := m.get(a2, encode); !regexp.MustCompile(`"number":"A2"`).Match(body) {
		t.Errorf("refreshed answer: %s", body)
	}

	fail := errors.New("boom")
	if _, err := m.get(&gateway.Order{}, func(*gateway.Order) ([]byte, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Errorf("encode error: %v", err)
	}
}

type ctxKey string

// request is the request's context; its timeout must behave as
// context.WithTimeout's although the timer is made lazily.
func TestRequestContext(t *testing.T) {
	t.Parallel()
	const timeout = 25 * time.Second
	newReq := func(parent context.Context, timed bool) *request {
		rq := &request{parent: parent, timed: timed, deadline: time.Now().Add(timeout)}
		rq.info.id = "req-1"
		return rq
	}
	t.Run("values", func(t *testing.T) {
		t.Parallel()
		rq := newReq(context.WithValue(t.Context(), ctxKey("k"), "v"), true)
		if got := info(rq); got != &rq.info || got.id != "req-1" {
			t.Errorf("info = %+v", got)
		}
		if rq.Value(ctxKey("k")) != "v" {
			t.Error("parent value lost")
		}
		_ = rq.Done()
		if rq.Value(ctxKey("k")) != "v" || info(rq) != &rq.info {
			t.Error("values lost once the timer exists")
		}
		rq.release()
	})
	t.Run("untimed", func(t *testing.T) {
		t.Parallel()
		parent, cancel := context.WithCancel(context.Background())
		rq := newReq(parent, false)
		if _, ok := rq.Deadline(); ok {
			t.Error("deadline on a path without timeout")
		}
		if rq.Done() != parent.Done() {
			t.Error("Done is not the parent's")
		}
		cancel()
		if !errors.Is(rq.Err(), context.Canceled) {
			t.Errorf("Err = %v", rq.Err())
		}
		rq.release()
	})
	t.Run("deadline without waiting", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			rq := newReq(context.Background(), true)
			defer rq.release()
			if d, ok := rq.Deadline(); !ok || !d.Equal(time.Now().Add(timeout)) {
				t.Errorf("Deadline = %v, %v", d, ok)
			}
			if rq.Err() != nil || rq.inner.Load() != nil {
				t.Fatalf("Err = %v, timer made: %v", rq.Err(), rq.inner.Load() != nil)
			}
			time.Sleep(timeout)
			if !errors.Is(rq.Err(), context.DeadlineExceeded) {
				t.Errorf("Err after the deadline = %v", rq.Err())
			}
			select {
			case <-rq.Done():
			default:
				t.Error("Done not closed after the deadline")
			}
			if !errors.Is(context.Cause(rq), context.DeadlineExceeded) {
				t.Errorf("Cause = %v", context.Cause(rq))
			}
		})
	})
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			rq := newReq(context.Background(), true)
			defer rq.release()
			child, cancel := context.WithCancel(rq) // as a caller deriving its own
			defer cancel()
			start := time.Now()
			<-child.Done()
			if waited := time.Since(start); waited != timeout {
				t.Errorf("waited %v", waited)
			}
			if !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(rq), context.DeadlineExceeded) {
				t.Errorf("child Err = %v, Cause = %v", child.Err(), context.Cause(rq))
			}
		})
	})
	t.Run("parent canceled", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			rq := newReq(parent, true)
			defer rq.release()
			done := rq.Done()
			cancel()
			<-done
			if !errors.Is(rq.Err(), context.Canceled) {
				t.Errorf("Err = %v", rq.Err())
			}
		})
	})
	t.Run("earlier parent deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			rq := newReq(parent, true)
			defer rq.release()
			if d, _ := rq.Deadline(); !d.Equal(time.Now().Add(time.Second)) {
				t.Errorf("Deadline = %v", d)
			}
		})
	})
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		rq := newReq(context.Background(), true)
		done := rq.Done()
		rq.release()
		<-done
		if !errors.Is(rq.Err(), context.Canceled) {
			t.Errorf("Err after release = %v", rq.Err())
		}
	})
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	old := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`) // the contract
	long := string(make([]byte, 129))
	for _, id := range []string{"", "abc-123", "a.b_c:d-E9", "bad id", "tab\t", "é", "a/b", "a\x00", long, "x" + string(make([]byte, 127))} {
		if got, want := validRequestID(id), old.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	a, err := newHandler(handlerConfig{Registry: &integration.Registry{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := newHandler(handlerConfig{Registry: &integration.Registry{}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range []*handler{a, b, a, b} {
		for range 1000 {
			id := s.requestID("")
			if !old.MatchString(id) || seen[id] {
				t.Fatalf("generated id %q: valid %v, duplicate %v", id, old.MatchString(id), seen[id])
			}
			seen[id] = true
		}
	}
}

func TestMaskEmailInvalidUTF8(t *testing.T) {
	t.Parallel()
	if got := maskEmail("\xffoo@x.fr"); got != "\uFFFD***@x.fr" {
		t.Errorf("maskEmail = %q", got)
	}
}

// The access log and metrics name each request's operation (resolved per
// route); a request the generated binding rejects reached no operation.
func TestAccessLogAndMetricsPerOperation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	var buf syncBuffer
	h.srv.log = slog.New(slog.NewJSONHandler(&buf, nil)) // before the first request
	for _, tc := range []struct {
		path   string
		status int
		log    map[string]any
	}{
		{"/v1/orders/ORD-1", 200, map[string]any{"op": "GetOrder", "integration": "default", "kind": "order", "cache": "stale", "status": 200.0, "requestId": "r1"}},
		{"/v1/integrations/eu/customers?email=alex@example.com", 200, map[string]any{"op": "GetCustomerIn", "integration": "eu", "kind": "customer",
			"cache": "hit", "email": "a***@example.com", "status": 200.0, "requestId": "r2"}},
		{"/v1/customers", 400, map[string]any{"op": "other", "status": 400.0, "error": "invalid_input", "requestId": "r3"}},
		{"/v1/nope", 404, map[string]any{"op": "other", "status": 404.0, "error": "not_found", "requestId": "r4"}},
	} {
		buf.Reset()
		id := tc.log["requestId"].(string)
		resp, body := h.do(t, "GET", tc.path, "X-Request-Id", id)
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode, body)
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("GET %s: log %q: %v", tc.path, buf.String(), err)
		}
		for k, want := range tc.log {
			if line[k] != want {
				t.Errorf("GET %s: log %s = %v, want %v (line %s)", tc.path, k, line[k], want, buf.String())
			}
		}
		if ms, ok := line["durationMs"].(float64); !ok || ms < 0 {
			t.Errorf("GET %s: durationMs is not a number of milliseconds: %s", tc.path, buf.String())
		}
		if _, ok := line[""]; ok {
			t.Errorf("GET %s: log line has an empty key: %s", tc.path, buf.String())
		}
		if line["msg"] != "request" || line["method"] != "GET" {
			t.Errorf("GET %s: log line %s", tc.path, buf.String())
		}
	}
	_, metrics := h.do(t, "GET", "/metrics")
	for _, want := range []string{
		`dvgate_http_requests_total{code="200",operation="GetOrder"} 1`,
		`dvgate_http_requests_total{code="200",operation="GetCustomerIn"} 1`,
		`dvgate_http_requests_total{code="400",operation="other"} 1`,
		`dvgate_http_requests_total{code="404",operation="other"} 1`,
		`dvgate_http_request_duration_seconds_count{operation="GetOrder"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(metrics), `operation="Readyz"`) {
		t.Error("metrics list an operation that was never called")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// A text handler renders the duration as digits too, not as a pointer.
func TestLogMillisText(t *testing.T) {
	t.Parallel()
	var m logMillis
	m.set(1234567 * time.Nanosecond)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "durationMs", &m)
	if !strings.Contains(buf.String(), " durationMs=1.234\n") {
		t.Errorf("text line %q lacks durationMs=1.234", buf.String())
	}
	if b, _ := json.Marshal(&m); string(b) != "1.234" {
		t.Errorf("JSON %s, want 1.234", b)
	}
}
