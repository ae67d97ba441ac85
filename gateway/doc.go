// Package gateway answers help-desk lookups (a customer by email, a sales
// order by number or id, a customer's recent orders) from Microsoft
// Dataverse, through a byte-budgeted in-memory cache.
//
// Every lookup follows the same path (see core.go): validate and normalize
// the input (bad input never reaches Dataverse), look in the cache, and on a
// miss join or start one shared upstream call per cache key (a
// singleflight that counts its waiters). The shared call runs detached from
// any one caller's context, bounded by Config.UpstreamTimeout; each caller
// waits only as long as its own context allows. When the last waiter
// leaves, what the call has not sent yet is never sent, and a request it
// has sent is cancelled as soon as another request needs its concurrency
// slot (dataverse.WithAbandon). Every Dataverse request takes a token of
// the gateway's request budget (Config.Budget); when none is left, a lookup
// that needs Dataverse fails at once with a busy error (ErrorCode "busy",
// 503 with RetryAfter) or gets a stale answer, while cached answers keep
// serving. Answers are cached fresh for a per-kind TTL, "not found" answers
// as long by default (negative caching, RFC 2308 style). After freshness an answer is kept for a stale window and
// served, marked stale with its age, only when Dataverse fails with a
// transient error (stale-if-error, RFC 5861): throttling, 5xx, network
// errors and timeouts, never authentication or permission errors.
//
// Summary (summary.go) is a customer's order count and total spent in the
// base currency, computed by Dataverse ($apply) as its own lookup kind with
// its own TTL; a cold one is never waited for longer than
// SummaryConfig.Wait, so it never slows the other lookups down.
//
// Queries are built with the generated client (package generated, over
// odataq): typed columns and navigation properties of the default org's
// model. Config.Model (the org's $metadata) lets New check them, and a
// custom tracking column, against the real org at start-up.
//
// Freshness is decided on Config.Clock, not by the cache: entries carry no
// ristretto TTL, and the byte budget alone bounds memory.
//
// A Gateway is safe for concurrent use. Results are returned without
// copying (a cache hit costs about as much as the cache read itself): the
// *Customer, *Order and []OrderSummary a lookup returns are shared with the
// cache and with other callers, and must be treated as read-only.
package gateway
