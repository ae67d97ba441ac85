package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestAccessControl: with an API token every path but the probes needs it;
// missing, wrong, same-length-but-wrong and wrong-scheme tokens get a 401
// with the error document, reach nothing upstream, and no presented or
// configured token appears in the log. Without a token the server refuses
// any address beyond loopback.
func TestAccessControl(t *testing.T) {
	t.Parallel()
	const token = "Api.T0ken-for-access-tests-9b1e-7f2c"
	r := newRig(t, rigOpts{apiToken: token})
	r.start()
	wrongSameLength := token[:len(token)-1] + "X"
	tests := []struct {
		name, method, path, auth string
		status                   int
	}{
		{"no token", "GET", "/v1/orders/" + orderNum, "", 401},
		{"wrong token", "GET", "/v1/orders/" + orderNum, "Bearer nope", 401},
		{"wrong token of the same length", "GET", "/v1/orders/" + orderNum, "Bearer " + wrongSameLength, 401},
		{"token as prefix", "GET", "/v1/orders/" + orderNum, "Bearer " + token + "x", 401},
		{"right token, Basic scheme", "GET", "/v1/orders/" + orderNum, "Basic " + token, 401},
		{"right token, lowercase scheme", "GET", "/v1/orders/" + orderNum, "bearer " + token, 200},
		{"metrics without token", "GET", "/metrics", "", 401},
		{"unknown path without token", "GET", "/v2/anything", "", 401},
		{"healthz without token", "GET", "/healthz", "", 200},
		{"readyz without token", "GET", "/readyz", "", 200},
		{"right token", "GET", "/v1/orders/" + orderNum, "Bearer " + token, 200},
	}
	for _, tc := range tests {
		before := r.counts()
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		var res result
		if tc.path == "/metrics" || strings.HasPrefix(tc.path, "/v2/") {
			res, _ = r.getRaw(t, tc.method, tc.path, hdr...)
		} else {
			res, _ = r.get(t, tc.method, tc.path, hdr...)
		}
		if res.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, res.status, tc.status, res.body)
		}
		if tc.status == 401 {
			if code, _, _ := errorOf(t, res); code != "auth" || res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: code %q, WWW-Authenticate %q", tc.name, code, res.header.Get("WWW-Authenticate"))
			}
			if n := r.counts().web - before.web; n != 0 {
				t.Errorf("%s: %d Dataverse requests", tc.name, n)
			}
		}
		report(t, reportRow{Area: "access", Case: "API token: " + tc.name, Expect: fmt.Sprint(res.status), Upstream: fmt.Sprintf("%d Dataverse", r.counts().web-before.web)})
	}
	logs := r.stderr.String()
	for _, s := range []string{token, wrongSameLength, token[:12]} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a token (%.6s...)", s)
		}
	}
	r.checkHygiene(t)

	e := newEnv(t) // no DVGATE_API_TOKEN
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0", "example.com:0"} {
		m := e.main("serve", "--listen", addr)
		err := m.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "DVGATE_API_TOKEN") {
			t.Errorf("--listen %s without a token: %v", addr, err)
		}
		_ = m.Close()
		report(t, reportRow{Area: "access", Case: "--listen " + addr + " without DVGATE_API_TOKEN", Expect: "refused at start-up", Upstream: "0"})
	}
}

// TestCertificateHygiene signs in with a certificate (PEM: certificate and
// RSA key) and goes through a failure or two: neither the key nor a token
// appears in the log, /metrics or any answer.
func TestCertificateHygiene(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "dvgate hygiene"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	pemFile := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)

	r := newRig(t, rigOpts{certPEM: pemFile})
	r.sim.AddClientCertificate(cert)
	r.start()
	res, _ := r.get(t, "GET", "/v1/orders/"+orderNum)
	must(t, res, 200)
	r.sim.InjectFault(dataversetest.Fault{Path: webOrders, Status: 503, RetryAfter: 300 * time.Second})
	res, _ = r.get(t, "GET", otherOrder)
	must(t, res, 503)
	r.sim.SetApplicationUser(false)
	res, _ = r.get(t, "GET", "/v1/customers?email="+alex)
	must(t, res, 502)
	if len(r.secrets()) < 4 {
		t.Fatalf("the hygiene check knows too few secrets: %d", len(r.secrets()))
	}
	r.checkHygiene(t)
	report(t, reportRow{Area: "leak", Case: "certificate credential (PEM key), through 200, 503 and 502 answers",
		Expect: "key and tokens in no log line, /metrics or answer", Upstream: fmt.Sprint(r.sim.WebAPIRequests(), " Dataverse")})
}
