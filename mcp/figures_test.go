package mcp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/integration"
)

// TestGetOrderSize compares the size of a get_order answer with the raw
// Dataverse JSON for the same order: the gateway's own one request, and
// what a generic table tool hands a model (the whole salesorder row, then
// its salesorderdetail rows, with formatted values). It fails if the
// answer is not smaller than the gateway's own request's body.
func TestGetOrderSize(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	res := call(t, e.cs, "get_order", map[string]any{"order": alexOrder, "email": alexEmail})
	structured, _ := json.Marshal(res.StructuredContent)
	whole, _ := json.Marshal(res) // structured content plus the same JSON as text
	reqs := e.sim.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}

	cfg, err := dataverse.ConfigFromEnv(integration.MapEnv(e.sim.Env(), nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = e.sim.Client()
	conn, err := dataverse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	body := func(pathAndQuery string) []byte {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, conn.BaseURL()+pathAndQuery, nil)
		req.Header.Set("Prefer", `odata.include-annotations="*"`)
		resp, err := conn.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	own := body(strings.TrimPrefix(reqs[0].Path, "/api/data/v9.2/") + "?" + reqs[0].RawQuery)
	order := body("salesorders?$filter=" + url.QueryEscape("ordernumber eq '"+alexOrder+"'"))
	lines := body("salesorderdetails?$filter=" + url.QueryEscape("_salesorderid_value eq "+alexOrderID))
	t.Logf("get_order %s: structuredContent %d bytes (whole tool result with its text copy %d); Dataverse: the gateway's one request %d bytes, "+
		"whole rows (salesorder %d + %d lines %d) %d bytes", alexOrder, len(structured), len(whole), len(own), len(order), 3, len(lines), len(order)+len(lines))
	if len(structured) >= len(own) {
		t.Errorf("the answer (%d bytes) is not smaller than the Dataverse JSON it comes from (%d)", len(structured), len(own))
	}
}
