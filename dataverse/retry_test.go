package dataverse

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// signedIn returns an env whose Conn already holds a token, so request logs
// and waits only show Web API traffic.
func signedIn(t *testing.T, opts dataversetest.Options, mod func(*Config)) *env {
	t.Helper()
	e := newEnv(t, opts, mod)
	if _, err := e.conn.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRetryAfter429(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 429, RetryAfter: 7 * time.Second, Count: 1})
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("WhoAmI after one 429: %v", err)
	}
	reqs := e.sim.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
		t.Fatalf("requests: %+v", reqs)
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 7*time.Second {
		t.Errorf("retried %v after the 429, want >= Retry-After 7s", gap)
	}
	if s := e.conn.Stats(); s.Throttled != 1 || s.Retries != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestThrottledFailsFastWhenRetryAfterOutlastsDeadline(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 429, RetryAfter: 30 * time.Second, Count: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := e.conn.WhoAmI(ctx)
	var de *Error
	if !asError(err, &de) || de.Kind != KindThrottled || de.Status != 429 || de.RetryAfter != 30*time.Second || de.Code != "0x80072322" {
		t.Fatalf("WhoAmI = %v", err)
	}
	if !strings.HasSuffix(de.Remedy, "(number of requests); retry after 30 seconds.") {
		t.Errorf("remedy %q", de.Remedy)
	}
	if len(e.clock.Waits()) != 0 || e.sim.WebAPIRequests() != 1 {
		t.Errorf("waited %v, sent %d requests", e.clock.Waits(), e.sim.WebAPIRequests())
	}
}

// TestGateHoldsEveryRequest: after a 429, no request of this Conn reaches the
// org until Retry-After has passed; callers whose deadline is too short fail
// fast, the others wait.
func TestGateHoldsEveryRequest(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 429, RetryAfter: 30 * time.Second, Count: 1})
	short, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := e.conn.WhoAmI(short); KindOf(err) != KindThrottled {
		t.Fatalf("first call: %v", err)
	}
	throttledAt := e.sim.Requests()[0].Time
	until := e.conn.ThrottledUntil()
	if got := until.Sub(throttledAt); got != 30*time.Second {
		t.Fatalf("ThrottledUntil is %v after the 429, want 30s", got)
	}

	const callers = 20
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			_, err := e.conn.WhoAmI(short)
			var de *Error
			if !asError(err, &de) || de.Kind != KindThrottled || de.RetryAfter <= 0 || de.RetryAfter > 30*time.Second {
				t.Errorf("short deadline during the gate: %v", err)
			}
		})
	}
	wg.Wait()
	if n := e.sim.WebAPIRequests(); n != 1 {
		t.Fatalf("%d requests reached the org while throttled", n-1)
	}

	for range callers {
		wg.Go(func() {
			if _, err := e.conn.WhoAmI(t.Context()); err != nil {
				t.Errorf("patient caller: %v", err)
			}
		})
	}
	wg.Wait()
	reqs := e.sim.Requests()
	if len(reqs) != callers+1 {
		t.Fatalf("%d requests, want %d", len(reqs), callers+1)
	}
	for _, r := range reqs[1:] {
		if r.Time.Before(until) {
			t.Errorf("request at +%v, inside the Retry-After window", r.Time.Sub(throttledAt))
		}
	}
	if s := e.conn.Stats(); s.GateRejected != callers || s.Throttled != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestServiceProtectionCodes hits the simulator's real limits and checks the
// remedy names the limit.
func TestServiceProtectionCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits dataversetest.Limits
		code   string
		limit  string
	}{
		{"requests", dataversetest.Limits{Requests: 2, ExecutionTime: -1, Concurrent: -1}, "0x80072322", "(number of requests)"},
		// Execution time is measured on the simulator's clock, so this one runs
		// on real time: any request takes more than a nanosecond.
		{"execution time", dataversetest.Limits{Requests: -1, ExecutionTime: time.Nanosecond, Concurrent: -1}, "0x80072321", "(combined execution time)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := dataversetest.Options{Limits: tt.limits}
			if tt.code == "0x80072321" {
				opts.Clock = time.Now
			}
			e := signedIn(t, opts, func(c *Config) { c.MaxAttempts = 1 })
			var err error
			for i := 0; i < 3 && err == nil; i++ {
				_, err = e.conn.WhoAmI(t.Context())
			}
			var de *Error
			if !asError(err, &de) || de.Kind != KindThrottled || de.Code != tt.code || !strings.Contains(de.Remedy, tt.limit) || de.RetryAfter <= 0 {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestRetryTransientStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			e := signedIn(t, dataversetest.Options{}, nil)
			e.sim.InjectFault(dataversetest.Fault{Status: status, Count: 2})
			if _, err := e.conn.WhoAmI(t.Context()); err != nil {
				t.Fatalf("WhoAmI: %v", err)
			}
			waits := e.clock.Waits()
			if len(waits) != 2 || waits[0] < 250*time.Millisecond || waits[0] > 500*time.Millisecond || waits[1] < 500*time.Millisecond || waits[1] > time.Second {
				t.Errorf("backoff waits %v, want ~[250ms,500ms] then [500ms,1s]", waits)
			}
			if e.sim.WebAPIRequests() != 3 || e.conn.Stats().Retries != 2 {
				t.Errorf("requests %d, stats %+v", e.sim.WebAPIRequests(), e.conn.Stats())
			}
		})
	}
}

func TestRetryHonours503RetryAfter(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 503, RetryAfter: 3 * time.Second, Count: 1})
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := e.clock.Waits(); len(w) != 1 || w[0] != 3*time.Second {
		t.Errorf("waits %v, want [3s]", w)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 503})
	_, err := e.conn.WhoAmI(t.Context())
	if de := (*Error)(nil); !asError(err, &de) || de.Kind != KindUnavailable || de.Status != 503 {
		t.Fatalf("WhoAmI = %v", err)
	}
	if n := e.sim.WebAPIRequests(); n != DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", n, DefaultMaxAttempts)
	}
}

func TestBackoffNeverPassesDeadline(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 503, RetryAfter: 20 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := e.conn.WhoAmI(ctx)
	if KindOf(err) != KindUnavailable || len(e.clock.Waits()) != 0 || e.sim.WebAPIRequests() != 1 {
		t.Errorf("err %v, waits %v, requests %d", err, e.clock.Waits(), e.sim.WebAPIRequests())
	}
}

func TestRetryConnectionReset(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Reset: true, Count: 2})
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("WhoAmI after resets: %v", err)
	}
	if n := e.sim.WebAPIRequests(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestNonIdempotentNotRetried(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Status: 503})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.conn.BaseURL()+"$batch", strings.NewReader("--batch--"))
	if _, err := e.conn.Do(req); KindOf(err) != KindUnavailable {
		t.Fatalf("Do = %v", err)
	}
	if n := e.sim.WebAPIRequests(); n != 1 {
		t.Errorf("POST sent %d times", n)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Latency: 10 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.conn.WhoAmI(ctx)
	if de := (*Error)(nil); !asError(err, &de) || de.Kind != KindTimeout || de.Remedy != RemedyTimeout {
		t.Fatalf("WhoAmI = %v", err)
	}
}

func TestMalformedWhoAmI(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Malformed: true, Count: 1})
	if _, err := e.conn.WhoAmI(t.Context()); KindOf(err) != KindUnavailable {
		t.Fatalf("WhoAmI = %v", err)
	}
}

func TestDoBuffersBody(t *testing.T) {
	t.Parallel()
	e := signedIn(t, dataversetest.Options{}, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.conn.BaseURL()+"WhoAmI", nil)
	resp, err := e.conn.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(b), "OrganizationId") || resp.ContentLength != int64(len(b)) {
		t.Errorf("body %q, %v, length %d", b, err, resp.ContentLength)
	}
}

func TestSignInRetriedOnEntraOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	e.sim.InjectFault(dataversetest.Fault{Path: "token", Status: 503, RetryAfter: 2 * time.Second, Count: 1})
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("WhoAmI after one Entra 503: %v", err)
	}
	if n := e.sim.TokenRequests(); n != 2 {
		t.Errorf("token requests %d, want 2", n)
	}
	if w := e.clock.Waits(); len(w) != 1 || w[0] != 2*time.Second {
		t.Errorf("waits %v, want [2s] (Entra's Retry-After)", w)
	}
	// Entra's throttling must not close the Dataverse gate.
	if !e.conn.ThrottledUntil().IsZero() {
		t.Errorf("gate closed by an Entra failure: %v", e.conn.ThrottledUntil())
	}
}
