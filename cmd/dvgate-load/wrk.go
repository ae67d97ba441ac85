package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dvgate/dvgate/bench"
)

// runWrk measures url with wrk (same connection count as our clients,
// threads = min(clients, CPUs)) and parses its --latency report.
func runWrk(ctx context.Context, wrk, name, url string, clients int, d time.Duration) (bench.LoadRun, error) {
	threads := min(clients, runtime.NumCPU())
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(clients),
		"-d", strconv.Itoa(secs)+"s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return bench.LoadRun{}, fmt.Errorf("%v: %s", err, out)
	}
	res, err := parseWrk(string(out))
	res.Name, res.Clients, res.Seconds = name, clients, float64(secs)
	res.Tool = fmt.Sprintf("wrk -t%d -c%d (%s)", threads, clients, wrkVersion(ctx, wrk))
	res.Upstream, res.Tokens = -1, -1
	return res, err
}

// parseWrk reads wrk's summary: Requests/sec, the latency distribution,
// Max latency, request count, socket errors and non-2xx responses.
func parseWrk(out string) (bench.LoadRun, error) {
	var res bench.LoadRun
	var gotRPS bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			res.RPS, _ = strconv.ParseFloat(f[1], 64)
			gotRPS = true
		case len(f) >= 5 && f[0] == "Latency" && !strings.HasSuffix(f[1], "%"):
			res.MaxMs = wrkDuration(f[3]) // Latency  avg  stdev  max  +/-stdev
		case len(f) == 2 && (f[0] == "50%" || f[0] == "90%" || f[0] == "99%"):
			v := wrkDuration(f[1])
			switch f[0] {
			case "50%":
				res.P50Ms = v
			case "90%":
				res.P90Ms = v
			default:
				res.P99Ms = v
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.Requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for _, p := range strings.Split(strings.Join(f[2:], " "), ",") {
				if kv := strings.Fields(p); len(kv) == 2 {
					n, _ := strconv.ParseInt(kv[1], 10, 64)
					res.Errors += n
				}
			}
		case len(f) >= 5 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			res.Errors += n
		}
	}
	if !gotRPS {
		return res, fmt.Errorf("no Requests/sec in wrk output: %.300s", out)
	}
	return res, nil
}

// wrkDuration converts "1.23ms", "850.00us", "1.02s" to milliseconds.
func wrkDuration(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"m", 60e3}, {"s", 1e3}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f * u.ms
			}
		}
	}
	return 0
}

func wrkVersion(ctx context.Context, wrk string) string {
	out, _ := exec.CommandContext(ctx, wrk, "-v").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 && f[0] == "wrk" {
		return "wrk " + f[1]
	}
	return "wrk"
}
