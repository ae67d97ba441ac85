package gateway

import (
	"context"
	"time"
)

// FeedBus lets the replicas of a fleet share one change feed per org
// instead of each polling Dataverse: one replica at a time (the leader,
// holding a lease) polls and publishes what changed, and every replica
// makes stale the answers of its own cache that depend on it. Package
// fleet implements it on Redis; Follow uses the gateway's SharedCache
// when it implements FeedBus.
//
// feed names one change feed (the org and the tables followed; two
// integrations of an org that follow the same tables share it); id names
// one follower. Methods are safe for concurrent use and return within a
// short bound of their own. Errors fail safe: a replica that cannot lead
// does not poll, and one that hears nothing for a while, or notices a
// missed event, falls back to normal freshness until events flow again.
type FeedBus interface {
	// LeadFeed takes the feed's lease for id, or extends it when id
	// holds it already, for ttl; it reports whether id holds it now.
	LeadFeed(ctx context.Context, feed, id string, ttl time.Duration) (bool, error)
	// ResignFeed gives the lease up if id holds it (a follower that
	// stops), so that another replica takes over at once.
	ResignFeed(ctx context.Context, feed, id string)
	// FeedCheckpoint returns the feed's last published checkpoint (the
	// zero value when there is none).
	FeedCheckpoint(ctx context.Context, feed string) (FeedCheckpoint, error)
	// PublishFeed stores cp as the feed's checkpoint and delivers ev to the
	// feed's subscribers, both or neither.
	PublishFeed(ctx context.Context, feed string, cp FeedCheckpoint, ev FeedEvent) error
	// SubscribeFeed calls h with the events published on feed after it
	// returns, in publication order, from one goroutine at a time. After
	// stop returns, h is not called again.
	SubscribeFeed(feed string, h func(FeedEvent)) (stop func(), err error)
}

// FeedCheckpoint is where a fleet's change feed stands: the deltaLink of
// each entity set, and the sequence number of the last event. A replica
// that takes the lease over continues from it, so no change between two
// leaders is lost.
type FeedCheckpoint struct {
	Seq   uint64            `json:"seq"`
	Links map[string]string `json:"links,omitempty"`
}

// FeedEvent is one poll of a fleet's change feed, as published by the
// leader: events are numbered without gaps, so a subscriber that misses
// one knows it.
type FeedEvent struct {
	Seq  uint64 `json:"seq"`
	From string `json:"from"` // the publishing follower's id
	// Deps are the rows (and derived keys, see deps.go) the poll reported
	// changed or deleted.
	Deps []string `json:"deps,omitempty"`
	// All: too many rows changed to list; every answer may be stale.
	All bool `json:"all,omitempty"`
	// Down: the leader's poll failed, or it could not continue from the
	// checkpoint; answers fall back to their normal freshness until the
	// next event that is not Down.
	Down bool `json:"down,omitempty"`
}

// maxEventDeps bounds an event's Deps (a bulk import can change a
// million rows): past it the leader publishes All instead.
const maxEventDeps = 20000
