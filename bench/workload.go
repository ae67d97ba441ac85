package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// WorkloadConfig describes the help-desk traffic: each ticket looks up its
// customer by email and, with probability OrderShare, the order it names.
type WorkloadConfig struct {
	Seed *Seed
	// HitShare is the share of tickets drawn from the seed (0..1); the
	// others use keys never seen before (a new email address and order
	// number each), which miss the cache and are not found upstream.
	HitShare float64
	// OrderShare is the share of tickets that also name an order (0..1).
	OrderShare float64
	// ZipfS is the Zipf exponent over the seed's orders (> 1); 0 = 1.1.
	ZipfS float64
	// RandSeed makes the ticket sequence reproducible.
	RandSeed uint64
}

// Ticket is one help-desk ticket's lookups.
type Ticket struct {
	Email string
	Order string // "" when the ticket names no order
	// Known is true when the keys come from the seed (they exist).
	Known bool
	// Account is true when Email is an account's (the lookup falls back).
	Account bool
}

// Workload draws tickets. It is safe for concurrent use through Sources.
type Workload struct {
	cfg    WorkloadConfig
	perm   []int // Zipf rank -> index in Seed.Orders
	unique atomic.Uint64
}

// NewWorkload checks cfg and returns a Workload.
func NewWorkload(cfg WorkloadConfig) (*Workload, error) {
	if cfg.Seed == nil || len(cfg.Seed.Orders) == 0 {
		return nil, errors.New("bench: workload needs a seed with orders")
	}
	if cfg.HitShare < 0 || cfg.HitShare > 1 || cfg.OrderShare < 0 || cfg.OrderShare > 1 {
		return nil, fmt.Errorf("bench: shares must be within 0..1 (hit %v, order %v)", cfg.HitShare, cfg.OrderShare)
	}
	if cfg.ZipfS == 0 {
		cfg.ZipfS = 1.1
	}
	if cfg.ZipfS <= 1 {
		return nil, fmt.Errorf("bench: Zipf exponent %v must be > 1", cfg.ZipfS)
	}
	// The hottest orders are spread over the seed rather than its first rows.
	r := rand.New(rand.NewPCG(cfg.RandSeed, 0x5eed))
	return &Workload{cfg: cfg, perm: r.Perm(len(cfg.Seed.Orders))}, nil
}

// Source is one client's ticket stream; it is not safe for concurrent use
// (give each client its own).
type Source struct {
	w *Workload
	r *rand.Rand
	z *rand.Zipf
}

// Source returns the i-th client's deterministic ticket stream.
func (w *Workload) Source(i int) *Source {
	r := rand.New(rand.NewPCG(w.cfg.RandSeed, uint64(i)+1))
	return &Source{w: w, r: r, z: rand.NewZipf(r, w.cfg.ZipfS, 1, uint64(len(w.perm)-1))}
}

// Next draws a ticket.
func (s *Source) Next() Ticket {
	withOrder := s.r.Float64() < s.w.cfg.OrderShare
	if s.r.Float64() >= s.w.cfg.HitShare {
		n := s.w.unique.Add(1)
		t := Ticket{Email: fmt.Sprintf("new%07d@unseen.example", n)}
		if withOrder {
			t.Order = fmt.Sprintf("ORD-9%07d-NEW", n)
		}
		return t
	}
	o := s.w.cfg.Seed.Orders[s.w.perm[s.z.Uint64()]]
	t := Ticket{Email: o.Email, Known: true, Account: o.Account}
	if t.Email == "" {
		emails := s.w.cfg.Seed.ContactEmails
		t.Email, t.Account = emails[s.z.Uint64()%uint64(len(emails))], false
	}
	if withOrder {
		t.Order = o.Number
	}
	return t
}
