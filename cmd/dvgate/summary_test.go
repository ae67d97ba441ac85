package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/google/go-cmp/cmp"
)

// contoso is Contoso Pharmaceuticals of the demo seed: a GBP account with
// orders in GBP, USD and EUR (one canceled, one active).
const contoso = "a02d49e0-2b3d-5151-8267-0ce42f01c3f8"

// The summary through dvgate serve's own wiring: the config file's summary
// settings, the gateway's $apply on the simulator, the cache, the HTTP API
// and its OpenAPI document (every answer is checked against it).
func TestSummaryEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "invoiced"}, integ{name: "family"})
	e.setIntegration("invoiced", map[string]any{"summaryStates": []int{4}})
	e.setIntegration("family", map[string]any{"summaryIncludesContacts": true})
	e.start()

	type summary struct {
		Summary struct {
			Customer   map[string]string
			Orders     map[string]any
			TotalSpent map[string]string
			Stale      bool
		}
	}
	get := func(path, wantCache string) summary {
		t.Helper()
		r := e.do("GET", path)
		// On a loaded machine the computation may outlast the summary's 2 s
		// wait: asking again joins it (no sleep: the server waits for it).
		for i := 0; i < 10 && r.status == 202; i++ {
			r = e.do("GET", path)
		}
		must(t, r, 200)
		if got := r.header.Get("X-Cache"); got != wantCache && (wantCache != "miss" || got != "hit") {
			t.Errorf("%s: X-Cache %q, want %q", path, got, wantCache)
		}
		var s summary
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := get("/v1/customers/account/"+contoso+"/summary", "miss")
	want := map[string]string{"amount": "24154.9183", "currency": "USD", "formatted": "$24,154.92"}
	if diff := cmp.Diff(want, s.Summary.TotalSpent); diff != "" || s.Summary.Customer["name"] != "Contoso Pharmaceuticals" ||
		s.Summary.Orders["count"] != 4.0 || s.Summary.Orders["open"] != 1.0 || s.Summary.Stale {
		t.Errorf("summary %+v\ntotal (-want +got):\n%s", s.Summary, diff)
	}
	get("/v1/customers/account/"+contoso+"/summary", "hit")

	// Only invoiced orders: none of Contoso's.
	s = get("/v1/integrations/invoiced/customers/account/"+contoso+"/summary", "miss")
	if s.Summary.Orders["count"] != 0.0 || s.Summary.TotalSpent["amount"] != "0.00" || s.Summary.Orders["first"] != nil {
		t.Errorf("invoiced only: %+v", s.Summary)
	}
	// With its contacts' orders: more.
	s = get("/v1/integrations/family/customers/account/"+contoso+"/summary", "miss")
	if n, _ := s.Summary.Orders["count"].(float64); n <= 4 {
		t.Errorf("with contacts: %+v", s.Summary)
	}
}

// A cold summary that Dataverse is slow to compute answers 202 with
// Retry-After after the summary's 2 s wait, and a customer lookup made while
// it is computed is not held up by it: the simulator holds the summary's
// request far longer than the API's request timeout, so a lookup that
// waited for it would answer 504. (Generous bounds: the machine is shared.)
func TestSummaryPendingDoesNotDelayLookups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.requestTimeout = 10 * time.Second
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+fabrikam), 200) // signs in

	const latency = 60 * time.Second
	e.sim.InjectFault(dataversetest.Fault{Path: webOrders, Latency: latency, Count: 1})
	start := time.Now()
	r := must(t, e.do("GET", "/v1/customers/contact/b46d4f35-6f57-5fbb-b866-32977a8faa40/summary"), 202)
	cold := time.Since(start)
	if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), `"pending":true`) {
		t.Errorf("pending answer: %v %s", r.header, r.body)
	}
	// The $apply is still held by the simulator: a cold customer lookup
	// answers now.
	start = time.Now()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	lookup := time.Since(start)
	t.Logf("cold summary answered 202 after %v; customer lookup meanwhile %v", cold.Round(time.Millisecond), lookup.Round(time.Millisecond))
	if cold > latency/2 || lookup > latency/2 {
		t.Errorf("the customer lookup took %v: it waited for the summary", lookup)
	}
}
