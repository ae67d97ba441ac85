package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/google/go-cmp/cmp"
)

const (
	alex      = "alex.wu@example.com"
	fabrikam  = "orders@fabrikam.example"
	orderNum  = "ORD-01001-B2K9P7"
	webAPI    = "/api/data/v9.2/"
	webOrders = webAPI + "salesorders"
)

func TestEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu", mode: "accounts"})
	e.start()

	// Customer: a contact with its parent account; a miss, then a hit.
	r := must(t, e.do("GET", "/v1/customers?email="+alex, "X-Request-Id", "req-1"), 200)
	if r.header.Get("X-Cache") != "miss" || r.header.Get("X-Request-Id") != "req-1" {
		t.Errorf("first lookup: X-Cache %q, X-Request-Id %q", r.header.Get("X-Cache"), r.header.Get("X-Request-Id"))
	}
	c := r.json(t)["customer"].(map[string]any)
	acct, _ := c["account"].(map[string]any)
	if c["type"] != "contact" || c["name"] != "Alex Wu" || c["email"] != alex || acct == nil || acct["name"] == "" {
		t.Errorf("customer %v", c)
	}
	contactID := c["id"].(string)
	r = must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	if r.header.Get("X-Cache") != "hit" || r.header.Get("Age") == "" {
		t.Errorf("second lookup: X-Cache %q Age %q", r.header.Get("X-Cache"), r.header.Get("Age"))
	}

	// An account by its email; mode override; a named integration.
	for _, path := range []string{"/v1/customers?email=" + fabrikam, "/v1/customers?email=" + fabrikam + "&mode=accounts",
		"/v1/integrations/eu/customers?email=" + fabrikam} {
		c := must(t, e.do("GET", path), 200).json(t)["customer"].(map[string]any)
		if c["type"] != "account" || c["account"] != nil {
			t.Errorf("%s: %v", path, c)
		}
	}
	// The eu integration searches accounts only: a contact's email is not found there.
	if code, _, _ := errorOf(t, must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 404)); code != "not_found" {
		t.Errorf("eu contact lookup: %s", code)
	}

	// Order by number, then by its GUID.
	o := must(t, e.do("GET", "/v1/orders/"+orderNum), 200).json(t)["order"].(map[string]any)
	total := o["total"].(map[string]any)
	if o["number"] != orderNum || o["status"] != "Submitted / In Progress" || total["currency"] != "USD" || total["formatted"] != "$5,178.96" {
		t.Errorf("order %v", o)
	}
	if _, isString := total["amount"].(string); !isString {
		t.Errorf("total.amount is %T, want a decimal string", total["amount"])
	}
	// The lines as a help-desk agent reads them: sorted, with product names and
	// SKUs, the write-in's description, and amounts with two decimals.
	var lines []string
	for _, l := range o["lines"].([]any) {
		l := l.(map[string]any)
		what := fmt.Sprint(l["description"])
		if p, ok := l["product"].(map[string]any); ok {
			what = fmt.Sprint(p["name"], " (", p["sku"], ")")
		}
		lines = append(lines, fmt.Sprint(l["number"], " ", what, " writeIn=", l["writeIn"], " ", l["quantity"], " x ", l["unitPrice"], " = ", l["amount"]))
	}
	wantLines := []string{
		"1 Pro Gasket (SKU-GAS-104) writeIn=false 12 x 242.12 = 2905.44",
		"2 Mini Gasket (SKU-GAS-105) writeIn=false 6 x 318.20 = 1909.20",
		"3 Custom engraving writeIn=true 4 x 91.08 = 364.32",
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("order lines (-want +got):\n%s", diff)
	}
	if total["amount"] != "5178.96" {
		t.Errorf("total.amount = %v, want 5178.96", total["amount"])
	}
	byID := must(t, e.do("GET", "/v1/orders/"+o["id"].(string)), 200).json(t)["order"].(map[string]any)
	if byID["number"] != orderNum {
		t.Errorf("order by GUID: %v", byID["number"])
	}

	// Recent orders of the contact include that order.
	list := must(t, e.do("GET", "/v1/customers/contact/"+contactID+"/orders?limit=5"), 200).json(t)["orders"].([]any)
	found := false
	for _, s := range list {
		found = found || s.(map[string]any)["number"] == orderNum
	}
	if !found {
		t.Errorf("recent orders %v lack %s", list, orderNum)
	}
	must(t, e.do("GET", "/v1/integrations/eu/customers/contact/"+contactID+"/orders"), 200)

	if got := string(must(t, e.do("GET", "/v1/refunds?order="+orderNum), 200).body); strings.TrimSpace(got) != `{"refunds":[],"source":"none"}` {
		t.Errorf("refunds %s", got)
	}
	must(t, e.do("GET", "/v1/integrations/eu/refunds?order="+orderNum), 200)

	orgID, _, _ := e.sim.WhoAmI()
	for _, path := range []string{"/v1/test", "/v1/integrations/eu/test"} {
		res := must(t, e.do("POST", path), 200).json(t)
		if res["ok"] != true || res["organizationId"] != orgID {
			t.Errorf("%s: %v", path, res)
		}
	}
	code, msg, _ := errorOf(t, must(t, e.do("GET", "/v1/integrations/us/orders/"+orderNum), 404))
	if code != "not_found" || !strings.Contains(msg, `"us"`) {
		t.Errorf("unknown integration: %s %s", code, msg)
	}

	must(t, e.do("GET", "/healthz"), 200)
	if rd := must(t, e.do("GET", "/readyz"), 200).json(t); rd["ready"] != true {
		t.Errorf("readyz %v", rd)
	}
	var doc struct{ Paths map[string]any }
	if err := json.Unmarshal(must(t, e.do("GET", "/openapi.json"), 200).body, &doc); err != nil || doc.Paths["/v1/orders/{ref}"] == nil {
		t.Errorf("openapi.json: %v, %d paths", err, len(doc.Paths))
	}
	metrics := string(must(t, e.do("GET", "/metrics"), 200).body)
	for _, want := range []string{
		`dvgate_http_requests_total{code="200",operation="GetCustomer"} 4`,
		`dvgate_lookups_total{integration="default",kind="customer",outcome="hit"}`,
		`dvgate_integration_ready{integration="eu"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The access log masks emails and never shows the secret.
	logs := e.stderr.String()
	if !strings.Contains(logs, `"email":"a***@example.com"`) || strings.Contains(logs, alex) || strings.Contains(logs, e.sim.ClientSecret()) {
		t.Errorf("log leaks or lacks the masked email:\n%s", logs)
	}
}

// TestErrorCodes drives every error code through the real wiring with the
// simulator's org states and fault injection.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		integ      []integ
		vars       map[string]string
		setup      func(*dataversetest.Server)
		method     string
		path       string
		status     int
		code       string
		dvCode     string
		msg        string // part of the message
		retryAfter int
		timeout    time.Duration
		after      func(*testing.T, *env)
	}{
		{name: "invalid_input", path: "/v1/customers?email=not-an-email", status: 400, code: "invalid_input", msg: "email"},
		{name: "invalid_input limit", path: "/v1/customers/account/00000000-0000-0000-0000-000000000001/orders?limit=0", status: 400, code: "invalid_input"},
		{name: "invalid_input uuid", path: "/v1/customers/account/nope/orders", status: 400, code: "invalid_input", msg: `"id"`},
		{name: "not_found customer", path: "/v1/customers?email=nobody@example.com", status: 404, code: "not_found"},
		{name: "not_found order", path: "/v1/orders/ORD-99999-XXXXXX", status: 404, code: "not_found"},
		{name: "auth wrong secret", integ: []integ{{name: "default"}, {name: "bad", secretEnv: "BAD_SECRET"}},
			vars: map[string]string{"BAD_SECRET": "wrong"}, method: "POST", path: "/v1/integrations/bad/test",
			status: 502, code: "auth", dvCode: "AADSTS7000215", msg: "secret"},
		{name: "auth unknown app", integ: []integ{{name: "default", clientID: "11111111-2222-4333-8444-555555555555"}},
			method: "POST", path: "/v1/test", status: 502, code: "auth", dvCode: "AADSTS700016"},
		{name: "permission privilege", setup: func(s *dataversetest.Server) { s.DenyRead("salesorder") },
			path: "/v1/orders/" + orderNum, status: 502, code: "permission", dvCode: "0x80040220"},
		{name: "permission no application user", setup: func(s *dataversetest.Server) { s.SetApplicationUser(false) },
			path: "/v1/customers?email=" + alex, status: 502, code: "permission", dvCode: "0x80072560"},
		{name: "config", setup: func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Path: webAPI + "WhoAmI", Status: 404})
		},
			method: "POST", path: "/v1/test", status: 502, code: "config", dvCode: "0x80040216", msg: "organization URL"},
		{name: "throttled", setup: func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Path: webOrders, Status: 429, RetryAfter: 300 * time.Second})
		}, path: "/v1/orders/" + orderNum, status: 503, code: "throttled", dvCode: "0x80072322", retryAfter: 300,
			after: func(t *testing.T, e *env) {
				// Service protection locks the integration out: not ready.
				rd := must(t, e.do("GET", "/readyz"), 503).json(t)
				in := rd["integrations"].([]any)[0].(map[string]any)
				if in["ready"] != false || in["throttledUntil"] == nil || !strings.Contains(in["reason"].(string), "service protection") {
					t.Errorf("readyz while throttled: %v", rd)
				}
			}},
		{name: "unavailable", setup: func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Path: webOrders, Status: 503, RetryAfter: 300 * time.Second})
		}, path: "/v1/orders/" + orderNum, status: 503, code: "unavailable", dvCode: "0x80040216"},
		{name: "timeout", setup: func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Path: webOrders, Latency: time.Second})
		}, path: "/v1/orders/" + orderNum, status: 504, code: "timeout", timeout: 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.integ...)
			for k, v := range tc.vars {
				e.vars[k] = v
			}
			if tc.setup != nil {
				tc.setup(e.sim)
			}
			e.requestTimeout = tc.timeout
			e.start()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := must(t, e.do(method, tc.path), tc.status)
			code, msg, dv := errorOf(t, r)
			if code != tc.code || dv != tc.dvCode || !strings.Contains(msg, tc.msg) || msg == "" {
				t.Errorf("got code %q dataverseCode %q message %q; want %q %q containing %q", code, dv, msg, tc.code, tc.dvCode, tc.msg)
			}
			if got, _ := strconv.Atoi(r.header.Get("Retry-After")); tc.retryAfter > 0 && (got < tc.retryAfter-5 || got > tc.retryAfter) {
				t.Errorf("Retry-After %d, want about %d", got, tc.retryAfter)
			}
			if tc.after != nil {
				tc.after(t, e)
			}
		})
	}
}
