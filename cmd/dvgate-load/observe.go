package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics is a parsed Prometheus text exposition: sample name (with
// labels) -> value.
type metrics map[string]float64

// sum adds every sample of a metric family (all label sets).
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

func parseMetrics(r io.Reader) metrics {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

func scrape(ctx context.Context, base string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body), nil
}

// rssSampler polls a remote sidecar's process_resident_memory_bytes and
// keeps the maximum (Prometheus exposes the current RSS, not the peak).
type rssSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peak  float64 // bytes; guarded by mu
}

func startRSSSampler(ctx context.Context, base string) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{})}
	sample := func() {
		if m, err := scrape(ctx, base); err == nil {
			s.mu.Lock()
			s.peak = max(s.peak, m.sum("process_resident_memory_bytes"))
			s.mu.Unlock()
		}
	}
	s.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-s.stopc:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return s
}

// stop ends sampling and returns the peak in MiB (0 if never observed).
func (s *rssSampler) stop() float64 {
	close(s.stopc)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak / (1 << 20)
}

// vmHWM is this process's peak resident set in MiB (0 where /proc is
// unavailable).
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(rest)) // "123456 kB"
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
