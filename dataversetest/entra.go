package dataversetest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t thumbprints are SHA-1 by definition (RFC 7515).
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// serveEntra serves the OpenID discovery document, the token endpoint and
// instance discovery, under /{tenant}/...
func (s *Server) serveEntra(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	tenant, rest := parts[0], strings.Join(parts[1:], "/")
	switch {
	case rest == "discovery/instance" && r.Method == http.MethodGet:
		host := strings.TrimPrefix(s.url, "https://")
		writeJSONValue(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": s.url + "/" + s.tenant + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata":                  []any{map[string]any{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
		})
	case rest == "v2.0/.well-known/openid-configuration" && r.Method == http.MethodGet:
		if !strings.EqualFold(tenant, s.tenant) {
			s.entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf(
				"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
			return
		}
		base := s.url + "/" + s.tenant
		writeJSONValue(w, http.StatusOK, map[string]any{
			"token_endpoint":                        base + "/oauth2/v2.0/token",
			"issuer":                                base + "/v2.0",
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"jwks_uri":                              base + "/discovery/v2.0/keys",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"tenant_region_scope":                   "EU",
			"cloud_instance_name":                   "microsoftonline.com",
		})
	case (rest == "discovery/v2.0/keys" || rest == "discovery/keys") && r.Method == http.MethodGet:
		s.serveJWKS(w)
	case rest == "oauth2/v2.0/token" && r.Method == http.MethodPost:
		s.obs.countToken()
		if s.applyFaults(w, r, true, func(w http.ResponseWriter) { s.serveToken(w, r, tenant) }) {
			return
		}
		s.serveToken(w, r, tenant)
	default:
		http.NotFound(w, r)
	}
}

// serveToken implements the client credentials grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		s.entraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if !strings.EqualFold(tenant, s.tenant) {
		s.entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf(
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
		return
	}
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		s.entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	clientID := f.Get("client_id")
	if !strings.EqualFold(clientID, s.client) {
		s.entraError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant))
		return
	}
	audience, ok := s.audienceFromScope(f.Get("scope"))
	if !ok {
		s.entraError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf(
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", audience, tenant))
		return
	}

	s.mu.Lock()
	secret, expired, federated, lifetime := s.secret, s.secretExpired, s.federated, s.tokenLifetime
	s.mu.Unlock()

	switch {
	case f.Has("client_secret"):
		if f.Get("client_secret") != secret {
			s.entraError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.client))
			return
		}
		if expired {
			s.entraError(w, http.StatusUnauthorized, "invalid_client", 7000222, fmt.Sprintf(
				"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", s.client))
			return
		}
	case f.Has("client_assertion"):
		if f.Get("client_assertion_type") != clientAssertionType {
			s.entraError(w, http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type.")
			return
		}
		assertion := f.Get("client_assertion")
		if federated != "" && assertion == federated {
			break
		}
		if err := s.verifyAssertion(assertion, r); err != nil {
			var fe *federationError
			if errors.As(err, &fe) {
				s.entraError(w, http.StatusBadRequest, "invalid_client", 70021, fe.Error())
				return
			}
			s.entraError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - "+capitalize(err.Error())+"]")
			return
		}
	default:
		s.entraError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	now := s.clock()
	tok := s.mintToken(tokenClaims{
		Aud: audience, AppID: s.client, Tid: s.tenant, Oid: DefaultUserID,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix(),
	})
	secs := int64(math.Round(lifetime.Seconds()))
	writeJSONValue(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// audienceFromScope finds the "<resource>/.default" scope and reports its
// resource, and whether that resource is this org.
func (s *Server) audienceFromScope(scope string) (string, bool) {
	for _, sc := range strings.Fields(scope) {
		if res, ok := strings.CutSuffix(sc, "/.default"); ok {
			return res, strings.TrimSuffix(res, "/") == s.url
		}
	}
	return "{" + scope + "}", false
}

type federationError struct{ msg string }

func (e *federationError) Error() string { return e.msg }

// verifyAssertion checks a certificate-signed client assertion (MSAL signs
// with PS256 and x5t#S256, or RS256 and x5t for ADFS).
func (s *Server) verifyAssertion(assertion string, r *http.Request) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return &federationError{"No matching federated identity record found for presented assertion."}
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud string      `json:"aud"`
		Iss string      `json:"iss"`
		Sub string      `json:"sub"`
		Exp json.Number `json:"exp"`
		Nbf json.Number `json:"nbf"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return fmt.Errorf("the assertion header is not valid JSON")
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("the assertion payload is not valid JSON")
	}
	thumb := hdr.X5tS256
	if thumb == "" {
		thumb = hdr.X5t
	}
	if thumb == "" {
		return &federationError{fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'.", claims.Iss, claims.Sub)}
	}
	s.mu.Lock()
	cert := s.certs[normB64(thumb)]
	s.mu.Unlock()
	if cert == nil {
		return fmt.Errorf("the key was not found., Thumbprint of key used by client: '%s'", thumb)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("the registered certificate has no RSA key")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("the signature is not base64url")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch hdr.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	default:
		err = fmt.Errorf("unsupported alg %q", hdr.Alg)
	}
	if err != nil {
		return fmt.Errorf("signature verification failed: %v", err)
	}
	tokenEndpoint := "https://" + r.Host + r.URL.Path
	if !strings.EqualFold(claims.Aud, tokenEndpoint) {
		return fmt.Errorf("audience '%s' is not the token endpoint '%s'", claims.Aud, tokenEndpoint)
	}
	if !strings.EqualFold(claims.Iss, s.client) || !strings.EqualFold(claims.Sub, s.client) {
		return fmt.Errorf("issuer and subject must be the client ID")
	}
	now := s.clock().Unix()
	if exp, err := claims.Exp.Int64(); err != nil || exp < now-300 {
		return fmt.Errorf("the assertion is not within its valid time range")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// normB64 maps base64url and padded forms of a thumbprint to standard base64.
func normB64(s string) string {
	s = strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimRight(s, "="))
	if m := len(s) % 4; m != 0 {
		s += strings.Repeat("=", 4-m)
	}
	return s
}

func thumbprintS256(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return base64.StdEncoding.EncodeToString(h[:])
}

func thumbprintSHA1(c *x509.Certificate) string {
	h := sha1.Sum(c.Raw) //nolint:gosec
	return base64.StdEncoding.EncodeToString(h[:])
}

// entraError writes an Entra-shaped OAuth error.
func (s *Server) entraError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	now := s.clock().UTC()
	trace, corr := uuid.NewString(), uuid.NewString()
	ts := now.Format("2006-01-02 15:04:05Z")
	writeJSONValue(w, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, msg, trace, corr, ts),
		"error_codes":    []int{aadsts},
		"timestamp":      ts,
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      fmt.Sprintf("%s/error?code=%d", s.url, aadsts),
	})
}

// writeJSONValue writes v with encoding/json (for Entra and simple bodies).
func writeJSONValue(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// RevokeTokens makes every access token issued so far invalid: Web API
// calls with them answer 401 with the challenge, as after a revocation,
// until the client signs in again.
func (s *Server) RevokeTokens() {
	epoch := newTokenEpoch()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenEpoch = epoch
}
