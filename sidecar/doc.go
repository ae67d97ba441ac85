// Package sidecar is dvgate's HTTP front end: the lookup API a help-desk
// product calls (customer by email, order by number or GUID, recent orders,
// refunds, the Test button), health and readiness probes, Prometheus
// metrics and the API's own OpenAPI document, over the integrations of
// package integration.
//
// Open runs it as dvgate serve does; it is the one wiring of the server,
// used by cmd/dvgate, the benchmarks and the fleet benchmark alike. The
// HTTP layer is generated from internal/httpapi/openapi.yaml by
// oapi-codegen (strict std-http server), and /openapi.json serves the
// document the code was generated from, so the contract and the handlers
// cannot drift. Domain error codes (integration.Code) become HTTP statuses
// through this package's own table (statusOf).
//
// Logs are slog lines with the request id, integration, lookup kind and
// cache outcome. Email addresses are masked (a***@example.com); secrets and
// tokens are never logged.
package sidecar
