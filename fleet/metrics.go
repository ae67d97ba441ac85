package fleet

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the fleet's Prometheus collectors. A nil *Metrics records
// nothing; one Metrics may serve several Redis clients.
type Metrics struct {
	ops *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{ops: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dvgate_redis_ops_total",
		Help: "Redis operations of the shared level, by op (get, set, lock, extend, unlock, throttle_get, throttle_set) and outcome " +
			"(hit, miss, ok, acquired, busy, lost, blocked, open; error, timeout and skipped are fail-open: the lookup went on without Redis; " +
			"get rejected_forged, rejected_format, rejected_oversize, rejected_future, rejected_windows: a value refused and treated as a miss; set oversize: not written).",
	}, []string{"op", "outcome"})}
	if err := reg.Register(m.ops); err != nil {
		return nil, errors.Join(errors.New("fleet: registering metrics"), err)
	}
	return m, nil
}

func (m *Metrics) op(op, outcome string) {
	if m != nil {
		m.ops.WithLabelValues(op, outcome).Inc()
	}
}
