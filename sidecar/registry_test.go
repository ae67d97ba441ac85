package sidecar

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	if err := h.reg.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, body := h.do(t, "GET", "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz %d %s", resp.StatusCode, body)
	}
	first := h.conn.all()
	if len(first) != 2 {
		t.Fatalf("built %d backends, want 2", len(first))
	}
	old := first[0] // "default", loaded first (sorted)
	if old.cfg.Name != "default" || old.cfg.Dataverse.ClientSecret != "s3cret" {
		t.Fatalf("first backend %s", old.cfg)
	}

	// An order request in flight on the old backend while the secret rotates.
	old.block, old.entered = make(chan struct{}), make(chan struct{})
	done := make(chan int)
	go func() {
		resp, _ := h.do(t, "GET", "/v1/orders/ORD-1")
		done <- resp.StatusCode
	}()
	<-old.entered

	// A rejected secret: the old backend keeps serving.
	h.files.set("/etc/dvgate/secret", "bad")
	if err := h.reg.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "client secret is wrong") {
		t.Fatalf("Reload with a bad secret: %v", err)
	}
	if b, release, _ := h.reg.Acquire("default"); b != old {
		t.Error("a rejected secret replaced the backend")
	} else {
		release()
	}
	if all := h.conn.all(); !all[2].isClosed() {
		t.Error("the rejected backend was not closed")
	}

	// A good secret replaces it; the in-flight request still finishes on the old one.
	h.files.set("/etc/dvgate/secret", "rotated")
	if err := h.reg.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, release, _ := h.reg.Acquire("default")
	if nb := b.(*fakeBackend); nb.cfg.Dataverse.ClientSecret != "rotated" {
		t.Errorf("current secret %q", nb.cfg.Dataverse.ClientSecret)
	}
	release()
	if old.isClosed() {
		t.Error("old backend closed while a request was using it")
	}
	close(old.block)
	if code := <-done; code != http.StatusOK {
		t.Errorf("in-flight request during rotation: status %d", code)
	}
	if !old.isClosed() {
		t.Error("old backend not closed after its last request")
	}
	// The other integration was untouched.
	if eu := first[1]; eu.isClosed() {
		t.Error("unchanged integration was replaced")
	}
	// Nothing changed: no new backend.
	n := len(h.conn.all())
	if err := h.reg.Reload(t.Context()); err != nil || len(h.conn.all()) != n {
		t.Errorf("no-op reload: err %v, built %d more", err, len(h.conn.all())-n)
	}
	resp, body := h.do(t, "GET", "/metrics")
	for _, want := range []string{
		`dvgate_integration_updates_total{integration="default",result="applied"} 1`,
		`dvgate_integration_updates_total{integration="default",result="rejected"} 1`,
		`dvgate_integration_ready{integration="eu"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics (%d) lack %s", resp.StatusCode, want)
		}
	}
}

func TestReadyzThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	if err := h.reg.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, release, _ := h.reg.Acquire("eu")
	b.(*fakeBackend).throttled = time.Now().Add(60e9)
	release()
	resp, body := h.do(t, "GET", "/readyz")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "service protection") {
		t.Errorf("readyz while throttled: %d %s", resp.StatusCode, body)
	}
}
