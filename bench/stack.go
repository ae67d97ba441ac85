package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/sidecar"
)

// StackConfig configures an in-process sidecar on the simulator.
type StackConfig struct {
	// Latency is injected before every Web API response (not the token
	// endpoint): the round trip to a real org.
	Latency time.Duration
	// Limits are the simulator's service protection limits; the zero value
	// disables them (dataversetest.NoLimits), since the naive baseline
	// would otherwise be throttled long before the gateway is.
	Limits *dataversetest.Limits
	// CacheBytes is the gateway's cache budget; 0 = its default.
	CacheBytes int64
	// Logger receives the sidecar's request logs; nil = JSON lines at info
	// level written to io.Discard, so the formatting cost of production
	// logging is measured without terminal I/O.
	Logger *slog.Logger
}

// Stack is dvgate's sidecar wired as cmd/dvgate serve wires it (registry,
// gateway connector, Prometheus metrics), served on 127.0.0.1:0, over an
// in-process Dataverse simulator with the demo data.
type Stack struct {
	// URL is the sidecar's base URL, "http://127.0.0.1:PORT".
	URL string
	Sim *dataversetest.Server

	reg    *sidecar.Registry
	srv    *http.Server
	remove func()
	done   chan struct{}
}

// StartStack starts a simulator and a sidecar on it and waits until the
// integration has signed in once.
func StartStack(ctx context.Context, cfg StackConfig) (*Stack, error) {
	limits := dataversetest.NoLimits
	if cfg.Limits != nil {
		limits = *cfg.Limits
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	sim, err := dataversetest.NewServer(dataversetest.Options{Limits: limits})
	if err != nil {
		return nil, err
	}
	s := &Stack{Sim: sim, remove: func() {}, done: make(chan struct{})}
	if cfg.Latency > 0 {
		s.remove = sim.InjectFault(dataversetest.Fault{Latency: cfg.Latency})
	}
	if err := s.start(ctx, cfg, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context, cfg StackConfig, log *slog.Logger) error {
	env := s.Env()
	src := sidecar.Source{Getenv: func(k string) string { return env[k] }, ReadFile: func(string) ([]byte, error) {
		return nil, errors.New("bench: no files")
	}}
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gm, err := gateway.NewMetrics(promReg)
	if err != nil {
		return err
	}
	sm, err := sidecar.NewMetrics(promReg)
	if err != nil {
		return err
	}
	conn := &sidecar.GatewayConnector{HTTPClient: s.Sim.Client(), Logger: log, Metrics: gm, CacheBytes: cfg.CacheBytes}
	if s.reg, err = sidecar.NewRegistry(sidecar.RegistryConfig{Source: src, Connector: conn, Logger: log, Metrics: sm}); err != nil {
		return err
	}
	h, err := sidecar.NewServer(sidecar.ServerConfig{Registry: s.reg, Logger: log, Metrics: sm, Gatherer: promReg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s.reg.Check(ctx)
}

// Env is the environment that configures a dataverse.Conn (or dvgate) for
// the simulator.
func (s *Stack) Env() map[string]string {
	return map[string]string{
		dataverse.EnvURL: s.Sim.URL(), dataverse.EnvTenantID: s.Sim.TenantID(), dataverse.EnvClientID: s.Sim.ClientID(),
		dataverse.EnvClientSecret: s.Sim.ClientSecret(), dataverse.EnvAuthorityHost: s.Sim.AuthorityHost(),
	}
}

// NewConn returns a new connection (own token cache and pool) to the
// simulator, for the naive baseline or a gateway used directly.
func (s *Stack) NewConn() (*dataverse.Conn, error) {
	env := s.Env()
	cfg, err := dataverse.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	cfg.HTTPClient = s.Sim.Client()
	return dataverse.New(cfg)
}

// Close stops the sidecar and the simulator.
func (s *Stack) Close() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
		<-s.done
	}
	if s.reg != nil {
		s.reg.Close()
	}
	s.remove()
	s.Sim.Close()
}

// StartFixed serves body (as application/json) for every request on
// 127.0.0.1:0 with a plain net/http server: baseline (a), the limit of the
// HTTP stack. It returns the base URL and a function that stops it.
func StartFixed(body []byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		<-done
	}, nil
}

// NewHTTPClient returns a client that keeps up to conns idle connections to
// one host, so that C concurrent clients reuse C connections.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * conns
	t.MaxIdleConnsPerHost = conns
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
