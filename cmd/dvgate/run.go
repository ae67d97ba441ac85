package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/fleet"
	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/sidecar"
)

// Environment variables of the command (besides sidecar's and dataverse's).
const (
	envListen   = "DVGATE_LISTEN"
	envAPIToken = "DVGATE_API_TOKEN"
)

// Main is the program: ParseFlags, Run, then Close. Tests run it in-process
// on 127.0.0.1:0 with the same wiring as the binary. The exported fields are
// set before ParseFlags; nil/zero ones get the process defaults.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	ReadFile       func(string) ([]byte, error)
	// HTTPClient is the base client for Dataverse and Entra (TLS roots);
	// nil = dataverse's default (or the simulator's client with --demo).
	HTTPClient *http.Client
	// PollTicks drives the config and secret file check; nil = a ticker
	// every --poll interval.
	PollTicks <-chan time.Time
	// Reload receives a value on SIGHUP.
	Reload <-chan struct{}
	// RequestTimeout bounds one API request (default 25s).
	RequestTimeout time.Duration
	// ShutdownTimeout bounds draining on Close (default 30s).
	ShutdownTimeout time.Duration
	// Clock decides cache freshness; nil = time.Now. Tests move it forward
	// to make cached answers stale without sleeping.
	Clock func() time.Time

	cmd          string
	args         []string
	listen       string
	configPath   string
	demo         bool
	integration  string
	logLevel     string
	pollInterval time.Duration

	log     *slog.Logger
	sim     *dataversetest.Server
	fleet   *fleet.Redis // shared level of several replicas; nil = alone
	reg     *sidecar.Registry
	server  *sidecar.Server
	httpSrv *http.Server
	ln      net.Listener
	stop    context.CancelFunc
	bg      sync.WaitGroup
	serving bool
	closed  bool
}

// NewMain returns a Main wired to the process (stdout, stderr, environment).
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, ReadFile: os.ReadFile}
}

const usage = `Usage:
  dvgate [serve] [--listen ADDR] [--config FILE] [--demo]   run the HTTP sidecar
  dvgate test [--integration NAME] [--config FILE]          sign in and call WhoAmI
  dvgate lookup customer EMAIL [--integration NAME]         one customer lookup, as JSON
  dvgate lookup order REF [--integration NAME]              one order lookup, as JSON
  dvgate version

Without --config, one integration named "default" is configured from DATAVERSE_URL,
AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET,
AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD) or
AZURE_FEDERATED_TOKEN_FILE; DVGATE_CUSTOMER_LOOKUP=both|contacts|accounts and
DVGATE_TRACKING_COLUMN are optional. A non-loopback --listen requires DVGATE_API_TOKEN.
Several replicas share a second cache level and Dataverse's throttling through Redis
or Valkey when DVGATE_REDIS_URL (redis://host:6379/0) is set (DVGATE_REDIS_PREFIX: key prefix).

Flags:
`

// ParseFlags reads the command line (without the program name).
func (m *Main) ParseFlags(args []string) error {
	m.defaults()
	m.cmd = "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		m.cmd, args = args[0], args[1:]
	}
	switch m.cmd {
	case "serve", "test", "lookup", "version":
	default:
		return fmt.Errorf("unknown command %q; try dvgate --help", m.cmd)
	}
	fs := flag.NewFlagSet("dvgate", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	listen := m.Getenv(envListen)
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	fs.StringVar(&m.listen, "listen", listen, "address to listen on (env "+envListen+")")
	fs.StringVar(&m.configPath, "config", "", "JSON file of named integrations (default: the environment)")
	fs.BoolVar(&m.demo, "demo", false, "run against the in-process Dataverse simulator with demo data")
	fs.StringVar(&m.integration, "integration", sidecar.DefaultIntegration, "integration for test and lookup")
	fs.StringVar(&m.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&m.pollInterval, "poll", 5*time.Second, "how often to check the config and secret files for changes")
	// Flags may follow positional arguments (dvgate lookup order REF --demo).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	m.args = pos
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	m.log = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: lvl}))
	if m.pollInterval <= 0 {
		return errors.New("--poll must be positive")
	}
	switch m.cmd {
	case "lookup":
		if len(pos) != 2 || (pos[0] != "customer" && pos[0] != "order") {
			return errors.New("usage: dvgate lookup customer EMAIL | dvgate lookup order REF")
		}
	default:
		if len(pos) != 0 {
			return fmt.Errorf("unexpected arguments %q", pos)
		}
	}
	return nil
}

func (m *Main) defaults() {
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.ReadFile == nil {
		m.ReadFile = os.ReadFile
	}
	if m.RequestTimeout <= 0 {
		m.RequestTimeout = 25 * time.Second
	}
	if m.ShutdownTimeout <= 0 {
		m.ShutdownTimeout = 30 * time.Second
	}
}

// exitError makes the process exit with status 1 after the command already
// printed why.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

// Run executes the command. For serve it returns once the server listens
// and the integrations were checked once (Close stops it); other commands
// run to completion.
func (m *Main) Run(ctx context.Context) error {
	switch m.cmd {
	case "version":
		fmt.Fprintln(m.Stdout, "dvgate", dataverse.Version())
		return nil
	case "serve":
		return m.serve(ctx)
	case "test":
		return m.test(ctx)
	default:
		return m.lookup(ctx)
	}
}

// Serving reports whether Run started a server that Close must stop.
func (m *Main) Serving() bool { return m.serving }

// Addr is the address the server listens on (after Run).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Registry is the running integrations (after Run), for tests.
func (m *Main) Registry() *sidecar.Registry { return m.reg }

// source returns where the configuration comes from; with --demo it starts
// the simulator and configures one integration on it from a fake environment.
func (m *Main) source() (sidecar.Source, *http.Client, error) {
	src := sidecar.Source{Path: m.configPath, Getenv: m.Getenv, ReadFile: m.ReadFile}
	if !m.demo {
		return src, m.HTTPClient, nil
	}
	sim, err := dataversetest.NewServer(dataversetest.Options{Logger: m.log.With("component", "simulator")})
	if err != nil {
		return src, nil, err
	}
	m.sim = sim
	env := map[string]string{
		dataverse.EnvURL: sim.URL(), dataverse.EnvTenantID: sim.TenantID(), dataverse.EnvClientID: sim.ClientID(),
		dataverse.EnvClientSecret: sim.ClientSecret(), dataverse.EnvAuthorityHost: sim.AuthorityHost(),
	}
	src = sidecar.Source{Getenv: func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return m.Getenv(k)
	}, ReadFile: m.ReadFile}
	return src, sim.Client(), nil
}

// open loads the configuration and connects every integration.
func (m *Main) open(promReg prometheus.Registerer) (*sidecar.Metrics, error) {
	src, client, err := m.source()
	if err != nil {
		return nil, err
	}
	conn := &sidecar.GatewayConnector{HTTPClient: client, Logger: m.log, Clock: m.Clock}
	var sm *sidecar.Metrics
	var fm *fleet.Metrics
	if promReg != nil {
		if conn.Metrics, err = gateway.NewMetrics(promReg); err != nil {
			return nil, err
		}
		if sm, err = sidecar.NewMetrics(promReg); err != nil {
			return nil, err
		}
		if fm, err = fleet.NewMetrics(promReg); err != nil {
			return nil, err
		}
	}
	fc, err := src.LoadFleet()
	if err != nil {
		return nil, err
	}
	if fc.URL != "" {
		if m.fleet, err = fleet.New(fleet.Config{URL: fc.URL, Prefix: fc.Prefix, Logger: m.log.With("component", "fleet"), Metrics: fm}); err != nil {
			return nil, err
		}
		conn.Fleet = m.fleet
		m.log.Info("sharing cache and throttle state with other replicas", "fleet", fc.String())
	}
	m.reg, err = sidecar.NewRegistry(sidecar.RegistryConfig{Source: src, Connector: conn, Logger: m.log, Metrics: sm})
	return sm, err
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

func (m *Main) serve(ctx context.Context) error {
	token := strings.TrimSpace(m.Getenv(envAPIToken))
	if !isLoopback(m.listen) && token == "" {
		return fmt.Errorf("refusing to listen on %s without an API token: set %s (clients then send \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", m.listen, envAPIToken)
	}
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sm, err := m.open(promReg)
	if err != nil {
		return err
	}
	m.server, err = sidecar.NewServer(sidecar.ServerConfig{Registry: m.reg, Logger: m.log, Metrics: sm, Gatherer: promReg,
		APIToken: token, RequestTimeout: m.RequestTimeout})
	if err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", m.listen); err != nil {
		return err
	}
	m.httpSrv = &http.Server{
		Handler:           m.server,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      m.RequestTimeout + 5*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.serving = true
	m.bg.Go(func() {
		if err := m.httpSrv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("server stopped", "error", err)
		}
	})
	m.log.Info("listening", "addr", m.Addr(), "integrations", m.reg.Names(), "apiToken", token != "")

	// Sign in once before returning, so that readiness is known; failures
	// are retried by the watch loop and reported by /readyz.
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = stop
	if err := m.reg.Check(wctx); err != nil {
		m.log.Warn("not ready yet; will retry", "error", err)
	}
	ticks := m.PollTicks
	if ticks == nil {
		t := time.NewTicker(m.pollInterval)
		m.bg.Go(func() { <-wctx.Done(); t.Stop() })
		ticks = t.C
	}
	m.bg.Go(func() { m.reg.Watch(wctx, ticks, m.Reload) })
	if m.demo {
		m.printDemo()
	}
	return nil
}

func (m *Main) printDemo() {
	base := "http://" + m.Addr()
	fmt.Fprintf(m.Stdout, `dvgate demo: gateway on %[1]s, Dataverse simulator on %[2]s (demo data)

  curl -s '%[1]s/v1/customers?email=alex.wu@example.com'
  curl -s '%[1]s/v1/customers?email=orders@fabrikam.example'
  curl -s '%[1]s/v1/orders/ORD-01001-B2K9P7'
  curl -s -X POST '%[1]s/v1/test'
  curl -s '%[1]s/readyz'
  curl -s '%[1]s/metrics' | grep '^dvgate_'

Add -i to see X-Cache and Age (run a lookup twice: miss, then hit). Ctrl-C stops.
`, base, m.sim.URL())
}

// Close shuts the server down gracefully: /readyz fails first, in-flight
// requests finish (up to ShutdownTimeout), then connections and the
// simulator close. It is safe to call more than once.
func (m *Main) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var err error
	if m.server != nil {
		m.server.Drain()
	}
	if m.stop != nil {
		m.stop()
	}
	if m.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		err = m.httpSrv.Shutdown(ctx)
		cancel()
	}
	m.bg.Wait()
	if m.reg != nil {
		m.reg.Close()
	}
	if m.fleet != nil {
		m.fleet.Close()
	}
	if m.sim != nil {
		m.sim.Close()
	}
	return err
}

// acquire opens the configuration (no metrics) and returns the backend of
// the chosen integration.
func (m *Main) acquire() (sidecar.Backend, func(), error) {
	if _, err := m.open(nil); err != nil {
		return nil, nil, err
	}
	b, release, ok := m.reg.Acquire(m.integration)
	if !ok {
		return nil, nil, fmt.Errorf("no integration named %q; configured: %v", m.integration, m.reg.Names())
	}
	return b, release, nil
}

func (m *Main) test(ctx context.Context) error {
	b, release, err := m.acquire()
	if err != nil {
		return err
	}
	defer release()
	res, err := b.Test(ctx)
	if err != nil {
		e := apiErr(err)
		fmt.Fprintf(m.Stdout, "FAILED (%s): %s\n", e.Code, e.Message)
		if e.DataverseCode != "" {
			fmt.Fprintf(m.Stdout, "Dataverse/Entra code: %s\n", e.DataverseCode)
		}
		return exitError{msg: e.Message}
	}
	fmt.Fprintf(m.Stdout, "OK: organization %s (user %s, business unit %s)\n", res.OrganizationId, res.UserId, res.BusinessUnitId)
	return nil
}

func apiErr(err error) *sidecar.APIError {
	var e *sidecar.APIError
	if errors.As(err, &e) {
		return e
	}
	return &sidecar.APIError{Code: sidecar.ErrorCodeInternal, Message: err.Error()}
}

func (m *Main) lookup(ctx context.Context) error {
	b, release, err := m.acquire()
	if err != nil {
		return err
	}
	defer release()
	var out any
	switch m.args[0] {
	case "customer":
		var c sidecar.Customer
		if c, _, err = b.Customer(ctx, m.args[1], ""); err == nil {
			out = sidecar.CustomerResponse{Customer: c}
		}
	default:
		var o sidecar.Order
		if o, _, err = b.Order(ctx, m.args[1]); err == nil {
			out = sidecar.OrderResponse{Order: o}
		}
	}
	if err != nil {
		out = apiErr(err).Body()
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(out); werr != nil {
		return werr
	}
	if err != nil {
		return exitError{msg: apiErr(err).Message}
	}
	return nil
}
