// Command dvgate-load drives a dvgate sidecar with concurrent help-desk
// clients and prints throughput, latency percentiles, errors, upstream
// Dataverse requests, token requests and peak memory, next to a baseline
// measured in the same run with the same client and concurrency.
//
// Scenarios (-scenario):
//
//   - mix: C clients work through Zipf-distributed tickets from the demo seed
//     (a customer lookup by email, falling back to accounts for account
//     emails, and with probability -orders an order lookup), with a share
//     1-hit of tickets using never-seen keys. The baseline is the naive
//     client (bench.Naive) running the same tickets straight against the
//     simulator with the same injected latency (in-process only).
//   - hit: C clients GET one cached order for T seconds; the baseline is a
//     plain net/http handler returning the same bytes. When wrk is installed
//     (-wrk auto) both are also measured with wrk.
//
// With --inprocess the sidecar runs in this process on the Dataverse
// simulator (bench.StartStack), wired as dvgate serve wires it; upstream and
// token requests then come from the simulator's counters and peak RSS from
// /proc/self/status (VmHWM, which includes the load generator and the
// simulator). Against a running sidecar (-url, e.g. dvgate --demo) they come
// from its /metrics (dvgate_upstream_calls_total, process_resident_memory_bytes
// sampled during the run); token requests are not exported there.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	rep, err := execute(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dvgate-load:", err)
		return 1
	}
	if err := writeReport(stdout, rep, o.json); err != nil {
		fmt.Fprintln(stderr, "dvgate-load:", err)
		return 1
	}
	return 0
}
