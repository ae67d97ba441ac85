// Package dataverse is the connection runtime under the generated Dataverse
// client and the lookup gateway: it signs in to Microsoft Entra with MSAL
// (client secret, certificate or Kubernetes workload identity), sends OData
// requests with the headers Dataverse expects, keeps one process inside the
// service protection limits (a per-org concurrency cap and a gate that holds
// every request back after a 429), retries idempotent GETs on transient
// failures without outliving the caller's deadline, and turns every failure
// into an *Error that carries a Kind and a one-sentence remedy for the admin.
//
// A Conn is safe for concurrent use and is meant to live as long as the
// process: it owns the MSAL token cache and the HTTP connection pool.
// Secrets, certificate keys and access tokens never appear in an error, a
// log line or Config's String/LogValue.
package dataverse
