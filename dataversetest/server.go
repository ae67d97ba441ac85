package dataversetest

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Well-known identities of the default org and app registration. They are
// valid GUIDs so that clients validating their configuration accept them.
const (
	DefaultTenantID       = "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
	DefaultClientID       = "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"
	DefaultClientSecret   = "dvsim~S3cr3t.Value_for-tests"
	DefaultOrganizationID = "4faf1f34-f06d-4e51-80d0-00155db07cb1"
	DefaultUserID         = "d96e9f55-f06d-4e51-80d0-00155db07cb1"
	DefaultBusinessUnitID = "ded5a64f-f06d-4e51-80d0-00155db07cb1"
)

// EmptySeed is a seed document with no rows, for Options.Seed.
var EmptySeed = []byte(`{"tables":{}}`)

// webAPIPrefix is the path under which the Web API is served.
const webAPIPrefix = "/api/data/v9.2/"

// Options configure a Server. The zero value serves the five-table fixture
// with the demo seed data and one app registration with the Default* IDs.
type Options struct {
	// CSDL is the $metadata document; nil = the embedded default fixture.
	CSDL []byte
	// EntityDefs is the EntityDefinitions JSON (option-set labels for
	// formatted values); nil = the embedded default.
	EntityDefs []byte
	// Seed is the seed data JSON (see LoadSeed for the format); nil = the
	// embedded demo data; EmptySeed for none.
	Seed []byte
	// TenantID, ClientID and ClientSecret identify the registered app;
	// "" = DefaultTenantID, DefaultClientID, DefaultClientSecret.
	TenantID, ClientID, ClientSecret string
	// Clock is used for token expiry, service protection windows and
	// request times; nil = time.Now.
	Clock func() time.Time
	// Logger receives one debug line per request; nil = discard.
	Logger *slog.Logger
	// Limits configure service protection; zero fields = the real defaults.
	Limits Limits
	// Addr, when set, is the loopback address to listen on ("127.0.0.1:8443");
	// "" = a free port on 127.0.0.1.
	Addr string
	// PageSize is the page size when a request has no Prefer:
	// odata.maxpagesize (top-level collections, and expanded collections of
	// a nested $expand); 0 = 5,000 as in Dataverse. Tests lower it to page
	// small data sets.
	PageSize int
	// Admin serves a JSON admin API under /_dvsim/ on the same port (a path
	// real Dataverse and Entra never have) to switch org states and inject
	// faults from any language: see admin.go and cmd/dvsim.
	Admin bool
	// ChangeTrackingExpiry is how long a change-tracking $deltatoken stays
	// valid (organization.ExpireChangeTrackingInDays); 0 = 7 days, the
	// default. Tests shorten it.
	ChangeTrackingExpiry time.Duration
	// UntrackedTables are tables (logical names) whose
	// ChangeTrackingEnabled is false; nil = every table is tracked, as the
	// tables dvgate reads are in most orgs (see delta.go).
	UntrackedTables []string
	// NewCertificate serves a certificate made for this server (ECDSA,
	// for 127.0.0.1, ::1, localhost and the Addr host) instead of
	// net/http/httptest's fixed one, whose private key is public: for a
	// server whose certificate others are told to trust (dvsim --ca-out).
	NewCertificate bool
	// AllowNonLoopback lets Addr be any address (dvsim --listen 0.0.0.0:…
	// in a container). The simulator has no real security: only for test
	// networks.
	AllowNonLoopback bool
}

// Server is a running simulator. Create it with NewServer and Close it when
// done. All methods are safe for concurrent use.
type Server struct {
	ts      *httptest.Server
	url     string
	clock   func() time.Time
	log     *slog.Logger
	tenant  string
	client  string
	handler http.Handler

	opts           Options // to rebuild the dataset on the first write
	trackingExpiry time.Duration
	untracked      map[string]bool // tables without change tracking; read-only after NewServer
	pageSize       int
	aggregateLimit int

	// dmu guards data: requests that read take it for reading while they
	// compute their answer; writes take it exclusively. data starts as a
	// snapshot shared between servers (never mutated); the first write
	// replaces it with a private copy (owned), which writes then change in
	// place.
	dmu   sync.RWMutex
	data  *dataset
	owned bool

	mu            sync.Mutex // guards the fields below
	secret        string
	secretExpired bool
	certs         map[string]*x509.Certificate // by base64 SHA-256 and SHA-1 thumbprint
	federated     string
	tokenLifetime time.Duration
	appUser       bool
	denied        map[string]bool
	tokenEpoch    string // in the uti claim of valid tokens; RevokeTokens replaces it
	admin         bool   // serve the admin API under /_dvsim/
	// identities are the simulated resource's managed identities, and
	// identityHeader App Service's IDENTITY_HEADER (set when mi starts).
	identities     []*managedIdentity
	identityHeader string

	miOnce sync.Once
	mi     *httptest.Server // the managed identity endpoint, started by ManagedIdentityEndpoint

	faults   faultSet
	obs      observer
	throttle *limiter
}

// NewServer starts a simulator on a TLS loopback listener.
func NewServer(opts Options) (*Server, error) {
	s := &Server{
		clock:         opts.Clock,
		log:           opts.Logger,
		tenant:        strings.ToLower(orDefault(opts.TenantID, DefaultTenantID)),
		client:        strings.ToLower(orDefault(opts.ClientID, DefaultClientID)),
		secret:        orDefault(opts.ClientSecret, DefaultClientSecret),
		certs:         map[string]*x509.Certificate{},
		tokenLifetime: time.Hour,
		appUser:       true,
		denied:        map[string]bool{},
		admin:         opts.Admin,
		identities:    defaultIdentities(),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.tokenEpoch = newTokenEpoch()
	if _, err := processKey(); err != nil {
		return nil, fmt.Errorf("dataversetest: token signing key: %w", err)
	}
	s.throttle = newLimiter(opts.Limits.withDefaults())
	s.aggregateLimit = opts.Limits.withDefaults().AggregateRecords
	s.opts = opts
	s.trackingExpiry = cmp.Or(opts.ChangeTrackingExpiry, defaultTrackingExpiry)
	s.untracked = map[string]bool{}
	for _, n := range opts.UntrackedTables {
		s.untracked[strings.ToLower(n)] = true
	}
	s.pageSize = opts.PageSize
	if s.pageSize <= 0 || s.pageSize > maxPageSize {
		s.pageSize = maxPageSize
	}

	data, shared, err := loadDataset(opts)
	if err != nil {
		return nil, err
	}
	s.data, s.owned = data, !shared

	s.handler = http.HandlerFunc(s.serveHTTP)
	ts := httptest.NewUnstartedServer(s.handler)
	if opts.Addr != "" {
		host, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("dataversetest: Addr %q: %w", opts.Addr, err)
		}
		if ip := net.ParseIP(host); !opts.AllowNonLoopback && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("dataversetest: Addr %q is not a loopback address", opts.Addr)
		}
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("dataversetest: listen: %w", err)
		}
		ts.Listener.Close()
		ts.Listener = l
	}
	ts.Config.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	if opts.NewCertificate {
		host, _, _ := net.SplitHostPort(opts.Addr)
		cert, err := newServerCertificate(host)
		if err != nil {
			return nil, fmt.Errorf("dataversetest: certificate: %w", err)
		}
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ts.StartTLS()
	s.ts = ts
	s.url = ts.URL
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Close shuts the server down, closing open connections.
func (s *Server) Close() {
	s.ts.CloseClientConnections()
	s.ts.Close()
	s.miOnce.Do(func() {}) // no endpoint starts after Close
	if s.mi != nil {
		s.mi.Close()
	}
}

// URL is the org URL, "https://127.0.0.1:PORT" without a trailing slash. The
// Web API is at URL()+"/api/data/v9.2/"; tokens must carry URL() as audience.
func (s *Server) URL() string { return s.url }

// AuthorityHost is the Entra authority host, "https://127.0.0.1:PORT/"; the
// authority is AuthorityHost()+TenantID().
func (s *Server) AuthorityHost() string { return s.url + "/" }

// TenantID returns the registered tenant.
func (s *Server) TenantID() string { return s.tenant }

// ClientID returns the registered app's client ID.
func (s *Server) ClientID() string { return s.client }

// ClientSecret returns the currently valid client secret.
func (s *Server) ClientSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

// Client returns an HTTP client that trusts the server's certificate. It is a
// new client each time, sharing nothing but the root CA.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Certificate returns the server's TLS certificate, to add to RootCAs of
// your own transports.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// TLSConfig returns a client TLS configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Handler returns the simulator's handler, for serving it from your own
// listener (for example plain HTTP in another language's test harness).
// Tokens are still checked against URL() as audience.
func (s *Server) Handler() http.Handler { return s.handler }

// WhoAmI returns the IDs the WhoAmI function reports.
func (s *Server) WhoAmI() (organizationID, userID, businessUnitID string) {
	return DefaultOrganizationID, DefaultUserID, DefaultBusinessUnitID
}

// SetApplicationUser sets whether the app registration has an application
// user in the org; without one every Web API call fails with 403 0x80072560.
func (s *Server) SetApplicationUser(present bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appUser = present
}

// DenyRead removes the read privilege on a table (logical name, "salesorder"):
// queries on it, and expands into it, fail with 403 0x80040220.
func (s *Server) DenyRead(table string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[strings.ToLower(table)] = true
}

// AllowRead undoes DenyRead.
func (s *Server) AllowRead(table string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.denied, strings.ToLower(table))
}

// SetClientSecret rotates the valid client secret (and un-expires it).
func (s *Server) SetClientSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
	s.secretExpired = false
}

// ExpireClientSecret makes the current secret expired: token requests with it
// fail with AADSTS7000222.
func (s *Server) ExpireClientSecret() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secretExpired = true
}

// AddClientCertificate registers a certificate: client assertions signed by
// its key (identified by the x5t#S256 or x5t header) are accepted.
func (s *Server) AddClientCertificate(cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[thumbprintS256(cert)] = cert
	s.certs[thumbprintSHA1(cert)] = cert
}

// SetFederatedToken accepts token as a client_assertion, as Entra does for a
// workload identity federation credential. "" disables federation.
func (s *Server) SetFederatedToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.federated = token
}

// SetTokenLifetime sets the lifetime (expires_in) of tokens issued from now on.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLifetime = d
}

// serveHTTP routes between the Web API and the Entra endpoints.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.admin && strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	if r.URL.Path == "/api/data/v9.2" || strings.HasPrefix(r.URL.Path, webAPIPrefix) {
		s.serveWebAPI(w, r)
		return
	}
	s.serveEntra(w, r)
}

// newServerCertificate makes a self-signed ECDSA certificate for loopback
// and host, valid for ten years.
func newServerCertificate(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dvsim", Organization: []string{"dataversetest"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
