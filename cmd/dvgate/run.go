package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/internal/buildinfo"
	"github.com/dvgate/dvgate/sidecar"
)

// Environment variables of the command (besides integration's and dataverse's).
const (
	envListen   = "DVGATE_LISTEN"
	envAPIToken = "DVGATE_API_TOKEN"
)

// Main is the program: ParseFlags, Run, then Close. Tests run it in-process
// on 127.0.0.1:0 with the same wiring as the binary. The exported fields are
// set before ParseFlags; nil/zero ones get the process defaults.
type Main struct {
	Stdin          io.Reader // dvgate mcp's transport; nil = the process's stdin
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	ReadFile       func(string) ([]byte, error)
	// Stat checks secret files' permissions; nil = os.Stat.
	Stat func(string) (fs.FileInfo, error)
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
	mode         string        // lookup customer, recent and summary
	limit        int           // lookup recent
	customer     string        // lookup summary: TYPE/GUID instead of an email
	wait         time.Duration // lookup summary: how long to wait for Dataverse to compute it
	logLevel     string
	logFormat    string
	pollInterval time.Duration

	log    *slog.Logger
	sim    *dataversetest.Server
	reg    *integration.Registry // test and lookup
	server *sidecar.Server       // serve
	closed bool
}

// NewMain returns a Main wired to the process (stdout, stderr, environment).
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, ReadFile: os.ReadFile}
}

const usage = `dvgate is a caching lookup gateway in front of Microsoft Dataverse: it answers a help
desk's "who is this email?" and "what is the state of this order?" from cache or with one
Dataverse request.

Usage:
  dvgate [serve] [--listen ADDR] [--config FILE] [--demo]   run the HTTP sidecar (MCP tools at /mcp)
  dvgate mcp [--config FILE] [--demo]                       the MCP tools on stdin/stdout
  dvgate test [--integration NAME] [--config FILE]          sign in and call WhoAmI
  dvgate lookup customer|order|recent|refunds|summary ARG   one lookup, as JSON on stdout
  dvgate version                                            the build: version, revision, Go version
  dvgate help [COMMAND]                                     this text, or a command's

Without --config, one integration named "default" is configured from DATAVERSE_URL,
AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET (+ AZURE_CLIENT_SECRET_EXPIRES_ON),
AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD) or
AZURE_FEDERATED_TOKEN_FILE; DVGATE_CUSTOMER_LOOKUP=both|contacts|accounts and
DVGATE_TRACKING_COLUMN are optional, and the cache knobs (DVGATE_CUSTOMER_TTL, DVGATE_CACHE_BYTES,
...) are listed in the README. A non-loopback --listen requires DVGATE_API_TOKEN.
Several replicas share a second cache level and Dataverse's throttling through Redis
or Valkey when DVGATE_REDIS_URL (redis://host:6379/0) is set (DVGATE_REDIS_PREFIX: key prefix).

Examples:
  dvgate --demo                                   the gateway on the built-in simulator
  dvgate lookup customer alex.wu@example.com --demo
  dvgate test --config /etc/dvgate/dvgate.json --integration eu

Exit status: 0 done (a lookup found it), 3 a lookup found nothing, 1 error
(configuration, sign-in, Dataverse), 2 usage error.

Flags:
`

// commandHelp is dvgate help COMMAND's text, before the flags.
var commandHelp = map[string]string{
	"serve": `dvgate serve [--listen ADDR] [--config FILE] [--demo]

Runs the HTTP sidecar: the lookups under /v1/..., /healthz, /readyz, /metrics,
/openapi.json and the MCP tools at /mcp. It reloads the configuration on SIGHUP
or when the config or a secret file changes, and on SIGINT or SIGTERM stops
taking requests, finishes the ones in flight and logs one "stopped" line.
"serve" is the default command: "dvgate --demo" serves the demo.
`,
	"mcp": `dvgate mcp [--config FILE] [--demo]

Serves the MCP tools (find_customer, get_order, list_recent_orders, list_refunds,
get_customer_summary, check_connection) on stdin/stdout, configured as serve is.
`,
	"test": `dvgate test [--integration NAME] [--config FILE] [--demo]

Signs in and calls WhoAmI (the help desk's Test button): prints OK with the
organization, or FAILED with what to fix, and when the credential expires.
Exit status 0 when it works, 1 when it does not.
`,
	"lookup": `dvgate lookup customer EMAIL [--mode both|contacts|accounts]
dvgate lookup order NUMBER|GUID
dvgate lookup recent EMAIL [--mode ...] [--limit N]   the customer's most recent orders
dvgate lookup refunds NUMBER|GUID                     the order's refunds (the org's own table)
dvgate lookup summary EMAIL [--mode ...] [--wait 1m]  total spent, order counts, first and last order
dvgate lookup summary --customer contact|account/GUID [--wait 1m]
  (each with [--integration NAME] [--config FILE] [--demo])

Prints the answer as JSON on stdout (the HTTP API's), or {"error": {"code", "message"}}.
Dataverse may take a while to compute a summary that is not cached: lookup
summary waits for it up to --wait, then prints {"pending": true,
"retryAfterSeconds": N} (the API's 202 answer) and exits 1; ask again later.
Exit status: 0 found, 3 not found (a normal answer, not a failure of dvgate),
1 error (configuration, sign-in, Dataverse), 2 usage error.

Examples:
  dvgate lookup order ORD-01001-B2K9P7 --demo
  dvgate lookup summary --customer account/a02d49e0-2b3d-5151-8267-0ce42f01c3f8 --demo
`,
	"version": `dvgate version   (or dvgate --version)

Prints the build: the release or module version, the VCS revision when the
binary was built from a repository, and the Go version; /metrics has the same
as dvgate_build_info.
`,
	"help": `dvgate help [COMMAND]

Prints the usage of dvgate, or of one command (serve, mcp, test, lookup, version).
`,
}

// lookupKinds are the arguments of dvgate lookup.
var lookupKinds = []string{"customer", "order", "recent", "refunds", "summary"}

// ParseFlags reads the command line (without the program name).
func (m *Main) ParseFlags(args []string) error {
	m.defaults()
	m.cmd = "serve"
	explicit := len(args) > 0 && !strings.HasPrefix(args[0], "-")
	if explicit {
		m.cmd, args = args[0], args[1:]
	}
	switch m.cmd {
	case "serve", "test", "lookup", "version", "mcp", "help":
	default:
		return fmt.Errorf("unknown command %q; try dvgate help", m.cmd)
	}
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			// Asked for: the usage is the output (stdout, exit 0).
			if explicit && m.cmd != "help" {
				m.args = []string{m.cmd}
			}
			m.cmd = "help"
			return nil
		case "-version", "--version":
			m.cmd = "version"
		}
	}
	fs := m.flagSet()
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
	ho := &slog.HandlerOptions{Level: lvl}
	switch m.logFormat {
	case "json":
		m.log = slog.New(slog.NewJSONHandler(m.Stderr, ho))
	case "text":
		m.log = slog.New(slog.NewTextHandler(m.Stderr, ho))
	default:
		return fmt.Errorf("--log-format %q is not json or text", m.logFormat)
	}
	if m.pollInterval <= 0 {
		return errors.New("--poll must be positive")
	}
	switch m.cmd {
	case "lookup":
		want := 2 // the kind and its argument
		if len(pos) > 0 && pos[0] == "summary" && m.customer != "" {
			want = 1 // --customer instead of an email
		}
		if len(pos) != want || !slices.Contains(lookupKinds, pos[0]) {
			return errors.New("usage: dvgate lookup customer|recent|summary EMAIL | dvgate lookup order|refunds REF | dvgate lookup summary --customer TYPE/GUID (see dvgate help lookup)")
		}
		if m.mode != "" && pos[0] != "customer" && pos[0] != "recent" && (pos[0] != "summary" || m.customer != "") {
			return errors.New("--mode is for lookup customer, recent and summary by email")
		}
		if m.customer != "" && pos[0] != "summary" {
			return errors.New("--customer is for lookup summary")
		}
		if typ, id, ok := strings.Cut(m.customer, "/"); m.customer != "" && (!ok || typ == "" || id == "") {
			return fmt.Errorf("--customer %q is not TYPE/GUID, such as contact/b46d4f35-6f57-5fbb-b866-32977a8faa40", m.customer)
		}
		if m.wait < 0 {
			return fmt.Errorf("--wait %v is negative", m.wait)
		}
		if _, err := gateway.ParseMode(m.mode); err != nil {
			return fmt.Errorf("--mode %q is not both, contacts or accounts", m.mode)
		}
		if m.limit < 1 || m.limit > gateway.MaxRecentOrders {
			return fmt.Errorf("--limit %d is not between 1 and %d", m.limit, gateway.MaxRecentOrders)
		}
	case "help":
		if len(pos) > 1 || len(pos) == 1 && commandHelp[pos[0]] == "" {
			return fmt.Errorf("dvgate help %s: no such command; try dvgate help", strings.Join(pos, " "))
		}
	default:
		if len(pos) != 0 {
			return fmt.Errorf("unexpected arguments %q", pos)
		}
	}
	return nil
}

// flagSet defines dvgate's flags on m.
func (m *Main) flagSet() *flag.FlagSet {
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
	fs.BoolVar(&m.demo, "demo", false, "run against the in-process Dataverse simulator with demo data (with --config: every integration of the file signs in to it)")
	fs.StringVar(&m.integration, "integration", integration.Default, "integration for test and lookup")
	fs.StringVar(&m.mode, "mode", "", "lookup customer, recent and summary: both, contacts or accounts (default: the integration's)")
	fs.IntVar(&m.limit, "limit", 10, "lookup recent: how many orders, 1-50")
	fs.StringVar(&m.customer, "customer", "", "lookup summary: the customer as TYPE/GUID (contact/... or account/...) instead of an email")
	fs.DurationVar(&m.wait, "wait", time.Minute, "lookup summary: how long to wait for Dataverse to compute a summary that is not cached")
	fs.StringVar(&m.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&m.logFormat, "log-format", "json", "json, or text for a person at a terminal; every line on stderr, a fatal error included, uses it")
	fs.DurationVar(&m.pollInterval, "poll", 5*time.Second, "how often to check the config and secret files for changes")
	fs.BoolVar(new(bool), "version", false, "print the build and exit (as dvgate version)")
	return fs
}

// help prints dvgate's usage, or a command's, on stdout.
func (m *Main) help() error {
	fs := m.flagSet()
	fs.SetOutput(m.Stdout)
	if len(m.args) == 1 && m.args[0] != "" {
		fmt.Fprint(m.Stdout, commandHelp[m.args[0]])
		if m.args[0] != "version" && m.args[0] != "help" {
			fmt.Fprintln(m.Stdout, "\nFlags:")
			fs.PrintDefaults()
		}
		return nil
	}
	fs.Usage()
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
	if m.Stat == nil {
		m.Stat = os.Stat
	}
	if m.RequestTimeout <= 0 {
		m.RequestTimeout = 25 * time.Second
	}
	if m.ShutdownTimeout <= 0 {
		m.ShutdownTimeout = 30 * time.Second
	}
}

// Fatal reports err, which ends the program, as the last line of the log,
// in the log's format (--log-format), so that a log collector reading
// JSON lines sees it too. Before ParseFlags succeeded there is no log, and
// err goes to Stderr as text.
func (m *Main) Fatal(err error) {
	if m.log == nil {
		fmt.Fprintln(m.Stderr, "dvgate:", err)
		return
	}
	m.log.Error("dvgate stopped", "error", err.Error())
}

// Exit statuses (documented in the usage): a lookup that finds nothing is
// a normal answer, told apart from a failure.
const (
	exitFailed   = 1 // error: configuration, sign-in, Dataverse
	exitUsage    = 2 // the command line does not parse
	exitNotFound = 3 // a lookup found nothing
)

// exitError makes the process exit with status code (1 when 0) after the
// command already printed why.
type exitError struct {
	msg  string
	code int
}

// status is the process's exit status for e.
func (e exitError) status() int {
	if e.code == 0 {
		return exitFailed
	}
	return e.code
}

func (e exitError) Error() string { return e.msg }

// Run executes the command. For serve it returns once the server listens
// and the integrations were checked once (Close stops it); other commands
// run to completion.
func (m *Main) Run(ctx context.Context) error {
	switch m.cmd {
	case "version":
		fmt.Fprintln(m.Stdout, buildinfo.Read())
		return nil
	case "help":
		return m.help()
	case "serve":
		return m.serve(ctx)
	case "test":
		return m.test(ctx)
	case "mcp":
		return m.mcpStdio(ctx)
	default:
		return m.lookup(ctx)
	}
}

// Serving reports whether Run started a server that Close must stop.
func (m *Main) Serving() bool { return m.server != nil }

// Addr is the address the server listens on (after Run).
func (m *Main) Addr() string { return m.server.Addr() }

// Registry is the running integrations (after Run), for tests.
func (m *Main) Registry() *integration.Registry {
	if m.server != nil {
		return m.server.Integrations()
	}
	return m.reg
}

// integrations returns how the integrations are configured: where the
// configuration comes from and the base HTTP client. With --demo it starts
// the simulator and configures one integration on it from its environment.
func (m *Main) integrations() (integration.Options, error) {
	o := integration.Options{Source: integration.Source{Path: m.configPath, Getenv: m.Getenv, ReadFile: m.ReadFile, Stat: m.Stat},
		HTTPClient: m.HTTPClient, Logger: m.log, Clock: m.Clock}
	if !m.demo {
		return o, nil
	}
	opts, err := dataversetest.CustomizedDemo()
	if err != nil {
		return o, err
	}
	opts.Logger = m.log.With("component", "simulator")
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		return o, err
	}
	m.sim = sim
	o.HTTPClient = sim.Client()
	if m.configPath != "" {
		// The config file as it is, but every integration signs in to the
		// simulator: an admin tries a config file before pointing it at a
		// real org.
		o.Source.ReadFile = func(name string) ([]byte, error) {
			b, err := m.ReadFile(name)
			if err != nil || name != m.configPath {
				return b, err
			}
			return demoConfig(b, sim)
		}
		o.Source.Getenv = integration.MapEnv(map[string]string{envDemoSecret: sim.ClientSecret()}, m.Getenv)
		return o, nil
	}
	// The demo org's customisations, unless the environment says otherwise.
	env := sim.Env()
	for k, v := range demoSettings {
		if m.Getenv(k) == "" {
			env[k] = v
		}
	}
	o.Source = integration.Source{Getenv: integration.MapEnv(env, m.Getenv), ReadFile: m.ReadFile}
	return o, nil
}

// demoSettings configure the demo's integration for the demo org: its
// custom tracking column and a few typed fields (a choice, a money column).
var demoSettings = map[string]string{
	integration.EnvTrackingColumn: "contoso_trackingnumber",
	integration.EnvOrderFields:    "shippingmethodcode,paymenttermscode,freightamount",
	integration.EnvOrderPrefix:    "ORD-",
	integration.EnvRefunds:        "contoso_refund:contoso_salesorderid:contoso_amount:statuscode:createdon:contoso_reason",
}

// envDemoSecret names the simulator's secret in a config file rewritten by
// demoConfig.
const envDemoSecret = "DVGATE_DEMO_CLIENT_SECRET"

// demoConfig rewrites a config file so that every integration signs in to
// sim, keeping everything else (lookup mode, columns, fields).
func demoConfig(raw []byte, sim *dataversetest.Server) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return raw, nil // integration.Source reports it with its position
	}
	var ins map[string]map[string]any
	if err := json.Unmarshal(doc["integrations"], &ins); err != nil {
		return raw, nil
	}
	for _, in := range ins {
		for _, k := range []string{"certificatePath", "certificatePassword", "federatedTokenFile", "managedIdentity"} {
			delete(in, k)
		}
		in["url"], in["tenantId"], in["clientId"], in["authorityHost"] = sim.URL(), sim.TenantID(), sim.ClientID(), sim.AuthorityHost()
		in["clientSecret"] = map[string]string{"env": envDemoSecret}
	}
	b, err := json.Marshal(ins)
	if err != nil {
		return nil, err
	}
	doc["integrations"] = b
	delete(doc, "redis") // the demo runs alone
	return json.Marshal(doc)
}

func (m *Main) serve(ctx context.Context) error {
	io, err := m.integrations()
	if err != nil {
		return err
	}
	token := strings.TrimSpace(m.Getenv(envAPIToken))
	m.server, err = sidecar.Open(ctx, sidecar.Options{Listen: m.listen, APIToken: token, Integrations: io, Logger: m.log,
		RequestTimeout: m.RequestTimeout, PollTicks: m.PollTicks, PollInterval: m.pollInterval, Reload: m.Reload, MCP: m.mcpHTTP})
	if errors.Is(err, sidecar.ErrWeakAPIToken) {
		return fmt.Errorf("%s: %w", envAPIToken, err)
	}
	if errors.Is(err, sidecar.ErrNoAPIToken) {
		return fmt.Errorf("refusing to listen on %s without an API token: set %s (clients then send \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", m.listen, envAPIToken)
	}
	if err != nil {
		return err
	}
	if m.demo {
		m.printDemo()
	}
	return nil
}

func (m *Main) printDemo() {
	base := m.server.URL()
	fmt.Fprintf(m.Stdout, `dvgate demo: gateway on %[1]s, Dataverse simulator on %[2]s (demo data)

  curl -s '%[1]s/v1/customers?email=alex.wu@example.com'
  curl -s '%[1]s/v1/customers?email=orders@fabrikam.example'
  curl -s '%[1]s/v1/orders/ORD-01001-B2K9P7'
  curl -s '%[1]s/v1/orders/%%2301001-b2k9p7'
  curl -s '%[1]s/v1/refunds?order=ORD-01001-B2K9P7'
  curl -s '%[1]s/v1/customers/account/a02d49e0-2b3d-5151-8267-0ce42f01c3f8/summary'
  curl -s -X POST '%[1]s/v1/test'
  curl -s '%[1]s/readyz'
  curl -s '%[1]s/metrics' | grep '^dvgate_'

The second order is typed as a customer would ("#01001-b2k9p7"); refunds come from the demo org's
own contoso_refund table. Add -i to see X-Cache and Age (run a lookup twice: miss, then hit). Ctrl-C stops.
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
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		err = m.server.Close(ctx)
		cancel()
	}
	if m.reg != nil {
		m.reg.Close()
	}
	if m.sim != nil {
		m.sim.Close()
	}
	return err
}

// acquire opens the configuration (no metrics) and returns the backend of
// the chosen integration.
func (m *Main) acquire() (integration.Backend, func(), error) {
	io, err := m.integrations()
	if err != nil {
		return nil, nil, err
	}
	if m.reg, err = integration.Open(io); err != nil {
		return nil, nil, err
	}
	b, release, ok := m.reg.Acquire(m.integration)
	if !ok {
		return nil, nil, fmt.Errorf("no integration named %q is configured", m.integration)
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
	defer m.printCredential()
	if err != nil {
		e := integration.ErrorOf(err, "")
		fmt.Fprintf(m.Stdout, "FAILED (%s): %s\n", e.Code, e.Message)
		if e.DataverseCode != "" {
			fmt.Fprintf(m.Stdout, "Dataverse/Entra code: %s\n", e.DataverseCode)
		}
		return exitError{msg: e.Message}
	}
	fmt.Fprintf(m.Stdout, "OK: organization %s (user %s, business unit %s)\n", res.OrganizationID, res.UserID, res.BusinessUnitID)
	return nil
}

// printCredential says which credential the tested integration signs in
// with (never its value) and when it expires (dvgate test), after the
// result.
func (m *Main) printCredential() {
	now := time.Now
	if m.Clock != nil {
		now = m.Clock
	}
	if c, ok := m.reg.Credential(m.integration); ok && c.Kind != "" {
		fmt.Fprintln(m.Stdout, "Signed in with:", c.String())
		fmt.Fprintln(m.Stdout, "Credential:", c.Describe(now()))
	}
}

func (m *Main) lookup(ctx context.Context) error {
	b, release, err := m.acquire()
	if err != nil {
		return err
	}
	defer release()
	out, err := m.lookupOne(ctx, b)
	var pending summaryPending
	if errors.As(err, &pending) {
		out = pending
	} else if err != nil {
		e := integration.ErrorOf(err, "")
		out = map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message}}
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(out); werr != nil {
		return werr
	}
	if pending.Pending {
		return exitError{msg: err.Error()}
	}
	if err != nil {
		e := integration.ErrorOf(err, "")
		if e.Code == integration.CodeNotFound {
			return exitError{msg: e.Message, code: exitNotFound}
		}
		return exitError{msg: e.Message}
	}
	return nil
}

// lookupOne runs dvgate lookup's lookup and returns the answer to print
// (gateway's JSON types, as the Go API returns them).
func (m *Main) lookupOne(ctx context.Context, b integration.Backend) (any, error) {
	arg := ""
	if len(m.args) > 1 {
		arg = m.args[1]
	}
	switch m.args[0] {
	case "customer":
		c, _, err := b.Customer(ctx, arg, m.mode)
		if err != nil {
			return nil, err
		}
		return map[string]any{"customer": c}, nil
	case "order":
		o, _, err := b.Order(ctx, arg)
		if err != nil {
			return nil, err
		}
		return map[string]any{"order": o}, nil
	case "recent":
		c, _, err := b.Customer(ctx, arg, m.mode)
		if err != nil {
			return nil, err
		}
		list, _, err := b.RecentOrders(ctx, c.Type, c.ID, m.limit)
		if err != nil {
			return nil, err
		}
		return map[string]any{"customer": c, "orders": list}, nil
	case "summary":
		return m.summary(ctx, b, arg)
	default: // refunds
		list, err := b.Refunds(ctx, arg)
		if err != nil {
			return nil, integration.RenameParam(err, "ref", "order")
		}
		source := "none"
		if cfg, ok := m.reg.Config(m.integration); ok && cfg.Refunds != nil {
			source = cfg.Refunds.Table
		}
		return map[string]any{"refunds": list, "source": source}, nil
	}
}

// summaryJSON is the HTTP API's summary answer (GET
// /v1/customers/{type}/{id}/summary), which differs from gateway.Summary's
// own JSON in the amount: written as the API writes money.
type summaryJSON struct {
	Customer   gateway.Ref           `json:"customer"`
	Orders     gateway.SummaryOrders `json:"orders"`
	TotalSpent struct {
		Amount    string `json:"amount"`
		Currency  string `json:"currency"`
		Formatted string `json:"formatted"`
	} `json:"totalSpent"`
	AsOf  time.Time `json:"asOf"`
	Stale bool      `json:"stale"`
}

// summaryPending is the HTTP API's 202 answer, printed when the summary is
// still being computed after --wait; as an error it makes lookup exit 1.
type summaryPending struct {
	Pending           bool `json:"pending"`
	RetryAfterSeconds int  `json:"retryAfterSeconds"`
	waited            time.Duration
}

func (p summaryPending) Error() string {
	return fmt.Sprintf("Dataverse is still computing the summary after --wait %v; run the lookup again in %d s (or with a longer --wait)",
		p.waited, p.RetryAfterSeconds)
}

// summary runs dvgate lookup summary: the customer found by email (in
// --mode) or named by --customer, then its summary. A summary Dataverse
// has not computed within the gateway's short wait is asked for again,
// which joins the computation under way rather than starting another,
// until it answers or --wait has passed.
func (m *Main) summary(ctx context.Context, b integration.Backend, email string) (any, error) {
	typ, id, _ := strings.Cut(m.customer, "/")
	if m.customer == "" {
		c, _, err := b.Customer(ctx, email, m.mode)
		if err != nil {
			return nil, err
		}
		typ, id = c.Type, c.ID
	}
	wctx, cancel := context.WithTimeout(ctx, m.wait)
	defer cancel()
	for {
		s, meta, err := b.Summary(wctx, typ, id)
		var pe *gateway.PendingError
		if errors.As(err, &pe) {
			if wctx.Err() == nil && ctx.Err() == nil {
				continue
			}
			return nil, summaryPending{Pending: true, RetryAfterSeconds: max(1, int((pe.RetryAfter+time.Second-1)/time.Second)),
				waited: m.wait}
		}
		if err != nil {
			return nil, err
		}
		out := summaryJSON{Customer: s.Customer, Orders: s.Orders, AsOf: s.AsOf,
			// The API says a stale answer in X-Cache too; here the flag is all.
			Stale: s.Stale || meta.Outcome == gateway.Stale}
		out.TotalSpent.Amount, out.TotalSpent.Currency, out.TotalSpent.Formatted = gateway.AmountString(s.TotalSpent.Amount),
			s.TotalSpent.Currency, s.TotalSpent.Formatted
		return map[string]any{"summary": out}, nil
	}
}
