package mcp

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/integration"
)

// BenchmarkGetOrder measures one get_order tool call (with the scoping
// email) from an SDK client, in memory and over streamable HTTP (loopback),
// answered from the cache (hit) or from the simulator (miss: the clock
// moves past the order's freshness before each call). dvreq/op is the
// Dataverse requests per call.
func BenchmarkGetOrder(b *testing.B) {
	for _, transport := range []string{"inmemory", "http"} {
		for _, miss := range []bool{false, true} {
			name := transport + "/hit"
			if miss {
				name = transport + "/miss"
			}
			b.Run(name, func(b *testing.B) {
				sim, err := dataversetest.NewServer(dataversetest.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer sim.Close()
				var offset atomic.Int64
				reg, err := integration.Open(integration.Options{HTTPClient: sim.Client(),
					Clock:  func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
					Source: integration.Source{Getenv: integration.MapEnv(sim.Env(), nil), ReadFile: integration.NoFiles}})
				if err != nil {
					b.Fatal(err)
				}
				defer reg.Close()
				ctx := context.Background()
				client := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "v0"}, nil)
				var cs *sdk.ClientSession
				if transport == "http" {
					srv := httptest.NewServer(NewHTTPHandler(HTTPOptions{Options: Options{Registry: reg}}))
					defer srv.Close()
					cs, err = client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: srv.Client()}, nil)
				} else {
					st, ct := sdk.NewInMemoryTransports()
					ss, serr := NewServer(Options{Registry: reg}).Connect(ctx, st, nil)
					if serr != nil {
						b.Fatal(serr)
					}
					defer ss.Close()
					cs, err = client.Connect(ctx, ct, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer cs.Close()
				params := &sdk.CallToolParams{Name: "get_order", Arguments: map[string]any{"order": alexOrder, "email": alexEmail}}
				if _, err := cs.CallTool(ctx, params); err != nil { // sign in, fill the cache
					b.Fatal(err)
				}
				before := sim.WebAPIRequests()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if miss {
						offset.Add(int64(2 * time.Minute))
					}
					res, err := cs.CallTool(ctx, params)
					if err != nil || res.IsError {
						b.Fatal(err, res)
					}
				}
				b.ReportMetric(float64(sim.WebAPIRequests()-before)/float64(b.N), "dvreq/op")
			})
		}
	}
}
