package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
)

// readmeConfig returns the README's config file example (the ```json block
// with "integrations"), as a user would copy it.
func readmeConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1) {
		if !strings.Contains(string(m[1]), `"integrations"`) {
			continue
		}
		var cfg map[string]any
		if err := json.Unmarshal(m[1], &cfg); err != nil {
			t.Fatalf("the README's config example is not JSON: %v", err)
		}
		return cfg
	}
	t.Fatal("the README has no config example")
	return nil
}

// pointAt keeps an integration of the README's example as it is, except
// what only the user's own org has: its URL, tenant, app and Entra host are
// the simulator's, and a secret file reference names a file with its
// secret.
func pointAt(t *testing.T, dir string, in map[string]any, sim *dataversetest.Server) {
	t.Helper()
	in["url"], in["tenantId"], in["clientId"], in["authorityHost"] = sim.URL(), sim.TenantID(), sim.ClientID(), sim.AuthorityHost()
	if ref, ok := in["clientSecret"].(map[string]any); ok && ref["file"] != nil {
		f := filepath.Join(dir, filepath.Base(ref["file"].(string)))
		if err := os.WriteFile(f, []byte(sim.ClientSecret()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ref["file"] = f
	}
}

// TestREADMEConfigExample runs the README's config file example through
// dvgate serve: "default" (trackingColumn contoso_trackingnumber) against
// an org that has the column and then one that lacks it, while "eu" keeps
// serving from another org.
func TestREADMEConfigExample(t *testing.T) {
	t.Parallel()
	customOpts, err := dataversetest.CustomizedDemo()
	if err != nil {
		t.Fatal(err)
	}
	custom, err := dataversetest.NewServer(customOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(custom.Close)
	plain := newEnv(t) // the stock org, and the harness
	for _, tc := range []struct {
		name     string
		org      *dataversetest.Server
		tracking string // "" = the order answers 502 config
	}{
		{"org with the column", custom, "1Z999AA1"},
		{"org without the column", plain.sim, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := readmeConfig(t)
			ins := cfg["integrations"].(map[string]any)
			def, eu := ins["default"].(map[string]any), ins["eu"].(map[string]any)
			if def["trackingColumn"] != "contoso_trackingnumber" {
				t.Fatalf("the README's example no longer sets trackingColumn contoso_trackingnumber: %v", def)
			}
			pointAt(t, plain.dir, def, tc.org)
			pointAt(t, plain.dir, eu, plain.sim)
			plain.vars["FABRIKAM_DATAVERSE_SECRET"] = plain.sim.ClientSecret()
			b, _ := json.Marshal(cfg)
			plain.writeFile("config.json", string(b))
			e := *plain
			e.start()

			must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 200)
			r := e.do("GET", "/v1/orders/"+orderNum)
			if tc.tracking != "" {
				o := must(t, r, 200).json(t)["order"].(map[string]any)
				if tn, _ := o["trackingNumber"].(string); !strings.HasPrefix(tn, tc.tracking) {
					t.Errorf("trackingNumber %v, want one from contoso_trackingnumber", o["trackingNumber"])
				}
				want := map[string]any{"shippingmethodcode": map[string]any{"value": 1.0, "label": "Airborne"},
					"contoso_deliveryid": map[string]any{"value": nil}}
				if d := cmp.Diff(want, o["fields"]); d != "" {
					t.Errorf("fields (-want +got):\n%s", d)
				}
				// orderNumberPrefix: the number as a customer types it.
				must(t, e.do("GET", "/v1/orders/%2301001-b2k9p7"), 200)
				// Refunds from the org's own table: one request after the (cached) order.
				n := len(tc.org.Requests())
				rf := must(t, e.do("GET", "/v1/refunds?order=ORD-01001-B2K9P7"), 200).json(t)
				list, _ := rf["refunds"].([]any)
				if rf["source"] != "contoso_refund" || len(list) != 2 || list[0].(map[string]any)["status"] != "Requested" {
					t.Errorf("refunds %v", rf)
				}
				if d := len(tc.org.Requests()) - n; d != 1 {
					t.Errorf("%d Dataverse requests for an order's refunds after the order, want 1", d)
				}
				must(t, e.do("GET", "/v1/refunds?order=ORD-01001-B2K9P7"), 200)
				if d := len(tc.org.Requests()) - n; d != 1 {
					t.Errorf("refunds asked again: %d requests in all, want 1 (cached)", d)
				}
				must(t, e.do("GET", "/readyz"), 200)
				return
			}
			code, msg, _ := errorOf(t, must(t, r, 502))
			if code != "config" || !strings.Contains(msg, `salesorder has no column "contoso_trackingnumber"`) {
				t.Errorf("order from an org without the column: %s %q", code, msg)
			}
			rd := must(t, e.do("GET", "/readyz"), 503).json(t)
			for _, in := range rd["integrations"].([]any) {
				in := in.(map[string]any)
				if in["name"] == "default" && !strings.Contains(in["reason"].(string), "contoso_trackingnumber") {
					t.Errorf("readyz does not name the column: %v", in)
				}
				if in["name"] == "eu" && in["ready"] != true {
					t.Errorf("eu is not ready: %v", in)
				}
			}
			must(t, e.do("GET", "/v1/integrations/eu/customers?email="+alex), 200)
		})
	}
}
