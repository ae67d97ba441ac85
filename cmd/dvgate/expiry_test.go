package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// expiryClock is Main.Clock for the expiry tests: today 09:00 UTC, moved
// forward by advance. Certificates are judged by real time (dataverse), so
// their validity is set around the real now, within a day of this clock.
type expiryClock struct{ t atomic.Pointer[time.Time] }

func newExpiryClock() *expiryClock {
	c := &expiryClock{}
	t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(9 * time.Hour)
	c.t.Store(&t0)
	return c
}

func (c *expiryClock) now() time.Time { return *c.t.Load() }
func (c *expiryClock) advance(d time.Duration) {
	t := c.now().Add(d)
	c.t.Store(&t)
}

// writeConfig writes config.json with the given integrations, each on the
// simulator (url, tenant, client and authority added).
func (e *env) writeConfig(ins map[string]map[string]any) {
	e.t.Helper()
	for _, in := range ins {
		in["url"], in["tenantId"], in["clientId"], in["authorityHost"] = e.sim.URL(), e.sim.TenantID(), e.sim.ClientID(), e.sim.AuthorityHost()
	}
	b, err := json.Marshal(map[string]any{"integrations": ins})
	if err != nil {
		e.t.Fatal(err)
	}
	e.writeFile("config.json", string(b))
}

// startAt is start with Main.Clock set.
func (e *env) startAt(clock func() time.Time) {
	e.t.Helper()
	e.m = e.main("serve", "--listen", "127.0.0.1:0")
	e.m.Clock = clock
	if err := e.m.Run(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	tr := &http.Transport{}
	e.client = &http.Client{Transport: tr}
	e.base = "http://" + e.m.Addr()
	e.t.Cleanup(func() {
		if err := e.m.Close(); err != nil {
			e.t.Error(err)
		}
		tr.CloseIdleConnections()
	})
}

// runCmd runs a one-shot command on clock and returns its stdout.
func (e *env) runCmd(clock func() time.Time, args ...string) (string, error) {
	e.t.Helper()
	e.stdout.mu.Lock()
	e.stdout.b.Reset()
	e.stdout.mu.Unlock()
	m := e.main(args...)
	m.Clock = clock
	err := m.Run(e.t.Context())
	if cerr := m.Close(); cerr != nil {
		e.t.Error(cerr)
	}
	return e.stdout.String(), err
}

// appCert writes a throwaway PEM certificate (with its RSA key) valid
// until notAfter and registers it with the simulator's Entra.
func (e *env) appCert(name string, notBefore, notAfter time.Time) {
	e.t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dvgate expiry test"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	e.writeFile(name, string(append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)))
	e.sim.AddClientCertificate(cert)
}

var expiryGauge = regexp.MustCompile(`(?m)^dvgate_credential_expiry_timestamp_seconds\{integration="([^"]+)"\} (\S+)$`)

// expiryMetrics returns the expiry gauge by integration.
func (e *env) expiryMetrics(token string) map[string]int64 {
	e.t.Helper()
	body := string(must(e.t.(*testing.T), e.do("GET", "/metrics", "Authorization", "Bearer "+token), 200).body)
	out := map[string]int64{}
	for _, m := range expiryGauge.FindAllStringSubmatch(body, -1) {
		f, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			e.t.Fatal(err)
		}
		out[m[1]] = int64(f)
	}
	return out
}

// readyzExpiry returns credentialExpiresInDays and credentialExpiresOn by
// integration, as /readyz reports them with the API token.
func readyzExpiry(t *testing.T, r result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range r.json(t)["integrations"].([]any) {
		m := in.(map[string]any)
		if d, ok := m["credentialExpiresInDays"]; ok {
			out[m["name"].(string)] = fmt.Sprintf("%v days, %v", d, m["credentialExpiresOn"])
		} else {
			out[m["name"].(string)] = "unknown"
		}
	}
	return out
}

const expiryToken = "expiry-test-token-of-the-sidecar-7d1e"

// TestCredentialExpiry runs dvgate serve on the simulator with a secret
// whose expiry is stated (in 14 days), a certificate (valid 20 days more)
// and a secret without a date: the gauge and /readyz (with the token only)
// report the first two, the start-up log says the third is not monitored,
// the warning comes once a day on the fake clock, a renewed certificate's
// date replaces the old one, and dvgate test prints the date and days left.
func TestCredentialExpiry(t *testing.T) {
	t.Parallel()
	clk := newExpiryClock()
	t0 := clk.now()
	secretDate := t0.AddDate(0, 0, 15).Format(time.DateOnly) // midnight: 14 days and 15 h from t0
	certEnd := t0.Add(20*24*time.Hour + time.Hour).Truncate(time.Second)
	e := newEnv(t)
	e.vars["DVGATE_API_TOKEN"] = expiryToken
	e.appCert("app.pem", t0.Add(-48*time.Hour), certEnd)
	e.writeConfig(map[string]map[string]any{
		"default": {"clientSecret": map[string]string{"file": "default.secret"}, "clientSecretExpiresOn": secretDate},
		"cert":    {"certificatePath": "app.pem"},
		"undated": {"clientSecret": map[string]string{"file": "default.secret"}},
	})
	e.startAt(clk.now)

	secretEnd, _ := time.Parse(time.DateOnly, secretDate)
	if d := cmp.Diff(map[string]int64{"default": secretEnd.Unix(), "cert": certEnd.Unix()}, e.expiryMetrics(expiryToken)); d != "" {
		t.Errorf("expiry gauge (-want +got):\n%s", d)
	}
	want := map[string]string{
		"default": "14 days, " + secretEnd.Format(time.RFC3339),
		"cert":    "20 days, " + certEnd.UTC().Format(time.RFC3339),
		"undated": "unknown",
	}
	rd := must(t, e.do("GET", "/readyz", "Authorization", "Bearer "+expiryToken), 200)
	if d := cmp.Diff(want, readyzExpiry(t, rd)); d != "" {
		t.Errorf("/readyz with the token (-want +got):\n%s", d)
	}
	if r := must(t, e.do("GET", "/readyz"), 200); strings.Contains(string(r.body), "credentialExpires") {
		t.Errorf("/readyz without the token reports the expiry: %s", r.body)
	}
	logs := e.stderr.String()
	if !strings.Contains(logs, `"msg":"credential expiry is not monitored","integration":"undated"`) ||
		!strings.Contains(logs, "set clientSecretExpiresOn in the config file or AZURE_CLIENT_SECRET_EXPIRES_ON") {
		t.Errorf("the start-up log does not say the undated secret is not monitored:\n%s", logs)
	}

	// The daily warning, on the fake clock: both dated credentials are
	// within 30 days.
	const warning = `"msg":"credential expires soon"`
	for i, s := range []struct {
		advance time.Duration
		want    int
	}{{0, 2}, {time.Hour, 2}, {22 * time.Hour, 2}, {time.Hour, 4}, {time.Minute, 4}} {
		clk.advance(s.advance)
		e.tick()
		if got := strings.Count(e.stderr.String(), warning); got != s.want {
			t.Fatalf("step %d: %d warnings, want %d", i, got, s.want)
		}
	}
	if !strings.Contains(e.stderr.String(), `"integration":"default","credential":"client secret","expiresOn":"`+secretEnd.Format(time.RFC3339)+`","daysLeft":13`) {
		t.Errorf("the second day's warning does not say 13 days:\n%s", e.stderr.String())
	}

	// A renewed certificate file: its NotAfter replaces the old one.
	renewed := certEnd.Add(365 * 24 * time.Hour)
	e.appCert("app.pem", t0.Add(-48*time.Hour), renewed)
	e.tick()
	if got := e.expiryMetrics(expiryToken)["cert"]; got != renewed.Unix() {
		t.Errorf("gauge after the certificate's renewal %d, want %d", got, renewed.Unix())
	}
	certEnd = renewed

	// dvgate test prints the date and the days left.
	for name, line := range map[string]string{
		"default": "Credential: The client secret expires on " + secretDate + " (14 days left).",
		"cert":    "Credential: The certificate expires on " + certEnd.UTC().Format(time.DateOnly) + " (385 days left).",
		"undated": "Credential: The client secret's expiry is not monitored:",
	} {
		out, err := e.runCmd(func() time.Time { return t0 }, "test", "--integration", name)
		if err != nil || !strings.Contains(out, "OK: organization") || !strings.Contains(out, line) {
			t.Errorf("dvgate test --integration %s: %v\n%s\nwant %q", name, err, out, line)
		}
	}
}

// TestExpiredSecretAndRotation: Entra's AADSTS7000222 answers with the
// stated date and the in-place rotation, distinct from a wrong secret; a
// rotation to a new secret with a new date replaces the expiry everywhere;
// a certificate past NotAfter is reported before any sign-in.
func TestExpiredSecretAndRotation(t *testing.T) {
	t.Parallel()
	clk := newExpiryClock()
	t0 := clk.now()
	oldDate := t0.AddDate(0, 0, -1).Format(time.DateOnly)
	e := newEnv(t)
	e.vars["DVGATE_API_TOKEN"] = expiryToken
	e.appCert("old.pem", t0.Add(-72*time.Hour), time.Now().Add(-time.Hour))
	ins := map[string]map[string]any{
		"default": {"clientSecret": map[string]string{"file": "default.secret"}, "clientSecretExpiresOn": oldDate},
		"oldcert": {"certificatePath": "old.pem"},
	}
	e.writeConfig(ins)

	// A certificate past NotAfter: a config error with the date, and no
	// token request.
	out, err := e.runCmd(clk.now, "test", "--integration", "oldcert")
	if err == nil || !strings.Contains(out, "FAILED (config): The certificate is past its NotAfter date. The certificate expired on "+time.Now().Add(-time.Hour).UTC().Format(time.DateOnly)+": create a new one") {
		t.Errorf("dvgate test with an expired certificate: %v\n%s", err, out)
	}
	if n := e.sim.TokenRequests(); n != 0 {
		t.Errorf("%d token requests for an expired certificate, want 0", n)
	}

	e.sim.ExpireClientSecret()
	out, err = e.runCmd(clk.now, "test")
	wantRemedy := "The client secret expired on " + oldDate + ": create a new one"
	if err == nil || !strings.Contains(out, "FAILED (auth): "+wantRemedy) || !strings.Contains(out, "AADSTS7000222") {
		t.Errorf("dvgate test with an expired secret: %v\n%s", err, out)
	}

	e.startAt(clk.now)
	code, msg, dvCode := errorOf(t, must(t, e.do("GET", "/v1/customers?email="+alex, "Authorization", "Bearer "+expiryToken), 502))
	if code != "auth" || dvCode != "AADSTS7000222" || !strings.HasPrefix(msg, wantRemedy) || !strings.Contains(msg, "rotate it in place") {
		t.Errorf("expired secret: %s %s %q", code, dvCode, msg)
	}
	rd := must(t, e.do("GET", "/readyz", "Authorization", "Bearer "+expiryToken), 503)
	if got := readyzExpiry(t, rd)["default"]; !strings.HasPrefix(got, "-2 days,") { // 33 h ago
		t.Errorf("readyz of the expired secret: %s", got)
	}

	// The rotation: a new secret in Entra, the file and the date updated;
	// dvgate validates it and swaps, and the new expiry replaces the old.
	newDate := t0.AddDate(2, 0, 0).Format(time.DateOnly)
	e.sim.SetClientSecret("rotated~Secret.22")
	e.writeFile("default.secret", "rotated~Secret.22\n")
	ins["default"]["clientSecretExpiresOn"] = newDate
	e.writeConfig(ins)
	e.tick()
	newEnd, _ := time.Parse(time.DateOnly, newDate)
	if got := e.expiryMetrics(expiryToken)["default"]; got != newEnd.Unix() {
		t.Errorf("gauge after rotation %d, want %d", got, newEnd.Unix())
	}
	rd = must(t, e.do("GET", "/readyz", "Authorization", "Bearer "+expiryToken), 503) // oldcert stays broken
	days := int(newEnd.Sub(t0).Hours() / 24)
	if got, want := readyzExpiry(t, rd)["default"], fmt.Sprintf("%d days, %s", days, newEnd.Format(time.RFC3339)); got != want {
		t.Errorf("readyz after rotation %q, want %q", got, want)
	}
	must(t, e.do("GET", "/v1/customers?email="+alex, "Authorization", "Bearer "+expiryToken), 200)
	if logs := e.stderr.String(); !strings.Contains(logs, `"msg":"credential expiry","integration":"default","credential":"client secret","expiresOn":"`+newEnd.Format(time.RFC3339)) {
		t.Errorf("the log does not state the new expiry:\n%s", logs)
	}
}
