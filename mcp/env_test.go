package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/integration"
)

// The demo seed's records the tests use (testdata/seed/demo.json).
const (
	alexEmail   = "alex.wu@example.com"
	alexID      = "b46d4f35-6f57-5fbb-b866-32977a8faa40"
	alexOrder   = "ORD-01001-B2K9P7" // Alex Wu's (a contact of Adventure Works Cycles)
	alexOrderID = "1405763c-93c3-53b5-9cd3-c3c66513c4ca"
	awOrder     = "ORD-01008-95UHJ6" // Adventure Works Cycles' own
	awEmail     = "info@adventure.example"
	litOrder    = "ORD-01004-77VQAL" // Litware, Inc.'s
	litEmail    = "billing@litware.example"
	mariaEmail  = "maria.tanaka@example.com" // a contact of Litware
)

// simEnv is a simulator, the integrations over it, and an MCP client
// session connected in memory to a server over them.
type simEnv struct {
	sim *dataversetest.Server
	reg *integration.Registry
	cs  *sdk.ClientSession
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	sim, err := dataversetest.NewServer(dataversetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	reg, err := integration.Open(integration.Options{HTTPClient: sim.Client(),
		Source: integration.Source{Getenv: integration.MapEnv(sim.Env(), nil), ReadFile: integration.NoFiles}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &simEnv{sim: sim, reg: reg, cs: connect(t, NewServer(Options{Registry: reg}))}
}

// connect connects a client to s over in-memory transports; the sessions
// close when the test ends.
func connect(t *testing.T, s *sdk.Server) *sdk.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// call calls a tool; a protocol error fails the test.
func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error: %v", tool, args, err)
	}
	return res
}

// result decodes a successful call's structured content into out and
// checks that the text content is the same JSON.
func result[Out any](t *testing.T, res *sdk.CallToolResult) Out {
	t.Helper()
	var out Out
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	var fromText Out
	if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil {
		t.Fatalf("text content is not the result's JSON: %v", err)
	}
	return out
}

func text(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
