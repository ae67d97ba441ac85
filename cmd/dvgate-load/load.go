package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dvgate/dvgate/bench"
	"github.com/dvgate/dvgate/testdata"
)

// recorder collects one client's measurements; each client has its own.
type recorder struct {
	lat       []time.Duration
	errs      int64
	status    map[string]int64
	hit, miss int64
	firstErr  error
}

func (r *recorder) fail(err error) {
	r.errs++
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// get GETs u, reads the body and records latency, status and X-Cache.
// Statuses other than those in ok are errors.
func (r *recorder) get(ctx context.Context, c *http.Client, u string, ok ...int) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.fail(err)
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	r.lat = append(r.lat, time.Since(t0))
	r.status[strconv.Itoa(resp.StatusCode)]++
	switch resp.Header.Get("X-Cache") {
	case "hit":
		r.hit++
	case "":
	default:
		r.miss++
	}
	if !slices.Contains(ok, resp.StatusCode) {
		r.fail(fmt.Errorf("GET %s: status %d", u, resp.StatusCode))
	}
}

// slice is the raw data of one or more timed slices of a run.
type slice struct {
	recs    []*recorder
	elapsed time.Duration
	steps   int64
}

// drive runs clients closed-loop workers until d has passed or (limit > 0)
// limit steps were taken.
func drive(ctx context.Context, clients int, d time.Duration, limit int64,
	step func(ctx context.Context, client int, r *recorder)) *slice {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	recs := make([]*recorder, clients)
	var steps atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range recs {
		rec := &recorder{status: map[string]int64{}}
		recs[i] = rec
		wg.Go(func() {
			for ctx.Err() == nil {
				if limit > 0 && steps.Add(1) > limit {
					return
				}
				step(ctx, i, rec)
			}
		})
	}
	wg.Wait()
	return &slice{recs: recs, elapsed: time.Since(start), steps: min(steps.Load(), max(limit, 0))}
}

// summarize merges the slices of one run into a LoadRun.
func summarize(name, tool string, clients int, runs ...*slice) bench.LoadRun {
	res := bench.LoadRun{Name: name, Tool: tool, Clients: clients, Statuses: map[string]int64{}, Upstream: -1, Tokens: -1}
	var lat []time.Duration
	var elapsed time.Duration
	for _, x := range runs {
		elapsed += x.elapsed
		res.Tickets += x.steps
		for _, r := range x.recs {
			lat = append(lat, r.lat...)
			res.Errors += r.errs
			res.CacheHits += r.hit
			res.CacheMisses += r.miss
			for k, v := range r.status {
				res.Statuses[k] += v
			}
			if r.firstErr != nil && res.FirstError == "" {
				res.FirstError = r.firstErr.Error()
			}
		}
	}
	res.Seconds = elapsed.Seconds()
	res.Requests = int64(len(lat))
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	slices.Sort(lat)
	res.P50Ms, res.P90Ms, res.P99Ms = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99)
	if len(lat) > 0 {
		res.MaxMs = ms(lat[len(lat)-1])
	}
	return res
}

// pct is the nearest-rank percentile of sorted durations, in ms.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return ms(sorted[max(0, min(i, len(sorted)-1))])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

const goTool = "dvgate-load (Go net/http client, closed loop)"

// target is the sidecar under load and how to observe its upstream.
type target struct {
	url   string
	stack *bench.Stack // nil for a remote sidecar
	rss   *rssSampler  // remote only
}

// counters returns the upstream and token request counts so far (-1 when
// not observable).
func (t *target) counters(ctx context.Context) (upstream, tokens int64) {
	if t.stack != nil {
		return int64(t.stack.Sim.WebAPIRequests()), int64(t.stack.Sim.TokenRequests())
	}
	m, err := scrape(ctx, t.url)
	if err != nil {
		return -1, -1
	}
	return int64(m.sum("dvgate_upstream_calls_total")), -1
}

func (t *target) measure(ctx context.Context, f func() bench.LoadRun) bench.LoadRun {
	u0, t0 := t.counters(ctx)
	res := f()
	u1, t1 := t.counters(ctx)
	if u0 >= 0 && u1 >= 0 {
		res.Upstream = u1 - u0
	}
	if t0 >= 0 && t1 >= 0 {
		res.Tokens = t1 - t0
	}
	return res
}

func execute(ctx context.Context, o options, log io.Writer) (*bench.LoadReport, error) {
	rep := &bench.LoadReport{Scenario: o.scenario, Clients: o.clients, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	t := &target{url: o.url}
	if o.inprocess {
		st, err := bench.StartStack(ctx, bench.StackConfig{Latency: o.latency, CacheBytes: o.cacheBytes})
		if err != nil {
			return nil, fmt.Errorf("starting the in-process sidecar: %w", err)
		}
		defer st.Close()
		t.stack, t.url = st, st.URL
		rep.Target = "in-process sidecar on the Dataverse simulator (" + st.URL + ")"
		rep.InjectedLatencyMs = ms(o.latency)
	} else {
		rep.Target = "sidecar at " + o.url
		t.rss = startRSSSampler(ctx, o.url)
	}
	client := bench.NewHTTPClient(o.clients)
	defer client.CloseIdleConnections()
	var err error
	switch o.scenario {
	case "hit":
		err = runHit(ctx, o, t, client, rep, log)
	default:
		err = runMix(ctx, o, t, client, rep, log)
	}
	if err != nil {
		return nil, err
	}
	if t.stack != nil {
		rep.TokensSinceStart = int64(t.stack.Sim.TokenRequests())
		rep.PeakRSSMB, rep.RSSSource = vmHWM(), "VmHWM of this process (load generator + sidecar + simulator)"
	} else if peak := t.rss.stop(); peak > 0 {
		rep.PeakRSSMB, rep.RSSSource = peak, "max of the sidecar's process_resident_memory_bytes sampled every 250 ms"
	}
	return rep, nil
}

// runHit measures the plain cache-hit path: one cached order, all clients.
func runHit(ctx context.Context, o options, t *target, client *http.Client, rep *bench.LoadReport, log io.Writer) error {
	u := t.url + o.path
	body, err := warm(ctx, client, u)
	if err != nil {
		return err
	}
	rep.BodyBytes = len(body)
	fmt.Fprintf(log, "hit: %d clients for %v on %s (%d-byte answer)\n", o.clients, o.duration, u, len(body))
	step := func(url string) func(context.Context, int, *recorder) {
		return func(ctx context.Context, _ int, r *recorder) { r.get(ctx, client, url, http.StatusOK) }
	}
	// The sidecar and the baseline alternate in o.rounds slices, so that
	// the noise of a shared machine hits both alike.
	var fixedURL string
	if o.baseline == "fixed" {
		base, stop, err := bench.StartFixed(body)
		if err != nil {
			return err
		}
		defer stop()
		fixedURL = base + "/fixed"
	}
	per := o.duration / time.Duration(o.rounds)
	var side, fixed []*slice
	u0, t0 := t.counters(ctx)
	for range o.rounds {
		side = append(side, drive(ctx, o.clients, per, 0, step(u)))
		if fixedURL != "" {
			fixed = append(fixed, drive(ctx, o.clients, per, 0, step(fixedURL)))
		}
	}
	res := summarize("sidecar", goTool, o.clients, side...)
	if u1, t1 := t.counters(ctx); u0 >= 0 && u1 >= 0 {
		res.Upstream, res.Tokens = u1-u0, max(-1, t1-t0)
	}
	rep.Runs = append(rep.Runs, res)
	if fixedURL != "" {
		res := summarize("baseline-fixed", goTool, o.clients, fixed...)
		res.Upstream, res.Tokens = 0, 0
		rep.Runs = append(rep.Runs, res)
	}
	wrk := wrkPath(o.wrk)
	if wrk == "" {
		rep.Notes = append(rep.Notes, "wrk figures skipped: wrk not found (-wrk "+o.wrk+")")
		return nil
	}
	// wrk too alternates the two targets, one wrk run per slice; the
	// percentiles are the mean of the slices' (wrk reports no histogram).
	targets := []struct{ name, url string }{{"sidecar", u}, {"baseline-fixed", fixedURL}}
	if fixedURL == "" {
		targets = targets[:1]
	}
	parts := make([][]bench.LoadRun, len(targets))
	for range o.rounds {
		for i, w := range targets {
			res, err := runWrk(ctx, wrk, w.name, w.url, o.clients, per)
			if err != nil {
				rep.Notes = append(rep.Notes, "wrk "+w.name+" failed: "+err.Error())
				return nil
			}
			parts[i] = append(parts[i], res)
		}
	}
	for _, p := range parts {
		rep.Runs = append(rep.Runs, mergeWrk(p))
	}
	return nil
}

// mergeWrk combines wrk runs of one target: counts add up, percentiles are
// averaged, the maximum is the largest.
func mergeWrk(rs []bench.LoadRun) bench.LoadRun {
	m := rs[0]
	m.Requests, m.Seconds, m.Errors, m.P50Ms, m.P90Ms, m.P99Ms, m.MaxMs = 0, 0, 0, 0, 0, 0, 0
	for _, r := range rs {
		m.Requests += r.Requests
		m.Seconds += r.Seconds
		m.Errors += r.Errors
		m.P50Ms += r.P50Ms / float64(len(rs))
		m.P90Ms += r.P90Ms / float64(len(rs))
		m.P99Ms += r.P99Ms / float64(len(rs))
		m.MaxMs = max(m.MaxMs, r.MaxMs)
	}
	m.RPS = float64(m.Requests) / m.Seconds
	return m
}

// warm requests u until the sidecar answers it from its cache and returns
// the answer's bytes.
func warm(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	for range 50 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d: %.200s", u, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Cache") == "hit" {
			return body, nil
		}
		time.Sleep(10 * time.Millisecond) // let the cache admit the entry
	}
	return nil, errors.New("the order never became a cache hit")
}

// runMix runs tickets through the sidecar, then the naive baseline.
func runMix(ctx context.Context, o options, t *target, client *http.Client, rep *bench.LoadReport, log io.Writer) error {
	seed, err := bench.ParseSeed(testdata.DemoSeed())
	if err != nil {
		return err
	}
	wcfg := bench.WorkloadConfig{Seed: seed, HitShare: o.hit, OrderShare: o.orders, ZipfS: o.zipf, RandSeed: o.seed}
	rep.Workload = fmt.Sprintf("Zipf s=%.2f over %d orders; hit share %.2f (the rest never-seen keys); %.0f%% of tickets also look up an order",
		o.zipf, len(seed.Orders), o.hit, 100*o.orders)
	fmt.Fprintf(log, "mix: %d clients, %s\n", o.clients, rep.Workload)
	newSources := func() ([]*bench.Source, error) {
		w, err := bench.NewWorkload(wcfg)
		if err != nil {
			return nil, err
		}
		src := make([]*bench.Source, o.clients)
		for i := range src {
			src[i] = w.Source(i)
		}
		return src, nil
	}
	src, err := newSources()
	if err != nil {
		return err
	}
	rep.Runs = append(rep.Runs, t.measure(ctx, func() bench.LoadRun {
		return summarize("sidecar", goTool, o.clients, drive(ctx, o.clients, o.duration, o.tickets, func(ctx context.Context, i int, r *recorder) {
			tk := src[i].Next()
			r.get(ctx, client, t.url+"/v1/customers?email="+url.QueryEscape(tk.Email), http.StatusOK, http.StatusNotFound)
			if tk.Order != "" {
				r.get(ctx, client, t.url+"/v1/orders/"+url.PathEscape(tk.Order), http.StatusOK, http.StatusNotFound)
			}
		}))
	}))
	if o.baseline != "naive" {
		return nil
	}
	conn, err := t.stack.NewConn()
	if err != nil {
		return err
	}
	defer conn.Close()
	naive := &bench.Naive{Conn: conn}
	if src, err = newSources(); err != nil {
		return err
	}
	timed := func(ctx context.Context, r *recorder, f func(context.Context) (bool, error)) {
		t0 := time.Now()
		found, err := f(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err)
			}
			return
		}
		r.lat = append(r.lat, time.Since(t0))
		if found {
			r.status["found"]++
		} else {
			r.status["not_found"]++
		}
	}
	res := t.measure(ctx, func() bench.LoadRun {
		return summarize("baseline-naive", "dvgate-load (bench.Naive over dataverse.Conn, closed loop)", o.clients,
			drive(ctx, o.clients, o.duration, o.tickets, func(ctx context.Context, i int, r *recorder) {
				tk := src[i].Next()
				timed(ctx, r, func(ctx context.Context) (bool, error) { return naive.Customer(ctx, tk.Email) })
				if tk.Order != "" {
					timed(ctx, r, func(ctx context.Context) (bool, error) { return naive.Order(ctx, tk.Order) })
				}
			}))
	})
	rep.Runs = append(rep.Runs, res)
	return nil
}

func wrkPath(flag string) string {
	switch flag {
	case "off", "":
		return ""
	case "auto":
		p, _ := exec.LookPath("wrk")
		return p
	default:
		p, _ := exec.LookPath(flag)
		return p
	}
}
