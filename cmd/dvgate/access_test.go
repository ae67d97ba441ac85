package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestAccessControl: with an API token every path but the probes needs it;
// missing, wrong, same-length-but-wrong and wrong-scheme tokens get a 401
// with the error document, reach nothing upstream, and no presented or
// configured token appears in the log. Without a token the server refuses
// any address beyond loopback.
func TestAccessControl(t *testing.T) {
	t.Parallel()
	const token = "Api.T0ken-for-access-tests-9b1e"
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
