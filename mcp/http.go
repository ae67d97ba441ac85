package mcp

import (
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// NewHTTPHandler serves the tools over MCP's streamable HTTP transport,
// stateless (no session: any replica answers any request) with JSON
// responses rather than event streams. server returns the server for a
// request (see NewServer; Options.SchemaCache keeps a per-request server
// cheap), or nil for a 400. Authentication is the caller's: wrap the
// handler. DNS-rebinding protection stays on (a request to a loopback
// address must name a loopback Host).
func NewHTTPHandler(server func(*http.Request) *sdk.Server) http.Handler {
	return sdk.NewStreamableHTTPHandler(server, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}
