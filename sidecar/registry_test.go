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

func TestConfigFile(t *testing.T) {
	t.Parallel()
	const ids = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"`
	tests := []struct {
		name, config, wantErr string
	}{
		{"inline secret", `{"integrations": {"default": {` + ids + `, "clientSecret": "hunter2"}}}`, "secrets must not be written in the config file"},
		{"both refs", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "A", "file": "b"}}}}`, `exactly one of "env" and "file"`},
		{"missing env", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "NOPE"}}}}`, "NOPE is empty or unset"},
		{"missing file", `{"integrations": {"default": {` + ids + `, "clientSecret": {"file": "nope"}}}}`, "/cfg/nope does not exist"},
		{"typo", `{"integrations": {"default": {` + ids + `, "clientSecrets": {"env": "S"}}}}`, `unknown field "clientSecrets"`},
		{"bad mode", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "S"}, "customerLookup": "leads"}}}`, "customerLookup"},
		{"no credential", `{"integrations": {"default": {` + ids + `}}}`, `integration "default"`},
		{"bad name", `{"integrations": {"a b": {` + ids + `, "clientSecret": {"env": "S"}}}}`, "names are"},
		{"empty", `{}`, "no integrations"},
		{"ok", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "S"}}}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := &memFiles{}
			files.set("/cfg/c.json", tc.config)
			src := Source{Path: "/cfg/c.json", ReadFile: files.read, Getenv: func(k string) string {
				if k == "S" {
					return "hunter2"
				}
				return ""
			}}
			cfgs, err := src.Load()
			if tc.wantErr == "" {
				if err != nil || len(cfgs) != 1 || cfgs[0].Dataverse.ClientSecret != "hunter2" {
					t.Fatalf("Load: %v %v", cfgs, err)
				}
				if s := cfgs[0].String(); strings.Contains(s, "hunter2") {
					t.Errorf("String() shows the secret: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}
