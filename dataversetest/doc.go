// Package dataversetest is an in-process simulator of the Dataverse Web API
// v9.2 and of the Microsoft Entra ID endpoints a confidential client uses, in
// the spirit of net/http/httptest: NewServer starts a TLS server on loopback
// that serves both, with a client that trusts it.
//
// The Web API side is schema driven: it reads a CSDL document (by default the
// five-table fixture in testdata/csdl) for entity sets, keys, columns, lookups
// and navigation properties, and serves rows from a JSON seed document (by
// default the generated demo data in testdata/seed). It reproduces the wire
// shapes of the real service (context URLs, etags, annotations, formatted
// values, paging cookies, errors, 401 challenges, 403 privilege errors and the
// service protection 429s) closely enough that a client tested against it
// works against a real org.
//
// The Entra side serves OpenID discovery and the v2.0 token endpoint for one
// registered app, accepting a client secret, a client certificate assertion
// or a federated (workload identity) assertion, with Entra-shaped AADSTS
// errors. MSAL Go's confidential client works against it unmodified when built
// with WithInstanceDiscovery(false) and WithHTTPClient(srv.Client()).
//
// It also takes writes (POST, PATCH with If-Match, DELETE), in memory and
// per server. SUPPORT.md lists what is supported, partly supported and not.
//
// Tests switch org and Entra states (SetApplicationUser, DenyRead,
// ExpireClientSecret, RevokeTokens, ...), inject faults (latency, forced
// statuses, malformed bodies, connection resets, slow bodies) and observe
// traffic (Requests, WebAPIRequests, TokenRequests). ManagedIdentityEndpoint
// serves the managed identity token endpoint of the Azure resource a client
// runs on, in the IMDS and App Service shapes (IMDSEnv, AppServiceEnv). With Options.Admin the
// same is a JSON API under /_dvsim/ for other languages (cmd/dvsim). All
// methods of Server are safe for concurrent use. Servers with the default
// schema share one parsed snapshot of the seed; a server's first write gives
// it a private copy. Reads hold a read lock only while computing an answer.
package dataversetest
