package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// compares flattens an Or tree of comparisons; ok is false if the filter
// holds anything else (an And, a function, a Not: injected structure).
func compares(e dataversetest.Expr) (out []dataversetest.Compare, ok bool) {
	switch x := e.(type) {
	case dataversetest.Compare:
		return []dataversetest.Compare{x}, true
	case dataversetest.Or:
		l, lok := compares(x.Left)
		r, rok := compares(x.Right)
		return append(l, r...), lok && rok
	}
	return nil, false
}

// TestHostileInput sends hostile emails and order references through the
// HTTP API. Each is either refused with a 400 that says what is wrong, and
// then nothing reaches Dataverse, or matched as exactly one literal: the
// $filter the simulator received parses to exactly the intended
// comparisons with the input (normalized) as their value.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	r.start()
	long := strings.Repeat("a", 10<<10)
	const inject = "x' or emailaddress1 ne 'y"
	tests := []struct {
		name   string
		path   string
		status int    // 0: 200 or 404 (a lookup happened)
		msg    string // part of the 400 message
		value  string // the literal Dataverse must see ("" with 400)
		key    string // a key lookup salesorders(<key>) instead of a filter
	}{
		{name: "email empty", path: "/v1/customers?email=", status: 400, msg: "email"},
		{name: "email missing", path: "/v1/customers", status: 400, msg: "email"},
		{name: "email blank", path: "/v1/customers?email=%20%20", status: 400, msg: "empty"},
		{name: "email 10 KB", path: "/v1/customers?email=" + long + "@example.com", status: 400, msg: "at most 100"},
		{name: "email OData injection", path: "/v1/customers?email=" + url.QueryEscape(inject), status: 400, msg: "not an email"},
		{name: "email injection in quoted local part", path: "/v1/customers?email=" + url.QueryEscape(`"x' or 1 eq 1 or 'a"@example.com`), status: -1,
			value: `"x' or 1 eq 1 or 'a"@example.com`},
		{name: "email quote", path: "/v1/customers?email=" + url.QueryEscape("o'brien@example.com"), value: "o'brien@example.com"},
		{name: "email two quotes", path: "/v1/customers?email=" + url.QueryEscape("o''b'@example.com"), value: "o''b'@example.com"},
		{name: "email percent", path: "/v1/customers?email=" + url.QueryEscape("100%off@example.com"), value: "100%off@example.com"},
		{name: "email percent-encoded quote", path: "/v1/customers?email=" + url.QueryEscape("a%27b@example.com"), value: "a%27b@example.com"},
		{name: "email plus", path: "/v1/customers?email=" + url.QueryEscape("alex+orders@example.com"), value: "alex+orders@example.com"},
		{name: "email raw plus (decoded as space)", path: "/v1/customers?email=alex+orders@example.com", status: 400, msg: "email"},
		{name: "email hash", path: "/v1/customers?email=" + url.QueryEscape("a#b@example.com"), value: "a#b@example.com"},
		{name: "email ampersand", path: "/v1/customers?email=" + url.QueryEscape("a&$top=1@example.com"), value: "a&$top=1@example.com"},
		{name: "email NUL", path: "/v1/customers?email=a%00b@example.com", status: 400, msg: "control"},
		{name: "email newline", path: "/v1/customers?email=a%0Ab@example.com", status: 400, msg: "control"},
		{name: "email invalid UTF-8", path: "/v1/customers?email=a%FFb@example.com", status: 400, msg: "UTF-8"},
		{name: "email Unicode", path: "/v1/customers?email=" + url.QueryEscape("Zoë.Ångström@exämple.com"), value: "zoë.ångström@exämple.com"},
		{name: "email upper case", path: "/v1/customers?email=" + url.QueryEscape("  ALEX.WU@EXAMPLE.COM "), value: alex},
		{name: "email display name", path: "/v1/customers?email=" + url.QueryEscape("Alex <alex.wu@example.com>"), status: 400, msg: "not an email"},
		{name: "email two addresses", path: "/v1/customers?email=" + url.QueryEscape("a@x.com,b@y.com"), status: 400, msg: "not an email"},

		{name: "ref braces, upper case", path: "/v1/orders/{4FAF1F34-F06D-4E51-80D0-00155DB07CB1}", key: "4faf1f34-f06d-4e51-80d0-00155db07cb1"},
		{name: "ref lower case", path: "/v1/orders/" + strings.ToLower(orderNum), value: strings.ToLower(orderNum)},
		{name: "ref quote injection", path: "/v1/orders/" + url.PathEscape("ORD' or ordernumber ne 'x"), value: "ord' or ordernumber ne 'x"},
		{name: "ref encoded slash", path: "/v1/orders/a%2Fb", value: "a/b"},
		{name: "ref dot-dot encoded", path: "/v1/orders/%2E%2E", status: -1, value: ".."},
		{name: "ref percent-encoding", path: "/v1/orders/%2527", value: "%27"},
		{name: "ref 10 KB", path: "/v1/orders/" + long, status: 400, msg: "at most 100"},
		{name: "ref control character", path: "/v1/orders/a%07b", status: 400, msg: "control"},
		{name: "ref blank", path: "/v1/orders/%20", status: 400, msg: "empty"},
		{name: "refunds ref injection", path: "/v1/refunds?order=" + url.QueryEscape(long), status: 400, msg: "at most 100"},
		{name: "recent orders id injection", path: "/v1/customers/contact/" + url.PathEscape("x' or 1 eq 1") + "/orders", status: 400, msg: "id"},
		{name: "recent orders limit huge", path: "/v1/customers/contact/4faf1f34-f06d-4e51-80d0-00155db07cb1/orders?limit=99999999999999999999", status: 400, msg: "limit"},
		{name: "mode unknown", path: "/v1/customers?email=" + alex + "&mode=" + url.QueryEscape("contacts' or '1"), status: 400, msg: "mode"},
	}
	for _, tc := range tests {
		before := len(r.sim.Requests())
		get := r.get
		if strings.Contains(tc.path, "%2F") {
			get = func(t *testing.T, method, path string, _ ...string) (result, time.Duration) {
				return r.getRaw(t, method, path)
			}
		}
		res, wall := get(t, "GET", tc.path)
		reqs := r.sim.Requests()[before:]
		status := res.status
		got := fmt.Sprint(status)
		switch {
		case tc.status == 400 || (tc.status == -1 && status == 400):
			code, msg, _ := errorOf(t, res)
			got += " " + code
			if status != 400 || code != "invalid_input" || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: %d %s %q, want 400 invalid_input mentioning %q", tc.name, status, code, msg, tc.msg)
			}
			if len(reqs) != 0 {
				t.Errorf("%s: invalid input caused %d Dataverse requests", tc.name, len(reqs))
			}
		default:
			if status != 200 && status != 404 {
				t.Errorf("%s: status %d, want 200 or 404: %s", tc.name, status, res.body)
			}
			if len(reqs) == 0 {
				t.Errorf("%s: no Dataverse request", tc.name)
			}
			for _, q := range reqs {
				if tc.key != "" {
					if q.Path != webAPI+"salesorders("+tc.key+")" || q.ParsedFilter != nil {
						t.Errorf("%s: request %s ?%s, want the key lookup salesorders(%s)", tc.name, q.Path, q.RawQuery, tc.key)
					}
					continue
				}
				expr, _ := q.ParsedFilter.(dataversetest.Expr)
				cs, ok := compares(expr)
				cols := []string{}
				for _, c := range cs {
					cols = append(cols, c.Column)
					if c.Op != "eq" || c.Value != tc.value {
						ok = false
					}
				}
				want := []string{"ordernumber"}
				if strings.HasPrefix(tc.path, "/v1/customers") {
					want = []string{"emailaddress1", "emailaddress2", "emailaddress3"}
				}
				slices.Sort(cols)
				if !ok || !slices.Equal(cols, want) {
					t.Errorf("%s: Dataverse got $filter=%s (%#v), want %v eq %q", tc.name, q.Filter, q.ParsedFilter, want, tc.value)
				}
			}
		}
		if wall > 5*time.Second {
			t.Errorf("%s took %v", tc.name, wall)
		}
		up := fmt.Sprintf("%d Dataverse", len(reqs))
		report(t, reportRow{Area: "input", Case: tc.name, Expect: got, Upstream: up, Wall: wall.Round(time.Millisecond).String()})
	}
	r.checkHygiene(t)
}

// TestOversizedRequests: headers, URLs and bodies beyond the limits are
// refused by the server before any handler runs; nothing reaches
// Dataverse and nothing hangs.
func TestOversizedRequests(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	r.start()
	big := strings.Repeat("x", 20<<10)
	tests := []struct {
		name   string
		method string
		path   string
		header string
		body   int
		status int
	}{
		{name: "header 20 KB", method: "GET", path: "/v1/orders/" + orderNum, header: big, status: 431},
		{name: "URL 20 KB", method: "GET", path: "/v1/orders/" + big, status: 431},
		{name: "body 1 MB on POST /v1/test", method: "POST", path: "/v1/test", body: 1 << 20, status: 200},
		{name: "body 1 MB on GET", method: "GET", path: "/v1/refunds?order=" + orderNum, body: 1 << 20, status: 200},
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range tests {
		before := r.counts()
		req, err := http.NewRequestWithContext(t.Context(), tc.method, r.base+tc.path, strings.NewReader(strings.Repeat("y", tc.body)))
		if err != nil {
			t.Fatal(err)
		}
		if tc.header != "" {
			req.Header.Set("X-Big", tc.header)
		}
		start := time.Now()
		resp, err := c.Do(req)
		wall := time.Since(start)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		web := r.counts().web - before.web
		if tc.status >= 400 && web != 0 {
			t.Errorf("%s: %d Dataverse requests", tc.name, web)
		}
		note := ""
		if tc.body > 0 {
			note = "the body is ignored: no operation reads one (64 KiB cap if one did)"
		}
		report(t, reportRow{Area: "access", Case: tc.name, Expect: fmt.Sprint(resp.StatusCode),
			Upstream: fmt.Sprintf("%d Dataverse", web), Wall: wall.Round(time.Millisecond).String(), Note: note})
	}
}
