package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

type options struct {
	url        string
	inprocess  bool
	scenario   string
	clients    int
	duration   time.Duration
	tickets    int64
	hit        float64
	orders     float64
	zipf       float64
	latency    time.Duration
	baseline   string
	wrk        string
	json       bool
	seed       uint64
	cacheBytes int64
	path       string
	rounds     int
}

const usage = `Usage:
  dvgate-load --inprocess [-scenario mix|hit] [-c 50] [-d 10s] [flags]
  dvgate-load -url http://127.0.0.1:8080 [-scenario mix|hit] [flags]

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("dvgate-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.StringVar(&o.url, "url", "", "base URL of a running sidecar (e.g. dvgate --demo on http://127.0.0.1:8080)")
	fs.BoolVar(&o.inprocess, "inprocess", false, "start a sidecar in this process on the Dataverse simulator")
	fs.StringVar(&o.scenario, "scenario", "mix", "mix (tickets) or hit (one cached order)")
	fs.IntVar(&o.clients, "c", 50, "concurrent clients")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of each run (mix: upper bound when -n is set)")
	fs.Int64Var(&o.tickets, "n", 0, "mix: stop after this many tickets (0 = run for -d)")
	fs.Float64Var(&o.hit, "hit", 0.95, "mix: share of tickets drawn from the seed; the rest use never-seen keys")
	fs.Float64Var(&o.orders, "orders", 0.6, "mix: share of tickets that also look up an order")
	fs.Float64Var(&o.zipf, "zipf", 1.1, "mix: Zipf exponent over the seed's orders (> 1)")
	fs.DurationVar(&o.latency, "latency", 20*time.Millisecond, "inprocess: latency injected on every simulated Dataverse request")
	fs.StringVar(&o.baseline, "baseline", "auto", "auto (hit: fixed, mix: naive when inprocess), fixed, naive or none")
	fs.StringVar(&o.wrk, "wrk", "auto", "hit: wrk binary to also measure with; auto = wrk on PATH if present, off = never")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the ticket streams")
	fs.Int64Var(&o.cacheBytes, "cache-bytes", 0, "inprocess: gateway cache budget (0 = default)")
	fs.StringVar(&o.path, "path", "/v1/orders/ORD-01001-B2K9P7", "hit: the path (and query) to request")
	fs.IntVar(&o.rounds, "rounds", 3, "hit: alternate the sidecar and the baseline in this many slices of -d/rounds")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	err := o.check()
	if err != nil {
		fmt.Fprintln(stderr, "dvgate-load:", err)
	}
	return o, err
}

func (o *options) check() error {
	switch {
	case o.inprocess == (o.url != ""):
		return errors.New("give exactly one of --inprocess and -url")
	case o.scenario != "mix" && o.scenario != "hit":
		return fmt.Errorf("unknown scenario %q (mix or hit)", o.scenario)
	case o.clients < 1:
		return errors.New("-c must be at least 1")
	case o.duration <= 0:
		return errors.New("-d must be positive")
	case o.rounds < 1:
		return errors.New("-rounds must be at least 1")
	}
	o.url = strings.TrimSuffix(o.url, "/")
	if o.baseline == "auto" {
		switch {
		case o.scenario == "hit":
			o.baseline = "fixed"
		case o.inprocess:
			o.baseline = "naive"
		default:
			o.baseline = "none"
		}
	}
	switch o.baseline {
	case "fixed", "none":
	case "naive":
		if !o.inprocess {
			return errors.New("the naive baseline needs --inprocess (it calls the simulator directly)")
		}
	default:
		return fmt.Errorf("unknown baseline %q", o.baseline)
	}
	return nil
}
