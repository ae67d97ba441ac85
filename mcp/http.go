package mcp

import (
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPOptions configure NewHTTPHandler.
type HTTPOptions struct {
	// Options are the tools' (Integration and Fixed are set per request,
	// see NewHTTPHandler).
	Options
	// Authenticated says that every request was authenticated (the
	// sidecar's bearer token) before it reaches the handler: a page in a
	// browser cannot send that token, so the SDK's DNS-rebinding
	// protection (a request to a loopback address must name a loopback
	// Host) is turned off, and a reverse proxy may forward any Host.
	Authenticated bool
}

// NewHTTPHandler serves the tools over MCP's streamable HTTP transport,
// stateless (no session: any replica answers any request) with JSON
// responses rather than event streams. A request whose path has the value
// "integration" (a ServeMux pattern /v1/integrations/{integration}/mcp)
// gets tools fixed to that integration; any other gets tools whose
// integration argument chooses (default Options.Integration). Each request
// gets its own server, over one schema cache. Authentication is the
// caller's: wrap the handler. Safe for concurrent use.
func NewHTTPHandler(o HTTPOptions) http.Handler {
	if o.SchemaCache == nil {
		o.SchemaCache = sdk.NewSchemaCache()
	}
	if o.schemas == nil {
		var err error
		if o.schemas, err = newSchemas(); err != nil {
			panic(err) // as NewServer's
		}
	}
	return sdk.NewStreamableHTTPHandler(func(r *http.Request) *sdk.Server {
		so := o.Options
		if name := r.PathValue("integration"); name != "" {
			so.Integration, so.Fixed = name, true
		}
		return NewServer(so)
	}, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true, DisableLocalhostProtection: o.Authenticated,
		Logger: o.Logger})
}
