package dataverse

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// holdSlot takes the connection's only concurrency slot with a streamed
// response whose body stays open until the test ends.
func holdSlot(t *testing.T, e *env) {
	t.Helper()
	resp, err := e.conn.Stream(t.Context(), "WhoAmI")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
}

// With every slot taken, a request waits at most SlotWait and is then shed
// with KindBusy and a Retry-After, without reaching Dataverse.
func TestSlotWaitIsBounded(t *testing.T) {
	t.Parallel()
	const wait = 30 * time.Millisecond
	e := signedIn(t, dataversetest.Options{}, func(c *Config) { c.MaxConcurrent, c.SlotWait = 1, wait })
	holdSlot(t, e)
	start := time.Now()
	_, err := e.conn.WhoAmI(t.Context())
	took := time.Since(start)
	var de *Error
	if !errors.As(err, &de) || de.Kind != KindBusy || de.RetryAfter <= 0 || de.Remedy != RemedyBusy {
		t.Fatalf("WhoAmI = %v, want KindBusy with a RetryAfter", err)
	}
	if took < wait {
		t.Errorf("shed after %v, before SlotWait %v", took, wait)
	}
	if n := e.sim.WebAPIRequests(); n != 1 {
		t.Errorf("Dataverse saw %d requests, want 1 (the slot holder)", n)
	}
	if s := e.conn.Stats(); s.Shed != 1 || s.Requests != 1 {
		t.Errorf("stats %+v, want Shed 1, Requests 1", s)
	}
}

// An abandoned request waiting for a slot is not sent; one already sent
// completes.
func TestAbandon(t *testing.T) {
	t.Parallel()
	t.Run("waiting for a slot", func(t *testing.T) {
		t.Parallel()
		e := signedIn(t, dataversetest.Options{}, func(c *Config) { c.MaxConcurrent, c.SlotWait = 1, -1 })
		holdSlot(t, e)
		ab, abandon := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.conn.WhoAmI(WithAbandon(t.Context(), ab))
			done <- err
		}()
		abandon()
		err := <-done
		if KindOf(err) != KindCanceled || !errors.Is(err, ErrAbandoned) {
			t.Fatalf("WhoAmI = %v, want KindCanceled wrapping ErrAbandoned", err)
		}
		if n := e.sim.WebAPIRequests(); n != 1 {
			t.Errorf("Dataverse saw %d requests, want 1 (the slot holder)", n)
		}
		if s := e.conn.Stats(); s.Abandoned != 1 {
			t.Errorf("stats %+v, want Abandoned 1", s)
		}
	})
	t.Run("already sent", func(t *testing.T) {
		t.Parallel()
		e := signedIn(t, dataversetest.Options{}, nil)
		e.sim.InjectFault(dataversetest.Fault{Latency: 200 * time.Millisecond, Count: 1})
		ab, abandon := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.conn.WhoAmI(WithAbandon(context.Background(), ab))
			done <- err
		}()
		for e.conn.Stats().Requests == 0 {
			runtime.Gosched()
		}
		abandon()
		if err := <-done; err != nil {
			t.Fatalf("WhoAmI abandoned after it was sent = %v, want its answer", err)
		}
	})
	t.Run("sent, then its slot is needed", func(t *testing.T) {
		t.Parallel()
		e := signedIn(t, dataversetest.Options{}, func(c *Config) { c.MaxConcurrent = 1 })
		e.sim.InjectFault(dataversetest.Fault{Latency: time.Minute, Count: 1})
		ab, abandon := context.WithCancel(context.Background())
		orphan := make(chan error, 1)
		go func() {
			_, err := e.conn.WhoAmI(WithAbandon(context.Background(), ab))
			orphan <- err
		}()
		for e.conn.Stats().Requests == 0 {
			runtime.Gosched()
		}
		abandon()
		// Nobody needs the slot yet: the orphan runs on.
		select {
		case err := <-orphan:
			t.Fatalf("the orphan ended before its slot was needed: %v", err)
		default:
		}
		// A caller who gives up before preemptAfter preempts nothing.
		impatient, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if _, err := e.conn.WhoAmI(impatient); KindOf(err) != KindTimeout {
			t.Fatalf("impatient WhoAmI = %v, want a timeout", err)
		}
		if s := e.conn.Stats(); s.Preempted != 0 {
			t.Fatalf("stats %+v: an impatient waiter preempted the orphan", s)
		}
		if _, err := e.conn.WhoAmI(t.Context()); err != nil {
			t.Fatalf("WhoAmI waiting for the orphan's slot = %v", err)
		}
		if err := <-orphan; !errors.Is(err, ErrAbandoned) {
			t.Errorf("the orphan = %v, want ErrAbandoned", err)
		}
		if s := e.conn.Stats(); s.Preempted != 1 {
			t.Errorf("stats %+v, want Preempted 1", s)
		}
	})
}
