package dataversetest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Access tokens look like Entra's (RS256, kid, iss, aud, nbf, exp, appid,
// oid, tid, ver, idtyp), verify with the key served at the discovery
// document's jwks_uri, and the Web API checks them as a resource would
// (issue 17, point 5; msal-entra-facts).
func TestAccessTokenIsEntraShaped(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestServer(t, Options{Seed: EmptySeed, Clock: clock.Now})
	tok := secretToken(t, s)

	getJSON := func(u string, v any) {
		t.Helper()
		resp, err := s.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(v) != nil {
			t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
	}
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(s.AuthorityHost()+s.TenantID()+"/v2.0/.well-known/openid-configuration", &disco)
	var jwks struct {
		Keys []struct{ Kty, Use, Kid, N, E string } `json:"keys"`
	}
	getJSON(disco.JWKSURI, &jwks)

	parts := strings.Split(tok, ".")
	var hdr struct{ Alg, Kid, Typ string }
	var claims map[string]any
	if decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil {
		t.Fatalf("token is not a JWT: %s", tok)
	}
	i := slices.IndexFunc(jwks.Keys, func(k struct{ Kty, Use, Kid, N, E string }) bool { return k.Kid == hdr.Kid })
	if hdr.Alg != "RS256" || i < 0 || jwks.Keys[i].Kty != "RSA" || jwks.Keys[i].Use != "sig" {
		t.Fatalf("header %+v, keys %+v", hdr, jwks.Keys)
	}
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[i].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[i].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("signature does not verify with the served key: %v", err)
	}
	now := clock.Now().Unix()
	num := func(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }
	want := map[string]any{
		"aud": s.URL(), "iss": disco.Issuer, "iat": num(now), "nbf": num(now), "exp": num(now + 3600),
		"appid": s.ClientID(), "azp": s.ClientID(), "idtyp": "app", "oid": DefaultUserID, "sub": DefaultUserID,
		"tid": s.TenantID(), "ver": "2.0",
	}
	delete(claims, "uti")
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// The Web API validates them.
	future := s.mintToken(tokenClaims{Aud: s.URL(), AppID: s.ClientID(), Iat: now, Nbf: now + 3600, Exp: now + 7200})
	otherIss := s.mintToken(tokenClaims{Aud: s.URL(), AppID: s.ClientID(), Iss: "https://login.microsoftonline.com/x/v2.0", Iat: now, Exp: now + 3600})
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"valid", tok, 200}, {"not yet valid", future, 401}, {"other issuer", otherIss, 401}} {
		if r := get(t, s, tc.token, "WhoAmI"); r.status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r.status, tc.want)
		}
	}
	s.RevokeTokens()
	if r := get(t, s, tok, "WhoAmI"); r.status != 401 {
		t.Errorf("after RevokeTokens: %d, want 401", r.status)
	}
	clock.Advance(time.Minute)
	if r := get(t, s, secretToken(t, s), "WhoAmI"); r.status != 200 {
		t.Errorf("a new token after RevokeTokens: %d", r.status)
	}
}
