package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestLookupSummaryWaits: dvgate lookup summary, a one-shot command, waits
// for a summary Dataverse is slow to compute, past the 2 s after which the
// HTTP API answers 202 (asking again joins the computation under way: one
// $apply, not one per try); with a --wait shorter than Dataverse takes it
// prints the API's pending answer and exits 1.
func TestLookupSummaryWaits(t *testing.T) {
	t.Parallel()
	const fabrikamContact = "contact/b46d4f35-6f57-5fbb-b866-32977a8faa40"
	tests := []struct {
		name    string
		latency time.Duration // of the summary's $apply
		args    []string
		code    int
		want    []string
	}{
		{"waits past the API's 202", 3 * time.Second, []string{"--customer", fabrikamContact}, 0,
			[]string{`"summary": {`, `"totalSpent": {`}},
		{"waits past the API's 202, by email", 3 * time.Second, []string{fabrikam}, 0,
			[]string{`"summary": {`, `"name": "Fabrikam, Inc."`}},
		{"gives up after --wait", time.Minute, []string{"--customer", fabrikamContact, "--wait", "500ms"}, exitFailed,
			[]string{`"pending": true`, `"retryAfterSeconds": 2`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			m := e.main(append([]string{"lookup", "summary"}, tc.args...)...)
			e.sim.InjectFault(dataversetest.Fault{Path: webOrders, Latency: tc.latency, Count: 1})
			start := time.Now()
			err := m.Run(context.Background())
			took := time.Since(start)
			if cerr := m.Close(); cerr != nil {
				t.Error(cerr)
			}
			code := 0
			var ee exitError
			switch {
			case errors.As(err, &ee):
				code = ee.status()
			case err != nil:
				code = exitFailed
			}
			out := e.stdout.String()
			t.Logf("exit %d after %v: %v", code, took.Round(time.Millisecond), err)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tc.code == 0 && took < tc.latency {
				t.Errorf("answered after %v, before the $apply (held %v) could: not the delayed request", took, tc.latency)
			}
			applies := 0
			for _, q := range e.sim.Requests() {
				if q.Path == webOrders && strings.Contains(q.RawQuery, "apply") {
					applies++
				}
			}
			if applies != 1 {
				t.Errorf("%d $apply requests, want 1 (a try joins the computation under way)", applies)
			}
		})
	}
}
