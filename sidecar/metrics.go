package sidecar

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dvgate/dvgate/internal/buildinfo"
)

// metrics are the HTTP API's own Prometheus collectors (the integrations
// register theirs). Labels never carry an email, order number or id. A nil
// *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// newMetrics creates the collectors and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
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
	}
	bi := buildinfo.Read()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dvgate_build_info",
		Help: "Always 1; the labels say which build runs: version (release, module or \"dev\"), VCS revision (\"\" when not stamped) and Go version.",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, build} {
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
	m    *metrics
	op   string
	once sync.Once
	ok   prometheus.Counter
	dur  prometheus.Observer
}

// op returns the metrics of operation op; nil if m is nil.
func (m *metrics) op(op string) *opMetrics {
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

func (m *metrics) inflight(delta float64) {
	if m != nil {
		m.inFlight.Add(delta)
	}
}
