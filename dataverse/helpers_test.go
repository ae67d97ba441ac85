package dataverse

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// fakeClock's waits complete at once: After(d) moves the clock to the end
// of the wait and records d. Shared with the simulator (Options.Clock), it
// makes the simulator's request log show when each request would have been
// sent, so tests assert on timing without sleeping.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	// Concurrent waiters for the same instant (the gate) all end there.
	if end := c.now.Add(d); end.After(c.now) {
		c.now = end
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a simulator plus a Conn signed in to it, sharing a fake clock.
type env struct {
	sim   *dataversetest.Server
	conn  *Conn
	clock *fakeClock
	logs  *syncBuffer
}

// newSim starts a simulator; without a Seed it has no rows (loading the demo
// data costs half a second under -race, and most tests need none).
func newSim(t testing.TB, opts dataversetest.Options) *dataversetest.Server {
	t.Helper()
	if opts.Seed == nil {
		opts.Seed = dataversetest.EmptySeed
	}
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// simConfig is the Config that signs in to sim with its client secret.
func simConfig(sim *dataversetest.Server) Config {
	return Config{
		URL: sim.URL(), TenantID: sim.TenantID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		AuthorityHost: sim.AuthorityHost(), HTTPClient: sim.Client(),
	}
}

// newEnv starts a simulator on a fake clock (unless opts.Clock is set) and
// connects to it with the same clock; mod may adjust the Config.
func newEnv(t testing.TB, opts dataversetest.Options, mod func(*Config)) *env {
	t.Helper()
	clk := newFakeClock()
	if opts.Clock == nil {
		opts.Clock = clk.Now
	}
	sim := newSim(t, opts)
	logs := &syncBuffer{}
	cfg := simConfig(sim)
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{sim: sim, conn: c, clock: clk, logs: logs}
}

// noDNSClient is an HTTP client trusting sim (nil: the system roots) whose
// dialer fails every host name with the resolver's "no such host" error, as
// on a machine where the name does not resolve, without sending any DNS
// query. IP literals (the simulator) are dialed normally.
func noDNSClient(sim *dataversetest.Server) *http.Client {
	t := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if net.ParseIP(host) == nil {
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	if sim != nil {
		t.TLSClientConfig = sim.TLSConfig()
	} else {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}
}
