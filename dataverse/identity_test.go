package dataverse

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
)

// reconnect replaces e's Conn by one made from mod's Config, which starts
// with e's simulator's URL and its managed identity endpoint as IMDS host
// (known only once the simulator runs), and no tenant, app or secret.
func (e *env) reconnect(t *testing.T, mod func(*Config)) {
	t.Helper()
	cfg := Config{URL: e.sim.URL(), HTTPClient: e.sim.Client(), Clock: e.clock, Logger: e.conn.log,
		IMDSHost: e.sim.ManagedIdentityEndpoint()}
	mod(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.conn = c
}

func TestManagedIdentityIMDS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		identity string
		wantUser string
		wantCred Credential
	}{
		{"system-assigned", "system", dataversetest.DefaultSystemIdentityUserID,
			Credential{Kind: CredentialManagedIdentity, Detail: "system-assigned, IMDS"}},
		{"user-assigned by client ID", dataversetest.DefaultUserIdentityClientID, dataversetest.DefaultUserIdentityUserID,
			Credential{Kind: CredentialManagedIdentity, Detail: "user-assigned " + dataversetest.DefaultUserIdentityClientID + ", IMDS"}},
		{"user-assigned by resource ID", dataversetest.DefaultUserIdentityResourceID, dataversetest.DefaultUserIdentityUserID,
			Credential{Kind: CredentialManagedIdentity, Detail: "user-assigned " + dataversetest.DefaultUserIdentityResourceID + ", IMDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
			e.reconnect(t, func(c *Config) { c.ManagedIdentity = tt.identity })
			for range 3 {
				got, err := e.conn.WhoAmI(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if got.UserID != tt.wantUser {
					t.Errorf("WhoAmI user %s, want the identity's application user %s", got.UserID, tt.wantUser)
				}
			}
			if diff := cmp.Diff(tt.wantCred, e.conn.Credential()); diff != "" {
				t.Errorf("Credential (-want +got):\n%s", diff)
			}
			if got := e.conn.Credential().HasSecret(); got {
				t.Error("a managed identity has no secret to expire, HasSecret says it has")
			}
			// Three calls, one token: MSAL's cache answers the others.
			c := e.sim.Counters()
			if c.ManagedIdentityToken != 1 || c.Token != 0 || e.conn.Stats().TokensAcquired != 1 {
				t.Errorf("managed identity token requests %d, Entra %d, acquired %d; want 1, 0, 1", c.ManagedIdentityToken, c.Token, e.conn.Stats().TokensAcquired)
			}
		})
	}
}

// A token the org refuses (revoked) is replaced by one the endpoint issues
// anew, bypassing MSAL's cache, as with the other credentials.
func TestManagedIdentityRevokedToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
	e.reconnect(t, func(c *Config) { c.ManagedIdentity = "system" })
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.sim.RevokeTokens()
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n := e.sim.Counters().ManagedIdentityToken; n != 2 {
		t.Errorf("managed identity token requests %d, want 2", n)
	}
}

func TestManagedIdentityErrors(t *testing.T) {
	t.Parallel()
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	const unassigned = "0f0e0d0c-0b0a-4909-8807-060504030201"
	tests := []struct {
		name     string
		identity string
		setup    func(*testing.T, *dataversetest.Server, *Config)
		kind     Kind
		status   int
		remedy   string
	}{
		{"no endpoint answers", "system", func(t *testing.T, _ *dataversetest.Server, c *Config) { c.IMDSHost = closed(t) },
			KindConfig, 0, RemedyNoManagedIdentity},
		{"system-assigned identity off", "system", func(_ *testing.T, s *dataversetest.Server, _ *Config) { s.SetSystemAssignedIdentity(false) },
			KindAuth, 400, RemedyNoManagedIdentity},
		{"user-assigned identity not assigned", unassigned, nil,
			KindAuth, 400, remedyIdentityNotAssigned(unassigned)},
		{"identity without an application user", "system", func(_ *testing.T, s *dataversetest.Server, _ *Config) {
			s.SetManagedIdentityApplicationUser(dataversetest.DefaultSystemIdentityClientID, false)
		}, KindPermission, 403, RemedyNoAppUser403},
		{"user-assigned identity without an application user", dataversetest.DefaultUserIdentityClientID, func(_ *testing.T, s *dataversetest.Server, _ *Config) {
			s.SetManagedIdentityApplicationUser(dataversetest.DefaultUserIdentityClientID, false)
		}, KindPermission, 403, RemedyNoAppUser403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
			e.reconnect(t, func(c *Config) {
				c.ManagedIdentity = tt.identity
				if tt.setup != nil {
					tt.setup(t, e.sim, c)
				}
			})
			_, err := e.conn.WhoAmI(t.Context())
			var de *Error
			if !asError(err, &de) {
				t.Fatalf("WhoAmI = %v, want an *Error", err)
			}
			if de.Kind != tt.kind || de.Status != tt.status || de.Remedy != tt.remedy {
				t.Errorf("got %v status %d remedy %q\nwant %v status %d remedy %q", de.Kind, de.Status, de.Remedy, tt.kind, tt.status, tt.remedy)
			}
		})
	}
}

// App Service's endpoint is found by MSAL in the process environment
// (IDENTITY_ENDPOINT, IDENTITY_HEADER), so this test sets it and cannot
// run in parallel with others.
func TestManagedIdentityAppService(t *testing.T) {
	sim := newSim(t, dataversetest.Options{Clock: time.Now})
	for k, v := range sim.AppServiceEnv() {
		t.Setenv(k, v)
	}
	connect := func(t *testing.T, identity string) *Conn {
		t.Helper()
		c, err := New(Config{URL: sim.URL(), ManagedIdentity: identity, HTTPClient: sim.Client()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	for _, tc := range []struct{ identity, user, detail string }{
		{"system", dataversetest.DefaultSystemIdentityUserID, "system-assigned, App Service"},
		{dataversetest.DefaultUserIdentityClientID, dataversetest.DefaultUserIdentityUserID, "user-assigned " + dataversetest.DefaultUserIdentityClientID + ", App Service"},
		{dataversetest.DefaultUserIdentityResourceID, dataversetest.DefaultUserIdentityUserID, "user-assigned " + dataversetest.DefaultUserIdentityResourceID + ", App Service"},
	} {
		c := connect(t, tc.identity)
		got, err := c.WhoAmI(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", tc.identity, err)
		}
		if got.UserID != tc.user || c.Credential().Detail != tc.detail {
			t.Errorf("%s: user %s credential %q, want %s, %q", tc.identity, got.UserID, c.Credential(), tc.user, tc.detail)
		}
	}
	if n := sim.Counters().ManagedIdentityToken; n != 3 {
		t.Errorf("managed identity token requests %d, want 3 (one per identity)", n)
	}

	// A stale IDENTITY_HEADER (the app kept an old one) is refused.
	t.Setenv("IDENTITY_HEADER", "stale-header")
	sim2 := newSim(t, dataversetest.Options{Clock: time.Now})
	t.Setenv("IDENTITY_ENDPOINT", sim2.AppServiceEnv()["IDENTITY_ENDPOINT"])
	c, err := New(Config{URL: sim2.URL(), ManagedIdentity: "system", HTTPClient: sim2.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.WhoAmI(t.Context())
	var de *Error
	if !asError(err, &de) || de.Kind != KindAuth || de.Status != 401 || de.Remedy != RemedyManagedIdentityRefused {
		t.Fatalf("stale header: %v, want auth 401 with RemedyManagedIdentityRefused", err)
	}
	if strings.Contains(err.Error(), "stale-header") {
		t.Errorf("the error shows the identity header: %v", err)
	}
}

// When several credentials are configured, the first of CredentialOrder
// signs in (azidentity's order), and the others are reported as ignored.
func TestCredentialOrder(t *testing.T) {
	t.Parallel()
	const mi = "system"
	tests := []struct {
		name        string
		mod         func(*Config)
		use         CredentialKind
		ignored     []CredentialKind
		kindKeyword string
	}{
		{"secret only", func(*Config) {}, CredentialSecret, nil, "client_secret"},
		{"secret and certificate", func(c *Config) { c.CertificatePath = "app.pem" }, CredentialSecret, []CredentialKind{CredentialCertificate}, "client_secret"},
		{"secret and managed identity", func(c *Config) { c.ManagedIdentity = mi }, CredentialSecret, []CredentialKind{CredentialManagedIdentity}, "client_secret"},
		{"certificate and federated", func(c *Config) { c.ClientSecret, c.CertificatePath, c.FederatedTokenFile = "", "app.pem", "/t" },
			CredentialCertificate, []CredentialKind{CredentialFederated}, "certificate"},
		{"federated and managed identity", func(c *Config) { c.ClientSecret, c.FederatedTokenFile, c.ManagedIdentity = "", "/t", mi },
			CredentialFederated, []CredentialKind{CredentialManagedIdentity}, "federated_token_file"},
		{"all four", func(c *Config) { c.CertificatePath, c.FederatedTokenFile, c.ManagedIdentity = "app.pem", "/t", mi },
			CredentialSecret, []CredentialKind{CredentialCertificate, CredentialFederated, CredentialManagedIdentity}, "client_secret"},
		{"managed identity alone, no tenant or app", func(c *Config) { c.ClientSecret, c.TenantID, c.ClientID, c.ManagedIdentity = "", "", "", mi },
			CredentialManagedIdentity, nil, "managed_identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mod(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			use, ignored := c.Credentials()
			if use != tt.use || !cmp.Equal(ignored, tt.ignored) {
				t.Errorf("Credentials = %q, %q; want %q, %q", use, ignored, tt.use, tt.ignored)
			}
			if !strings.Contains(c.String(), "Credential: "+tt.kindKeyword) {
				t.Errorf("String %s does not name %s", c, tt.kindKeyword)
			}
		})
	}

	// The secret signs in even though the (unreachable) managed identity
	// is configured too: nothing asks for it.
	e := newEnv(t, dataversetest.Options{}, func(c *Config) { c.ManagedIdentity = mi; c.IMDSHost = "http://127.0.0.1:1" })
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.conn.Credential().Kind; got != CredentialSecret {
		t.Errorf("signed in with %q, want the client secret", got)
	}
	if n := e.sim.Counters().ManagedIdentityToken; n != 0 {
		t.Errorf("%d managed identity token requests, want none", n)
	}
}

func TestManagedIdentityConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"system", true}, {"System", true}, {dataversetest.DefaultUserIdentityClientID, true},
		{dataversetest.DefaultUserIdentityResourceID, true},
		{"yes", false}, {"/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z", false},
		{"zQ8~looks.like-a-Secret", false},
	} {
		c := Config{URL: "https://contoso.crm4.dynamics.com", ManagedIdentity: tc.value}
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("ManagedIdentity %q: Validate = %v, want ok %v", tc.value, err, tc.ok)
		}
		if err != nil && (KindOf(err) != KindConfig || strings.Contains(err.Error(), tc.value)) {
			t.Errorf("ManagedIdentity %q: %v, want a config error that does not echo the value", tc.value, err)
		}
	}
	c := Config{URL: "https://contoso.crm4.dynamics.com", ManagedIdentity: "system", IMDSHost: "http://169.254.169.254/metadata"}
	if err := c.Validate(); KindOf(err) != KindConfig {
		t.Errorf("IMDS host with a path: %v, want a config error", err)
	}
	env := map[string]string{"DATAVERSE_URL": "https://contoso.crm4.dynamics.com", "DVGATE_MANAGED_IDENTITY": " system ",
		"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:8081"}
	got, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got.ManagedIdentity != "system" || got.IMDSHost != "http://127.0.0.1:8081" {
		t.Errorf("ConfigFromEnv = %+v", got)
	}
}

// TestManagedIdentityEndpointAnswers: how each answer of a managed identity
// endpoint is classified (IMDS's documented statuses: 404 and 410 while it
// updates, 429, 5xx are worth retrying; 4xx are not).
func TestManagedIdentityEndpointAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		kind      Kind
		code      string
		remedy    string
		transient bool
	}{
		{"updating", 410, `{"error":"unavailable"}`, KindUnavailable, "", RemedyManagedIdentityDown, true},
		{"throttled", 429, `{"error":"too_many_requests"}`, KindThrottled, "", RemedyManagedIdentityDown, true},
		{"server error", 500, `{"error":"unknown","error_description":"Failed to retrieve token from the Active directory."}`, KindUnavailable, "", RemedyManagedIdentityDown, true},
		{"wrong resource", 400, `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named https://x was not found in the tenant."}`,
			KindAuth, "AADSTS500011", RemedyResource, false},
		{"request refused", 400, `{"error":"invalid_request","error_description":"Required metadata header not specified"}`,
			KindAuth, "", RemedyManagedIdentityRefused, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
			e.reconnect(t, func(c *Config) { c.ManagedIdentity, c.IMDSHost, c.MaxAttempts = "system", srv.URL, 1 })
			_, err := e.conn.WhoAmI(t.Context())
			var de *Error
			if !asError(err, &de) {
				t.Fatalf("WhoAmI = %v, want an *Error", err)
			}
			if de.Kind != tt.kind || de.Code != tt.code || de.Remedy != tt.remedy || de.transient != tt.transient || de.Status != tt.status {
				t.Errorf("got %v %q status %d remedy %q transient %v\nwant %v %q status %d remedy %q transient %v",
					de.Kind, de.Code, de.Status, de.Remedy, de.transient, tt.kind, tt.code, tt.status, tt.remedy, tt.transient)
			}
		})
	}
}

// An IMDS that is updating (410) answers again after a retry, with the
// connection's backoff on its clock, not MSAL's second of real time.
func TestManagedIdentityRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
	target, _ := url.Parse(e.sim.ManagedIdentityEndpoint())
	// Rewrite sets no X-Forwarded-For, which IMDS would refuse.
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusGone)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.reconnect(t, func(c *Config) { c.ManagedIdentity, c.IMDSHost = "system", srv.URL })
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("WhoAmI after an IMDS update: %v", err)
	}
	if n := calls.Load(); n != 2 || len(e.clock.Waits()) != 1 {
		t.Errorf("%d requests to the endpoint and waits %v; want 2 and one backoff", n, e.clock.Waits())
	}
}

// An HTTP proxy (HTTP_PROXY) never carries managed identity requests: IMDS
// is on the machine and refuses proxied requests.
func TestManagedIdentityBypassesProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{Clock: time.Now}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &url.URL{Scheme: "http", Host: l.Addr().String()}
	l.Close() // a proxy that is down
	tr := &http.Transport{TLSClientConfig: e.sim.TLSConfig(), Proxy: func(r *http.Request) (*url.URL, error) {
		if r.URL.Scheme == "http" { // as HTTP_PROXY catches http:// URLs
			return proxy, nil
		}
		return nil, nil
	}}
	e.reconnect(t, func(c *Config) { c.ManagedIdentity, c.HTTPClient = "system", &http.Client{Transport: tr} })
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("WhoAmI with an HTTP proxy set: %v", err)
	}
}
