package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dvgate/dvgate/bench"
)

// writeReport prints r as text, or as JSON for bench/report.
func writeReport(w io.Writer, r *bench.LoadReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "scenario: %s\ntarget: %s\nclients: %d\ncpus: %d\ngo: %s\n", r.Scenario, r.Target, r.Clients, r.CPUs, r.GoVersion)
	if r.InjectedLatencyMs > 0 {
		fmt.Fprintf(w, "injected Dataverse latency: %.1f ms\n", r.InjectedLatencyMs)
	}
	if r.Workload != "" {
		fmt.Fprintf(w, "workload: %s\n", r.Workload)
	}
	if r.BodyBytes > 0 {
		fmt.Fprintf(w, "answer size: %d bytes\n", r.BodyBytes)
	}
	for _, x := range r.Runs {
		fmt.Fprintf(w, "\n[%s] tool: %s\n", x.Name, x.Tool)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "  requests:\t%d in %.2f s\n", x.Requests, x.Seconds)
		if x.Tickets > 0 {
			fmt.Fprintf(tw, "  tickets:\t%d\n", x.Tickets)
		}
		fmt.Fprintf(tw, "  requests/s:\t%.0f\n", x.RPS)
		fmt.Fprintf(tw, "  latency p50/p90/p99/max:\t%.3f / %.3f / %.3f / %.3f ms\n", x.P50Ms, x.P90Ms, x.P99Ms, x.MaxMs)
		fmt.Fprintf(tw, "  errors:\t%d\n", x.Errors)
		if len(x.Statuses) > 0 {
			fmt.Fprintf(tw, "  outcomes:\t%s\n", bench.Counts(x.Statuses))
		}
		if x.CacheHits+x.CacheMisses > 0 {
			fmt.Fprintf(tw, "  X-Cache hit share:\t%.3f (%d hit, %d miss)\n",
				float64(x.CacheHits)/float64(x.CacheHits+x.CacheMisses), x.CacheHits, x.CacheMisses)
		}
		fmt.Fprintf(tw, "  upstream requests:\t%s\n", count(x.Upstream))
		fmt.Fprintf(tw, "  token requests:\t%s\n", count(x.Tokens))
		if x.FirstError != "" {
			fmt.Fprintf(tw, "  first error:\t%s\n", x.FirstError)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if r.TokensSinceStart > 0 {
		fmt.Fprintf(w, "token requests since start: %d\n", r.TokensSinceStart)
	}
	if r.PeakRSSMB > 0 {
		fmt.Fprintf(w, "peak RSS: %.1f MiB (%s)\n", r.PeakRSSMB, r.RSSSource)
	} else {
		fmt.Fprintln(w, "peak RSS: n/a")
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

func count(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprint(n)
}
