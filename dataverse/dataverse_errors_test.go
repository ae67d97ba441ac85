package dataverse

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestDataverseErrors checks each Web API failure row against the simulator.
func TestDataverseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(*env)
		path   string
		kind   Kind
		status int
		code   string
		remedy string
	}{
		// Every token refused: one fresh sign-in and one retry, then the 401
		// (TestTokenRejected covers the recovery).
		{"token rejected (401)", func(e *env) {
			e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/WhoAmI", Status: 401})
		}, "WhoAmI", KindAuth, 401, "0x80040216", RemedyNoAppUser401},
		{"no application user", func(e *env) { e.sim.SetApplicationUser(false) }, "WhoAmI", KindPermission, 403, "0x80072560", RemedyNoAppUser403},
		{"WhoAmI 404", func(e *env) {
			e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/WhoAmI", Status: 404})
		}, "WhoAmI", KindConfig, 404, "0x80040216", RemedyOrgURL},
		{"bad request", func(e *env) { e.sim.InjectFault(dataversetest.Fault{Status: 400}) }, "WhoAmI", KindBadRequest, 400, "0x80040216", RemedyBadRequest},
		{"server error not retried", func(e *env) { e.sim.InjectFault(dataversetest.Fault{Status: 500}) }, "WhoAmI", KindUnavailable, 500, "0x80040216", RemedyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dataversetest.Options{}, nil)
			// Sign in first (at the fake clock's start), then break things.
			if _, err := e.conn.Token(t.Context()); err != nil {
				t.Fatal(err)
			}
			tt.setup(e)
			_, err := e.conn.WhoAmI(t.Context())
			var de *Error
			if !asError(err, &de) {
				t.Fatalf("WhoAmI = %v, want *Error", err)
			}
			if de.Kind != tt.kind || de.Status != tt.status || de.Code != tt.code || de.Remedy != tt.remedy || de.Op != "GET WhoAmI" {
				t.Errorf("got kind %v status %d code %q op %q remedy %q\nwant %v %d %q %q", de.Kind, de.Status, de.Code, de.Op, de.Remedy, tt.kind, tt.status, tt.code, tt.remedy)
			}
			want := 1
			if tt.status == 401 {
				want = 2 // with a new token
			}
			if n := e.sim.WebAPIRequests(); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
		})
	}
}

func TestPrivilegeDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	e.sim.DenyRead("salesorder")
	_, err := e.conn.Get(t.Context(), "salesorders?$select=ordernumber&$filter=ordernumber eq 'ORD-1'")
	var de *Error
	if !asError(err, &de) || de.Status == 200 {
		t.Fatalf("Get = %v", err)
	}
	if de.Status != 403 || de.Code != "0x80040220" || de.Kind != KindPermission || de.Remedy != remedyPrivilege("salesorder") {
		t.Errorf("got %v", de)
	}
	if !strings.Contains(de.Remedy, "read on salesorder: assign Salesperson") {
		t.Errorf("remedy %q does not name the table", de.Remedy)
	}
}

func TestRecordNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	_, err := e.conn.Get(t.Context(), "contacts(00000000-0000-0000-0000-00000000beef)?$select=fullname")
	var de *Error
	if !asError(err, &de) || de.Kind != KindNotFound || de.Status != 404 || de.Code != "0x80040217" || de.Remedy != RemedyNoRecord {
		t.Fatalf("Get = %v", err)
	}
}

func TestBadQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	_, err := e.conn.Get(t.Context(), "contacts?$select=nosuchcolumn")
	if KindOf(err) != KindBadRequest {
		t.Fatalf("Get = %v, want bad_request", err)
	}
}

// resolveOrg makes the Conn sign in to the simulator while sending Web API
// requests to another URL: real Entra would refuse the scope, and the tests
// using this are about what happens after sign-in.
func resolveOrg(c *Conn, sim *dataversetest.Server) {
	c.tokens.scopes = []string{sim.URL() + "/.default"}
}

func TestHostDoesNotResolve(t *testing.T) {
	t.Parallel()
	sim := newSim(t, dataversetest.Options{})
	cfg := simConfig(sim)
	cfg.URL = "https://nosuchorg.invalid"
	cfg.HTTPClient = noDNSClient(sim)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resolveOrg(c, sim)
	_, err = c.WhoAmI(t.Context())
	var de *Error
	if !asError(err, &de) || de.Kind != KindNetwork || de.Remedy != RemedyOrgURL {
		t.Fatalf("WhoAmI = %v, want network error with the org URL remedy", err)
	}
	if c.Stats().Requests != 1 {
		t.Errorf("a DNS failure was retried: %+v", c.Stats())
	}
}

func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	sim := newSim(t, dataversetest.Options{})
	// A server with its own self-signed certificate, which nothing trusts.
	key := rsaKey(t)
	other := httptest.NewUnstartedServer(http.NotFoundHandler())
	other.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{testCert(t, key).Raw}, PrivateKey: key}}}
	other.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	other.StartTLS()
	defer other.Close()
	cfg := simConfig(sim)
	cfg.URL = other.URL
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resolveOrg(c, sim)
	_, err = c.Get(t.Context(), "WhoAmI")
	if de := (*Error)(nil); !asError(err, &de) || de.Kind != KindNetwork || de.Remedy != RemedyTLS {
		t.Fatalf("Get = %v, want TLS remedy", err)
	}
	if c.Stats().Requests != 1 {
		t.Errorf("a TLS trust failure was retried: %+v", c.Stats())
	}
}

// strictServer is a strict Dataverse for WhoAmI: 429 0x80072326 whenever
// more than limit requests overlap. Each request waits (bounded) until
// releaseAt requests are in flight, so that overlaps happen if the client
// allows them.
type strictServer struct {
	*httptest.Server
	mu             sync.Mutex
	inflight, peak int
	full           chan struct{}
}

func newStrictServer(t *testing.T, limit, releaseAt int) *strictServer {
	s := &strictServer{full: make(chan struct{})}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.inflight++
		s.peak = max(s.peak, s.inflight)
		over := s.inflight > limit
		if s.inflight == releaseAt {
			close(s.full)
			s.full = make(chan struct{})
		}
		wait := s.full
		s.mu.Unlock()
		defer func() { s.mu.Lock(); s.inflight--; s.mu.Unlock() }()
		if over {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"0x80072326","message":"Number of concurrent requests exceeded the limit of 3."}}`))
			return
		}
		select {
		case <-wait:
		case <-time.After(time.Second): // a last, partial group
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"BusinessUnitId":"b","UserId":"u","OrganizationId":"o"}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *strictServer) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// strictConn signs in to sim and sends Web API requests to srv.
func strictConn(t *testing.T, sim *dataversetest.Server, srv *strictServer, mod func(*Config)) *Conn {
	cfg := simConfig(sim) // httptest servers share one certificate, so sim.Client() trusts both
	cfg.URL = srv.URL
	mod(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	resolveOrg(c, sim)
	return c
}

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	const limit = 3
	sim := newSim(t, dataversetest.Options{})
	srv := newStrictServer(t, limit, limit)
	c := strictConn(t, sim, srv, func(c *Config) { c.MaxConcurrent = limit })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 * limit {
		wg.Go(func() {
			if _, err := c.WhoAmI(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := srv.Peak(); p != limit {
		t.Errorf("peak concurrency %d, want MaxConcurrent %d", p, limit)
	}
	if c.Stats().Throttled != 0 {
		t.Errorf("throttled: %+v", c.Stats())
	}
}

// TestConcurrencyLimitRemedy lets the client exceed the server's limit and
// checks the 429 names the concurrency limit.
func TestConcurrencyLimitRemedy(t *testing.T) {
	t.Parallel()
	const limit = 3
	sim := newSim(t, dataversetest.Options{})
	srv := newStrictServer(t, limit, limit+1)
	c := strictConn(t, sim, srv, func(c *Config) { c.MaxConcurrent = 2 * limit; c.MaxAttempts = 1 })
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		remedies = map[string]int{}
	)
	for range 2 * limit {
		wg.Go(func() {
			_, err := c.WhoAmI(ctx)
			if de := (*Error)(nil); asError(err, &de) && de.Kind == KindThrottled && de.Status == 429 {
				mu.Lock()
				remedies[de.Code+" "+de.Remedy]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := "0x80072326 Dataverse service protection limit reached (concurrent requests); retry after 1 seconds."
	if remedies[want] == 0 || len(remedies) != 1 {
		t.Errorf("throttling errors %v, want %q", remedies, want)
	}
}

func TestRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://attacker.example/api/data/v9.2/WhoAmI", nil)
	if _, err := e.conn.Do(req); KindOf(err) != KindBadRequest {
		t.Fatalf("Do to another host = %v", err)
	}
	if e.sim.TokenRequests() != 0 {
		t.Error("signed in for a request that was refused")
	}
}
