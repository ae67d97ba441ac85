// Command benchfleet measures the shared Redis level (make bench-fleet) and
// writes the "## Fleet (Redis second level)" section of BENCHMARKS.md,
// leaving the rest of the file alone.
//
// It runs 4 replicas in one process, each wired as dvgate serve wires it
// (sidecar.Open: its own Dataverse connection, in-process cache, Redis
// client and fleet transport, as 4 processes would), looked up in process
// through their integrations,
// against one dataversetest simulator with an injected round trip and one
// throw-away redis-server, under the Zipf ticket workload of package bench
// spread round-robin over the replicas (a load balancer), once alone and
// once with the shared level; then it times lookups that miss the
// in-process cache and hit Redis against in-process hits and Dataverse
// misses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dvgate/dvgate/bench"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/fleet/redistest"
	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar"
	"github.com/dvgate/dvgate/testdata"
)

const heading = "## Fleet (Redis second level)"

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file whose fleet section to write (\"-\" = stdout)")
	replicas := flag.Int("replicas", 4, "gateway replicas")
	clients := flag.Int("clients", 16, "concurrent clients, spread round-robin over the replicas")
	tickets := flag.Int("tickets", 250, "tickets per client")
	rtt := flag.Duration("rtt", 20*time.Millisecond, "round trip injected before every Dataverse answer")
	flag.Parse()
	if err := run(*out, *replicas, *clients, *tickets, *rtt); err != nil {
		fmt.Fprintln(os.Stderr, "benchfleet:", err)
		os.Exit(1)
	}
}

var discard = slog.New(slog.DiscardHandler)

type env struct {
	sim      *dataversetest.Server
	redisURL string
	// gatherers of every replica started, for failOpen.
	mu        sync.Mutex
	gatherers []prometheus.Gatherer
}

// failOpen counts the Redis operations that failed or were skipped.
func (e *env) failOpen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var mfs []*dto.MetricFamily
	for _, g := range e.gatherers {
		m, _ := g.Gather()
		mfs = append(mfs, m...)
	}
	n := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && (l.GetValue() == "error" || l.GetValue() == "timeout" || l.GetValue() == "skipped") {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

type replica struct {
	srv     *sidecar.Server
	b       integration.Backend
	release func()
}

// replica starts a sidecar as dvgate serve does, signed in, with the
// shared level when shared.
func (e *env) replica(ctx context.Context, shared bool, prefix string) (*replica, error) {
	vars := e.sim.Env()
	vars[integration.EnvBudgetRate] = "-1" // measured: the shared level, not the budget
	if shared {
		vars[integration.EnvRedisURL], vars[integration.EnvRedisPrefix] = e.redisURL, prefix
	}
	srv, err := sidecar.Open(ctx, sidecar.Options{Listen: "127.0.0.1:0", Logger: discard, Integrations: integration.Options{
		Source: integration.Source{Getenv: integration.MapEnv(vars, nil), ReadFile: integration.NoFiles}, HTTPClient: e.sim.Client()}})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.gatherers = append(e.gatherers, srv.Gatherer())
	e.mu.Unlock()
	b, release, ok := srv.Integrations().Acquire(integration.Default)
	if !ok {
		_ = srv.Close(ctx)
		return nil, errors.New("no default integration")
	}
	return &replica{srv: srv, b: b, release: release}, nil
}

func (r *replica) close() {
	r.release()
	_ = r.srv.Close(context.Background())
}

type mixResult struct {
	upstream int
	lookups  int
	elapsed  time.Duration
	p50, p99 time.Duration
}

// mix runs the workload over n fresh replicas and counts the Dataverse
// requests it caused.
func (e *env) mix(ctx context.Context, w *bench.Workload, n, clients, tickets int, shared bool, prefix string) (mixResult, error) {
	reps := make([]*replica, n)
	for i := range reps {
		r, err := e.replica(ctx, shared, prefix) // signed in outside the measurement
		if err != nil {
			return mixResult{}, err
		}
		defer r.close()
		reps[i] = r
	}
	before := e.sim.WebAPIRequests()
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		src := w.Source(c)
		b := reps[c%n].b
		wg.Go(func() {
			own := make([]time.Duration, 0, 2*tickets)
			for range tickets {
				tk := src.Next()
				t0 := time.Now()
				_, _, err := b.Customer(ctx, tk.Email, "")
				own = append(own, time.Since(t0))
				if err != nil && integration.ErrorOf(err, "").Code != integration.CodeNotFound {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
				if tk.Order != "" {
					t0 = time.Now()
					_, _, err = b.Order(ctx, tk.Order)
					own = append(own, time.Since(t0))
					if err != nil && integration.ErrorOf(err, "").Code != integration.CodeNotFound {
						mu.Lock()
						firstErr = cmpErr(firstErr, err)
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			lat = append(lat, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return mixResult{}, firstErr
	}
	res := mixResult{upstream: e.sim.WebAPIRequests() - before, lookups: len(lat), elapsed: time.Since(start)}
	res.p50, res.p99 = pct(lat, 50), pct(lat, 99)
	return res, nil
}

func ratio(alone, shared mixResult) float64 {
	return float64(alone.upstream) / float64(max(shared.upstream, 1))
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// hop times order lookups by number on replicas with cold in-process
// caches: from Redis (L1 miss, L2 hit), from the in-process cache, and from
// Dataverse (no shared level).
func (e *env) hop(ctx context.Context, orders []string) (l2, l1, dv []time.Duration, err error) {
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
	warm, err := e.replica(ctx, true, prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	defer warm.close()
	for _, o := range orders {
		if _, _, err := warm.b.Order(ctx, o); err != nil {
			return nil, nil, nil, err
		}
	}
	cold, err := e.replica(ctx, true, prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	defer cold.close()
	alone, err := e.replica(ctx, false, "")
	if err != nil {
		return nil, nil, nil, err
	}
	defer alone.close()
	// Warm the Redis connection pool as a running replica's would be, with
	// the first order (not measured).
	if _, _, err := cold.b.Order(ctx, orders[0]); err != nil {
		return nil, nil, nil, err
	}
	orders = orders[1:]
	before := e.sim.WebAPIRequests()
	for _, o := range orders {
		t0 := time.Now()
		_, m, err := cold.b.Order(ctx, o)
		d := time.Since(t0)
		if err != nil {
			return nil, nil, nil, err
		}
		if m.Outcome == gateway.Hit { // else Redis failed open (counted) and Dataverse answered
			l2 = append(l2, d)
		}
	}
	if n := e.sim.WebAPIRequests() - before; n != len(orders)-len(l2) {
		return nil, nil, nil, fmt.Errorf("%d Dataverse requests for %d Redis misses", n, len(orders)-len(l2))
	}
	for _, o := range orders {
		t0 := time.Now()
		if _, _, err := cold.b.Order(ctx, o); err != nil {
			return nil, nil, nil, err
		}
		l1 = append(l1, time.Since(t0))
	}
	for _, o := range orders {
		t0 := time.Now()
		if _, _, err := alone.b.Order(ctx, o); err != nil {
			return nil, nil, nil, err
		}
		dv = append(dv, time.Since(t0))
	}
	return l2, l1, dv, nil
}

func run(out string, n, clients, tickets int, rtt time.Duration) error {
	ctx := context.Background()
	rs, err := redistest.Run()
	if err != nil {
		return err
	}
	defer rs.Stop()
	sim, err := dataversetest.NewServer(dataversetest.Options{Limits: dataversetest.NoLimits, Logger: discard})
	if err != nil {
		return err
	}
	defer sim.Close()
	remove := sim.InjectFault(dataversetest.Fault{Latency: rtt})
	e := &env{sim: sim, redisURL: rs.URL}
	seed, err := bench.ParseSeed(testdata.DemoSeed())
	if err != nil {
		return err
	}
	type mixRun struct {
		hit    float64
		shared bool
		res    mixResult
	}
	runs := []mixRun{{0.95, false, mixResult{}}, {0.95, true, mixResult{}}, {1, false, mixResult{}}, {1, true, mixResult{}}}
	for i := range runs {
		w, err := bench.NewWorkload(bench.WorkloadConfig{Seed: seed, HitShare: runs[i].hit, OrderShare: 0.6, ZipfS: 1.1, RandSeed: 1})
		if err != nil {
			return err
		}
		if runs[i].res, err = e.mix(ctx, w, n, clients, tickets, runs[i].shared, fmt.Sprintf("mix%d", time.Now().UnixNano())); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "mix hit=%v shared=%v: %+v; fail-open Redis ops so far %d\n", runs[i].hit, runs[i].shared, runs[i].res, e.failOpen())
	}
	// The hop is timed with the same injected round trip for the Dataverse
	// column, over 200 orders of the seed.
	orders := make([]string, 0, 200)
	for _, o := range seed.Orders {
		if len(orders) == cap(orders) {
			break
		}
		orders = append(orders, o.Number)
	}
	failed := e.failOpen()
	l2, l1, dv, err := e.hop(ctx, orders)
	if err != nil {
		return err
	}
	remove()
	_, _, dvRaw, err := e.hop(ctx, orders)
	if err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", heading)
	fmt.Fprintf(&b, "Written by `make bench-fleet` (fleet/internal/benchfleet) on %s, %s/%s, %d CPUs, %s; redis-server %s on loopback, "+
		"the simulator with a %v round trip injected before every Web API answer. `make bench-report` rewrites this file without "+
		"this section: run `make bench-fleet` after it.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), redisVersion(), rtt)
	fmt.Fprintf(&b, "**Upstream requests, %d replicas** (each: own connection, 64 MiB in-process cache, own Redis client; all cold at the start). "+
		"Workload: bench's Zipf tickets (s=1.1 over %d orders, 95%% seed keys, 5%% never-seen keys, 60%% of tickets also look up an order), "+
		"%d clients x %d tickets spread round-robin over the replicas.\n\n", n, len(seed.Orders), clients, tickets)
	b.WriteString("| Seed keys | Replicas share | Lookups | Dataverse requests | Requests per lookup | Lookup p50 | Lookup p99 | Wall time |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		name := "nothing (in-process cache only)"
		if r.shared {
			name = "Redis second level + lock + throttle gate"
		}
		fmt.Fprintf(&b, "| %.0f%% | %s | %d | %d | %.3f | %s | %s | %s |\n", 100*r.hit, name, r.res.lookups, r.res.upstream,
			float64(r.res.upstream)/float64(r.res.lookups), ms(r.res.p50), ms(r.res.p99), r.res.elapsed.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\nWith the shared level the fleet asked Dataverse %.1fx less on the mixed workload (%d vs %d requests) and %.1fx less on seed keys only (%d vs %d): "+
		"a key is loaded once for the fleet instead of once per replica. Never-seen keys (a customer lookup of one costs two requests, contacts then accounts) "+
		"miss everywhere and cost the same with or without it. With the shared level the request count is the workload's number of distinct keys "+
		"(times the requests a key costs); alone, each replica loads every key it is asked for. Redis operations that failed open during these runs: %d.\n\n",
		ratio(runs[0].res, runs[1].res), runs[1].res.upstream, runs[0].res.upstream, ratio(runs[2].res, runs[3].res), runs[3].res.upstream, runs[2].res.upstream,
		e.failOpen())
	fmt.Fprintf(&b, "**Cost of the Redis hop** (%d order lookups by number, one at a time, on a replica whose in-process cache is cold; an order with its lines is one JSON payload of ~1-2 KB):\n\n", len(orders))
	b.WriteString("| Answered from | p50 | p90 | p99 |\n|---|---:|---:|---:|\n")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{
		{"in-process cache (L1 hit)", l1},
		{"Redis (L1 miss, L2 hit: GET + decode + L1 fill)", l2},
		{"Dataverse, simulator over loopback TLS, no injected latency (no shared level)", dvRaw},
		{fmt.Sprintf("Dataverse with a %v round trip (no shared level)", rtt), dv},
	} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.name, ms(pct(row.d, 50)), ms(pct(row.d, 90)), ms(pct(row.d, 99)))
	}
	fmt.Fprintf(&b, "\n%d of the %d lookups were Redis hits (Redis operations that failed open while timing the hop: %d).\n", len(l2), len(orders), e.failOpen()-failed)
	b.WriteString("\nAn L1 miss costs one Redis GET before Dataverse; a miss in both costs a GET, a SET NX lock, a second GET, the Dataverse call, a SET and a compare-and-delete (5 round trips to Redis, each bounded by the 50 ms operation timeout, fail-open).\n")
	return writeSection(out, b.String())
}

func redisVersion() string {
	out, err := execOutput("redis-server", "--version")
	if err != nil {
		return "?"
	}
	for f := range strings.FieldsSeq(out) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return "?"
}

func ms(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1000)
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

// writeSection replaces the fleet section of path (from its heading to the
// next "## " heading) or appends it; "-" prints it.
func writeSection(path, section string) error {
	if path == "-" {
		_, err := io.WriteString(os.Stdout, section)
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	if i := strings.Index(doc, heading+"\n"); i >= 0 {
		rest := doc[i+len(heading)+1:]
		end := len(doc)
		if j := strings.Index(rest, "\n## "); j >= 0 {
			end = i + len(heading) + 1 + j + 1
		}
		doc = doc[:i] + section + "\n" + doc[end:]
		doc = strings.TrimRight(doc, "\n") + "\n"
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

func execOutput(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).Output()
	return string(b), err
}
