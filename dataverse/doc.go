// Package dataverse is the connection runtime under the generated Dataverse
// client and the lookup gateway: it signs in to Microsoft Entra with MSAL
// (client secret, certificate or Kubernetes workload identity), sends OData
// requests with the headers Dataverse expects, keeps one process inside the
// service protection limits (a per-org concurrency cap whose wait is bounded
// by Config.SlotWait, past which a request is shed as KindBusy, and a gate
// that holds every request back after a 429), retries idempotent GETs on
// transient failures without outliving the caller's deadline, sends nothing
// for callers who left (WithAbandon), and turns every failure into an *Error
// that carries a Kind and a one-sentence remedy for the admin.
//
// A Conn is safe for concurrent use and is meant to live as long as the
// process: it owns the MSAL token cache and the HTTP connection pool.
// Secrets, certificate keys and access tokens never appear in an error, a
// log line or Config's String/LogValue; nor do values that fail validation
// (a secret pasted into AZURE_CLIENT_ID, a URL with user:password@): errors
// name the variable that is wrong, not what it holds.
package dataverse
