package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataverse"
)

// Issue 19's acceptance on one replica: with "changeFeed": {"interval":
// "1s"}, an order answered from cache (X-Cache: hit) is answered fresh
// within the poll interval plus 1 s of its status being changed through
// the Web API. (The fake-clock tests in package gateway check that
// answers outlive their normal TTL; this one checks the wiring and the
// time.)
func TestServeChangeFeed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(e.dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]map[string]map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	cfg["integrations"]["default"]["changeFeed"] = map[string]string{"interval": interval.String()}
	b, _ = json.Marshal(cfg)
	e.writeFile("config.json", string(b))
	e.start()

	// The follower's first poll (the initial sync) gives it a deltaLink
	// per table: wait for dvgate_feed_up.
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(string(e.do("GET", "/metrics").body), `dvgate_feed_up{integration="default"} 1`)
	})
	const order = "/v1/orders/ORD-01001-B2K9P7"
	first := must(t, e.do("GET", order), 200)
	if got := first.header.Get("X-Cache"); got != "miss" {
		t.Fatalf("first lookup X-Cache %q", got)
	}
	id := first.json(t)["order"].(map[string]any)["id"].(string)
	before := first.json(t)["order"].(map[string]any)["statusReason"].(map[string]any)["value"].(float64)
	if r := must(t, e.do("GET", order), 200); r.header.Get("X-Cache") != "hit" {
		t.Fatalf("second lookup X-Cache %q", r.header.Get("X-Cache"))
	}

	// Another application changes the order's status through the Web API.
	w, err := dataverse.New(dataverse.Config{URL: e.sim.URL(), TenantID: e.sim.TenantID(), ClientID: e.sim.ClientID(),
		ClientSecret: e.sim.ClientSecret(), AuthorityHost: e.sim.AuthorityHost(), HTTPClient: e.sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := 2.0
	if before == 2 {
		want = 1
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPatch, w.BaseURL()+"salesorders("+id+")",
		strings.NewReader(`{"statuscode":`+jsonNum(want)+`}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	changed := time.Now()

	var fresh result
	waitFor(t, interval+time.Second, func() bool {
		fresh = must(t, e.do("GET", order), 200)
		return fresh.json(t)["order"].(map[string]any)["statusReason"].(map[string]any)["value"].(float64) == want
	})
	took := time.Since(changed)
	if got := fresh.header.Get("X-Cache"); got != "miss" {
		t.Errorf("the fresh answer's X-Cache %q", got)
	}
	t.Logf("the changed status was answered %v after the PATCH (poll interval %v)", took.Round(time.Millisecond), interval)
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

// waitFor checks cond every 20 ms until it holds, failing the test after
// limit. (The follower runs on real time here: the end-to-end timing is
// what is measured.)
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", limit)
		}
		<-tk.C
	}
}
