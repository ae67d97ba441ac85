package integration

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dvgate/dvgate/fleet"
	"github.com/dvgate/dvgate/gateway"
)

// Options configure Open.
type Options struct {
	// Source is where the configuration comes from (config file or
	// environment), read at Open and at every reload.
	Source Source
	// HTTPClient is the base client for Dataverse and Entra (TLS roots,
	// proxy); nil = dataverse's default.
	HTTPClient *http.Client
	Logger     *slog.Logger     // nil = discard
	Clock      func() time.Time // cache freshness; nil = time.Now
	// Registerer receives the gateway's, the registry's and the fleet's
	// metrics; nil = no metrics (one-shot commands).
	Registerer prometheus.Registerer
	// CacheBytes is the budget of the cache shared by the integrations
	// when the configuration does not set one (Source.LoadCacheBytes); 0 =
	// gateway's default.
	CacheBytes int64
	// UpstreamTimeout bounds one shared Dataverse call; 0 = gateway's default.
	UpstreamTimeout time.Duration
	// ValidateTimeout bounds each WhoAmI check; 0 = 30s.
	ValidateTimeout time.Duration
}

// Open builds the integrations as every dvgate front end runs them: the
// shared Redis level when the configuration names one (Source.LoadFleet),
// a gateway over a dataverse connection per integration, metrics, and the
// registry that rotates them. It signs in to nothing: call Check. Close
// the registry to release everything, the shared level included.
func Open(o Options) (*Registry, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn := &GatewayConnector{HTTPClient: o.HTTPClient, Logger: log, Clock: o.Clock,
		CacheBytes: o.CacheBytes, UpstreamTimeout: o.UpstreamTimeout}
	var (
		rm  *Metrics
		fm  *fleet.Metrics
		err error
	)
	if o.Registerer != nil {
		if conn.Metrics, err = gateway.NewMetrics(o.Registerer); err != nil {
			return nil, err
		}
		if conn.FeedMetrics, err = gateway.NewFeedMetrics(o.Registerer); err != nil {
			return nil, err
		}
		if rm, err = NewMetrics(o.Registerer); err != nil {
			return nil, err
		}
		if fm, err = fleet.NewMetrics(o.Registerer); err != nil {
			return nil, err
		}
	}
	if n, err := o.Source.LoadCacheBytes(); err != nil {
		return nil, err
	} else if n > 0 {
		conn.CacheBytes = n
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(cacheCollector{conn}); err != nil {
			return nil, errors.Join(errors.New("integration: registering metrics"), err)
		}
	}
	fc, err := o.Source.LoadFleet()
	if err != nil {
		return nil, err
	}
	if fc.URL != "" {
		if conn.Fleet, err = fleet.New(fleet.Config{URL: fc.URL, Prefix: fc.Prefix, Key: fc.Key, OpTimeout: fc.OpTimeout, Logger: log.With("component", "fleet"), Metrics: fm}); err != nil {
			return nil, err
		}
		log.Info("sharing cache and throttle state with other replicas", "fleet", fc.String())
	}
	reg, err := NewRegistry(RegistryConfig{Source: o.Source, Connector: conn, Logger: log, Clock: o.Clock,
		Metrics: rm, ValidateTimeout: o.ValidateTimeout})
	if err != nil {
		if conn.Fleet != nil {
			conn.Fleet.Close()
		}
		return nil, err
	}
	if conn.Fleet != nil {
		f := conn.Fleet
		reg.onClose = append(reg.onClose, func() { _ = f.Close() })
	}
	return reg, nil
}

// MapEnv returns a Getenv over env, falling back to fallback (nil: none)
// for the names env does not have: the environment of a simulator
// (dataversetest.Server.Env) over the process's own.
func MapEnv(env map[string]string, fallback func(string) string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if fallback != nil {
			return fallback(k)
		}
		return ""
	}
}

// NoFiles is a Source.ReadFile for configurations that read no file.
func NoFiles(name string) ([]byte, error) {
	return nil, errors.New("integration: no file may be read here: " + name)
}
