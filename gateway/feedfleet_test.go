package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
)

// memFleet is a SharedCache and FeedBus in memory, on a fake clock: what
// package fleet does on Redis, for the follower's logic. Events reach the
// subscribers synchronously, unless dropped is set (a lost event).
type memFleet struct {
	clk *fakeClock

	mu      sync.Mutex
	data    map[string][]byte
	lease   map[string]memLease
	cp      map[string]FeedCheckpoint
	subs    map[string][]func(FeedEvent)
	dropped bool // the next event is lost
	events  []FeedEvent
}

type memLease struct {
	id    string
	until time.Time
}

func newMemFleet(clk *fakeClock) *memFleet {
	return &memFleet{clk: clk, data: map[string][]byte{}, lease: map[string]memLease{},
		cp: map[string]FeedCheckpoint{}, subs: map[string][]func(FeedEvent){}}
}

func (m *memFleet) Get(_ context.Context, kind, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[kind+"|"+key]
	return b, ok, nil
}

func (m *memFleet) Set(_ context.Context, kind, key string, payload []byte, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[kind+"|"+key] = payload
	return nil
}

func (m *memFleet) Lock(context.Context, string, string) (func(), bool, error) {
	return func() {}, true, nil
}

func (m *memFleet) LeadFeed(_ context.Context, feed, id string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if l, ok := m.lease[feed]; ok && l.id != id && now.Before(l.until) {
		return false, nil
	}
	m.lease[feed] = memLease{id, now.Add(ttl)}
	return true, nil
}

func (m *memFleet) ResignFeed(_ context.Context, feed, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease[feed].id == id {
		delete(m.lease, feed)
	}
}

func (m *memFleet) FeedCheckpoint(_ context.Context, feed string) (FeedCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cp[feed], nil
}

func (m *memFleet) PublishFeed(_ context.Context, feed string, cp FeedCheckpoint, ev FeedEvent) error {
	m.mu.Lock()
	m.cp[feed] = cp
	m.events = append(m.events, ev)
	subs := m.subs[feed]
	lost := m.dropped
	m.dropped = false
	m.mu.Unlock()
	if !lost {
		for _, h := range subs {
			h(ev)
		}
	}
	return nil
}

func (m *memFleet) SubscribeFeed(feed string, h func(FeedEvent)) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs[feed] = append(m.subs[feed], h)
	return func() {}, nil
}

// fleetEnv is replicas of one gateway on one simulator and one memFleet,
// all on one fake clock; each replica's follower is driven by tick (as
// Run would every interval), and subscribed as Run would.
type fleetEnv struct {
	sim   *dataversetest.Server
	bus   *memFleet
	clk   *fakeClock
	g     []*Gateway
	f     []*Follower
	write func(t *testing.T, path, body string)
}

func newFleetEnv(t *testing.T, replicas int) *fleetEnv {
	t.Helper()
	clk := newFakeClock()
	sim, err := dataversetest.NewServer(dataversetest.Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	conn := func() *dataverse.Conn { return simConn(t, sim) }
	e := &fleetEnv{sim: sim, bus: newMemFleet(clk), clk: clk}
	for range replicas {
		g, err := New(Config{Conn: conn(), Clock: clk.Now, Logger: discardLogger, Budget: Budget{Rate: -1}, Shared: e.bus})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		f, err := g.Follow(FeedConfig{Interval: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.bus.SubscribeFeed(f.feedID, f.hear); err != nil {
			t.Fatal(err)
		}
		e.g, e.f = append(e.g, g), append(e.f, f)
	}
	w := conn()
	e.write = func(t *testing.T, path, body string) {
		t.Helper()
		fe := &feedEnv{w: w}
		fe.write(t, "PATCH", path, body)
	}
	return e
}

// outcomes looks the order up on each replica.
func (e *fleetEnv) outcomes(t *testing.T, ref string) []string {
	t.Helper()
	var out []string
	for i, g := range e.g {
		o, m, err := g.Order(context.Background(), ref)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		out = append(out, m.Outcome.String()+" "+o.Name)
	}
	return out
}

func (e *fleetEnv) tickAll() {
	for _, f := range e.f {
		f.tick(context.Background())
	}
}

// One replica polls for three; a change it reports makes the answer stale
// on every replica, which then answer the new data: answers live for
// hours everywhere, and Dataverse sees one follower's polls.
func TestFleetFeedOneLeaderInvalidatesEveryReplica(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 3)
	e.tickAll() // replica 0 takes the lease and syncs; the others hear it
	for i, f := range e.f {
		st := f.Stats()
		if st.Leading != (i == 0) || !st.Up {
			t.Fatalf("replica %d after the first tick: %+v", i, st)
		}
	}
	name := e.outcomes(t, demoOrder)[0]
	name = name[strings.Index(name, " ")+1:]
	e.clk.Advance(2 * time.Hour) // far past the order's 1m TTL
	e.tickAll()
	want := []string{"hit " + name, "hit " + name, "hit " + name}
	if diff := cmp.Diff(want, e.outcomes(t, demoOrder)); diff != "" {
		t.Fatalf("two hours later, nothing changed (-want +got):\n%s", diff)
	}

	polls := e.sim.WebAPIRequests()
	order := e.orderID(t)
	e.write(t, "salesorders("+order+")", `{"name":"Renamed by the fleet test"}`)
	e.clk.Advance(30 * time.Second)
	e.tickAll()
	pollCost := e.sim.WebAPIRequests() - polls - 1
	want = []string{"miss Renamed by the fleet test", "hit Renamed by the fleet test", "hit Renamed by the fleet test"}
	if diff := cmp.Diff(want, e.outcomes(t, demoOrder)); diff != "" {
		t.Errorf("after the change and one poll (-want +got):\n%s", diff)
	}
	if pollCost != 1 {
		t.Errorf("one poll of the fleet cost %d Dataverse requests, want 1 (one replica's $batch of every table's deltaLink)", pollCost)
	}
	if st := e.f[1].Stats(); st.Heard != 3 || st.Invalidated < 1 {
		t.Errorf("replica 1: %+v", st)
	}
}

func (e *fleetEnv) orderID(t *testing.T) string {
	t.Helper()
	o, _, err := e.g[0].Order(context.Background(), demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// A missed event makes a replica fall back to normal freshness (it cannot
// know what changed), and the next event in sequence lets answers live
// long again.
func TestFleetFeedMissedEventFallsBack(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 2)
	e.tickAll()
	e.outcomes(t, demoOrder)
	e.bus.mu.Lock()
	e.bus.dropped = true
	e.bus.mu.Unlock()
	e.clk.Advance(30 * time.Second)
	e.tickAll() // lost on its way to replica 1
	if !e.f[1].Stats().Up {
		t.Fatal("replica 1 went down without noticing anything")
	}
	e.clk.Advance(30 * time.Second)
	e.tickAll() // replica 1 sees event 3 after 1
	st := e.f[1].Stats()
	if !st.Up {
		t.Errorf("replica 1 after the next event in sequence: %+v", st)
	}
	// Its cached answer fell back to the normal TTL (1m) at the gap.
	e.clk.Advance(2 * time.Minute)
	if got := e.outcomes(t, demoOrder)[1]; !strings.HasPrefix(got, "miss") {
		t.Errorf("replica 1's answer from before the missed event, 2 minutes later: %s, want a miss", got)
	}
}

// When the leader vanishes, another replica takes the lease over once it
// expires and continues from the published deltaLinks (no table is read
// again, no change is lost), and the others notice its silence meanwhile.
func TestFleetFeedTakeOverContinues(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 2)
	e.tickAll()
	e.outcomes(t, demoOrder)
	order := e.orderID(t)
	// Replica 0 stops ticking (its process hangs); a change is made.
	e.write(t, "salesorders("+order+")", `{"name":"Changed while no one polled"}`)
	e.clk.Advance(e.f[1].leaseTTL + time.Second)
	e.f[1].tick(context.Background())
	st := e.f[1].Stats()
	if !st.Leading || st.InitialRows != 0 {
		t.Fatalf("replica 1 after the lease expired: %+v (want leading, no table read again)", st)
	}
	// (Replica 0 still hears events: it answers from Dataverse, and
	// replica 1 from the shared level replica 0 filled.)
	want := []string{"miss Changed while no one polled", "hit Changed while no one polled"}
	if diff := cmp.Diff(want, e.outcomes(t, demoOrder)); diff != "" {
		t.Errorf("after the takeover's first poll (-want +got):\n%s", diff)
	}
}

// A checkpoint whose deltaLink points elsewhere (Redis written by someone
// else) is not followed: the bearer token would go with it. The new
// leader reads the table again and the fleet falls back for a poll.
func TestFleetFeedRefusesForeignLinks(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 2)
	e.tickAll()
	e.bus.mu.Lock()
	for feed, cp := range e.bus.cp {
		links := map[string]string{}
		for k, v := range cp.Links {
			links[k] = strings.Replace(v, e.sim.URL(), "https://attacker.example/", 1)
		}
		cp.Links = links
		e.bus.cp[feed] = cp
		e.bus.lease[feed] = memLease{} // the lease is free
	}
	e.bus.mu.Unlock()
	before := e.sim.Requests()
	e.f[1].tick(context.Background())
	for _, r := range e.sim.Requests()[len(before):] {
		if strings.Contains(r.Path, "attacker") {
			t.Errorf("followed a foreign link: %+v", r)
		}
	}
	st := e.f[1].Stats()
	if !st.Leading || st.InitialRows == 0 {
		t.Errorf("replica 1: %+v, want leading after reading the tables again", st)
	}
	e.bus.mu.Lock()
	last := e.bus.events[len(e.bus.events)-1]
	e.bus.mu.Unlock()
	if !last.Down {
		t.Errorf("the takeover's event %+v: want Down (changes since the last poll are unknown)", last)
	}
}

// When the leader's poll fails, its event says so (Down), and every
// replica falls back to normal freshness at once rather than trusting
// answers the feed no longer watches; the next good poll brings them up.
func TestFleetFeedLeaderFailureFallsBack(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 2)
	e.tickAll()
	e.outcomes(t, demoOrder)
	// Every request fails during this tick (the batch, and the plain GETs
	// the follower falls back to).
	remove := e.sim.InjectFault(dataversetest.Fault{Status: 503})
	e.clk.Advance(30 * time.Second)
	e.tickAll()
	remove()
	if st := e.f[1].Stats(); st.Up {
		t.Fatalf("replica 1 after the leader's failed poll: %+v, want down", st)
	}
	e.clk.Advance(2 * time.Minute) // past the 1m normal TTL
	if got := e.outcomes(t, demoOrder); !strings.HasPrefix(got[1], "miss") && !strings.HasPrefix(got[0], "miss") {
		t.Errorf("answers 2 minutes after the feed went down: %v, want one miss (then the shared level)", got)
	}
	e.tickAll()
	if st := e.f[1].Stats(); !st.Up {
		t.Errorf("replica 1 after the next good poll: %+v, want up", st)
	}
}

// The shared level keeps answers with their normal TTL; one that another
// replica fetched before a change the feed has since reported is not
// served, though its TTL has not run out: the replica asks Dataverse.
func TestFleetFeedSharedCopyOlderThanAChange(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, 2)
	e.tickAll()
	o, _, err := e.g[0].Order(context.Background(), demoOrder) // into replica 0's cache and the shared level
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "salesorders("+o.ID+")", `{"name":"Renamed after replica 0 fetched it"}`)
	e.clk.Advance(20 * time.Second) // within the order's 1m TTL
	e.tickAll()
	got, m, err := e.g[1].Order(context.Background(), demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Renamed after replica 0 fetched it" || m.Outcome != Miss {
		t.Errorf("replica 1 answered %q (%v), want the new name from Dataverse", got.Name, m.Outcome)
	}
}
