package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// runMCP runs m (dvgate mcp, parsed) in-process on pipes and returns a
// client session on them; closing the session ends Run, whose error the
// returned function waits for.
func runMCP(t *testing.T, m *Main) (*sdk.ClientSession, func() error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	m.Stdin, m.Stdout = inR, outW
	done := make(chan error, 1)
	go func() {
		err := m.Run(context.Background())
		_ = outW.Close()
		done <- err
	}()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).
		Connect(t.Context(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return cs, func() error {
		_ = cs.Close()
		return <-done
	}
}

func toolText(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) (bool, string) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", tool, err)
	}
	return res.IsError, res.Content[0].(*sdk.TextContent).Text
}

// TestMCPStdio runs dvgate mcp as an agent starts it: configured by
// --config (and by --demo), the tools on stdin/stdout, until the client
// closes stdin.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	for _, demo := range []bool{false, true} {
		e := newEnv(t)
		var m *Main
		if demo {
			m = &Main{Stderr: e.stderr, Getenv: func(string) string { return "" }}
			if err := m.ParseFlags([]string{"mcp", "--demo"}); err != nil {
				t.Fatal(err)
			}
		} else {
			m = e.main("mcp")
		}
		cs, stop := runMCP(t, m)
		tools, err := cs.ListTools(t.Context(), nil)
		if err != nil || len(tools.Tools) != 6 {
			t.Fatalf("demo %v: tools/list %v %v", demo, tools, err)
		}
		if isErr, text := toolText(t, cs, "get_order", map[string]any{"order": "ORD-01001-B2K9P7", "email": "alex.wu@example.com"}); isErr ||
			!strings.Contains(text, `"found":true`) || !strings.Contains(text, `"unitPrice":"318.20"`) {
			t.Errorf("demo %v: get_order: %v %s", demo, isErr, text)
		}
		if isErr, text := toolText(t, cs, "get_order", map[string]any{"order": "ORD-01001-B2K9P7", "email": "maria.tanaka@example.com"}); isErr ||
			!strings.Contains(text, `"found":false`) {
			t.Errorf("demo %v: someone else's order: %v %s", demo, isErr, text)
		}
		if isErr, text := toolText(t, cs, "find_customer", map[string]any{"email": "not an email"}); !isErr || !strings.HasPrefix(text, "invalid_input:") {
			t.Errorf("demo %v: bad email: %v %s", demo, isErr, text)
		}
		if err := stop(); err != nil {
			t.Errorf("demo %v: Run after the client closed: %v", demo, err)
		}
	}
}

// TestServeMCP: dvgate serve mounts the MCP endpoint at /mcp.
func TestServeMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).
		Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: e.base + "/mcp", HTTPClient: e.client}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	isErr, text := toolText(t, cs, "find_customer", map[string]any{"email": "alex.wu@example.com"})
	var out struct {
		Found    bool `json:"found"`
		Customer struct{ Name string }
	}
	if err := json.Unmarshal([]byte(text), &out); isErr || err != nil || !out.Found || out.Customer.Name != "Alex Wu" {
		t.Errorf("find_customer over /mcp: %v %s", isErr, text)
	}
	if r := doReq(t, e.client, http.MethodGet, e.base+"/v1/orders/ORD-01001-B2K9P7?email=maria.tanaka@example.com"); r.status != 404 {
		t.Errorf("GET an order with another customer's email: %d %s", r.status, r.body)
	}
}
