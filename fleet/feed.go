package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dvgate/dvgate/gateway"
)

// The change feed across replicas (gateway.FeedBus). Per feed: a lease
// (a plain string: the leader's id, with a PX expiry), and a checkpoint
// (the deltaLinks and the last event's number, sealed like a cache
// value). Events go to one Redis stream per deployment (not pub/sub: a
// replica whose connection drops for a moment reads on from where it
// was, instead of losing what was published meanwhile), trimmed to about
// feedMaxLen entries; each entry names its feed by hash and holds the
// event sealed under the stream's name and that hash, so an event forged
// or copied from another feed is dropped. One goroutine per Redis reads
// the stream (XREAD BLOCK, on a connection of its own) and hands each
// event to its feed's subscribers, each through a buffer of its own: a
// slow subscriber misses events (and, seeing the gap in their numbers,
// falls back to normal freshness) rather than holding up the others.

const (
	feedMaxLen        = 10000              // stream entries kept, about: minutes of every org's polls
	feedCheckpointTTL = 8 * 24 * time.Hour // past Dataverse's 7-day deltatoken life
	feedBlock         = time.Second        // one XREAD's wait
	feedOpTimeout     = 2 * time.Second    // a publish or checkpoint read (background work: no lookup waits)
	feedBuffer        = 64                 // events queued per subscriber
	feedMaxEvent      = 8 << 20            // a larger stream entry is dropped unread
)

// feedClient is the connection pool of the change feed: background work
// that may wait longer than a lookup's operations (OpTimeout), and a
// blocking XREAD, so not the lookups' pool. Created on first use; nil
// after Close.
func (r *Redis) feedClient() (*redis.Client, error) {
	fr := &r.feed
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.closed || r.closed.Load() {
		return nil, errors.New("fleet: closed")
	}
	if fr.rc == nil {
		o := *r.opts
		o.DialTimeout, o.WriteTimeout, o.PoolTimeout = feedOpTimeout, feedOpTimeout, feedOpTimeout
		o.ReadTimeout = feedBlock + 2*time.Second
		o.PoolSize = 4
		fr.rc = redis.NewClient(&o)
	}
	return fr.rc, nil
}

func (r *Redis) feedStream() string { return r.prefix + ":" + keyVersion + ":feed" }

func (r *Redis) feedKey(what, feed string) string {
	return r.prefix + ":" + keyVersion + ":feed" + what + ":" + r.keys.hash(feed)
}

// leadScript takes the lease (ARGV[1] = id, ARGV[2] = PX) or extends it
// when id holds it; a lease held by another with more than ARGV[2] left,
// which no replica sets (one written by hand or by an attacker), is cut
// to ARGV[2], as lockScript does for load locks.
var leadScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) return 1 end
if v == ARGV[1] then redis.call("PEXPIRE", KEYS[1], ARGV[2]) return 1 end
if redis.call("PTTL", KEYS[1]) > tonumber(ARGV[2]) then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`)

// LeadFeed implements gateway.FeedBus.
func (r *Redis) LeadFeed(ctx context.Context, feed, id string, ttl time.Duration) (bool, error) {
	c, err := r.feedClient()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, feedOpTimeout)
	defer cancel()
	n, err := leadScript.Run(ctx, c, []string{r.feedKey("lease", feed)}, id, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		r.metrics.op("feed_lease", "error")
		return false, fmt.Errorf("fleet: change feed lease: %w", err)
	}
	if n == 1 {
		r.metrics.op("feed_lease", "held")
		return true, nil
	}
	r.metrics.op("feed_lease", "busy")
	return false, nil
}

// ResignFeed implements gateway.FeedBus.
func (r *Redis) ResignFeed(ctx context.Context, feed, id string) {
	c, err := r.feedClient()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, feedOpTimeout)
	defer cancel()
	if err := unlockScript.Run(ctx, c, []string{r.feedKey("lease", feed)}, id).Err(); err != nil {
		r.metrics.op("feed_resign", "error")
		return // it expires on its own
	}
	r.metrics.op("feed_resign", "ok")
}

// FeedCheckpoint implements gateway.FeedBus. A checkpoint that is not
// authenticated for this feed is ignored (logged): the new leader then
// reads the tables again and the fleet falls back for a poll.
func (r *Redis) FeedCheckpoint(ctx context.Context, feed string) (gateway.FeedCheckpoint, error) {
	var cp gateway.FeedCheckpoint
	c, err := r.feedClient()
	if err != nil {
		return cp, err
	}
	ctx, cancel := context.WithTimeout(ctx, feedOpTimeout)
	defer cancel()
	rk := r.feedKey("cp", feed)
	b, err := c.Get(ctx, rk).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return cp, nil
	case err != nil:
		r.metrics.op("feed_checkpoint", "error")
		return cp, fmt.Errorf("fleet: change feed checkpoint: %w", err)
	}
	p, err := r.keys.open(rk, b)
	if err == nil {
		err = json.Unmarshal(p, &cp)
	}
	if err != nil {
		r.metrics.op("feed_checkpoint", "rejected")
		r.log.Warn("ignoring the change feed's checkpoint in Redis: not written by a replica of this deployment; the tables are read again",
			"error", err, "remedy", rejectRemedy[rejectForged])
		return gateway.FeedCheckpoint{}, nil
	}
	r.metrics.op("feed_checkpoint", "ok")
	return cp, nil
}

// PublishFeed implements gateway.FeedBus: the checkpoint and the event in
// one MULTI.
func (r *Redis) PublishFeed(ctx context.Context, feed string, cp gateway.FeedCheckpoint, ev gateway.FeedEvent) error {
	cb, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	eb, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	fh := r.keys.hash(feed)
	c, err := r.feedClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, feedOpTimeout)
	defer cancel()
	ck := r.feedKey("cp", feed)
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ck, r.keys.seal(ck, cb), feedCheckpointTTL)
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.feedStream(), MaxLen: feedMaxLen, Approx: true,
			Values: []any{"f", fh, "d", r.keys.seal(r.feedStream()+":"+fh, eb)}})
		return nil
	})
	if err != nil {
		r.metrics.op("feed_publish", "error")
		return fmt.Errorf("fleet: publishing change feed event: %w", err)
	}
	r.metrics.op("feed_publish", "ok")
	return nil
}

// feedReader reads the deployment's stream for the subscribers of this
// Redis.
type feedReader struct {
	mu     sync.Mutex
	subs   map[string]map[*feedSub]struct{} // by feed hash; nil until the reader runs; guarded by mu
	rc     *redis.Client                    // the feed's own pool (feedClient); guarded by mu
	closed bool                             // guarded by mu
}

type feedSub struct {
	ch   chan gateway.FeedEvent
	done chan struct{}
}

// SubscribeFeed implements gateway.FeedBus. The first subscription starts
// the reader at the stream's current end.
func (r *Redis) SubscribeFeed(feed string, h func(gateway.FeedEvent)) (func(), error) {
	rc, err := r.feedClient()
	if err != nil {
		return nil, err
	}
	fr := &r.feed
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.closed {
		return nil, errors.New("fleet: closed")
	}
	if fr.subs == nil {
		ctx, cancel := context.WithTimeout(context.Background(), feedOpTimeout)
		last, err := rc.XRevRangeN(ctx, r.feedStream(), "+", "-", 1).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("fleet: reading the change feed stream: %w", err)
		}
		from := "0-0"
		if len(last) > 0 {
			from = last[0].ID
		}
		fr.subs = map[string]map[*feedSub]struct{}{}
		r.running.Add(1)
		go r.readFeed(rc, from)
	}
	fh := r.keys.hash(feed)
	s := &feedSub{ch: make(chan gateway.FeedEvent, feedBuffer), done: make(chan struct{})}
	if fr.subs[fh] == nil {
		fr.subs[fh] = map[*feedSub]struct{}{}
	}
	fr.subs[fh][s] = struct{}{}
	go func() {
		defer close(s.done)
		for ev := range s.ch {
			h(ev)
		}
	}()
	return sync.OnceFunc(func() {
		fr.mu.Lock()
		if _, ok := fr.subs[fh][s]; ok {
			delete(fr.subs[fh], s)
			if len(fr.subs[fh]) == 0 {
				delete(fr.subs, fh)
			}
			close(s.ch)
		}
		fr.mu.Unlock()
		<-s.done
	}), nil
}

// close ends every subscription and stops the reader (Close).
func (fr *feedReader) close() {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.closed = true
	for _, m := range fr.subs {
		for s := range m {
			close(s.ch)
		}
	}
	fr.subs = nil
	if fr.rc != nil {
		_ = fr.rc.Close() // ends a blocked XREAD
	}
}

// readFeed reads the stream from the entry after from until Close.
func (r *Redis) readFeed(rc *redis.Client, from string) {
	defer r.running.Done()
	for !r.closed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), feedBlock+time.Second)
		res, err := rc.XRead(ctx, &redis.XReadArgs{Streams: []string{r.feedStream(), from}, Count: 256, Block: feedBlock}).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil): // nothing within feedBlock
			continue
		case err != nil:
			if r.closed.Load() {
				return
			}
			r.metrics.op("feed_read", "error")
			t := time.NewTimer(r.backoff)
			select {
			case <-t.C:
			case <-r.done:
				t.Stop()
				return
			}
			continue
		}
		for _, st := range res {
			for _, m := range st.Messages {
				from = m.ID
				r.deliver(m.Values)
			}
		}
	}
}

// deliver hands one stream entry to its feed's subscribers.
func (r *Redis) deliver(v map[string]any) {
	fh, _ := v["f"].(string)
	d, _ := v["d"].(string)
	fr := &r.feed
	fr.mu.Lock()
	defer fr.mu.Unlock()
	subs := fr.subs[fh]
	if len(subs) == 0 {
		return // another feed's, or another org's
	}
	if len(d) > feedMaxEvent {
		r.metrics.op("feed_read", "rejected_oversize")
		return
	}
	p, err := r.keys.open(r.feedStream()+":"+fh, []byte(d))
	var ev gateway.FeedEvent
	if err == nil {
		err = json.Unmarshal(p, &ev)
	}
	if err != nil {
		r.metrics.op("feed_read", "rejected_forged")
		r.warnOnce("feed", "ignoring a change feed event in Redis: not written by a replica of this deployment", rejectRemedy[rejectForged])
		return
	}
	r.metrics.op("feed_read", "ok")
	for s := range subs {
		select {
		case s.ch <- ev:
		default:
			// The subscriber is behind: it will see the gap in the
			// numbers and fall back.
			r.metrics.op("feed_read", "dropped")
		}
	}
}

// warnOnce logs msg the first time key is seen.
func (r *Redis) warnOnce(key, msg, remedy string) {
	r.mu.Lock()
	first := !r.warned[key]
	r.warned[key] = true
	r.mu.Unlock()
	if first {
		r.log.Warn(msg, "remedy", remedy)
	}
}
