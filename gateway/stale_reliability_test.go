package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestStaleAtCallerDeadline: when Dataverse does not answer before the
// caller's deadline (a hang, a slow body, a long Retry-After), a caller
// with a usable stale entry gets it; a canceled caller and a caller
// without an entry get their context error. The shared call carries on and
// refreshes the cache when it ends.
func TestStaleAtCallerDeadline(t *testing.T) {
	t.Parallel()
	c, clk := newTestCore(t, CacheConfig{})
	release := make(chan struct{})
	var calls atomic.Int32
	sp := spec{kind: "order", key: "k", fresh: time.Minute, load: func(ctx context.Context) (any, int64, error) {
		if calls.Add(1) == 1 {
			return "v1", 2, nil
		}
		select {
		case <-release:
			return "v2", 2, nil
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}}
	if _, _, err := c.get(t.Context(), sp); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	v, m, err := c.get(ctx, sp)
	if err != nil || v != "v1" || m.Outcome != Stale || m.Age != 2*time.Minute {
		t.Errorf("caller past its deadline: %v %+v %v, want v1 stale", v, m, err)
	}

	canceled, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	if _, _, err := c.get(canceled, sp); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller: %v", err)
	}
	none := spec{kind: "order", key: "other", fresh: time.Minute, load: sp.load}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if _, _, err := c.get(ctx2, none); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller without an entry: %v", err)
	}

	// A patient caller joins the shared call still running (or, if it
	// just ended, hits its answer): v2 either way.
	close(release)
	if v, m, err := c.get(t.Context(), sp); err != nil || v != "v2" || m.Outcome == Stale {
		t.Errorf("after the refresh: %v %+v %v", v, m, err)
	}
}
