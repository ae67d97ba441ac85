package integration

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the registry's Prometheus collectors: configuration reloads,
// credential rotations and each integration's readiness. A nil *Metrics
// records nothing.
type Metrics struct {
	reloads   *prometheus.CounterVec
	rotations *prometheus.CounterVec
	ready     *prometheus.GaugeVec
	broken    *prometheus.GaugeVec
	expiry    *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_config_reloads_total",
			Help: "Configuration reloads (SIGHUP, or a changed config or secret file) by result: applied (something changed), rejected (some integration's new configuration failed), error (unreadable or invalid configuration). Polls that find nothing changed are not counted.",
		}, []string{"result"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvgate_integration_updates_total",
			Help: "Changed integration configurations (e.g. rotated credentials), by result: applied or rejected.",
		}, []string{"integration", "result"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_integration_ready",
			Help: "1 when the integration signed in and WhoAmI succeeded, else 0.",
		}, []string{"integration"}),
		broken: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_integration_config_error",
			Help: "1 when the integration cannot start because of its configuration (/readyz says why), else 0.",
		}, []string{"integration"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dvgate_credential_expiry_timestamp_seconds",
			Help: "When the integration's credential expires (Unix time): the certificate's NotAfter, or the client secret's stated expiry (clientSecretExpiresOn, AZURE_CLIENT_SECRET_EXPIRES_ON). Absent when not known: a secret without a stated date, a federated credential, an integration that cannot start.",
		}, []string{"integration"}),
	}
	for _, c := range []prometheus.Collector{m.reloads, m.rotations, m.ready, m.broken, m.expiry} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("integration: registering metrics"), err)
		}
	}
	return m, nil
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
		m.broken.DeleteLabelValues(n)
		m.expiry.DeleteLabelValues(n)
	}
	for _, n := range names {
		m.ready.WithLabelValues(n) // create at 0 until Check says otherwise
		m.broken.WithLabelValues(n)
	}
}

func (m *Metrics) setReady(r *Registry) {
	if m == nil {
		return
	}
	for _, in := range *r.integrations.Load() {
		st := in.status.Load()
		m.ready.WithLabelValues(in.name).Set(b2f(st.ready))
		m.broken.WithLabelValues(in.name).Set(b2f(st.broken))
		if exp := in.cur.Load().cred.ExpiresOn; exp.IsZero() {
			m.expiry.DeleteLabelValues(in.name)
		} else {
			m.expiry.WithLabelValues(in.name).Set(float64(exp.Unix()))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cacheCollector reports the connector's caches at every scrape: the one
// shared by the integrations (cache="shared") and each integration's own
// (cache="own", with its name). A cache being replaced (an integration's
// own, during a rotation) is summed with its successor.
//
// Each integration's share of its cache is a metric of its own
// (dvgate_cache_integration_*, labelled by the cache it uses and the
// integration) rather than more series of dvgate_cache_*: a sum over
// dvgate_cache_bytes still gives the memory used, without counting the
// shared cache twice. The series of an integration no longer configured
// disappear with it.
type cacheCollector struct{ gc *GatewayConnector }

var (
	cacheLabels      = []string{"cache", "integration"}
	cacheBytesDesc   = prometheus.NewDesc("dvgate_cache_bytes", "Approximate bytes of cached answers, by cache: the one shared by the integrations (cache=\"shared\") or an integration's own (cacheBytes in its configuration).", cacheLabels, nil)
	cacheBudgetDesc  = prometheus.NewDesc("dvgate_cache_budget_bytes", "The cache's budget in bytes (DVGATE_CACHE_BYTES, cacheBytes).", cacheLabels, nil)
	cacheEntriesDesc = prometheus.NewDesc("dvgate_cache_entries", "Answers in the cache.", cacheLabels, nil)
	cacheEvictDesc   = prometheus.NewDesc("dvgate_cache_evictions_total", "Answers evicted to stay within the budget.", cacheLabels, nil)

	shareBytesDesc   = prometheus.NewDesc("dvgate_cache_integration_bytes", "Approximate bytes of the integration's answers in the cache it uses (cache=\"shared\" or \"own\"), counted from when an answer is stored until ristretto evicts or refuses it.", cacheLabels, nil)
	shareEntriesDesc = prometheus.NewDesc("dvgate_cache_integration_entries", "The integration's answers in the cache it uses.", cacheLabels, nil)
	shareEvictDesc   = prometheus.NewDesc("dvgate_cache_integration_evictions_total", "The integration's answers evicted from the cache it uses to stay within its budget (in the shared cache, possibly to make room for another integration's).", cacheLabels, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheBytesDesc, cacheBudgetDesc, cacheEntriesDesc, cacheEvictDesc, shareBytesDesc, shareEntriesDesc, shareEvictDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	type sums struct{ bytes, budget, entries, evicted float64 }
	type sumsBy struct {
		m     map[[2]string]*sums
		order [][2]string
	}
	add := func(by *sumsBy, k [2]string) *sums {
		s := by.m[k]
		if s == nil {
			s = &sums{}
			by.m[k] = s
			by.order = append(by.order, k)
		}
		return s
	}
	caches, shares := &sumsBy{m: map[[2]string]*sums{}}, &sumsBy{m: map[[2]string]*sums{}}
	for _, st := range c.gc.CacheStats() {
		k := [2]string{"own", st.Label}
		if st.Shared {
			k = [2]string{"shared", ""}
		}
		s := add(caches, k)
		s.bytes += float64(int64(st.CostAdded - st.CostEvicted))
		s.budget += float64(st.BudgetBytes)
		s.entries += float64(int64(st.KeysAdded - st.KeysEvicted))
		s.evicted += float64(st.KeysEvicted)
		for _, o := range st.Integrations {
			s := add(shares, [2]string{k[0], o.Owner})
			s.bytes += float64(o.Bytes)
			s.entries += float64(o.Entries)
			s.evicted += float64(o.Evictions)
		}
	}
	for _, k := range caches.order {
		s := caches.m[k]
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, s.bytes, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(cacheBudgetDesc, prometheus.GaugeValue, s.budget, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, s.entries, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(cacheEvictDesc, prometheus.CounterValue, s.evicted, k[0], k[1])
	}
	for _, k := range shares.order {
		s := shares.m[k]
		ch <- prometheus.MustNewConstMetric(shareBytesDesc, prometheus.GaugeValue, s.bytes, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(shareEntriesDesc, prometheus.GaugeValue, s.entries, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(shareEvictDesc, prometheus.CounterValue, s.evicted, k[0], k[1])
	}
}
