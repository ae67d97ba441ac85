// Command report runs dvgate's benchmarks (make bench) and load runs
// (cmd/dvgate-load) and rewrites BENCHMARKS.md with the figures, each next
// to the baseline measured in the same run and to its target. It is what
// make bench-report runs; it takes about five minutes on 2 cores.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dvgate/dvgate/bench"
)

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file to write")
	count := flag.Int("count", 1, "BENCHCOUNT for make bench")
	flag.Parse()
	if err := run(context.Background(), *out, *count, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// benches maps a benchmark name without the -GOMAXPROCS suffix to its
// metrics (unit -> mean over -count runs).
type benches map[string]map[string]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parseBench(out string) benches {
	sums, ns := map[string]map[string]float64{}, map[string]map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if sums[name] == nil {
			sums[name], ns[name] = map[string]float64{}, map[string]int{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				sums[name][f[i+1]] += v
				ns[name][f[i+1]]++
			}
		}
	}
	for name, m := range sums {
		for u := range m {
			m[u] /= float64(ns[name][u])
		}
	}
	return sums
}

func (b benches) get(name, unit string) (float64, bool) {
	v, ok := b[name][unit]
	return v, ok
}

// load is one dvgate-load invocation.
type load struct {
	name string
	args []string
	rep  bench.LoadReport
}

func run(ctx context.Context, outPath string, count int, log io.Writer) error {
	started := time.Now()
	machine := describeMachine(ctx)
	fmt.Fprintln(log, "report: make bench BENCHCOUNT="+strconv.Itoa(count))
	var benchOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "make", "-s", "bench", "BENCHCOUNT="+strconv.Itoa(count))
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&benchOut, log), log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make bench: %w", err)
	}
	tmp, err := os.MkdirTemp("", "dvgate-report")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "dvgate-load")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dvgate-load").CombinedOutput(); err != nil {
		return fmt.Errorf("go build dvgate-load: %v: %s", err, out)
	}
	loads := []*load{
		{name: "hit", args: []string{"--inprocess", "-scenario", "hit", "-c", "50", "-d", "6s", "-rounds", "3"}},
		{name: "tickets", args: []string{"--inprocess", "-scenario", "mix", "-c", "50", "-n", "10000", "-d", "120s", "-latency", "5ms", "-hit", "0.95"}},
		{name: "tokens-c1", args: []string{"--inprocess", "-scenario", "mix", "-c", "1", "-d", "3s", "-latency", "5ms", "-baseline", "none"}},
	}
	for _, l := range loads {
		fmt.Fprintf(log, "report: dvgate-load %s\n", strings.Join(l.args, " "))
		c := exec.CommandContext(ctx, bin, append(l.args, "-json")...)
		c.Stderr = log
		out, err := c.Output()
		if err != nil {
			return fmt.Errorf("dvgate-load %s: %w", l.name, err)
		}
		if err := json.Unmarshal(out, &l.rep); err != nil {
			return fmt.Errorf("dvgate-load %s output: %w", l.name, err)
		}
	}
	machine.runtime = time.Since(started).Round(time.Second)
	doc := render(machine, parseBench(benchOut.String()), loads, benchOut.String(), count)
	// Sections other tools write (make bench-fleet's "## Fleet") are kept.
	if old, err := os.ReadFile(outPath); err == nil {
		doc += keptSections(string(old))
	}
	return os.WriteFile(outPath, []byte(doc), 0o644)
}

// keptSections returns what an earlier report holds from the "## Fleet"
// heading on (written by make bench-fleet, always last), or "".
func keptSections(old string) string {
	const fleet = "\n## Fleet"
	i := strings.Index(old, fleet)
	if i < 0 {
		return ""
	}
	return old[i:]
}

type machine struct {
	cpus    int
	model   string
	goVer   string
	kernel  string
	loadAvg string
	date    string
	runtime time.Duration
}

func describeMachine(ctx context.Context) machine {
	m := machine{cpus: runtime.NumCPU(), model: "unknown", date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVer = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "uname", "-sr").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.loadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}
