package dataverse

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
)

func TestWhoAmIAndRequestHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	ctx := t.Context()
	got, err := e.conn.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	org, user, bu := e.sim.WhoAmI()
	if diff := cmp.Diff(WhoAmIResult{OrganizationID: org, UserID: user, BusinessUnitID: bu}, got); diff != "" {
		t.Errorf("WhoAmI (-want +got):\n%s", diff)
	}
	if _, err := e.conn.Get(ctx, "WhoAmI", `odata.include-annotations="*"`, "odata.maxpagesize=10"); err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("simulator saw %d requests, want 2", len(reqs))
	}
	tok, err := e.conn.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := reqs[1].Header
	want := map[string]string{
		"Accept":           "application/json",
		"Odata-Maxversion": "4.0",
		"Odata-Version":    "4.0",
		"If-None-Match":    "null",
		"User-Agent":       "dvgate/dev",
		"Authorization":    "Bearer " + tok,
		"Prefer":           `odata.include-annotations="*",odata.maxpagesize=10`,
		"Accept-Encoding":  "gzip",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if reqs[0].Header.Get("Prefer") != "" {
		t.Errorf("Prefer sent without being asked for: %q", reqs[0].Header.Get("Prefer"))
	}
	if e.conn.BaseURL() != e.sim.URL()+"/api/data/v9.2/" || e.conn.OrgURL() != e.sim.URL() {
		t.Errorf("BaseURL %q OrgURL %q", e.conn.BaseURL(), e.conn.OrgURL())
	}
}

func TestColdStartCoalescesSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			if _, err := e.conn.Get(t.Context(), "WhoAmI"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.sim.TokenRequests(); n != 1 {
		t.Errorf("%d concurrent cold callers caused %d token requests, want 1", callers, n)
	}
	// The token is reused from MSAL's cache afterwards.
	for range 5 {
		if _, err := e.conn.WhoAmI(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.sim.TokenRequests(); n != 1 {
		t.Errorf("token requests after warm calls = %d, want 1", n)
	}
	tokens := map[string]bool{}
	for _, r := range e.sim.Requests() {
		tokens[r.Token] = true
	}
	if len(tokens) != 1 || e.sim.WebAPIRequests() != callers+5 {
		t.Errorf("distinct tokens %d, web API requests %d", len(tokens), e.sim.WebAPIRequests())
	}
	if s := e.conn.Stats(); s.TokensAcquired != 1 || s.Requests != callers+5 {
		t.Errorf("stats %+v", s)
	}
}

// TestSignInErrors checks each Entra failure row against the simulator: the
// error kind, the AADSTS code, the remedy, and that nothing reached the Web API.
func TestSignInErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(*dataversetest.Server)
		mod    func(*Config)
		status int
		code   string
		remedy string
	}{
		{"wrong secret", nil, func(c *Config) { c.ClientSecret = "WRONG~canary.Secret_91aa" }, 401, "AADSTS7000215", RemedySecretInvalid},
		{"expired secret", func(s *dataversetest.Server) { s.ExpireClientSecret() }, nil, 401, "AADSTS7000222", RemedySecretExpired},
		{"expired secret, date stated", func(s *dataversetest.Server) { s.ExpireClientSecret() },
			func(c *Config) { c.ClientSecretExpiresOn = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) }, 401, "AADSTS7000222",
			"The client secret expired on 2026-11-30: " + remedyRotateSecret},
		{"unknown client", nil, func(c *Config) { c.ClientID = "0f0e0d0c-0b0a-4909-8807-060504030201" }, 400, "AADSTS700016", RemedyAppNotFound},
		{"unknown tenant", nil, func(c *Config) { c.TenantID = "11111111-2222-4333-8444-555555555555" }, 400, "AADSTS90002", RemedyTenant},
		{"org not in tenant", nil, func(c *Config) { c.URL = "https://nosuchorg.crm4.dynamics.com" }, 400, "AADSTS500011", RemedyResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dataversetest.Options{}, tt.mod)
			if tt.setup != nil {
				tt.setup(e.sim)
			}
			_, err := e.conn.WhoAmI(t.Context())
			var de *Error
			if !asError(err, &de) {
				t.Fatalf("WhoAmI = %v, want *Error", err)
			}
			if de.Kind != KindAuth || de.Status != tt.status || de.Code != tt.code || de.Remedy != tt.remedy || de.Op != "sign in" {
				t.Errorf("got kind %v status %d code %q op %q remedy %q\nwant auth %d %q %q", de.Kind, de.Status, de.Code, de.Op, de.Remedy, tt.status, tt.code, tt.remedy)
			}
			if de.CorrelationID == "" || !strings.HasPrefix(de.Message, tt.code+":") {
				t.Errorf("correlation id %q, message %q", de.CorrelationID, de.Message)
			}
			if n := e.sim.WebAPIRequests(); n != 0 {
				t.Errorf("%d Web API requests after a failed sign-in", n)
			}
			if strings.Contains(err.Error(), "WRONG~canary") || strings.Contains(err.Error(), dataversetest.DefaultClientSecret) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestCertificateSignIn(t *testing.T) {
	t.Parallel()
	key := rsaKey(t)
	cert := testCert(t, key)
	pemPath, pfxPath := pemFile(t, cert, key), pfxFile(t, cert, key, "pfx-Password-0815")
	for _, tc := range []struct{ name, path, password string }{
		{"PEM", pemPath, ""},
		{"PKCS#12", pfxPath, "pfx-Password-0815"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dataversetest.Options{}, func(c *Config) {
				c.ClientSecret, c.CertificatePath, c.CertificatePassword = "", tc.path, tc.password
			})
			_, err := e.conn.WhoAmI(t.Context())
			if de := (*Error)(nil); !asError(err, &de) || de.Code != "AADSTS700027" || de.Remedy != RemedyCertificate {
				t.Fatalf("unregistered certificate: %v", err)
			}
			e.sim.AddClientCertificate(cert)
			e.clock.Advance(failureHold) // the failure is answered from memory until then
			if _, err := e.conn.WhoAmI(t.Context()); err != nil {
				t.Fatalf("registered certificate: %v", err)
			}
		})
	}
}

func TestFederatedTokenFileIsReread(t *testing.T) {
	t.Parallel()
	jwt := func(sub string) string {
		b := base64.RawURLEncoding.EncodeToString
		return b([]byte(`{"alg":"RS256","kid":"k8s"}`)) + "." + b([]byte(`{"iss":"https://oidc.example","sub":"`+sub+`","aud":"api://AzureADTokenExchange"}`)) + ".c2ln"
	}
	first, second := jwt("system:serviceaccount:help:dvgate"), jwt("system:serviceaccount:help:dvgate-rotated")
	path := writeFile(t, "azure-identity-token", []byte(first+"\n"))
	e := newEnv(t, dataversetest.Options{}, func(c *Config) { c.ClientSecret, c.FederatedTokenFile = "", path })
	// Tokens of 5 minutes or less are never cached by MSAL, so each call
	// below makes a token request and reads the file again.
	e.sim.SetTokenLifetime(4 * time.Minute)

	_, err := e.conn.WhoAmI(t.Context())
	if de := (*Error)(nil); !asError(err, &de) || de.Code != "AADSTS70021" || de.Remedy != RemedyFederated {
		t.Fatalf("federation not configured: %v", err)
	}
	if strings.Contains(err.Error(), first) {
		t.Errorf("error shows the federated token: %v", err)
	}
	e.sim.SetFederatedToken(first)
	e.clock.Advance(failureHold) // the failure is answered from memory until then
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("federated sign-in: %v", err)
	}
	// The kubelet rotates the projected token: the new one must be used.
	if err := writeFileAt(path, []byte(second)); err != nil {
		t.Fatal(err)
	}
	e.sim.SetFederatedToken(second)
	if _, err := e.conn.WhoAmI(t.Context()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := e.sim.TokenRequests(); n != 3 {
		t.Errorf("token requests = %d, want 3", n)
	}
}

func TestTokenCallerCancelDoesNotBreakOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.conn.Token(ctx); KindOf(err) != KindCanceled {
		t.Errorf("canceled caller: %v", err)
	}
	if _, err := e.conn.Token(t.Context()); err != nil {
		t.Errorf("next caller: %v", err)
	}
}

func TestAuthorityUnreachable(t *testing.T) {
	t.Parallel()
	cfg := validConfig()
	cfg.AuthorityHost = "https://login.invalid/"
	cfg.HTTPClient = noDNSClient(nil)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.WhoAmI(t.Context())
	if de := (*Error)(nil); !asError(err, &de) || de.Kind != KindNetwork || de.Op != "sign in" || de.Remedy != RemedyEntraNetwork {
		t.Fatalf("WhoAmI = %v", err)
	}
}

// TestFailedSignInIsHeld: with a wrong secret, a burst of lookups makes one
// token request, not one each; after failureHold the next call asks Entra
// again (the secret may have been fixed in place).
func TestFailedSignInIsHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, func(c *Config) { c.ClientSecret = "WRONG~held.Secret_77bb" })
	for range 20 {
		if _, err := e.conn.WhoAmI(t.Context()); KindOf(err) != KindAuth {
			t.Fatalf("WhoAmI with a wrong secret: %v", err)
		}
	}
	if n := e.sim.TokenRequests(); n != 1 {
		t.Errorf("token requests for 20 calls with a wrong secret = %d, want 1", n)
	}
	e.clock.Advance(failureHold)
	if _, err := e.conn.WhoAmI(t.Context()); KindOf(err) != KindAuth {
		t.Fatalf("WhoAmI after the hold: %v", err)
	}
	if n := e.sim.TokenRequests(); n != 2 {
		t.Errorf("token requests after the hold = %d, want 2", n)
	}
}
