package gateway

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus collectors. Labels are the
// integration name, the lookup kind ("customer", "order", "recent_orders")
// and an outcome; never an email, order number or id. A nil *Metrics
// records nothing. One Metrics may serve several gateways.
type Metrics struct {
	lookups         *prometheus.CounterVec
	coalescedTotal  *prometheus.CounterVec
	upstreamTotal   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg (no global
// registry is touched).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_lookups_total",
			Help: "Lookups answered, by outcome: hit (fresh from cache, including cached not-found), miss (loaded from Dataverse), stale (served past freshness because Dataverse failed), error, canceled (caller gave up).",
		}, []string{"integration", "kind", "outcome"}),
		coalescedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_coalesced_lookups_total",
			Help: "Lookups that joined an identical in-flight Dataverse call instead of making their own.",
		}, []string{"integration", "kind"}),
		upstreamTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_upstream_calls_total",
			Help: "Shared Dataverse calls made for lookup misses, by outcome (ok, not_found, or the error kind). One call is one HTTP request, except a customer lookup in mode both that falls back to accounts (two).",
		}, []string{"integration", "kind", "outcome"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dvgate_upstream_call_duration_seconds",
			Help:    "Duration of Dataverse calls made by lookups, including the connection's retries.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"integration", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.lookups, m.coalescedTotal, m.upstreamTotal, m.upstreamLatency} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("gateway: registering metrics"), err)
		}
	}
	return m, nil
}

// Lookup outcomes with a pre-resolved counter (see kindCounters).
const (
	outcomeHit = iota
	outcomeMiss
	outcomeStale
	outcomeError
	outcomeCanceled
	outcomeCoalesced // dvgate_coalesced_lookups_total, not an outcome label
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"hit", "miss", "stale", "error", "canceled", ""}

func outcomeOf(o Outcome) int {
	switch o {
	case Hit:
		return outcomeHit
	case Stale:
		return outcomeStale
	}
	return outcomeMiss
}

// kindCounters are one integration's counters for one lookup kind, taken
// from the vectors once (WithLabelValues hashes the labels and locks; an
// Inc on the child is one atomic add). A nil *kindCounters counts nothing.
type kindCounters [numOutcomes]prometheus.Counter

func (m *Metrics) counters(integration, kind string) *kindCounters {
	if m == nil {
		return nil
	}
	var kc kindCounters
	for i, o := range outcomeNames {
		if i == outcomeCoalesced {
			kc[i] = m.coalescedTotal.WithLabelValues(integration, kind)
		} else {
			kc[i] = m.lookups.WithLabelValues(integration, kind, o)
		}
	}
	return &kc
}

func (kc *kindCounters) inc(outcome int) {
	if kc != nil {
		kc[outcome].Inc()
	}
}

func (m *Metrics) upstream(integration, kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstreamTotal.WithLabelValues(integration, kind, outcome).Inc()
	if outcome != "panic" {
		m.upstreamLatency.WithLabelValues(integration, kind).Observe(d.Seconds())
	}
}
