package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dvgate/dvgate/integration"
)

// Options configure Open. Zero values take the defaults.
type Options struct {
	// Listen is the address to listen on; default 127.0.0.1:8080. Use
	// 127.0.0.1:0 for a free port (Server.Addr says which).
	Listen string
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every path except /healthz and /readyz. Open refuses a non-loopback
	// Listen without one.
	APIToken string
	// Integrations configure the integrations (Source, Logger, Clock, ...);
	// Open sets their Logger and Registerer.
	Integrations integration.Options
	// Logger receives the access log and everything else; nil = discard.
	Logger *slog.Logger
	// RequestTimeout bounds one API request, so the caller gets a 504
	// rather than waiting on Dataverse; default 25s.
	RequestTimeout time.Duration
	// PollTicks drives the check of the config and secret files for
	// changes; nil = every PollInterval (default 5s).
	PollTicks    <-chan time.Time
	PollInterval time.Duration
	// Reload receives a value on SIGHUP: the configuration is re-read at
	// once.
	Reload <-chan struct{}
	// MCP, when set, returns the handler of the MCP tools over the
	// server's integrations (package mcp's NewHTTPHandler), served behind
	// the API token at /mcp and at /v1/integrations/{integration}/mcp
	// (the path value "integration" names it), logged and counted as
	// operation "mcp". nil = no MCP endpoint.
	MCP func(*integration.Registry) http.Handler
}

// ErrNoAPIToken is why Open refuses a non-loopback address without an API
// token: anyone who can reach it could read the org's customers.
var ErrNoAPIToken = errors.New("an API token is required on an address other than loopback")

// MinAPITokenLen is the shortest API token Open accepts, in bytes: a
// token is guessed offline as fast as requests go, so it must be long.
const MinAPITokenLen = 32

// ErrWeakAPIToken is why Open refuses an API token shorter than
// MinAPITokenLen.
var ErrWeakAPIToken = errors.New("the API token is shorter than 32 bytes")

// Server is a running sidecar: the HTTP API, /healthz, /readyz, /metrics
// and /openapi.json over the integrations, with a watch loop that reloads
// the configuration and retries integrations that are not ready. Its
// methods are safe for concurrent use.
type Server struct {
	log      *slog.Logger
	reg      *integration.Registry
	handler  *handler
	httpSrv  *http.Server
	ln       net.Listener
	stop     context.CancelFunc
	bg       sync.WaitGroup
	gatherer prometheus.Gatherer

	closeOnce sync.Once
	closeErr  error
}

// Open starts the sidecar as dvgate serve runs it: it loads the
// configuration, connects every integration (one that cannot start is
// reported and answers with its remedy while the others serve), listens,
// signs in to each integration once (so that readiness is known when Open
// returns; failures are retried by the watch loop), and starts the watch
// loop. It fails when no integration at all can start. Close stops it.
func Open(ctx context.Context, o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 25 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if n := len(o.APIToken); n > 0 && n < MinAPITokenLen {
		return nil, fmt.Errorf("%w: it is %d bytes (make one with openssl rand -base64 32)", ErrWeakAPIToken, n)
	}
	if !isLoopback(o.Listen) && o.APIToken == "" {
		return nil, fmt.Errorf("refusing to listen on %s: %w (clients then send \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", o.Listen, ErrNoAPIToken)
	}
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sm, err := newMetrics(promReg)
	if err != nil {
		return nil, err
	}
	io := o.Integrations
	io.Logger, io.Registerer = o.Logger, promReg
	reg, err := integration.Open(io)
	if err != nil {
		return nil, err
	}
	s := &Server{log: o.Logger, reg: reg, gatherer: promReg}
	hc := handlerConfig{Registry: reg, Logger: o.Logger, Metrics: sm, Gatherer: promReg,
		APIToken: o.APIToken, RequestTimeout: o.RequestTimeout}
	if o.MCP != nil {
		hc.MCP = o.MCP(reg)
	}
	if s.handler, err = newHandler(hc); err != nil {
		reg.Close()
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", o.Listen); err != nil {
		reg.Close()
		return nil, err
	}
	s.httpSrv = NewHTTPServer(s.handler, o)
	s.bg.Go(func() {
		if err := s.httpSrv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "error", err)
		}
	})
	s.log.Info("listening", "addr", s.Addr(), "integrations", reg.Names(), "apiToken", o.APIToken != "")

	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	if err := reg.Check(wctx); err != nil {
		s.log.Warn("not ready yet; will retry", "error", err)
	}
	ticks := o.PollTicks
	if ticks == nil {
		t := time.NewTicker(o.PollInterval)
		s.bg.Go(func() { <-wctx.Done(); t.Stop() })
		ticks = t.C
	}
	s.bg.Go(func() { reg.Watch(wctx, ticks, o.Reload) })
	return s, nil
}

// RegisterOnShutdown registers f to be called when Close starts shutting
// the HTTP server down (as http.Server's).
func (s *Server) RegisterOnShutdown(f func()) { s.httpSrv.RegisterOnShutdown(f) }

// NewHTTPServer returns the http.Server that Open serves its handler with
// (timeouts, header limit, error log), serving h instead: the benchmarks'
// baseline handler runs in the same server, so that a comparison measures
// the handlers alone.
func NewHTTPServer(h http.Handler, o Options) *http.Server {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 25 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      o.RequestTimeout + 5*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL, http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Gatherer is the server's Prometheus registry (what /metrics serves).
func (s *Server) Gatherer() prometheus.Gatherer { return s.gatherer }

// Integrations is the registry of the integrations the server runs, for
// in-process lookups (benchmarks) and tests.
func (s *Server) Integrations() *integration.Registry { return s.reg }

// Close shuts the server down gracefully: /readyz fails first, so a load
// balancer stops sending; in-flight requests finish (until ctx is done);
// then the integrations close. It returns the first error; calling it again
// returns the same.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		start := time.Now()
		s.handler.drain()
		s.stop()
		// Shutdown closes the listener first: no request starts after this.
		pending := s.handler.inFlight.Load()
		s.closeErr = s.httpSrv.Shutdown(ctx)
		left := s.handler.inFlight.Load()
		s.bg.Wait()
		n := len(s.reg.Readiness())
		s.reg.Close()
		// One line that says what the shutdown waited for and whether it
		// was cut short.
		attrs := []any{"inFlightRequests", pending, "unfinishedRequests", left, "integrationsClosed", n,
			"drainMs", time.Since(start).Milliseconds()}
		if s.closeErr != nil {
			s.log.Warn("stopped before every request finished", append(attrs, "error", s.closeErr.Error())...)
		} else {
			s.log.Info("stopped", attrs...)
		}
	})
	return s.closeErr
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
