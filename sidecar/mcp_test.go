package sidecar

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/mcp"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// simServer is the sidecar as dvgate serve runs it, on the simulator,
// with the MCP endpoint and an API token.
func simServer(t *testing.T) (*Server, *dataversetest.Server, *lockedBuffer) {
	t.Helper()
	sim, err := dataversetest.NewServer(dataversetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	s, err := Open(context.Background(), Options{Listen: "127.0.0.1:0", APIToken: mcpTestToken, Logger: log,
		Integrations: integration.Options{HTTPClient: sim.Client(),
			Source: integration.Source{Getenv: integration.MapEnv(sim.Env(), nil), ReadFile: integration.NoFiles}},
		MCP: func(reg *integration.Registry) http.Handler {
			return mcp.NewHTTPHandler(mcp.HTTPOptions{Options: mcp.Options{Registry: reg, Logger: log}, Authenticated: true})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, sim, logs
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOrderEmailScoping: GET /v1/orders/{ref}?email= answers a foreign
// order as a missing one, and an order owned by a contact costs its one
// Dataverse request whatever the email.
func TestOrderEmailScoping(t *testing.T) {
	t.Parallel()
	s, sim, _ := simServer(t)
	_, missing := get(t, s.URL()+"/v1/orders/ORD-99999-NOSUCH", mcpTestToken)
	before := sim.WebAPIRequests()
	tests := []struct {
		path   string
		status int
	}{
		{"/v1/orders/ORD-01001-B2K9P7?email=alex.wu@example.com", 200},
		{"/v1/orders/ORD-01001-B2K9P7?email=maria.tanaka@example.com", 404},
		{"/v1/integrations/default/orders/ORD-01001-B2K9P7?email=info@adventure.example", 404},
		{"/v1/integrations/default/orders/ORD-01001-B2K9P7?email=Alex.Wu@Example.com", 200},
		{"/v1/orders/ORD-01001-B2K9P7?email=not-an-email", 400},
	}
	for _, tt := range tests {
		status, body := get(t, s.URL()+tt.path, mcpTestToken)
		if status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.path, status, body, tt.status)
		}
		if status == 404 && body != missing {
			t.Errorf("%s: %s, want the missing order's answer %s", tt.path, body, missing)
		}
	}
	if n := sim.WebAPIRequests() - before; n != 1 {
		t.Errorf("%d Dataverse requests, want 1 (the order, then the cache)", n)
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPEndpoint: /mcp and /v1/integrations/{name}/mcp answer an MCP
// client behind the API token, logged and counted as operation mcp.
func TestMCPEndpoint(t *testing.T) {
	t.Parallel()
	s, _, logs := simServer(t)
	if status, body := get(t, s.URL()+"/mcp", ""); status != http.StatusUnauthorized {
		t.Errorf("without the token: %d %s", status, body)
	}
	connect := func(path string) *sdk.ClientSession {
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(t.Context(),
			&sdk.StreamableClientTransport{Endpoint: s.URL() + path, HTTPClient: &http.Client{Transport: bearer{mcpTestToken}}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	callText := func(cs *sdk.ClientSession, tool string, args map[string]any) (bool, string) {
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res.IsError, res.Content[0].(*sdk.TextContent).Text
	}
	cs := connect("/mcp")
	if isErr, text := callText(cs, "get_order", map[string]any{"order": "ORD-01001-B2K9P7", "email": "alex.wu@example.com"}); isErr ||
		!strings.Contains(text, `"amount":"5178.96"`) {
		t.Errorf("get_order: %v %s", isErr, text)
	}
	named := connect("/v1/integrations/default/mcp")
	if isErr, text := callText(named, "check_connection", nil); isErr || !strings.Contains(text, `"ok":true`) {
		t.Errorf("check_connection on the named endpoint: %v %s", isErr, text)
	}
	if isErr, text := callText(named, "check_connection", map[string]any{"integration": "eu"}); !isErr || !strings.HasPrefix(text, "invalid_input:") {
		t.Errorf("another integration on the named endpoint: %v %s", isErr, text)
	}
	if isErr, text := callText(connect("/v1/integrations/nope/mcp"), "check_connection", nil); !isErr || text != `not_found: No integration is named "nope".` {
		t.Errorf("unknown integration: %v %s", isErr, text)
	}
	if !strings.Contains(logs.String(), `"op":"mcp"`) || !strings.Contains(logs.String(), `"integration":"default"`) {
		t.Errorf("access log has no mcp line:\n%s", logs)
	}
	n, err := testutil.GatherAndCount(s.Gatherer(), "dvgate_http_requests_total")
	if err != nil || n == 0 {
		t.Fatalf("metrics: %d, %v", n, err)
	}
	mfs, _ := s.Gatherer().Gather()
	var mcpCount float64
	for _, mf := range mfs {
		if mf.GetName() != "dvgate_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == "mcp" {
					mcpCount += m.GetCounter().GetValue()
				}
			}
		}
	}
	if mcpCount < 4 { // the four tool calls, besides the handshakes
		t.Errorf("dvgate_http_requests_total{operation=mcp} = %v, want at least the four tool calls", mcpCount)
	}
}

const mcpTestToken = "mcp-test-token-0123456789abcdef-01"
