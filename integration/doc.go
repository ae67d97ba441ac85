// Package integration owns dvgate's named integrations, one Dataverse org
// each: their configuration (environment or config file, secrets by
// reference), the registry that connects them, rotates their credentials
// after checking the new ones with WhoAmI, and reports their readiness, and
// the live Backend each one serves its lookups from, in gateway's types. It
// owns the error codes every front end reports (Code), while each front end
// (the HTTP API in sidecar, the MCP tools in mcp) maps them to its own
// statuses. An integration that cannot start is reported and answers with
// its remedy while the others serve.
package integration
