// Package sidecar is dvgate's HTTP server: the lookup API a help-desk product
// calls (customer by email, order by number or GUID, recent orders, refunds,
// the Test button), health and readiness probes, Prometheus metrics, the
// gateway's own OpenAPI document, configuration loading and credential
// rotation.
//
// The HTTP layer is generated from openapi.yaml by oapi-codegen (strict
// std-http server, api.gen.go), and /openapi.json serves the document the
// code was generated from, so the contract and the handlers cannot drift.
//
// Handlers reach Dataverse through a Registry of named integrations (one org
// each; bare /v1/... paths use the one named "default"). Each integration
// holds its current Backend behind an atomic pointer: a credential rotation
// validates the new credentials with WhoAmI, then swaps the pointer; requests
// already running finish on the old backend, which is closed after the last
// of them. Backends are built by a Connector; GatewayConnector builds them
// from package gateway over package dataverse, and tests can use fakes.
//
// Logs are slog JSON lines with the request id, integration, lookup kind and
// cache outcome. Email addresses are masked (a***@example.com); secrets and
// tokens are never logged.
package sidecar
