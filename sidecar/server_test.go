package sidecar

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

const testConfig = `{"integrations": {
  "default": {"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
    "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "clientSecret": {"file": "secret"}},
  "eu": {"url": "https://fabrikam.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
    "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "clientSecret": {"env": "EU_SECRET"}, "customerLookup": "accounts"}}}`

type harness struct {
	files *memFiles
	conn  *fakeConnector
	reg   *integration.Registry
	srv   *handler
	ts    *httptest.Server
}

func newHarness(t *testing.T, token string, setup func(*fakeBackend)) *harness {
	t.Helper()
	h := &harness{files: &memFiles{}, conn: &fakeConnector{setup: setup}}
	h.files.set("/etc/dvgate/config.json", testConfig)
	h.files.set("/etc/dvgate/secret", "s3cret\n")
	env := map[string]string{"EU_SECRET": "eu-secret"}
	promReg := prometheus.NewRegistry()
	m, err := newMetrics(promReg)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := integration.NewMetrics(promReg)
	if err != nil {
		t.Fatal(err)
	}
	h.reg, err = integration.NewRegistry(integration.RegistryConfig{Connector: h.conn, Metrics: rm,
		Source: integration.Source{Path: "/etc/dvgate/config.json", ReadFile: h.files.read, Getenv: func(k string) string { return env[k] }}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv, err = newHandler(handlerConfig{Registry: h.reg, Metrics: m, Gatherer: promReg, APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	h.ts = httptest.NewServer(h.srv)
	t.Cleanup(func() { h.ts.Close(); h.reg.Close() })
	return h
}

func (h *harness) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("body mismatch (-want +got):\n%s", d)
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	tests := []struct {
		name, method, path string
		status             int
		cache, age         string
		body               string
	}{
		{"customer", "GET", "/v1/customers?email=alex.wu@example.com", 200, "hit", "42",
			`{"customer":{"type":"contact","id":"c1","name":"Alex Wu","email":"alex.wu@example.com","phone":"555-0100","account":{"type":"account","id":"a1","name":"Fabrikam"}}}`},
		{"customer mode override", "GET", "/v1/customers?email=x@y.example&mode=accounts", 200, "miss", "0",
			`{"customer":{"type":"account","id":"a1","name":"Fabrikam","email":"x@y.example"}}`},
		{"named integration", "GET", "/v1/integrations/eu/customers?email=x@y.example&mode=accounts", 200, "miss", "0",
			`{"customer":{"type":"account","id":"a1","name":"Fabrikam","email":"x@y.example"}}`},
		{"order", "GET", "/v1/orders/ORD-01001-B2K9P7", 200, "stale", "90",
			`{"order":{"id":"o1","number":"ORD-01001-B2K9P7","name":"Order","status":"Active / New","state":{"value":0,"label":"Active"},"statusReason":{"value":1,"label":"New"},"total":{"amount":"1234.56","currency":"USD","formatted":"$1,234.56"},"requestedDeliveryBy":null,"customer":null,"lines":[{"number":1,"product":{"id":"p1","name":"Widget","sku":"W-1"},"description":"","writeIn":false,"quantity":"2","unitPrice":"10.00","amount":"20.00"}],"trackingNumber":null}}`},
		{"recent orders empty", "GET", "/v1/customers/contact/7f1b8c3e-0000-4000-8000-000000000001/orders?limit=5", 200, "miss", "0", `{"orders":[]}`},
		{"refunds", "GET", "/v1/integrations/eu/refunds?order=ORD-1", 200, "", "", `{"refunds":[],"source":"none"}`},
		{"test", "POST", "/v1/test", 200, "", "", `{"ok":true,"organizationId":"org","userId":"user","businessUnitId":"bu"}`},
		{"missing email", "GET", "/v1/customers", 400, "", "", `{"error":{"code":"invalid_input","message":"The query parameter \"email\" is required."}}`},
		{"bad mode", "GET", "/v1/customers?email=a@b.c&mode=all", 400, "", "", `{"error":{"code":"invalid_input","message":"The mode \"all\" is not one of both, contacts, accounts."}}`},
		{"bad limit", "GET", "/v1/customers/account/7f1b8c3e-0000-4000-8000-000000000001/orders?limit=500", 400, "", "", `{"error":{"code":"invalid_input","message":"The limit 500 is not between 1 and 50."}}`},
		{"bad type", "GET", "/v1/customers/lead/7f1b8c3e-0000-4000-8000-000000000001/orders", 400, "", "", `{"error":{"code":"invalid_input","message":"The customer type \"lead\" is not contact or account."}}`},
		{"backend says invalid", "GET", "/v1/customers?email=nope", 400, "", "", `{"error":{"code":"invalid_input","message":"The email \"nope\" is not an email address."}}`},
		{"not found", "GET", "/v1/customers?email=nobody@example.com", 404, "", "", `{"error":{"code":"not_found","message":"No contact or account has this email address."}}`},
		{"unknown integration", "GET", "/v1/integrations/us/orders/X", 404, "", "", `{"error":{"code":"not_found","message":"No integration named \"us\" is configured."}}`},
		{"no such path", "GET", "/v2/x", 404, "", "", `{"error":{"code":"not_found","message":"No such endpoint: GET /v2/x; see /openapi.json."}}`},
		{"healthz", "GET", "/healthz", 200, "", "", `{"status":"ok"}`},
		{"readyz before check", "GET", "/readyz", 503, "", "", `{"ready":false,"integrations":[{"name":"default","ready":false,"reason":"not checked yet"},{"name":"eu","ready":false,"reason":"not checked yet"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := h.do(t, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			jsonEq(t, body, tc.body)
			if got := resp.Header.Get("X-Cache"); got != tc.cache {
				t.Errorf("X-Cache %q, want %q", got, tc.cache)
			}
			if got := resp.Header.Get("Age"); got != tc.age {
				t.Errorf("Age %q, want %q", got, tc.age)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
}

// TestErrorMapping is the HTTP API's status table: every domain code has
// a status and is a member of the API's code enum, and an integration
// error is answered with its status, Retry-After and document.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	for _, c := range integration.Codes {
		if _, ok := statusOf[c]; !ok || !httpapi.ErrorCode(c).Valid() {
			t.Errorf("code %q: status table has it %v, API enum has it %v", c, ok, httpapi.ErrorCode(c).Valid())
		}
	}
	tests := []struct {
		err        *integration.Error
		status     int
		retryAfter string
		body       string
	}{
		{&integration.Error{Code: integration.CodeThrottled, Message: "Dataverse is throttling; retry later.", DataverseCode: "0x80072322", RetryAfter: 1500 * time.Millisecond},
			503, "2", `{"error":{"code":"throttled","message":"Dataverse is throttling; retry later.","dataverseCode":"0x80072322","retryAfterSeconds":2}}`},
		{&integration.Error{Code: integration.CodeBusy, Message: "The request budget is spent.", RetryAfter: 3 * time.Second},
			503, "3", `{"error":{"code":"busy","message":"The request budget is spent.","retryAfterSeconds":3}}`},
		{&integration.Error{Code: integration.CodePermission, Message: "Give the application user read access.", DataverseCode: "0x80040220"},
			502, "", `{"error":{"code":"permission","message":"Give the application user read access.","dataverseCode":"0x80040220"}}`},
		{&integration.Error{Code: integration.CodeConfig, Message: "Fix the column."},
			502, "", `{"error":{"code":"config","message":"Fix the column."}}`},
		{&integration.Error{Code: integration.CodeTimeout, Message: "Dataverse did not answer in time."},
			504, "", `{"error":{"code":"timeout","message":"Dataverse did not answer in time."}}`},
		{&integration.Error{Code: integration.CodeNotFound, Message: "No sales order has this number or id."},
			404, "", `{"error":{"code":"not_found","message":"No sales order has this number or id."}}`},
	}
	for _, tc := range tests {
		t.Run(string(tc.err.Code), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "", func(b *fakeBackend) { b.err = tc.err })
			resp, body := h.do(t, "GET", "/v1/orders/ORD-1")
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Errorf("status %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retryAfter)
			}
			jsonEq(t, body, tc.body)
		})
	}
}

func TestAPIToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "tok-123", nil)
	for _, tc := range []struct {
		path, auth string
		status     int
	}{
		{"/v1/refunds?order=X", "", 401},
		{"/v1/refunds?order=X", "Bearer wrong", 401},
		{"/v1/refunds?order=X", "Bearer tok-1234", 401},
		{"/v1/refunds?order=X", "Basic tok-123", 401},
		{"/v1/refunds?order=X", "Bearer tok-123", 200},
		{"/metrics", "", 401},
		{"/openapi.json", "Bearer tok-123", 200},
		{"/healthz", "", 200},
	} {
		resp, body := h.do(t, "GET", tc.path, "Authorization", tc.auth)
		if resp.StatusCode != tc.status {
			t.Errorf("%s with %q: status %d, want %d: %s", tc.path, tc.auth, resp.StatusCode, tc.status, body)
		}
		if tc.status == 401 && !strings.Contains(string(body), `"code":"auth"`) {
			t.Errorf("401 body %s", body)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	resp, _ := h.do(t, "GET", "/healthz", "X-Request-Id", "abc-123")
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("echoed id %q", got)
	}
	resp, _ = h.do(t, "GET", "/healthz", "X-Request-Id", "bad id\twith spaces")
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("generated id %q", got)
	}
}

func TestMaskEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"alex.wu@example.com": "a***@example.com", "x@y": "x***@y", "noat": "***", "@example.com": "***", "é@x.fr": "é***@x.fr",
	} {
		if got := maskEmail(in); got != want {
			t.Errorf("maskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenAPIDocumentValid(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
}
