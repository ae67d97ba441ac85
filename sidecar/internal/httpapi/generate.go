package httpapi

// The HTTP layer is generated from openapi.yaml (oapi-codegen's strict std-http
// server), so the document served at /openapi.json and the handlers cannot drift.
//go:generate go tool oapi-codegen --config cfg.yaml openapi.yaml
