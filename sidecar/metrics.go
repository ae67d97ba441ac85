package sidecar

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sidecar's own Prometheus collectors (the gateway
// registers its lookup and upstream metrics itself). Labels never carry an
// email, order number or id. A nil *Metrics records nothing.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	reloads   *prometheus.CounterVec
	rotations *prometheus.CounterVec
	ready     *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_http_requests_total",
			Help: "HTTP requests answered, by operation and status code.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dvgate_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvgate_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_config_reloads_total",
			Help: "Configuration reloads by result: ok, rejected (some integration's new configuration failed validation), error (unreadable or invalid configuration).",
		}, []string{"result"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_integration_updates_total",
			Help: "Changed integration configurations (e.g. rotated credentials), by result: applied or rejected.",
		}, []string{"integration", "result"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_integration_ready",
			Help: "1 when the integration signed in and WhoAmI succeeded, else 0.",
		}, []string{"integration"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.reloads, m.rotations, m.ready} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("sidecar: registering metrics"), err)
		}
	}
	return m, nil
}

// opMetrics are one operation's request metrics. The children for the
// common status (200) and the duration are looked up once, on first use
// (not at creation, so that /metrics only lists operations that were
// called); other statuses are looked up per request. A nil *opMetrics
// records nothing. Safe for concurrent use.
type opMetrics struct {
	m    *Metrics
	op   string
	once sync.Once
	ok   prometheus.Counter
	dur  prometheus.Observer
}

// op returns the metrics of operation op; nil if m is nil.
func (m *Metrics) op(op string) *opMetrics {
	if m == nil {
		return nil
	}
	return &opMetrics{m: m, op: op}
}

func (o *opMetrics) observe(status int, d time.Duration) {
	if o == nil {
		return
	}
	o.once.Do(o.resolve)
	if status == http.StatusOK {
		o.ok.Inc()
	} else {
		o.m.requests.WithLabelValues(o.op, strconv.Itoa(status)).Inc()
	}
	o.dur.Observe(d.Seconds())
}

func (o *opMetrics) resolve() {
	o.ok = o.m.requests.WithLabelValues(o.op, strconv.Itoa(http.StatusOK))
	o.dur = o.m.duration.WithLabelValues(o.op)
}

func (m *Metrics) inflight(delta float64) {
	if m != nil {
		m.inFlight.Add(delta)
	}
}

func (m *Metrics) reload(result string) {
	if m != nil {
		m.reloads.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) rotation(integration, result string) {
	if m != nil {
		m.rotations.WithLabelValues(integration, result).Inc()
	}
}

func (m *Metrics) setIntegrations(names, removed []string) {
	if m == nil {
		return
	}
	for _, n := range removed {
		m.ready.DeleteLabelValues(n)
	}
	for _, n := range names {
		m.ready.WithLabelValues(n) // create at 0 until Check says otherwise
	}
}

func (m *Metrics) setReady(r *Registry) {
	if m == nil {
		return
	}
	for _, in := range *r.integrations.Load() {
		v := 0.0
		if in.status.Load().ready {
			v = 1
		}
		m.ready.WithLabelValues(in.name).Set(v)
	}
}
