package bench

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/testdata"
)

func demoSeed(t *testing.T) *Seed {
	t.Helper()
	s, err := ParseSeed(testdata.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestParseSeed checks what the workload relies on: every order with its
// customer's email, and "account" only for emails no contact shares (so
// the lookup really falls back).
func TestParseSeed(t *testing.T) {
	t.Parallel()
	s := demoSeed(t)
	if len(s.Orders) != 202 { // 200, and two in other currencies for the summaries
		t.Errorf("%d orders, want the demo seed's 202", len(s.Orders))
	}
	contact := map[string]bool{}
	for _, e := range s.ContactEmails {
		contact[e] = true
	}
	var accounts, lines int
	for _, o := range s.Orders {
		if o.Account {
			accounts++
			if contact[o.Email] {
				t.Errorf("%s: account email %s is also a contact's", o.Number, o.Email)
			}
		}
		lines += o.Lines
		if o.Products > o.Lines {
			t.Errorf("%s: %d products on %d lines", o.Number, o.Products, o.Lines)
		}
	}
	if accounts == 0 || lines == 0 {
		t.Errorf("%d account-only orders, %d lines", accounts, lines)
	}
	if _, err := ParseSeed([]byte(`{"tables":{}}`)); err == nil {
		t.Error("ParseSeed accepted a seed without orders")
	}
}

func TestWorkload(t *testing.T) {
	t.Parallel()
	seed := demoSeed(t)
	w, err := NewWorkload(WorkloadConfig{Seed: seed, HitShare: 0.8, OrderShare: 0.5, RandSeed: 7})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var known, orders int
	counts := map[string]int{}
	src := w.Source(0)
	for range n {
		tk := src.Next()
		if tk.Known {
			known++
			counts[tk.Order]++
		}
		if tk.Order != "" {
			orders++
		}
		if tk.Email == "" {
			t.Fatal("ticket without an email")
		}
	}
	if got := float64(known) / n; math.Abs(got-0.8) > 0.02 {
		t.Errorf("known share %.3f, want 0.8", got)
	}
	if got := float64(orders) / n; math.Abs(got-0.5) > 0.02 {
		t.Errorf("order share %.3f, want 0.5", got)
	}
	// Zipf: the hottest order is asked for far more than the median one.
	var top int
	for k, c := range counts {
		if k != "" && c > top {
			top = c
		}
	}
	if top < 20*n/200/2 {
		t.Errorf("hottest order drawn %d times of %d: not skewed", top, n)
	}
	// Streams are reproducible, and unseen keys are never repeated.
	w2, _ := NewWorkload(WorkloadConfig{Seed: seed, HitShare: 0.8, OrderShare: 0.5, RandSeed: 7})
	a := w2.Source(3)
	w3, _ := NewWorkload(WorkloadConfig{Seed: seed, HitShare: 0.8, OrderShare: 0.5, RandSeed: 7})
	c := w3.Source(3)
	var ga, gc []Ticket
	for range 50 {
		ga, gc = append(ga, a.Next()), append(gc, c.Next())
	}
	if diff := cmp.Diff(ga, gc); diff != "" {
		t.Errorf("same seed, different tickets (-a +c):\n%s", diff)
	}
	seen := map[string]bool{}
	for range 1000 {
		if tk := src.Next(); !tk.Known {
			if seen[tk.Email] {
				t.Fatalf("unseen email %s repeated", tk.Email)
			}
			seen[tk.Email] = true
		}
	}
	for _, bad := range []WorkloadConfig{{Seed: seed, HitShare: 1.5}, {Seed: seed, ZipfS: 0.9}, {}} {
		if _, err := NewWorkload(bad); err == nil {
			t.Errorf("NewWorkload(%+v) accepted", bad)
		}
	}
}
