package integration

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/gateway"
)

const knobIDs = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "clientSecret": {"env": "S"}`

var knobEnv = map[string]string{"DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
	"AZURE_TENANT_ID": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "AZURE_CLIENT_ID": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d",
	"AZURE_CLIENT_SECRET": "s", "S": "s"}

// knobValue is what each knob is set to in TestKnobsRead, as the
// environment and the config file write it, and what it reads as.
type knobValue struct {
	env, file string
	want      func(c Config, shared int64) any
}

var knobValues = map[string]knobValue{
	EnvCustomerTTL:     {"90s", `"90s"`, func(c Config, _ int64) any { return c.Tuning.CustomerTTL }},
	EnvOrderTTL:        {"2m", `"2m"`, func(c Config, _ int64) any { return c.Tuning.OrderTTL }},
	EnvNotFoundTTL:     {"10s", `"10s"`, func(c Config, _ int64) any { return c.Tuning.NotFoundTTL }},
	EnvStaleTTL:        {"3h", `"3h"`, func(c Config, _ int64) any { return c.Tuning.StaleTTL }},
	EnvUpstreamTimeout: {"12s", `"12s"`, func(c Config, _ int64) any { return c.Tuning.UpstreamTimeout }},
	EnvBudgetRate:      {"2.5", `2.5`, func(c Config, _ int64) any { return c.Budget.Rate }},
	EnvBudgetBurst:     {"7", `7`, func(c Config, _ int64) any { return c.Budget.Burst }},
	EnvCacheBytes:      {"16MiB", `"16MiB"`, func(_ Config, shared int64) any { return shared }},
	"":                 {"", `1048576`, func(c Config, _ int64) any { return c.Tuning.CacheBytes }},
}

var knobWant = map[string]any{
	EnvCustomerTTL: 90 * time.Second, EnvOrderTTL: 2 * time.Minute, EnvNotFoundTTL: 10 * time.Second,
	EnvStaleTTL: 3 * time.Hour, EnvUpstreamTimeout: 12 * time.Second, EnvBudgetRate: 2.5, EnvBudgetBurst: 7,
	EnvCacheBytes: int64(16 << 20), "": int64(1 << 20),
}

// TestKnobsRead sets each knob of Knobs alone, in the environment and in
// the config file, and checks that it is read: the list is what the code
// reads, not only what the README says.
func TestKnobsRead(t *testing.T) {
	t.Parallel()
	for _, k := range Knobs {
		v, ok := knobValues[k.Env]
		if !ok {
			t.Errorf("knob %s/%s has no test value", k.Env, k.File)
			continue
		}
		t.Run(k.Env+"/"+k.File, func(t *testing.T) {
			t.Parallel()
			if k.Env != "" {
				env := map[string]string{k.Env: v.env}
				src := Source{Getenv: MapEnv(env, MapEnv(knobEnv, nil)), ReadFile: NoFiles}
				cfgs, err := src.Load()
				if err != nil || cfgs[0].Err != nil {
					t.Fatalf("Load: %v %v", err, cfgs[0].Err)
				}
				shared, err := src.LoadCacheBytes()
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(knobWant[k.Env], v.want(cfgs[0], shared)); diff != "" {
					t.Errorf("from %s=%s (-want +got):\n%s", k.Env, v.env, diff)
				}
			}
			// In the file: "budget.rate" is {"budget": {"rate": ...}}.
			key, val := k.File, v.file
			if parent, child, ok := strings.Cut(k.File, "."); ok {
				key, val = parent, `{"`+child+`": `+v.file+`}`
			}
			doc := `{"integrations": {"default": {` + knobIDs + `, "` + key + `": ` + val + `}}}`
			if k.Global {
				doc = `{"` + key + `": ` + val + `, "integrations": {"default": {` + knobIDs + `}}}`
			}
			src := Source{Path: "/c.json", ReadFile: files(map[string]string{"/c.json": doc}), Getenv: MapEnv(knobEnv, nil)}
			cfgs, err := src.Load()
			if err != nil || cfgs[0].Err != nil {
				t.Fatalf("Load %s: %v %v", doc, err, cfgs[0].Err)
			}
			shared, err := src.LoadCacheBytes()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(knobWant[k.Env], v.want(cfgs[0], shared)); diff != "" {
				t.Errorf("from %s (-want +got):\n%s", doc, diff)
			}
		})
	}
}

func TestKnobsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, file, wantErr string }{
		{EnvCustomerTTL, `"customerTTL": "5 minutes"`, "customerTTL"},
		{EnvStaleTTL, `"staleTTL": "-1h"`, "staleTTL"},
		{EnvCacheBytes, `"cacheBytes": "lots"`, "cacheBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			if tc.env != EnvCacheBytes {
				src := Source{Getenv: MapEnv(map[string]string{tc.env: "x"}, MapEnv(knobEnv, nil)), ReadFile: NoFiles}
				cfgs, _ := src.Load()
				if err := cfgs[0].Err; err == nil || !strings.Contains(err.Error(), tc.env) {
					t.Errorf("env %s=x: error %v, want it to name %s", tc.env, err, tc.env)
				}
			} else {
				src := Source{Getenv: MapEnv(map[string]string{tc.env: "x"}, nil)}
				if _, err := src.LoadCacheBytes(); err == nil || !strings.Contains(err.Error(), tc.env) {
					t.Errorf("env %s=x: error %v, want it to name %s", tc.env, err, tc.env)
				}
			}
			doc := `{"integrations": {"default": {` + knobIDs + `, ` + tc.file + `}}}`
			src := Source{Path: "/c.json", ReadFile: files(map[string]string{"/c.json": doc}), Getenv: MapEnv(knobEnv, nil)}
			cfgs, err := src.Load()
			if err == nil {
				err = cfgs[0].Err
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want it to name %s", tc.file, err, tc.wantErr)
			}
		})
	}
}

// TestKnobsREADME compares the README's table of knobs with Knobs, row by
// row: the environment variable, the config file key and the default.
func TestKnobsREADME(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "<!-- knobs: integration.Knobs")
	if !ok {
		t.Fatal("README.md has no knobs table (<!-- knobs: integration.Knobs ... -->)")
	}
	cell := regexp.MustCompile("`([^`]*)`")
	var got []Knob
	for _, line := range strings.Split(table, "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" && got != nil {
			break
		}
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| Environment") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) < 4 {
			t.Fatalf("knobs table row %q has fewer than 4 columns", line)
		}
		code := func(s string) string {
			if m := cell.FindStringSubmatch(s); m != nil {
				return m[1]
			}
			return ""
		}
		k := Knob{Env: code(cols[0]), File: code(cols[1]), Global: strings.Contains(cols[1], "top level"),
			Default: strings.TrimSpace(strings.ReplaceAll(cols[2], "`", ""))}
		got = append(got, k)
	}
	if diff := cmp.Diff(Knobs, got); diff != "" {
		t.Errorf("README's knobs table differs from integration.Knobs (-code +README):\n%s", diff)
	}
	if fmt := gateway.DefaultMaxBytes; fmt != 64<<20 {
		t.Errorf("gateway.DefaultMaxBytes is %d: update the cacheBytes default in Knobs and the README", fmt)
	}
	if gateway.DefaultBudgetRate != 10 || gateway.DefaultBudgetBurst != 40 {
		t.Errorf("gateway's default budget is %v/%v: update Knobs and the README", gateway.DefaultBudgetRate, gateway.DefaultBudgetBurst)
	}
}

// TestSharedCache: integrations without a budget of their own share one
// cache (one memory budget however many there are); one with cacheBytes
// has its own, kept across a rotation; the last backend frees each.
func TestSharedCache(t *testing.T) {
	t.Parallel()
	gc := &GatewayConnector{CacheBytes: 8 << 20}
	cfg := func(name string, own int64, secret string) Config {
		src := Source{Getenv: MapEnv(map[string]string{"AZURE_CLIENT_SECRET": secret}, MapEnv(knobEnv, nil)), ReadFile: NoFiles}
		cfgs, err := src.Load()
		if err != nil || cfgs[0].Err != nil {
			t.Fatal(err, cfgs[0].Err)
		}
		c := cfgs[0]
		c.Name, c.Tuning.CacheBytes = name, own
		return c
	}
	connect := func(c Config, prev Backend) Backend {
		b, err := gc.Connect(c, prev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := connect(cfg("a", 0, "s1"), nil)
	b := connect(cfg("b", 0, "s1"), nil)
	own := connect(cfg("own", 1<<20, "s1"), nil)
	rotated := connect(cfg("own", 1<<20, "s2"), own) // a new secret: same data, same cache
	labels := func() []string {
		var out []string
		for _, st := range gc.CacheStats() {
			out = append(out, fmt.Sprintf("%s shared=%v budget=%d", st.Label, st.Shared, st.BudgetBytes))
		}
		return out
	}
	want := []string{"own shared=false budget=1048576", "shared shared=true budget=8388608"}
	if diff := cmp.Diff(want, labels()); diff != "" {
		t.Errorf("caches (-want +got):\n%s", diff)
	}
	if a.(*gatewayBackend).cache != b.(*gatewayBackend).cache {
		t.Error("two integrations without cacheBytes have different caches")
	}
	if own.(*gatewayBackend).cache != rotated.(*gatewayBackend).cache {
		t.Error("a rotation did not keep the integration's own cache")
	}
	own.Close()
	a.Close()
	if diff := cmp.Diff(want, labels()); diff != "" {
		t.Errorf("caches still used (-want +got):\n%s", diff)
	}
	b.Close()
	rotated.Close()
	if got := labels(); len(got) != 0 {
		t.Errorf("caches after the last backend closed: %v", got)
	}
}
