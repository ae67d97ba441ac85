package dataverse

import "time"

// Clock is the time source for retry backoff and the throttling gate. Tests
// pass a fake whose After completes at once (recording the duration) so that
// retry paths run without real sleeps. Implementations must be safe for
// concurrent use.
//
// Context deadlines are always judged against real time (time.Until), since
// the context package fires them in real time.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
