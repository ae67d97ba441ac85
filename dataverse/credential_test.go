package dataverse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// testCert makes a self-signed certificate for an app registration.
func testCert(t testing.TB, key any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "dvgate test app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// testRSAKey is generated once: 2048-bit key generation costs seconds under
// -race, and the tests only need a key, not distinct ones.
var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := testRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemFile(t testing.TB, cert *x509.Certificate, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	return writeFile(t, "app.pem", data)
}

func pfxFile(t testing.TB, cert *x509.Certificate, key any, password string) string {
	t.Helper()
	data, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "app.pfx", data)
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certConfig(path, password string) Config {
	c := validConfig()
	c.ClientSecret, c.CertificatePath, c.CertificatePassword = "", path, password
	return c
}

func TestCertificateFormats(t *testing.T) {
	t.Parallel()
	key := rsaKey(t)
	cert := testCert(t, key)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := testCert(t, ec)
	encrypted := writeFile(t, "enc.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"))

	tests := []struct {
		name     string
		cfg      Config
		inRemedy string // "" = must succeed
	}{
		{"PEM PKCS#8 RSA", certConfig(pemFile(t, cert, key), ""), ""},
		{"PKCS#12 modern", certConfig(pfxFile(t, cert, key, "pfx-Password-0815"), "pfx-Password-0815"), ""},
		{"PKCS#12 wrong password", certConfig(pfxFile(t, cert, key, "pfx-Password-0815"), "wrong-Password-0815"), "AZURE_CLIENT_CERTIFICATE_PASSWORD"},
		{"encrypted PEM", certConfig(encrypted, ""), "unencrypted"},
		{"EC key", certConfig(pemFile(t, ecCert, ec), ""), "RSA"},
		{"missing file", certConfig(filepath.Join(t.TempDir(), "nope.pfx"), ""), "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"garbage", certConfig(writeFile(t, "x.pfx", []byte("not a certificate")), ""), "PKCS#12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.cfg)
			if tt.inRemedy == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.Close()
				return
			}
			var e *Error
			if !asError(err, &e) || e.Kind != KindConfig || !strings.Contains(e.Remedy, tt.inRemedy) {
				t.Fatalf("New = %v, want config error with remedy containing %q", err, tt.inRemedy)
			}
			if strings.Contains(err.Error(), "Password-0815") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestFederatedTokenFileChecked(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.ClientSecret = ""
	c.FederatedTokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(c); KindOf(err) != KindConfig || !strings.Contains(err.Error(), "AZURE_FEDERATED_TOKEN_FILE") {
		t.Errorf("missing file: %v", err)
	}
	c.FederatedTokenFile = writeFile(t, "token", []byte("  \n"))
	if _, err := New(c); KindOf(err) != KindConfig || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}

func writeFileAt(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }

// TestCredentialExpiry: New reports each credential's kind and expiry
// (a certificate's NotAfter from PEM and PKCS#12, a secret's stated date,
// none for a federated token), and refuses a certificate past NotAfter
// before any sign-in, with the date in the remedy.
func TestCredentialExpiry(t *testing.T) {
	t.Parallel()
	key := rsaKey(t)
	notAfter := time.Now().Add(20 * 24 * time.Hour).Truncate(time.Second).UTC()
	cert := certValid(t, key, time.Now().Add(-time.Hour), notAfter)
	expired := certValid(t, key, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	stated := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	secret := validConfig()
	secret.ClientSecretExpiresOn = stated
	fed := validConfig()
	fed.ClientSecret, fed.FederatedTokenFile = "", writeFile(t, "token", []byte("eyJ.token"))
	tests := []struct {
		name     string
		cfg      Config
		want     Credential
		inRemedy string // "" = New succeeds
	}{
		{"PEM", certConfig(pemFile(t, cert, key), ""), Credential{Kind: CredentialCertificate, ExpiresOn: notAfter}, ""},
		{"PKCS#12", certConfig(pfxFile(t, cert, key, "pfx-Password-0815"), "pfx-Password-0815"), Credential{Kind: CredentialCertificate, ExpiresOn: notAfter}, ""},
		{"secret with a stated date", secret, Credential{Kind: CredentialSecret, ExpiresOn: stated}, ""},
		{"secret without a date", validConfig(), Credential{Kind: CredentialSecret}, ""},
		{"federated", fed, Credential{Kind: CredentialFederated}, ""},
		{"expired PEM", certConfig(pemFile(t, expired, key), ""), Credential{}, "The certificate expired on " + DateOnly(expired.NotAfter)},
		{"expired PKCS#12", certConfig(pfxFile(t, expired, key, "pfx-Password-0815"), "pfx-Password-0815"), Credential{}, "The certificate expired on " + DateOnly(expired.NotAfter)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.cfg)
			if tt.inRemedy != "" {
				var e *Error
				if !asError(err, &e) || e.Kind != KindConfig || !strings.HasPrefix(e.Remedy, tt.inRemedy) {
					t.Fatalf("New = %v, want a config error whose remedy starts %q", err, tt.inRemedy)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.Credential(); !got.ExpiresOn.Equal(tt.want.ExpiresOn) || got.Kind != tt.want.Kind {
				t.Errorf("Credential() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// certValid makes a self-signed certificate for key valid from notBefore to
// notAfter.
func certValid(t testing.TB, key *rsa.PrivateKey, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dvgate expiry"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
