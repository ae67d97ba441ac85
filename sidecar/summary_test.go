package sidecar

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
)

// GET /v1/customers/{type}/{id}/summary: 200 with the summary, 202 with
// Retry-After while it is computed, errors as for other lookups.
func TestSummaryEndpoint(t *testing.T) {
	t.Parallel()
	const id = "a02d49e0-2b3d-5151-8267-0ce42f01c3f8"
	tests := []struct {
		name       string
		err        error
		path       string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"found", nil, "/v1/customers/account/" + id + "/summary", 200,
			`{"summary":{"asOf":"0001-01-01T00:00:00Z","customer":{"id":"` + id + `","name":"Fabrikam, Inc.","type":"account"},` +
				`"orders":{"count":2,"first":null,"last":null,"open":1},"stale":false,` +
				`"totalSpent":{"amount":"1234.5678","currency":"USD","formatted":"$1,234.57"}}}`,
			map[string]string{"X-Cache": "hit", "Age": "30"}},
		{"named integration", nil, "/v1/integrations/eu/customers/account/" + id + "/summary", 200, "", nil},
		{"pending", &gateway.PendingError{RetryAfter: 1500 * time.Millisecond}, "/v1/customers/contact/" + id + "/summary", 202,
			`{"pending":true,"retryAfterSeconds":2}`, map[string]string{"Retry-After": "2"}},
		{"throttled", &integration.Error{Code: integration.CodeThrottled, Message: "Slow down.", RetryAfter: 3 * time.Second},
			"/v1/customers/contact/" + id + "/summary", 503, "", map[string]string{"Retry-After": "3"}},
		{"bad type", nil, "/v1/customers/lead/" + id + "/summary", 400, "", nil},
		{"bad id", nil, "/v1/customers/contact/nope/summary", 400, "", nil},
		{"unknown integration", nil, "/v1/integrations/nope/customers/contact/" + id + "/summary", 404, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "", func(f *fakeBackend) { f.err = tc.err })
			resp, body := h.do(t, http.MethodGet, tc.path)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != "" {
				if diff := cmp.Diff(tc.wantBody+"\n", string(body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}
