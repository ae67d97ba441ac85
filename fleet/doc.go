// Package fleet lets several dvgate replicas share what one machine keeps
// to itself: a second cache level, fleet-wide deduplication of Dataverse
// calls, and the throttling state Dataverse imposes on the application user
// they all sign in as, and one change feed per org followed by one replica
// for all. It implements gateway.SharedCache, gateway.Throttle and
// gateway.FeedBus on Redis (or Valkey) with github.com/redis/go-redis/v9.
//
// Redis is an optimisation, never a dependency: every operation is bounded
// by Config.OpTimeout (50 ms by default), retries nothing, and on any error
// the caller goes on as if Redis were not configured ("fail open": a
// lookup asks Dataverse). After three consecutive failures Redis is skipped
// for Config.Backoff, so a dead or black-holed Redis costs a lookup at most
// a few timeouts per Backoff period rather than one per operation. Failures are
// counted in the metrics.
//
// Keys (P is Config.Prefix, "dvgate" by default; H a hash of the
// gateway's cache key, which holds the integration, the org URL and the
// customer's input, so none appears in Redis: HMAC-SHA256 under a key
// derived from Config.Key, bare SHA-256 without one):
//
//	P:v2:<kind>:H        value (envelope below), PX fresh+stale
//	P:v2:lock:<kind>:H   load lock: random token, SET NX PX, compare-and-delete
//	P:throttle:O         org O (hash of the org's scheme and host) blocked:
//	                     value = Unix ms until, PX = Retry-After (at most
//	                     MaxBlock); only extended
//	P:v2:feedlease:F     change feed F's lease: the leading follower's id, PX
//	P:v2:feedcp:F        its checkpoint (deltaLinks, last event), sealed
//	P:v2:feed            the deployment's stream of change feed events:
//	                     f = F, d = the event sealed (MAXLEN ~10000)
//
// (F is the hash of the feed's name: the org URL and the tables followed.)
// The feed's operations are background work with their own connection
// pool and a 2 s bound, not the lookups' 50 ms.
//
// A value is an envelope around the gateway's payload (gateway.SharedFormat
// inside): a version byte (2; releases before it stored the payload bare,
// and each reads the other's entries as misses), a mode byte, then
//
//	without Config.Key: SHA-256 of the Redis key, payload in clear
//	with Config.Key:    12-byte nonce, AES-256-GCM(payload, additional
//	                    data = Redis key), HMAC-SHA256(Redis key, all before)
//
// so a value copied to another key (another customer, integration or org)
// is a miss either way, and with a key nobody without it can write a value
// a replica accepts or read a name, email or phone out of Redis. Get
// refuses (a miss, counted as outcome rejected_<reason>, the first of each
// reason logged) a value larger than Config.MaxPayload (read no further
// than that), of another version or mode, or failing its binding or
// authenticator; the gateway then refuses one fetched in the future or
// with windows beyond its own TTLs (gateway.SharedRejecter). Without a key
// New warns that the shared level is unauthenticated: anyone who can write
// to Redis can then make replicas serve forged answers.
//
// The throttle gate trusts Redis for at most MaxBlock (24 h, as package
// dataverse caps Retry-After): a longer key is cut to it, a block seen
// continuously for MaxBlock stops holding a replica back, and a deleted
// key stops doing so at the next read (ThrottleRefresh).
//
// A Redis is safe for concurrent use; Close it after the gateways using it.
package fleet
