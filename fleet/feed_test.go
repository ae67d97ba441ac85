package fleet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dvgate/dvgate/gateway"
)

const testFeed = "https://org.example/api/data/v9.2/\ncontacts?$select=contactid"

// subscribe collects a feed's events on a channel.
func subscribe(t *testing.T, r *Redis, feed string) <-chan gateway.FeedEvent {
	t.Helper()
	ch := make(chan gateway.FeedEvent, 256)
	stop, err := r.SubscribeFeed(feed, func(ev gateway.FeedEvent) { ch <- ev })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch
}

func next(t *testing.T, ch <-chan gateway.FeedEvent) gateway.FeedEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second): // a bound for a broken test, not a timing
		t.Fatal("no event within 10 s")
		return gateway.FeedEvent{}
	}
}

// One lease per feed: its holder keeps it, others wait until it resigns
// or its lease expires; a forged lease with a long expiry holds the feed
// for at most one lease period.
func TestFeedLease(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	a := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	b := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	ctx := ctxT(t)
	lead := func(r *Redis, id string) bool {
		ok, err := r.LeadFeed(ctx, testFeed, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	got := []bool{lead(a, "a"), lead(b, "b"), lead(a, "a")}
	a.ResignFeed(ctx, testFeed, "a")
	got = append(got, lead(b, "b"), lead(a, "a"))
	if diff := cmp.Diff([]bool{true, false, true, true, false}, got); diff != "" {
		t.Errorf("lease holders (-want +got):\n%s", diff)
	}
	// Someone sets the lease by hand for a day.
	raw := rawRedis(t)
	k := a.feedKey("lease", testFeed)
	raw.Set(ctx, k, "intruder", 24*time.Hour)
	if lead(a, "a") {
		t.Fatal("took a lease someone else holds")
	}
	if d := raw.PTTL(ctx, k).Val(); d > time.Minute {
		t.Errorf("a forged day-long lease still has %v: want it cut to one lease period", d)
	}
}

// Events reach every subscriber of the feed, in order, and not those of
// another feed; the checkpoint is stored with them; Redis holds neither
// the links nor the rows in clear.
func TestFeedPublishSubscribe(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	a := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	b := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	ctx := ctxT(t)
	onB := subscribe(t, b, testFeed)
	onA := subscribe(t, a, testFeed)
	other := subscribe(t, b, testFeed+",fullname")
	link := "https://org.example/api/data/v9.2/contacts?$deltatoken=919042%2108%2f22%2f2017"
	for i := uint64(1); i <= 3; i++ {
		cp := gateway.FeedCheckpoint{Seq: i, Links: map[string]string{"contacts": link}}
		ev := gateway.FeedEvent{Seq: i, From: "a", Deps: []string{"em:alex.wu@example.com"}}
		if err := a.PublishFeed(ctx, testFeed, cp, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range []<-chan gateway.FeedEvent{onA, onB} {
		var seqs []uint64
		for range 3 {
			ev := next(t, ch)
			seqs = append(seqs, ev.Seq)
			if diff := cmp.Diff([]string{"em:alex.wu@example.com"}, ev.Deps); diff != "" {
				t.Errorf("deps (-want +got):\n%s", diff)
			}
		}
		if diff := cmp.Diff([]uint64{1, 2, 3}, seqs); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
	}
	select {
	case ev := <-other:
		t.Errorf("another feed's subscriber got %+v", ev)
	default:
	}
	cp, err := b.FeedCheckpoint(ctx, testFeed)
	if err != nil || cp.Seq != 3 || cp.Links["contacts"] != link {
		t.Errorf("checkpoint: %+v, %v", cp, err)
	}
	raw := rawRedis(t)
	keys, _ := raw.Keys(ctx, prefix+":*").Result()
	for _, k := range keys {
		var blob string
		switch raw.Type(ctx, k).Val() {
		case "string":
			blob = raw.Get(ctx, k).Val()
		case "stream":
			for _, m := range raw.XRange(ctx, k, "-", "+").Val() {
				blob += m.Values["d"].(string)
			}
		}
		for _, secret := range []string{"deltatoken", "alex.wu", "org.example"} {
			if containsFold(blob+k, secret) {
				t.Errorf("Redis key %s holds %q in clear", k, secret)
			}
		}
	}
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Anyone who can write to the Redis can append to the stream and set the
// checkpoint; without the deployment's key, neither is believed: a forged
// event could keep replicas trusting answers no one watches, and a
// forged checkpoint could send the follower's bearer token elsewhere.
func TestFeedForgeries(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	a := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	intruder := newTestRedis(t, Config{Prefix: prefix, Key: []byte("another key, 32 bytes long.....!")})
	ctx := ctxT(t)
	ch := subscribe(t, a, testFeed)
	raw := rawRedis(t)
	fh := a.keys.hash(testFeed)
	// A hand-made entry, one sealed with another key, one copied from
	// another feed, then a genuine one.
	raw.XAdd(ctx, &redis.XAddArgs{Stream: a.feedStream(), Values: []any{"f", fh, "d", `{"seq":1,"from":"x"}`}})
	raw.XAdd(ctx, &redis.XAddArgs{Stream: a.feedStream(), Values: []any{"f", fh, "d",
		intruder.keys.seal(a.feedStream()+":"+fh, []byte(`{"seq":1,"from":"x"}`))}})
	_ = a.PublishFeed(ctx, testFeed+"2", gateway.FeedCheckpoint{Seq: 7}, gateway.FeedEvent{Seq: 7, From: "a"})
	other := raw.XRevRangeN(ctx, a.feedStream(), "+", "-", 1).Val()[0]
	raw.XAdd(ctx, &redis.XAddArgs{Stream: a.feedStream(), Values: []any{"f", fh, "d", other.Values["d"]}})
	if err := a.PublishFeed(ctx, testFeed, gateway.FeedCheckpoint{Seq: 2}, gateway.FeedEvent{Seq: 2, From: "a"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Seq != 2 || ev.From != "a" {
		t.Errorf("first event heard: %+v, want the genuine seq 2", ev)
	}
	// A checkpoint sealed with another key, under this feed's Redis key.
	ck := a.feedKey("cp", testFeed)
	raw.Set(ctx, ck, intruder.keys.seal(ck, []byte(`{"seq":9,"links":{"contacts":"https://attacker.example/"}}`)), time.Hour)
	cp, err := a.FeedCheckpoint(ctx, testFeed)
	if err != nil || cp.Seq != 0 || len(cp.Links) != 0 {
		t.Errorf("forged checkpoint read as %+v, %v; want none", cp, err)
	}
}

// A subscriber that falls behind loses events (and sees the gap in their
// numbers) rather than holding up the reader; stop ends delivery.
func TestFeedSlowSubscriber(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	a := newTestRedis(t, Config{Prefix: prefix, Key: testKey})
	ctx := ctxT(t)
	release := make(chan struct{})
	var got []uint64
	done := make(chan struct{})
	stop, err := a.SubscribeFeed(testFeed, func(ev gateway.FeedEvent) {
		<-release
		got = append(got, ev.Seq)
		if ev.Seq == feedBuffer+20 {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	fast := subscribe(t, a, testFeed)
	// In two bursts, each within a subscriber's buffer, the second once the
	// fast subscriber has the first: a subscriber that keeps up loses
	// nothing however late its goroutine runs (CI once ran it so late that
	// one burst of 84 overflowed its buffer too), while the blocked one
	// holds one event and a full buffer.
	seq := uint64(0)
	for _, burst := range []int{feedBuffer, 20} {
		from := seq + 1
		for range burst {
			seq++
			if err := a.PublishFeed(ctx, testFeed, gateway.FeedCheckpoint{Seq: seq}, gateway.FeedEvent{Seq: seq, From: "a"}); err != nil {
				t.Fatal(err)
			}
		}
		for i := from; i <= seq; i++ {
			if ev := next(t, fast); ev.Seq != i {
				t.Fatalf("the fast subscriber got %d, want %d", ev.Seq, i)
			}
		}
	}
	close(release)
	stop()
	if len(got) >= feedBuffer+20 {
		t.Errorf("the slow subscriber got all %d events: nothing was dropped", len(got))
	}
	select {
	case <-done:
		t.Log("the last event reached the slow subscriber")
	default:
	}
}
