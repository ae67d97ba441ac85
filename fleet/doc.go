// Package fleet lets several dvgate replicas share what one machine keeps
// to itself: a second cache level, fleet-wide deduplication of Dataverse
// calls, and the throttling state Dataverse imposes on the application user
// they all sign in as. It implements gateway.SharedCache and
// gateway.Throttle on Redis (or Valkey) with github.com/redis/go-redis/v9.
//
// Redis is an optimisation, never a dependency: every operation is bounded
// by Config.OpTimeout (50 ms by default), retries nothing, and on any error
// the caller goes on as if Redis were not configured ("fail open": a
// lookup asks Dataverse). After three consecutive failures Redis is skipped
// for Config.Backoff, so a dead or black-holed Redis costs a lookup at most
// a few timeouts per Backoff period rather than one per operation. Failures are
// counted in the metrics.
//
// Keys (P is Config.Prefix, "dvgate" by default; H a SHA-256 of the
// gateway's cache key, which holds the org URL and the customer's input, so
// neither appears in Redis):
//
//	P:v1:<kind>:H        answer payload (gateway.SharedFormat inside), PX fresh+stale
//	P:v1:lock:<kind>:H   load lock: random token, SET NX PX, compare-and-delete
//	P:throttle:O         org O (SHA-256 of the org's scheme and host) blocked:
//	                     value = Unix ms until, PX = Retry-After; only extended
//
// The "v1" in keys changes with the key layout; the payload carries its own
// format version, so replicas on different releases never misread each
// other's entries (a mismatch is a miss). Values hold answers only.
//
// A Redis is safe for concurrent use; Close it after the gateways using it.
package fleet
