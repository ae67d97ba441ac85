package integration

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dvgate/dvgate/gateway"
)

// EnvChangeFeedInterval turns the change feed on for the integration
// configured from the environment: how often it polls (e.g. "30s");
// EnvChangeFeedTTL is how long answers live while it runs (e.g. "12h").
const (
	EnvChangeFeedInterval = "DVGATE_CHANGE_FEED_INTERVAL"
	EnvChangeFeedTTL      = "DVGATE_CHANGE_FEED_TTL"
)

// ChangeFeed is an integration's change feed setting (gateway.Follow):
// answers live for TTL and are made stale when Dataverse's change feed,
// polled every Interval, reports a row they were made of. Interval 0 = off.
type ChangeFeed struct {
	Interval time.Duration
	// TTL is how long answers live while the feed runs; 0 =
	// gateway.DefaultFeedTTL.
	TTL time.Duration
}

// fileChangeFeed is {"interval": "30s", "ttl": "12h"} in the config file.
type fileChangeFeed struct {
	Interval string `json:"interval"`
	TTL      string `json:"ttl"`
}

// minFeedInterval keeps a typo ("30ms") from polling the org's five
// tables many times a second.
const minFeedInterval = time.Second

func parseChangeFeed(interval, ttl, intervalName, ttlName string) (ChangeFeed, error) {
	var cf ChangeFeed
	if strings.TrimSpace(interval) == "" {
		if strings.TrimSpace(ttl) != "" {
			return cf, fmt.Errorf("%s is set without %s: the change feed is off", ttlName, intervalName)
		}
		return cf, nil
	}
	var err error
	if cf.Interval, err = time.ParseDuration(strings.TrimSpace(interval)); err != nil || cf.Interval < minFeedInterval {
		return cf, fmt.Errorf("%s %q is not a duration of at least 1s (e.g. \"30s\")", intervalName, interval)
	}
	if strings.TrimSpace(ttl) != "" {
		if cf.TTL, err = time.ParseDuration(strings.TrimSpace(ttl)); err != nil || cf.TTL < cf.Interval {
			return cf, fmt.Errorf("%s %q is not a duration at least as long as the interval (e.g. \"12h\")", ttlName, ttl)
		}
	}
	return cf, nil
}

func (f *fileChangeFeed) resolve() (ChangeFeed, error) {
	if f == nil {
		return ChangeFeed{}, nil
	}
	if strings.TrimSpace(f.Interval) == "" {
		return ChangeFeed{}, fmt.Errorf(`changeFeed: "interval" is required (e.g. "30s")`)
	}
	return parseChangeFeed(f.Interval, f.TTL, "changeFeed.interval", "changeFeed.ttl")
}

// feedRun is a running follower of a backend's gateway.
type feedRun struct {
	f      *gateway.Follower
	cancel context.CancelFunc
	done   chan struct{}
}

// backendFeed holds a backend's running follower; a gateway replacing
// another (a schema re-read) takes over its deltaLinks.
type backendFeed struct {
	mu  sync.Mutex // serializes follow
	run *feedRun   // guarded by mu
}

// follow starts gw's change follower, when the configuration turns it on,
// after stopping the previous gateway's (whose answers fall back to their
// normal freshness; the new one continues from its deltaLinks).
func (b *gatewayBackend) follow(gw *gateway.Gateway) error {
	cf := b.cfg.ChangeFeed
	if cf.Interval <= 0 {
		return nil
	}
	b.feed.mu.Lock()
	defer b.feed.mu.Unlock()
	var from *gateway.Follower
	if r := b.feed.run; r != nil {
		r.cancel()
		<-r.done
		from = r.f
	}
	f, err := gw.Follow(gateway.FeedConfig{Interval: cf.Interval, TTL: cf.TTL, Metrics: b.gc.FeedMetrics, From: from})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(b.life)
	r := &feedRun{f: f, cancel: cancel, done: make(chan struct{})}
	b.feed.run = r
	b.bg.Go(func() {
		defer close(r.done)
		f.Run(ctx)
	})
	// Durations as text: slog's JSON handler writes a Duration as nanoseconds.
	b.log.Info("following the org's change feed", "interval", cf.Interval.String(), "ttl", cmp.Or(cf.TTL, gateway.DefaultFeedTTL).String())
	return nil
}

// Follower returns the backend's change follower; nil when the change
// feed is off or its gateway is not built yet.
func (b *gatewayBackend) Follower() *gateway.Follower {
	b.feed.mu.Lock()
	defer b.feed.mu.Unlock()
	if b.feed.run == nil {
		return nil
	}
	return b.feed.run.f
}
