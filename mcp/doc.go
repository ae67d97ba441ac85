// Package mcp serves dvgate's lookups as Model Context Protocol tools, for
// a help desk's AI agent: find_customer, get_order, list_recent_orders,
// list_refunds and check_connection, each one call per question, answered
// from the integration's cache or with at most one Dataverse round trip
// (get_order scoped by email to an account's contact costs a cached
// customer lookup more).
//
// It sits on the integration layer (integration.Registry), not on the HTTP
// API: the same backends, caches and error codes, with MCP's own shapes.
// Every tool is read-only, has typed input and output (the SDK publishes
// both schemas, validates the arguments and the result, and returns the
// result as structured content and as JSON text), and says how fresh its
// answer is (asOf, stale). Amounts are decimal strings with at least two
// places and the ISO currency code. Failures are tool errors (isError)
// whose text is the code and the remedy; a record that does not exist is a
// normal result with found:false and a message.
//
// NewServer builds a server for stdio or any SDK transport; NewHTTPHandler
// serves streamable HTTP (stateless, JSON responses) for the sidecar.
package mcp
