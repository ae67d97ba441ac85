package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestConfigErrorSaysPrefixesOnce: a configuration error (an empty tenant
// ID) reaches the operator without its prefixes repeated (the issue's
// "dataverse: config TenantID: config: the tenant ID is empty"): in the
// HTTP answer, /readyz, and dvgate test's output.
func TestConfigErrorSaysPrefixesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, integ{name: "default"}, integ{name: "eu"})
	e.setIntegration("eu", map[string]any{"tenantId": ""})
	e.start()
	_, msg, _ := errorOf(t, must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 502))
	rd := string(must(t, e.do("GET", "/readyz"), 503).body)
	m := e.main("test", "--integration", "eu")
	_ = m.Run(t.Context())
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	out := e.stdout.String()
	var logLine string
	for l := range strings.SplitSeq(e.stderr.String(), "\n") {
		if strings.Contains(l, "tenant ID is empty") {
			logLine = l
			break
		}
	}
	repeated := regexp.MustCompile(`(?i)\b(config|dataverse|integration)\b[^.]*\b(config|dataverse|integration)\b: `)
	kindTwice := regexp.MustCompile(`config [A-Za-z]+: config\b`)
	if logLine == "" || kindTwice.MatchString(logLine) {
		t.Errorf("the log's line about the integration repeats the kind, or is missing: %q", logLine)
	}
	for _, tc := range []struct{ where, text string }{{"HTTP message", msg}, {"/readyz", rd}, {"dvgate test", out}} {
		t.Logf("%s: %s", tc.where, tc.text)
		if !strings.Contains(tc.text, "AZURE_TENANT_ID") && !strings.Contains(tc.text, "tenant") {
			t.Errorf("%s does not say the tenant ID is missing: %s", tc.where, tc.text)
		}
		if strings.Contains(tc.text, "config: ") || strings.Contains(tc.text, "dataverse: ") || repeated.MatchString(tc.text) {
			t.Errorf("%s repeats prefixes: %s", tc.where, tc.text)
		}
	}
}

// TestREADMEFirstRun: the README says what the first run costs, next to
// the two commands a newcomer types: that it compiles everything, how long
// make demo and make test took on a fresh 2-core machine, and what make
// test downloads the first time.
func TestREADMEFirstRun(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "**The first run")
	end := strings.Index(readme, "## Try the demo")
	if start < 0 || end < start || start > strings.Index(readme, "make test")+2000 {
		t.Fatalf("the README has no first-run paragraph before \"## Try the demo\"")
	}
	para := readme[start:end]
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`first .make demo. answers after \d+-\d+ minutes`),
		regexp.MustCompile(`2-core machine took about \d+ minutes`),
		regexp.MustCompile(`empty (Go )?caches`),
		regexp.MustCompile(`downloads Node`),
	} {
		if !want.MatchString(para) {
			t.Errorf("the first-run paragraph does not say %s:\n%s", want, para)
		}
	}
}
