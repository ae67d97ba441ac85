package dataversetest

import (
	"fmt"
	"sync"
	"time"
)

// Limits configure service protection, evaluated per user (per token
// subject) over a sliding window, like Dataverse's per-web-server limits.
// Zero fields take the real defaults; a negative field disables that limit.
type Limits struct {
	Requests      int           // requests per Window; default 6000
	ExecutionTime time.Duration // combined execution time per Window; default 1,200 s
	Window        time.Duration // default 300 s
	Concurrent    int           // concurrent requests; default 52
	// AggregateRecords is the most rows a $apply may aggregate; default
	// 50,000 (wire facts §4.1). It is a query limit, not service protection.
	AggregateRecords int
}

// NoLimits disables service protection (for benchmarks).
var NoLimits = Limits{Requests: -1, ExecutionTime: -1, Concurrent: -1}

func (l Limits) withDefaults() Limits {
	if l.Requests == 0 {
		l.Requests = 6000
	}
	if l.ExecutionTime == 0 {
		l.ExecutionTime = 1200 * time.Second
	}
	if l.Window <= 0 {
		l.Window = 300 * time.Second
	}
	if l.Concurrent == 0 {
		l.Concurrent = 52
	}
	if l.AggregateRecords <= 0 {
		l.AggregateRecords = 50_000
	}
	return l
}

// limiter tracks per-user windows. Its mutex is held only for bookkeeping.
type limiter struct {
	lim   Limits
	mu    sync.Mutex
	users map[string]*userWindow
}

type userWindow struct {
	starts   []time.Time  // request arrival times in the window, oldest first
	execs    []execRecord // finished requests' execution time
	inflight int
}

type execRecord struct {
	end time.Time
	d   time.Duration
}

func newLimiter(l Limits) *limiter {
	return &limiter{lim: l, users: map[string]*userWindow{}}
}

// throttleError is a 429 decision.
type throttleError struct {
	code       string
	msg        string
	retryAfter time.Duration
}

// quota is what remains of a user's window after admitting a request; the
// Web API reports it in the x-ms-ratelimit-* headers. A negative field means
// that limit is disabled.
type quota struct {
	requests int
	execTime time.Duration
}

// admit decides whether a request of user may run now. On success the caller
// must call done with the request's end time.
func (l *limiter) admit(user string, now time.Time) (done func(end time.Time), left quota, err *throttleError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[user]
	if u == nil {
		u = &userWindow{}
		l.users[user] = u
	}
	cut := now.Add(-l.lim.Window)
	for len(u.starts) > 0 && !u.starts[0].After(cut) {
		u.starts = u.starts[1:]
	}
	for len(u.execs) > 0 && !u.execs[0].end.After(cut) {
		u.execs = u.execs[1:]
	}
	if l.lim.Concurrent > 0 && u.inflight >= l.lim.Concurrent {
		return nil, left, &throttleError{"0x80072326", fmt.Sprintf("Number of concurrent requests exceeded the limit of %d.", l.lim.Concurrent), time.Second}
	}
	if l.lim.Requests > 0 && len(u.starts) >= l.lim.Requests {
		return nil, left, &throttleError{"0x80072322",
			fmt.Sprintf("Number of requests exceeded the limit of %d over time window of %d seconds.", l.lim.Requests, int(l.lim.Window/time.Second)),
			u.starts[0].Add(l.lim.Window).Sub(now)}
	}
	left = quota{requests: -1, execTime: -1}
	if l.lim.ExecutionTime > 0 {
		var sum time.Duration
		for _, e := range u.execs {
			sum += e.d
		}
		left.execTime = l.lim.ExecutionTime - sum
		if sum >= l.lim.ExecutionTime {
			return nil, left, &throttleError{"0x80072321",
				fmt.Sprintf("Combined execution time of incoming requests exceeded limit of %s  milliseconds over time window of %d seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
					groupThousands(l.lim.ExecutionTime.Milliseconds()), int(l.lim.Window/time.Second)),
				u.execs[0].end.Add(l.lim.Window).Sub(now)}
		}
	}
	u.starts = append(u.starts, now)
	u.inflight++
	if l.lim.Requests > 0 {
		left.requests = l.lim.Requests - len(u.starts)
	}
	return func(end time.Time) {
		l.mu.Lock()
		defer l.mu.Unlock()
		u.inflight--
		if d := end.Sub(now); d > 0 {
			u.execs = append(u.execs, execRecord{end, d})
		}
	}, left, nil
}

// groupThousands formats n as 1,200,000.
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
