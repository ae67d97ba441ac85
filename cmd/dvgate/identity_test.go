package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
)

// readmeManagedIdentityConfig returns the README's managed identity config
// example (the ```json block after its marker comment).
func readmeManagedIdentityConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- managed identity example[^\n]*-->\n```json\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("the README has no managed identity example")
	}
	var cfg map[string]any
	if err := json.Unmarshal(m[1], &cfg); err != nil {
		t.Fatalf("the README's managed identity example is not JSON: %v", err)
	}
	return cfg
}

// useReadmeManagedIdentity writes the README's managed identity example as
// e's config file, on e's simulator: the org URLs are the simulator's, and
// the user-assigned identity's resource ID is the simulated one. The
// identities are those as written.
func (e *env) useReadmeManagedIdentity(t *testing.T) {
	t.Helper()
	cfg := readmeManagedIdentityConfig(t)
	for _, in := range cfg["integrations"].(map[string]any) {
		m := in.(map[string]any)
		m["url"] = e.sim.URL()
		if id, _ := m["managedIdentity"].(string); strings.HasPrefix(id, "/subscriptions/") {
			m["managedIdentity"] = dataversetest.DefaultUserIdentityResourceID
		}
	}
	b, _ := json.Marshal(cfg)
	e.writeFile("config.json", string(b))
}

// closedURL is an http URL on loopback where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// TestManagedIdentityREADME runs the README's managed identity example
// through dvgate's real wiring, with the simulated resource's IMDS: a
// lookup, dvgate test for both integrations, and serve, whose start-up log
// names each credential.
func TestManagedIdentityREADME(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.useReadmeManagedIdentity(t)
	e.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = e.sim.ManagedIdentityEndpoint()

	// One lookup run, as a process would run it (the simulator's URL is
	// new, so MSAL's process-wide token cache has nothing for it).
	out, err := e.runCmd(time.Now, "lookup", "customer", alex)
	if err != nil || !strings.Contains(out, `"name": "Alex Wu"`) {
		t.Fatalf("lookup customer: %v\n%s", err, out)
	}
	c := e.sim.Counters()
	t.Logf("one lookup run with a managed identity: %d managed identity token requests, %d Entra token requests, %d Web API requests", c.ManagedIdentityToken, c.Token, c.WebAPI)
	if c.ManagedIdentityToken != 1 || c.Token != 0 {
		t.Errorf("one lookup run: %d managed identity token requests and %d Entra token requests, want 1 and 0", c.ManagedIdentityToken, c.Token)
	}

	for name, user := range map[string]string{"default": dataversetest.DefaultSystemIdentityUserID, "eu": dataversetest.DefaultUserIdentityUserID} {
		out, err := e.runCmd(time.Now, "test", "--integration", name)
		if err != nil || !strings.Contains(out, "OK: organization ") || !strings.Contains(out, "(user "+user+",") ||
			!strings.Contains(out, "Credential: The managed identity has no secret to expire: Azure rotates its credentials.") ||
			!strings.Contains(out, "Signed in with: managed identity ("+map[string]string{"default": "system-assigned", "eu": "user-assigned " + dataversetest.DefaultUserIdentityResourceID}[name]+", IMDS)\n") {
			t.Errorf("dvgate test --integration %s: %v\n%s", name, err, out)
		}
	}

	// The MCP Test button says the same.
	cs, stop := runMCP(t, e.main("mcp"))
	isErr, text := toolText(t, cs, "check_connection", map[string]any{"integration": "eu"})
	if isErr || !strings.Contains(text, `"ok":true`) || !strings.Contains(text, `"userId":"`+dataversetest.DefaultUserIdentityUserID+`"`) ||
		!strings.Contains(text, `"credential":"The managed identity has no secret to expire: Azure rotates its credentials."`) {
		t.Errorf("check_connection: %v %s", isErr, text)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}

	e.start()
	for _, path := range []string{"/v1/customers?email=" + alex, "/v1/integrations/eu/customers?email=" + alex, "/v1/orders/" + orderNum} {
		must(t, e.do("GET", path), 200)
	}
	logs := e.stderr.String()
	for _, want := range []string{
		`"msg":"credential expiry: managed identity, no secret to expire","integration":"default","credential":"managed identity (system-assigned, IMDS)"`,
		`"msg":"credential expiry: managed identity, no secret to expire","integration":"eu","credential":"managed identity (user-assigned ` + dataversetest.DefaultUserIdentityResourceID + `, IMDS)"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the start-up log lacks %s", want)
		}
	}
	if strings.Contains(logs, "several credentials") {
		t.Error("a warning about several credentials, with one configured")
	}
}

// TestManagedIdentityFailures: what dvgate test says where the managed
// identity cannot sign in, through the real wiring.
func TestManagedIdentityFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*env)
		want  string
	}{
		{"no managed identity endpoint on this machine", func(e *env) { e.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = closedURL(t) },
			"FAILED (config): " + dataverse.RemedyNoManagedIdentity},
		{"system-assigned identity off", func(e *env) { e.sim.SetSystemAssignedIdentity(false) },
			"FAILED (auth): " + dataverse.RemedyNoManagedIdentity},
		{"no application user for the identity", func(e *env) {
			e.sim.SetManagedIdentityApplicationUser(dataversetest.DefaultSystemIdentityClientID, false)
		}, "FAILED (permission): " + dataverse.RemedyNoAppUser403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.useReadmeManagedIdentity(t)
			e.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = e.sim.ManagedIdentityEndpoint()
			tt.setup(e)
			out, err := e.runCmd(time.Now, "test")
			var ee exitError
			if !errors.As(err, &ee) || !strings.Contains(out, tt.want) {
				t.Errorf("dvgate test: %v\n%s\nwant %q", err, out, tt.want)
			}
		})
	}
}

// TestCredentialOrderWiring: a client secret and a managed identity in one
// integration start (they used to be refused): the secret signs in, the
// managed identity is never asked, and the log warns and names both.
func TestCredentialOrderWiring(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writeConfig(map[string]map[string]any{"default": {
		"clientSecret": map[string]string{"file": "default.secret"}, "managedIdentity": "system"}})
	e.writeFile("default.secret", e.sim.ClientSecret())
	e.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = closedURL(t)
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	logs := e.stderr.String()
	for _, want := range []string{
		`"warning":"several credentials are configured: signing in with the client secret; not used: managed identity (the order is client secret > certificate > federated token > managed identity): remove the ones you do not mean to use"`,
		`"msg":"credential expiry is not monitored","integration":"default","credential":"client secret"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, e.sim.ClientSecret()) {
		t.Error("the log shows the secret")
	}
	if c := e.sim.Counters(); c.ManagedIdentityToken != 0 || c.Token != 1 {
		t.Errorf("%d managed identity and %d Entra token requests, want 0 and 1", c.ManagedIdentityToken, c.Token)
	}
}

// TestManagedIdentityAppServiceWiring signs in through the App Service
// endpoint, which MSAL finds in the process environment (IDENTITY_ENDPOINT,
// IDENTITY_HEADER): the test sets it, so it cannot run in parallel.
func TestManagedIdentityAppServiceWiring(t *testing.T) {
	e := newEnv(t)
	e.useReadmeManagedIdentity(t)
	for k, v := range e.sim.AppServiceEnv() {
		t.Setenv(k, v)
	}
	out, err := e.runCmd(time.Now, "test")
	if err != nil || !strings.Contains(out, "(user "+dataversetest.DefaultSystemIdentityUserID+",") {
		t.Fatalf("dvgate test on App Service: %v\n%s", err, out)
	}
	if logs := e.stderr.String(); !strings.Contains(logs, `"credential":"managed identity (system-assigned, App Service)"`) {
		t.Errorf("the log does not name the App Service identity:\n%s", logs)
	}
	if strings.Contains(e.stderr.String()+out, e.sim.AppServiceEnv()["IDENTITY_HEADER"]) {
		t.Error("the identity header is shown")
	}
}
