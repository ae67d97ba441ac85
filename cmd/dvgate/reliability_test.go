package main

// Shared machinery of the reliability tests (faults_test.go,
// hostile_test.go, access_test.go, soak_test.go): a rig that runs the real
// wiring (Main) against a simulator with a distinctive client secret, an
// injected freshness clock and an optional transport, plus the secret
// hygiene check and the report rows behind RELIABILITY.md.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

var reportPath = flag.String("reliability.report", "", "append the reliability matrix rows (JSON lines) to this file; see make soak")

// hygieneSecret is the client secret of every rig: distinctive, so that a
// leak anywhere (log, metrics, error body) is found by substring search.
const hygieneSecret = "Hyg13ne~Cl1ent.Secret-7f3a9c0d2e"

// reportRow is one line of the reliability matrix.
type reportRow struct {
	Area     string `json:"area"`     // "fault", "input", "access", "soak", "leak"
	Case     string `json:"case"`     // what was done
	Expect   string `json:"expect"`   // what the caller gets: "200 hit", "503 throttled Retry-After 300"
	Upstream string `json:"upstream"` // Dataverse (and Entra) requests it caused
	Wall     string `json:"wall"`     // how long the caller waited, or the run's length
	Note     string `json:"note,omitempty"`
}

var reportMu sync.Mutex

// report appends r to the -reliability.report file (no-op without it).
func report(t testing.TB, r reportRow) {
	if *reportPath == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(*reportPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(r)
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Errorf("report: %v", err)
	}
}

// stepClock is a settable clock (freshness of the gateway, or the
// simulator's view of time).
type stepClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// rigOpts vary a rig.
type rigOpts struct {
	sim            dataversetest.Options // ClientSecret defaults to hygieneSecret
	requestTimeout time.Duration         // default 3s
	// transport, when set, builds the base HTTP client of Main (e.g. a
	// failing dialer) for the simulator.
	transport func(*dataversetest.Server) *http.Client
	// certPEM, when set, is the integration's credential (a PEM file with
	// certificate and key) instead of the secret.
	certPEM  []byte
	apiToken string
}

// rig is a running Main on 127.0.0.1:0 over its own simulator, with every
// byte the process wrote and every response kept for the hygiene check.
type rig struct {
	*env
	clock    *stepClock // the gateway's freshness clock
	simClock *stepClock // the simulator's clock, when the test set it
	opts     rigOpts

	mu     sync.Mutex
	bodies bytes.Buffer // every response (headers and body) the rig saw
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	if o.sim.ClientSecret == "" {
		o.sim.ClientSecret = hygieneSecret
	}
	sim, err := dataversetest.NewServer(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	e := &env{t: t, sim: sim, dir: t.TempDir(), ticks: make(chan time.Time), reload: make(chan struct{}),
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, vars: map[string]string{}, httpc: sim.Client(),
		requestTimeout: cmpOr(o.requestTimeout, 3*time.Second)}
	if o.transport != nil {
		e.httpc = o.transport(sim)
	}
	in := map[string]any{"url": sim.URL(), "tenantId": sim.TenantID(), "clientId": sim.ClientID(), "authorityHost": sim.AuthorityHost()}
	if o.certPEM != nil {
		e.writeFile("client.pem", string(o.certPEM))
		in["certificatePath"] = filepath.Join(e.dir, "client.pem")
	} else {
		e.writeFile("default.secret", sim.ClientSecret()+"\n")
		in["clientSecret"] = map[string]string{"file": "default.secret"}
	}
	b, _ := json.Marshal(map[string]any{"integrations": map[string]any{"default": in}})
	e.writeFile("config.json", string(b))
	if o.apiToken != "" {
		e.vars[envAPIToken] = o.apiToken
	}
	return &rig{env: e, clock: &stepClock{}, opts: o}
}

// start runs dvgate serve with the rig's clock.
func (r *rig) start(args ...string) {
	t := r.t
	t.Helper()
	r.m = r.main(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	r.m.Clock = r.clock.Now
	if err := r.m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	r.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	r.base = "http://" + r.m.Addr()
	t.Cleanup(func() {
		if err := r.m.Close(); err != nil {
			t.Error(err)
		}
		tr.CloseIdleConnections()
	})
	// Runs before Main.Close: dropping the simulator's connections ends
	// shared calls still waiting on an injected latency, so Close does not
	// wait for them.
	t.Cleanup(r.sim.Close)
}

// get sends a request through the API, checks the answer against the
// OpenAPI document (doReq) and keeps it for the hygiene check.
func (r *rig) get(t *testing.T, method, path string, hdr ...string) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	res := doReq(t, r.client, method, r.base+path, hdr...)
	wall := time.Since(start)
	r.keep(res)
	return res, wall
}

// getRaw is get without the OpenAPI check, for requests the checker
// cannot route (an encoded slash in a path parameter).
func (r *rig) getRaw(t *testing.T, method, path string, hdr ...string) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	res := doReq(testing.TB(rawTB{t}), r.client, method, r.base+path, hdr...)
	wall := time.Since(start)
	r.keep(res)
	return res, wall
}

// rawTB hides the *testing.T from doReq's OpenAPI check.
type rawTB struct{ *testing.T }

func (r *rig) keep(res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = res.header.Write(&r.bodies)
	r.bodies.Write(res.body)
}

// secrets are the strings that must never leave the process: the client
// secret, the certificate's private key, and every access token the
// simulator saw (and each token's signature on its own).
func (r *rig) secrets() []string {
	out := []string{hygieneSecret}
	rest := r.opts.certPEM
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if !strings.Contains(blk.Type, "PRIVATE KEY") {
			continue
		}
		// The key in any encoding we might print, and each base64 line of
		// its PEM body.
		body := string(pem.EncodeToMemory(blk))
		out = append(out, base64.StdEncoding.EncodeToString(blk.Bytes), hex.EncodeToString(blk.Bytes)[:64])
		for _, line := range strings.Fields(body) {
			if len(line) >= 48 {
				out = append(out, line)
			}
		}
	}
	seen := map[string]bool{}
	for _, req := range r.sim.Requests() {
		if req.Token == "" || seen[req.Token] {
			continue
		}
		seen[req.Token] = true
		out = append(out, req.Token)
		if i := strings.LastIndexByte(req.Token, '.'); i > 0 {
			out = append(out, req.Token[i+1:])
		}
	}
	return out
}

// checkHygiene asserts that no secret appears in the logs, stdout, the
// /metrics page or any response the rig saw.
func (r *rig) checkHygiene(t *testing.T) {
	t.Helper()
	metrics := doReq(t, r.client, "GET", r.base+"/metrics", authHeader(r.opts.apiToken)...)
	r.mu.Lock()
	bodies := r.bodies.String()
	r.mu.Unlock()
	places := map[string]string{"log": r.stderr.String(), "stdout": r.stdout.String(), "metrics": string(metrics.body), "responses": bodies}
	for _, s := range r.secrets() {
		for where, text := range places {
			if strings.Contains(text, s) {
				t.Errorf("secret %.12s... appears in the %s", s, where)
			}
		}
	}
	if strings.Contains(places["log"], "panic") {
		t.Errorf("the log reports a panic:\n%s", places["log"])
	}
}

func authHeader(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// upstream is a snapshot of the simulator's counters.
type upstream struct{ web, token int }

func (r *rig) counts() upstream {
	return upstream{r.sim.WebAPIRequests(), r.sim.TokenRequests()}
}
