package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/integration"
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
	// Env adds to the simulator's environment (DVGATE_* settings, e.g.
	// DVGATE_REDIS_URL for a shared level).
	Env map[string]string
}

// Stack is dvgate's sidecar as dvgate serve runs it (sidecar.Open: the
// integrations, metrics, HTTP server with its timeouts, limits and token
// check, and the shared level when configured), served on 127.0.0.1:0,
// over an in-process Dataverse simulator with the demo data.
type Stack struct {
	// URL is the sidecar's base URL, "http://127.0.0.1:PORT".
	URL string
	Sim *dataversetest.Server
	// Server is the running sidecar; Server.Integrations() serves lookups
	// in process through the same wiring.
	Server *sidecar.Server

	remove func()
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
	s := &Stack{Sim: sim, remove: func() {}}
	if cfg.Latency > 0 {
		s.remove = sim.InjectFault(dataversetest.Fault{Latency: cfg.Latency})
	}
	env := sim.Env()
	// The benchmarks measure lookups, not the request budget that keeps a
	// real org out of service protection: it would shed their cold misses.
	env[integration.EnvBudgetRate] = "-1"
	for k, v := range cfg.Env {
		env[k] = v
	}
	s.Server, err = sidecar.Open(ctx, sidecar.Options{Listen: "127.0.0.1:0", Logger: log,
		Integrations: integration.Options{Source: integration.Source{Getenv: integration.MapEnv(env, nil), ReadFile: integration.NoFiles},
			HTTPClient: sim.Client(), CacheBytes: cfg.CacheBytes}})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.URL = s.Server.URL()
	if err := s.Server.Integrations().Check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Env is the environment that configures a dataverse.Conn (or dvgate) for
// the simulator.
func (s *Stack) Env() map[string]string { return s.Sim.Env() }

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
	if s.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Server.Close(ctx)
		cancel()
	}
	s.remove()
	s.Sim.Close()
}

// StartFixed serves body (as application/json) for every request on
// 127.0.0.1:0 with a plain net/http handler in the sidecar's http.Server
// (same timeouts and limits): baseline (a), the limit of the HTTP stack. It returns the base URL and a function that stops it.
func StartFixed(body []byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := sidecar.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), sidecar.Options{})
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
