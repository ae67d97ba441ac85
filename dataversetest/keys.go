package dataversetest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515).
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Access tokens are shaped like Entra's (RS256, "kid" and "x5t" in the
// header naming a key served at the advertised jwks_uri, the usual claims)
// and the Web API validates them as a resource server does: signature by a
// published key, issuer, audience, tenant, nbf and exp.
//
// One RSA key serves every Server of the process: generating a 2048-bit key
// takes tens of milliseconds (far more under -race) and tests start many
// servers. It is created once and never changed. What makes a server's
// tokens its own is the audience (its URL) and an epoch in the opaque "uti"
// claim, which RevokeTokens changes.

type signingKey struct {
	key  *rsa.PrivateKey
	kid  string // Entra's kid is the base64url SHA-1 thumbprint, like x5t
	cert []byte // DER, for x5c
}

var processKey = sync.OnceValues(func() (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "accounts.dataversetest.invalid"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(der) //nolint:gosec
	return &signingKey{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:]), cert: der}, nil
})

// tokenClaims are the claims of the simulator's access tokens (Entra v2
// app-only tokens carry these; appid is the v1 name, azp the v2 one).
type tokenClaims struct {
	Aud   string `json:"aud"`
	Iss   string `json:"iss"`
	Iat   int64  `json:"iat"`
	Nbf   int64  `json:"nbf"`
	Exp   int64  `json:"exp"`
	AppID string `json:"appid"`
	Azp   string `json:"azp"`
	Idtyp string `json:"idtyp"`
	Oid   string `json:"oid"`
	Sub   string `json:"sub"`
	Tid   string `json:"tid"`
	Uti   string `json:"uti"`
	Ver   string `json:"ver"`
	Jti   string `json:"jti,omitempty"`
}

// issuer is the issuer the discovery document advertises.
func (s *Server) issuer() string { return s.url + "/" + s.tenant + "/v2.0" }

// mintToken signs c, filling the claims a test left empty from this server.
func (s *Server) mintToken(c tokenClaims) string {
	sk, err := processKey()
	if err != nil {
		return "" // never with a working crypto/rand; an empty token answers 401
	}
	s.mu.Lock()
	epoch := s.tokenEpoch
	s.mu.Unlock()
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Iss, s.issuer())
	def(&c.Tid, s.tenant)
	def(&c.Azp, c.AppID)
	def(&c.Idtyp, "app")
	def(&c.Oid, DefaultUserID)
	def(&c.Sub, c.Oid)
	def(&c.Ver, "2.0")
	def(&c.Uti, epoch+"."+base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint(time.Now().UnixNano()))))
	if c.Nbf == 0 {
		c.Nbf = c.Iat
	}
	hdr, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "x5t": sk.kid, "kid": sk.kid})
	body, _ := json.Marshal(c)
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, sk.key, crypto.SHA256, digest[:])
	if err != nil {
		return ""
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

var (
	errNoToken      = errors.New("no bearer token")
	errBadToken     = errors.New("token signature invalid")
	errExpiredToken = errors.New("token expired or not yet valid")
	errAudience     = errors.New("token audience is not this org")
	errRevoked      = errors.New("token issued before a revocation, or by another server")
)

// clockSkew is the leeway for nbf and exp, as token validation libraries
// allow.
const clockSkew = 5 * time.Minute

// checkToken validates a bearer token for this org.
func (s *Server) checkToken(authz string) (tokenClaims, error) {
	var c tokenClaims
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || tok == "" {
		return c, errNoToken
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, errBadToken
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	sk, err := processKey()
	if err != nil || decodeSegment(parts[0], &hdr) != nil || hdr.Alg != "RS256" || hdr.Kid != sk.kid {
		return c, errBadToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, errBadToken
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&sk.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return c, errBadToken
	}
	if decodeSegment(parts[1], &c) != nil {
		return c, errBadToken
	}
	s.mu.Lock()
	epoch := s.tokenEpoch
	s.mu.Unlock()
	if c.Iss != s.issuer() || !strings.EqualFold(c.Tid, s.tenant) || !strings.HasPrefix(c.Uti, epoch+".") {
		return c, errRevoked
	}
	if strings.TrimSuffix(c.Aud, "/") != s.url {
		return c, errAudience
	}
	now := s.clock()
	if !now.Before(time.Unix(c.Exp, 0)) || now.Add(clockSkew).Before(time.Unix(c.Nbf, 0)) {
		return c, errExpiredToken
	}
	return c, nil
}

// serveJWKS serves the signing key at the jwks_uri, shaped like Entra's.
func (s *Server) serveJWKS(w http.ResponseWriter) {
	sk, err := processKey()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pub := sk.key.PublicKey
	writeJSONValue(w, http.StatusOK, map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "kid": sk.kid, "x5t": sk.kid,
		"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"x5c":    []string{base64.StdEncoding.EncodeToString(sk.cert)},
		"issuer": s.issuer(),
	}}})
}

// newTokenEpoch returns a random epoch for the uti claim.
func newTokenEpoch() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
