package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRotation rewrites the secret file the config file references: a
// wrong secret is rejected and the old one keeps serving; a right one
// replaces it without a failed request, keeping the cache.
func TestRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu"})
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	tokens := e.sim.TokenRequests()

	// Requests keep flowing during every reload below.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures []string
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := doReq(t, e.client, "POST", e.base+"/v1/test")
				if r.status != 200 {
					mu.Lock()
					failures = append(failures, string(r.body))
					mu.Unlock()
				}
			}
		})
	}

	// A wrong secret: validated, rejected, the old credentials keep serving.
	e.writeFile("default.secret", "not-the-secret")
	e.tick()
	if e.sim.TokenRequests() == tokens {
		t.Error("the new secret was not validated")
	}
	logs := e.stderr.String()
	if !strings.Contains(logs, "new configuration rejected") || !strings.Contains(logs, "AADSTS7000215") {
		t.Errorf("log does not say why the secret was rejected:\n%s", logs)
	}
	must(t, e.do("POST", "/v1/test"), 200)

	// The secret is rotated at Entra, then in the file: applied.
	e.sim.SetClientSecret("rotated~Secret.2")
	e.writeFile("default.secret", "rotated~Secret.2\n")
	e.tick()
	if logs := e.stderr.String(); !strings.Contains(logs, "new configuration applied") {
		t.Errorf("rotation not applied:\n%s", logs)
	}
	// The cache survived the credential-only swap.
	if r := must(t, e.do("GET", "/v1/customers?email="+alex), 200); r.header.Get("X-Cache") != "hit" {
		t.Errorf("after rotation X-Cache %q, want hit (cache kept)", r.header.Get("X-Cache"))
	}

	// SIGHUP reloads too: another wrong secret, rejected.
	e.writeFile("default.secret", "wrong-again")
	e.reload <- struct{}{}
	e.tick() // returns once the SIGHUP reload finished
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed during rotation, first: %s", len(failures), failures[0])
	}
	must(t, e.do("POST", "/v1/test"), 200)
	if rd := must(t, e.do("GET", "/readyz"), 200).json(t); rd["ready"] != true {
		t.Errorf("readyz after rejected rotation: %v", rd)
	}
	metrics := string(must(t, e.do("GET", "/metrics"), 200).body)
	for _, want := range []string{
		`dvgate_integration_updates_total{integration="default",result="applied"} 1`,
		`dvgate_integration_updates_total{integration="default",result="rejected"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if logs := e.stderr.String(); strings.Contains(logs, "rotated~Secret.2") || strings.Contains(logs, "not-the-secret") {
		t.Error("a secret appears in the log")
	}
}

// blockingTransport holds Web API requests for sales orders until release
// is closed, and reports each arrival.
type blockingTransport struct {
	base    http.RoundTripper
	arrived chan struct{}
	release chan struct{}
}

func (b *blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/salesorders") {
		b.arrived <- struct{}{}
		<-b.release
	}
	return b.base.RoundTrip(r)
}

// TestShutdown: a request in flight when shutdown starts completes; new
// connections are refused; Close returns once it is done.
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bt := &blockingTransport{base: e.sim.Client().Transport, arrived: make(chan struct{}, 1), release: make(chan struct{})}
	e.httpc = &http.Client{Transport: bt}
	e.start()

	got := make(chan result, 1)
	go func() {
		got <- doReq(t, e.client, "GET", e.base+"/v1/orders/"+orderNum)
	}()
	<-bt.arrived // the request is now waiting on Dataverse

	shutdownStarted := make(chan struct{})
	e.m.server.RegisterOnShutdown(func() { close(shutdownStarted) })
	closed := make(chan error, 1)
	go func() { closed <- e.m.Close() }()
	<-shutdownStarted

	if _, err := e.client.Get(e.base + "/healthz"); err == nil {
		t.Error("a new request was accepted during shutdown")
	}
	close(bt.release)
	if r := <-got; r.status != 200 || !strings.Contains(string(r.body), orderNum) {
		t.Errorf("in-flight request: %d %s", r.status, r.body)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	// One line says what was drained.
	log := e.stderr.String()
	if n := strings.Count(log, `"msg":"stopped"`); n != 1 || !strings.Contains(log, `"inFlightRequests":1,"unfinishedRequests":0,"integrationsClosed":1`) {
		t.Errorf("%d shutdown lines, want one with the drained request:\n%s", n, log)
	}
}

// TestCommands covers the one-shot commands with the real wiring.
func TestCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "bad", secretEnv: "BAD"})
	e.vars["BAD"] = "wrong"
	orgID, _, _ := e.sim.WhoAmI()
	run := func(args ...string) (string, error) {
		t.Helper()
		e.stdout.mu.Lock()
		e.stdout.b.Reset()
		e.stdout.mu.Unlock()
		m := e.main(args...)
		err := m.Run(context.Background())
		if cerr := m.Close(); cerr != nil {
			t.Error(cerr)
		}
		return e.stdout.String(), err
	}
	out, err := run("test")
	if err != nil || !strings.Contains(out, "OK: organization "+orgID) {
		t.Errorf("dvgate test: %v %q", err, out)
	}
	out, err = run("test", "--integration", "bad")
	var ee exitError
	if !errors.As(err, &ee) || !strings.Contains(out, "FAILED (auth)") || !strings.Contains(out, "AADSTS7000215") {
		t.Errorf("dvgate test --integration bad: %v %q", err, out)
	}
	out, err = run("lookup", "customer", alex)
	if err != nil || !strings.Contains(out, `"name": "Alex Wu"`) {
		t.Errorf("lookup customer: %v %q", err, out)
	}
	out, err = run("lookup", "order", orderNum)
	if err != nil || !strings.Contains(out, `"status": "Submitted / In Progress"`) {
		t.Errorf("lookup order: %v %q", err, out)
	}
	out, err = run("lookup", "order", "ORD-99999-XXXXXX")
	if !errors.As(err, &ee) || !strings.Contains(out, `"code": "not_found"`) {
		t.Errorf("lookup missing order: %v %q", err, out)
	}
	out, err = run("version")
	if err != nil || !strings.HasPrefix(out, "dvgate ") {
		t.Errorf("version: %v %q", err, out)
	}
	for _, args := range [][]string{{"frobnicate"}, {"lookup", "invoice", "1"}, {"serve", "extra"}} {
		m := &Main{Stdout: e.stdout, Stderr: e.stderr, Getenv: func(string) string { return "" }}
		if err := m.ParseFlags(args); err == nil {
			t.Errorf("ParseFlags(%q) accepted", args)
		}
	}
}

func TestAPIToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// No token: a non-loopback address is refused before anything listens.
	m := e.main("serve", "--listen", "0.0.0.0:0")
	err := m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "DVGATE_API_TOKEN") {
		t.Fatalf("non-loopback without a token: %v", err)
	}
	_ = m.Close()

	e.vars["DVGATE_API_TOKEN"] = "s3cret-token" // too short to be safe
	m = e.main("serve", "--listen", "127.0.0.1:0")
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "DVGATE_API_TOKEN: the API token is shorter than 32 bytes: it is 12 bytes") {
		t.Errorf("a 12-byte token: %v", err)
	}
	_ = m.Close()

	e.vars["DVGATE_API_TOKEN"] = "s3cret-token-of-the-sidecar-0c4a9f"
	e.start()
	if code, _, _ := errorOf(t, must(t, e.do("POST", "/v1/test"), 401)); code != "auth" {
		t.Errorf("no token: %s", code)
	}
	must(t, e.do("POST", "/v1/test", "Authorization", "Bearer nope"), 401)
	must(t, e.do("POST", "/v1/test", "Authorization", "Bearer s3cret-token-of-the-sidecar-0c4a9f"), 200)
	// Probes need no token; without it /readyz says ready or not, nothing more.
	if rd := must(t, e.do("GET", "/readyz"), 200).json(t); len(rd["integrations"].([]any)) != 0 {
		t.Errorf("readyz without the token names integrations: %v", rd)
	}
	if rd := must(t, e.do("GET", "/readyz", "Authorization", "Bearer s3cret-token-of-the-sidecar-0c4a9f"), 200).json(t); len(rd["integrations"].([]any)) != 1 {
		t.Errorf("readyz with the token: %v", rd)
	}
	if strings.Contains(e.stderr.String(), "s3cret-token") {
		t.Error("the API token appears in the log")
	}
}

// TestDemo runs what make demo runs and follows its printed commands.
func TestDemo(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	m := &Main{Stdout: out, Stderr: &syncBuffer{}, Getenv: func(string) string { return "" }}
	if err := m.ParseFlags([]string{"--demo", "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		tr.CloseIdleConnections()
	}()
	printed := out.String()
	for _, want := range []string{alex, fabrikam, orderNum} {
		var url string
		for _, line := range strings.Split(printed, "\n") {
			if strings.Contains(line, want) {
				// curl -s 'URL'  # comment
				if f := strings.Split(line, "'"); len(f) >= 3 && url == "" {
					url = f[1]
				}
			}
		}
		if url == "" {
			t.Errorf("no curl command for %s in:\n%s", want, printed)
			continue
		}
		if r := doReq(t, c, "GET", url); r.status != 200 {
			t.Errorf("%s: %d %s", url, r.status, r.body)
		}
	}
	if r := doReq(t, c, "GET", "http://"+m.Addr()+"/readyz"); r.status != 200 {
		t.Errorf("demo not ready: %s", r.body)
	}
}

// TestBrokenIntegrationAtStartup is the start-up rule for many orgs: an
// integration whose secret is missing is reported (log, /readyz with its
// remedy, a metric) and answers its requests with a config error, while
// the other one serves; once the secret is there, a reload brings it up.
// With every integration broken, dvgate serve does not start.
func TestBrokenIntegrationAtStartup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu", secretEnv: "EU_SECRET"})
	e.start()

	c := must(t, e.do("GET", "/v1/customers?email="+alex), 200).json(t)["customer"].(map[string]any)
	if c["name"] != "Alex Wu" {
		t.Errorf("the good integration: %v", c)
	}
	code, msg, _ := errorOf(t, must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 502))
	const remedy = "environment variable EU_SECRET is empty or unset"
	if code != "config" || !strings.Contains(msg, remedy) {
		t.Errorf("the broken integration answers %s %q, want config naming EU_SECRET", code, msg)
	}
	rd := must(t, e.do("GET", "/readyz"), 503).json(t)
	want := map[string]any{"ready": false, "integrations": []any{
		map[string]any{"name": "default", "ready": true},
		map[string]any{"name": "eu", "ready": false, "reason": "Config file " + filepath.Join(e.dir, "config.json") +
			`: integration "eu": clientSecret: ` + remedy + "."},
	}}
	if d := cmp.Diff(want, rd); d != "" {
		t.Errorf("readyz (-want +got):\n%s", d)
	}
	if m := string(must(t, e.do("GET", "/metrics"), 200).body); !strings.Contains(m, `dvgate_integration_config_error{integration="eu"} 1`) ||
		!strings.Contains(m, `dvgate_integration_config_error{integration="default"} 0`) {
		t.Errorf("metrics lack the config error gauge")
	}
	if logs := e.stderr.String(); !strings.Contains(logs, `"msg":"integration cannot start; the others serve","integration":"eu"`) {
		t.Errorf("no log line for the broken integration:\n%s", logs)
	}

	e.vars["EU_SECRET"] = e.sim.ClientSecret()
	e.reload <- struct{}{}
	e.tick()
	must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 200)
	must(t, e.do("GET", "/readyz"), 200)

	none := newEnv(t, integ{name: "eu", secretEnv: "EU_SECRET"})
	m := none.main("serve", "--listen", "127.0.0.1:0")
	err := m.Run(t.Context())
	if cerr := m.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err == nil || !strings.Contains(err.Error(), "no integration can start") || !strings.Contains(err.Error(), remedy) {
		t.Errorf("serve with only a broken integration: %v", err)
	}
}

// TestFatalErrorIsALogLine: an error that stops dvgate is written in the
// log's format, so a collector of JSON lines sees it.
func TestFatalErrorIsALogLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ format, want string }{
		{"json", `"level":"ERROR","msg":"dvgate stopped","error":"boom"}`},
		{"text", `level=ERROR msg="dvgate stopped" error=boom`},
	} {
		var stderr syncBuffer
		m := &Main{Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" }}
		if err := m.ParseFlags([]string{"test", "--log-format", tc.format}); err != nil {
			t.Fatal(err)
		}
		m.Fatal(errors.New("boom"))
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("--log-format %s: %q, want it to contain %q", tc.format, stderr.String(), tc.want)
		}
	}
}

// TestSecretFileReadableByOthers: a secret file every user of the machine
// may read works, with a warning that says how to fix it.
func TestSecretFileReadableByOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.Chmod(filepath.Join(e.dir, "default.secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	must(t, e.do("GET", "/v1/customers?email="+alex), 200)
	if logs := e.stderr.String(); !strings.Contains(logs, "can be read or written by every user of this machine (mode 0644): chmod 600 it") {
		t.Errorf("no warning about the secret file's mode:\n%s", logs)
	}
}
