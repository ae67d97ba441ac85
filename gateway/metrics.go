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

func (m *Metrics) lookup(integration, kind, outcome string) {
	if m == nil {
		return
	}
	m.lookups.WithLabelValues(integration, kind, outcome).Inc()
}

func (m *Metrics) coalesced(integration, kind string) {
	if m == nil {
		return
	}
	m.coalescedTotal.WithLabelValues(integration, kind).Inc()
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
