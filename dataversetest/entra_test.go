package dataversetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/google/go-cmp/cmp"
)

func msalClient(t *testing.T, s *Server, authority string, cred confidential.Credential) confidential.Client {
	t.Helper()
	c, err := confidential.New(authority, s.ClientID(), cred,
		confidential.WithHTTPClient(s.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatalf("confidential.New: %v", err)
	}
	return c
}

func TestMSALAcquiresTokens(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	cert, key := selfSignedCert(t)
	s.AddClientCertificate(cert)
	s.SetFederatedToken("eyJhbGciOiJSUzI1NiJ9.federated-k8s-token.sig")

	certCred, err := confidential.NewCredFromCert([]*x509Cert{cert}, key)
	if err != nil {
		t.Fatal(err)
	}
	secretCred, err := confidential.NewCredFromSecret(s.ClientSecret())
	if err != nil {
		t.Fatal(err)
	}
	fedCred := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		return "eyJhbGciOiJSUzI1NiJ9.federated-k8s-token.sig", nil
	})
	for _, tc := range []struct {
		name string
		cred confidential.Credential
	}{{"secret", secretCred}, {"certificate", certCred}, {"federated", fedCred}} {
		t.Run(tc.name, func(t *testing.T) {
			c := msalClient(t, s, s.AuthorityHost()+s.TenantID(), tc.cred)
			res, err := c.AcquireTokenByCredential(context.Background(), []string{s.URL() + "/.default"})
			if err != nil {
				t.Fatalf("AcquireTokenByCredential: %v", err)
			}
			if got := get(t, s, res.AccessToken, "WhoAmI").status; got != http.StatusOK {
				t.Errorf("WhoAmI with MSAL token: status %d", got)
			}
			// The second call is served from MSAL's cache.
			before := s.TokenRequests()
			if _, err := c.AcquireTokenByCredential(context.Background(), []string{s.URL() + "/.default"}); err != nil {
				t.Fatal(err)
			}
			if after := s.TokenRequests(); after != before {
				t.Errorf("token requests %d -> %d, want cached", before, after)
			}
		})
	}
}

func TestMSALCertificateNotRegistered(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	cert, key := selfSignedCert(t)
	cred, _ := confidential.NewCredFromCert([]*x509Cert{cert}, key)
	c := msalClient(t, s, s.AuthorityHost()+s.TenantID(), cred)
	_, err := c.AcquireTokenByCredential(context.Background(), []string{s.URL() + "/.default"})
	assertEntraError(t, err, http.StatusUnauthorized, "invalid_client", 700027)
}

// assertEntraError checks an MSAL error carries the Entra body.
func assertEntraError(t *testing.T, err error, status int, code string, aadsts int) {
	t.Helper()
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a CallErr", err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
		Timestamp   string `json:"timestamp"`
		TraceID     string `json:"trace_id"`
		Correlation string `json:"correlation_id"`
	}
	if err := json.NewDecoder(ce.Resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode Entra body: %v", err)
	}
	if ce.Resp.StatusCode != status || body.Error != code || len(body.Codes) != 1 || body.Codes[0] != aadsts {
		t.Errorf("got %d %s %v, want %d %s [%d]", ce.Resp.StatusCode, body.Error, body.Codes, status, code, aadsts)
	}
	if !strings.HasPrefix(body.Description, "AADSTS"+itoa(aadsts)+": ") || body.TraceID == "" || body.Correlation == "" || body.Timestamp == "" {
		t.Errorf("body not Entra-shaped: %+v", body)
	}
}

func TestEntraErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(s *Server)
		tenant   string // "" = registered
		clientID string // "" = registered
		secret   string // "" = current
		scope    string // "" = org .default
		status   int
		code     string
		aadsts   int
	}{
		{name: "wrong secret", secret: "nope", status: 401, code: "invalid_client", aadsts: 7000215},
		{name: "expired secret", setup: func(s *Server) { s.ExpireClientSecret() }, status: 401, code: "invalid_client", aadsts: 7000222},
		{name: "unknown client", clientID: "00000000-1111-2222-3333-444444444444", status: 400, code: "unauthorized_client", aadsts: 700016},
		{name: "unknown tenant", tenant: "11111111-2222-3333-4444-555555555555", status: 400, code: "invalid_tenant", aadsts: 90002},
		{name: "wrong resource", scope: "https://other.crm4.dynamics.com/.default", status: 400, code: "invalid_resource", aadsts: 500011},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{Seed: EmptySeed})
			if tc.setup != nil {
				tc.setup(s)
			}
			tenant, clientID, secret, scope := orDefault(tc.tenant, s.TenantID()), orDefault(tc.clientID, s.ClientID()), orDefault(tc.secret, s.ClientSecret()), orDefault(tc.scope, s.URL()+"/.default")
			cred, _ := confidential.NewCredFromSecret(secret)
			c, err := confidential.New(s.AuthorityHost()+tenant, clientID, cred,
				confidential.WithHTTPClient(s.Client()), confidential.WithInstanceDiscovery(false))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.AcquireTokenByCredential(context.Background(), []string{scope})
			assertEntraError(t, err, tc.status, tc.code, tc.aadsts)
		})
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	old := s.ClientSecret()
	s.SetClientSecret("new-secret")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "scope": {s.URL() + "/.default"}}
	form.Set("client_secret", old)
	if st, _ := postToken(t, s, form); st != http.StatusUnauthorized {
		t.Errorf("old secret: status %d, want 401", st)
	}
	form.Set("client_secret", "new-secret")
	if st, body := postToken(t, s, form); st != http.StatusOK {
		t.Errorf("new secret: status %d %s", st, body)
	}
	if got := s.TokenRequests(); got != 2 {
		t.Errorf("TokenRequests = %d, want 2", got)
	}
}

func TestTokenResponseShape(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	s.SetTokenLifetime(10 * time.Minute)
	_, body := postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()},
		"client_secret": {s.ClientSecret()}, "scope": {s.URL() + "/.default openid offline_access profile"}})
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(600) || m["access_token"] == "" {
		t.Errorf("token response %s", body)
	}
	if _, ok := m["scope"]; ok {
		t.Errorf("token response must not carry scope (MSAL checks declined scopes): %s", body)
	}
}

func TestOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	resp, err := s.Client().Get(s.AuthorityHost() + s.TenantID() + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Issuer, TokenEndpoint, AuthorizationEndpoint string
	}
	var raw map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	got.Issuer, _ = raw["issuer"].(string)
	got.TokenEndpoint, _ = raw["token_endpoint"].(string)
	got.AuthorizationEndpoint, _ = raw["authorization_endpoint"].(string)
	base := s.URL() + "/" + s.TenantID()
	want := struct{ Issuer, TokenEndpoint, AuthorizationEndpoint string }{base + "/v2.0", base + "/oauth2/v2.0/token", base + "/oauth2/v2.0/authorize"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("openid-configuration (-want +got):\n%s", diff)
	}
}
