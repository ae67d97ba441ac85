package mcp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestHTTPHandler: the streamable HTTP handler answers a client of the SDK
// (tools/list and a call), without sessions, in JSON.
func TestHTTPHandler(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	srv := httptest.NewServer(NewHTTPHandler(HTTPOptions{Options: Options{Registry: e.reg}}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: srv.Client()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 6 {
		t.Fatalf("tools/list: %v, %v", tools, err)
	}
	got := result[GetOrderOut](t, call(t, cs, "get_order", map[string]any{"order": alexOrder, "email": alexEmail}))
	if !got.Found || got.Order.Total.Amount != "5178.96" {
		t.Errorf("get_order: %+v", got)
	}
	if res := call(t, cs, "get_order", map[string]any{}); !res.IsError {
		t.Errorf("bad input: %+v, want a tool error", res)
	}

	// A plain JSON-RPC initialize (an older client) gets JSON back and no
	// session id (stateless).
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.Header.Get("Mcp-Session-Id") != "" || !strings.Contains(string(body), `"serverInfo"`) {
		t.Errorf("initialize: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}
