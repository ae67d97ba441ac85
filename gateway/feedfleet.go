package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// The change feed in a fleet (FeedBus): every tick, each replica's
// follower tries to take or keep the feed's lease. The one that holds it
// polls Dataverse as a lone follower does (Poll), then publishes the rows
// reported, numbered, with its deltaLinks as the checkpoint a successor
// continues from. Every other follower applies the events it hears to its
// own cache and dependency index. A follower falls back to normal
// freshness when an event says the leader's poll failed (Down), when it
// notices a missed event (a gap in the numbers), or when it has heard
// nothing for silence (the leader vanished and no one took over yet); it
// lives long again from the next event in sequence.

// feedName names a feed on the bus: the org and what is followed, so that
// integrations of one org that follow the same tables share one feed.
func feedName(base string, tables []feedTable) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(base))
	for _, t := range tables {
		b.WriteString("\n" + t.set + "?" + strings.Join(t.cols, ","))
	}
	return b.String()
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// runFleet is Run with a bus. Until it hears the fleet's events it does
// not take part (answers keep their normal freshness), and retries every
// interval. When it returns, the lease is given up and the gateway's
// answers fall back to their normal freshness.
func (f *Follower) runFleet(ctx context.Context) {
	var unsubscribe func()
	defer f.stop()
	defer func() {
		if unsubscribe != nil {
			unsubscribe()
		}
	}()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		f.bus.ResignFeed(rctx, f.feedID, f.id)
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(f.interval)
		if unsubscribe == nil {
			u, err := f.bus.SubscribeFeed(f.feedID, f.hear)
			if err != nil {
				if !warned {
					f.log.Warn("change feed: cannot hear the fleet's events; answers keep their normal freshness until it can",
						"integration", f.g.name, "error", err)
					warned = true
				}
				continue
			}
			unsubscribe = u
		}
		f.tick(ctx)
	}
}

// tick is one round of a fleet's follower: lead and poll, or check that
// the leader is heard from.
func (f *Follower) tick(ctx context.Context) {
	lead, err := f.bus.LeadFeed(ctx, f.feedID, f.id, f.leaseTTL)
	if err != nil {
		f.log.Debug("change feed: lease", "integration", f.g.name, "error", err)
		lead = false
	}
	f.mu.Lock()
	f.metrics.leader(f.g.name, lead)
	if !lead {
		if f.leading {
			f.leading = false
			f.log.Info("change feed: another replica polls for the fleet now", "integration", f.g.name)
		}
		if !f.down && f.g.clock().Sub(f.lastEvent) > f.silence {
			n, _ := f.goDown()
			f.log.Warn("change feed: no news from the replica that polls for the fleet; answers fall back to their normal freshness until it is heard again",
				"integration", f.g.name, "silentFor", f.g.clock().Sub(f.lastEvent).Round(time.Millisecond), "answersShortened", n)
		}
		f.mu.Unlock()
		return
	}
	if !f.leading {
		f.takeOver(ctx)
	}
	f.pending, f.pendingAll = nil, false
	f.mu.Unlock()

	perr := f.Poll(ctx)

	f.mu.Lock()
	ev := FeedEvent{Seq: f.seq + 1, From: f.id, Deps: f.pending, All: f.pendingAll, Down: perr != nil || f.announceDown}
	if ev.Down {
		ev.Deps, ev.All = nil, false
	}
	cp := FeedCheckpoint{Seq: ev.Seq, Links: make(map[string]string, len(f.links))}
	for k, v := range f.links {
		cp.Links[k] = v
	}
	f.pending, f.pendingAll = nil, false
	f.mu.Unlock()
	if err := f.bus.PublishFeed(ctx, f.feedID, cp, ev); err != nil {
		// The other replicas fall back once silence has passed; the
		// numbers continue from the checkpoint they last heard.
		f.log.Warn("change feed: could not publish the poll's changes to the fleet", "integration", f.g.name, "error", err)
		return
	}
	f.mu.Lock()
	f.seq, f.lastEvent = ev.Seq, f.g.clock()
	f.stats.Published++
	if perr == nil {
		f.announceDown = false
	}
	f.mu.Unlock()
}

// takeOver makes this follower the leader: it continues from the fleet's
// checkpoint. Without one for every table (the first leader, or the
// checkpoint expired) the tables are read again, and changes made since
// the last leader's poll are unknown: this replica falls back to normal
// freshness, and so do the others on the first event (Down). f.mu is held.
func (f *Follower) takeOver(ctx context.Context) {
	f.leading = true
	cp, err := f.bus.FeedCheckpoint(ctx, f.feedID)
	if err != nil {
		f.log.Warn("change feed: reading the fleet's checkpoint", "integration", f.g.name, "error", err)
	}
	complete := true
	for _, t := range f.tables {
		// A link must lead to this org's Web API: one written to Redis by
		// anyone else would send the bearer token elsewhere.
		if l := cp.Links[t.set]; strings.HasPrefix(l, f.g.baseURL+t.set) {
			f.links[t.set] = l
		} else {
			delete(f.links, t.set)
			complete = false
		}
	}
	if cp.Seq > f.seq {
		f.seq = cp.Seq
	}
	if !complete && cp.Seq > 0 {
		f.announceDown = true
		f.goDown()
	}
	f.log.Info("change feed: this replica polls for the fleet", "integration", f.g.name,
		"checkpoint", cp.Seq, "continues", complete)
}

// hear applies an event published by another replica's follower.
func (f *Follower) hear(ev FeedEvent) {
	if ev.From == f.id {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	gap := f.seq != 0 && ev.Seq != f.seq+1
	missed := f.seq
	f.seq, f.lastEvent = ev.Seq, f.g.clock()
	f.stats.Heard++
	switch {
	case ev.All:
		f.st.idx.invalidateAll(f.g.clock())
		n := f.g.demote(f.st.idx.drain(), true)
		f.stats.Invalidated += int64(n)
		f.metrics.invalidated(f.g.name, n)
	case len(ev.Deps) > 0:
		f.stats.RowsChanged += int64(len(ev.Deps))
		f.invalidate(ev.Deps)
	}
	if ev.Down || gap {
		reason := "the replica that polls for the fleet could not follow the feed"
		if gap {
			reason = "an event of the fleet's change feed was missed"
		}
		if n, wasUp := f.goDown(); wasUp {
			f.log.Warn("change feed: answers fall back to their normal freshness until the feed's events follow each other again",
				"integration", f.g.name, "reason", reason, "event", ev.Seq, "after", missed, "answersShortened", n)
		}
		if ev.Down {
			return
		}
	}
	if !f.leading {
		f.st.polled.Store(f.lastEvent.UnixNano())
		f.goUp("change feed: following the fleet's feed: answers live until a change makes them stale")
	}
}
