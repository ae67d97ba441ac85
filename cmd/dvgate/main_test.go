package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/sidecar/spectest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one end-to-end setup: a simulator, a config file and a running Main.
type env struct {
	t      testing.TB
	sim    *dataversetest.Server
	dir    string
	m      *Main
	base   string
	client *http.Client
	ticks  chan time.Time
	reload chan struct{}
	stdout *syncBuffer
	stderr *syncBuffer
	vars   map[string]string
	httpc  *http.Client // base client given to Main

	requestTimeout time.Duration // 0 = 5s
}

// syncBuffer is a bytes.Buffer safe for the server's log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type integ struct {
	name, secretEnv, clientID, mode string
}

// newEnv starts a simulator and writes a config file naming the given
// integrations, all on that simulator; secrets go to files in the temp dir.
func newEnv(t testing.TB, integrations ...integ) *env {
	t.Helper()
	sim, err := dataversetest.NewServer(dataversetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	e := &env{t: t, sim: sim, dir: t.TempDir(), ticks: make(chan time.Time), reload: make(chan struct{}),
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, vars: map[string]string{}, httpc: sim.Client()}
	if len(integrations) == 0 {
		integrations = []integ{{name: "default"}}
	}
	cfg := map[string]any{}
	for _, in := range integrations {
		i := map[string]any{"url": sim.URL(), "tenantId": sim.TenantID(), "clientId": sim.ClientID(), "authorityHost": sim.AuthorityHost()}
		if in.clientID != "" {
			i["clientId"] = in.clientID
		}
		if in.mode != "" {
			i["customerLookup"] = in.mode
		}
		switch {
		case in.secretEnv != "":
			i["clientSecret"] = map[string]string{"env": in.secretEnv}
		default:
			f := in.name + ".secret"
			e.writeFile(f, sim.ClientSecret()+"\n")
			i["clientSecret"] = map[string]string{"file": f} // relative to the config file
		}
		cfg[in.name] = i
	}
	b, _ := json.Marshal(map[string]any{"integrations": cfg})
	e.writeFile("config.json", string(b))
	return e
}

func (e *env) writeFile(name, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// editConfig reads the env's config file, lets edit change it, and writes
// it back.
func (e *env) editConfig(edit func(cfg map[string]any)) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		e.t.Fatal(err)
	}
	edit(cfg)
	b, _ = json.Marshal(cfg)
	e.writeFile("config.json", string(b))
}

// setIntegration changes one integration of the env's config file.
func (e *env) setIntegration(name string, set map[string]any) {
	e.t.Helper()
	e.editConfig(func(cfg map[string]any) {
		maps.Copy(cfg["integrations"].(map[string]any)[name].(map[string]any), set)
	})
}

// main returns a Main for args, wired to this env (config file, simulator
// TLS client, controllable ticks and SIGHUP).
func (e *env) main(args ...string) *Main {
	m := &Main{Stdout: e.stdout, Stderr: e.stderr, ReadFile: os.ReadFile, HTTPClient: e.httpc,
		PollTicks: e.ticks, Reload: e.reload, RequestTimeout: cmpOr(e.requestTimeout, 5*time.Second),
		Getenv: func(k string) string { return e.vars[k] }}
	if err := m.ParseFlags(append(args, "--config", filepath.Join(e.dir, "config.json"))); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// start runs dvgate serve on 127.0.0.1:0.
func (e *env) start(args ...string) {
	e.t.Helper()
	e.m = e.main(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
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

// tick runs one poll of the config files and waits until it finished: the
// second send is received only once the watch loop is back from the first.
func (e *env) tick() {
	e.ticks <- time.Time{}
	e.ticks <- time.Time{}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, r.body)
	}
	return v
}

// do sends a request and checks the response against the OpenAPI document.
func (e *env) do(method, path string, hdr ...string) result {
	e.t.Helper()
	return doReq(e.t, e.client, method, e.base+path, hdr...)
}

func doReq(t testing.TB, c *http.Client, method, url string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, isTest := t.(*testing.T); isTest && !strings.HasPrefix(req.URL.Path, "/metrics") && !strings.HasPrefix(req.URL.Path, "/openapi.json") {
		spectest.Check(t, req, resp, b)
	}
	return result{resp.StatusCode, resp.Header, b}
}

// errorOf returns code and message of an error document.
func errorOf(t *testing.T, r result) (code, msg, dvCode string) {
	t.Helper()
	var v struct {
		Error struct {
			Code, Message, DataverseCode string
		}
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("not an error document: %s", r.body)
	}
	return v.Error.Code, v.Error.Message, v.Error.DataverseCode
}

func must(t *testing.T, r result, status int) result {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}
