package gateway

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for freshness decisions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// errTransient and errAuth stand in for upstream errors in core tests.
var (
	errTransient = errors.New("upstream 503")
	errAuth      = errors.New("upstream 401")
)

// newTestCore returns a core with a fake clock and its own cache, closed
// at the end of the test.
func newTestCore(t testing.TB, cc CacheConfig) (*core, *fakeClock) {
	t.Helper()
	cache, err := NewCache(cc)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	c := &core{
		name:         "test",
		cache:        cache,
		clock:        clk.Now,
		notFoundTTL:  30 * time.Second,
		staleTTL:     time.Hour,
		timeout:      30 * time.Second,
		log:          discardLogger,
		transient:    func(err error) bool { return errors.Is(err, errTransient) },
		outcomeLabel: func(err error) string { return "error" },
	}
	t.Cleanup(func() {
		c.close()
		cache.Close()
	})
	return c, clk
}
