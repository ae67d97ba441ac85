package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/google/go-cmp/cmp"
)

// start runs dvsim on a free loopback port with --ca-out and --env-out in
// a temporary directory and returns its environment.
func start(t *testing.T, args ...string) (*Main, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	m := NewMain()
	m.Stdout, m.Stderr = &out, &out
	args = append([]string{"--listen", "127.0.0.1:0", "--ca-out", filepath.Join(dir, "ca.pem"), "--env-out", filepath.Join(dir, "dvsim.env")}, args...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	file, err := os.ReadFile(filepath.Join(dir, "dvsim.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if !strings.Contains(out.String(), string(file)) {
		t.Errorf("printed output lacks the env file:\n%s", out.String())
	}
	return m, env
}

// client trusts only the CA file dvsim wrote, as another language would.
func client(t *testing.T, env map[string]string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(env["DVSIM_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the CA file holds no certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func do(t *testing.T, c *http.Client, method, u, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The "done when": dvsim starts, a token from its Entra endpoint
// answers WhoAmI, and the admin API switches states and injects faults.
func TestServesWebAPIEntraAndAdmin(t *testing.T) {
	t.Parallel()
	_, env := start(t)
	c := client(t, env)
	defer c.CloseIdleConnections()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {env["AZURE_CLIENT_ID"]},
		"client_secret": {env["AZURE_CLIENT_SECRET"]}, "scope": {env["DATAVERSE_URL"] + "/.default"}}
	resp, err := c.PostForm(env["AZURE_AUTHORITY_HOST"]+env["AZURE_TENANT_ID"]+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	whoami := env["DATAVERSE_URL"] + "/api/data/v9.2/WhoAmI"
	for _, token := range []string{tok.AccessToken, env["DVSIM_ACCESS_TOKEN"]} {
		status, body := do(t, c, "GET", whoami, token, "")
		if status != 200 || !strings.Contains(body, `"UserId":"`+dataversetest.DefaultUserID+`"`) {
			t.Fatalf("WhoAmI: %d %s", status, body)
		}
	}
	admin := env["DVSIM_ADMIN_URL"]
	steps := []struct {
		name       string
		method     string
		path, body string
		whoami     int // WhoAmI status afterwards
	}{
		{"no application user", "POST", "/state", `{"applicationUser":false}`, 403},
		{"reset", "POST", "/reset", "", 200},
		{"throttled", "POST", "/faults", `{"status":429,"retryAfterMs":2000,"count":1}`, 429},
		{"fault used up", "GET", "/state", "", 200},
		{"revoked tokens", "POST", "/state", `{"revokeTokens":true}`, 401},
	}
	for _, st := range steps {
		status, body := do(t, c, st.method, admin+st.path, "", st.body)
		if status >= 300 {
			t.Fatalf("%s: admin %d %s", st.name, status, body)
		}
		if got, body := do(t, c, "GET", whoami, tok.AccessToken, ""); got != st.whoami {
			t.Errorf("%s: WhoAmI %d %s, want %d", st.name, got, body, st.whoami)
		}
	}
	if status, _ := do(t, c, "POST", admin+"/state", "", `{"nope":1}`); status != 400 {
		t.Errorf("unknown admin field: %d, want 400", status)
	}
}

// snippet returns the fenced code block after marker in the README.
func snippet(t *testing.T, marker string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```")
	_, rest, _ = strings.Cut(rest, "\n")
	code, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("unterminated block after %q", marker)
	}
	return code
}

// The README's Python and Node snippets, run exactly as written against
// dvsim. They need python3 / node: skipped when absent, failed under CI
// (.ci/run installs both).
func TestReadmeSnippets(t *testing.T) {
	t.Parallel()
	_, env := start(t)
	for _, tc := range []struct {
		marker, tool string
		args         []string
	}{
		{"<!-- dvsim:python", "python3", []string{"-c"}},
		{"<!-- dvsim:node", "node", []string{"--input-type=module", "-e"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			t.Parallel()
			path, err := exec.LookPath(tc.tool)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is required under CI: %v", tc.tool, err)
				}
				t.Skipf("%s not installed: %v", tc.tool, err)
			}
			cmd := exec.Command(path, append(tc.args, snippet(t, tc.marker))...)
			cmd.Env = os.Environ()
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.tool, err, out)
			}
			if diff := cmp.Diff(dataversetest.DefaultUserID, strings.TrimSpace(string(out))); diff != "" {
				t.Errorf("printed UserId (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	m := NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"extra"}); err == nil {
		t.Error("an argument was accepted")
	}
	m = NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"--listen", "10.1.2.3:8443"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("non-loopback listen without --allow-remote: %v", err)
	}
	m = NewMain()
	m.Stderr = io.Discard
	_ = m.ParseFlags([]string{"--listen", "127.0.0.1:0", "--seed", filepath.Join(t.TempDir(), "missing.json")})
	if err := m.Run(context.Background()); err == nil {
		t.Error("a missing seed file was accepted")
	}
}

// --data-dir keeps writes across a restart.
func TestDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m, env := start(t, "--data-dir", dir)
	c := client(t, env)
	defer c.CloseIdleConnections()
	tok := env["DVSIM_ACCESS_TOKEN"]
	api := env["DATAVERSE_URL"] + "/api/data/v9.2/"
	if status, body := do(t, c, "POST", api+"accounts", tok, `{"name":"Kept Across Restarts"}`); status != 204 {
		t.Fatalf("create: %d %s", status, body)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, env2 := start(t, "--data-dir", dir)
	c2 := client(t, env2)
	defer c2.CloseIdleConnections()
	status, body := do(t, c2, "GET", env2["DATAVERSE_URL"]+"/api/data/v9.2/accounts?$select=name&$filter=name%20eq%20'Kept%20Across%20Restarts'", env2["DVSIM_ACCESS_TOKEN"], "")
	if status != 200 || !strings.Contains(body, `"name":"Kept Across Restarts"`) {
		t.Errorf("after a restart: %d %s", status, body)
	}
}
