package gateway

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestSimFields: a lookup as the tracking column and order and customer
// fields of every kind, typed by the org's schema, from the simulator of
// a customised org, each answer still one request.
func TestSimFields(t *testing.T) {
	t.Parallel()
	opts, err := dataversetest.CustomizedDemo()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(opts.Seed, &doc); err != nil {
		t.Fatal(err)
	}
	const delivery = "9d3c5a1e-2f4b-4c6d-8e0f-1a2b3c4d5e6f"
	doc.Tables["contoso_delivery"] = []map[string]any{{"contoso_deliveryid": delivery, "contoso_name": "DLV-1001",
		"contoso_carrier": 2, "statecode": 0, "statuscode": 1}}
	for _, r := range doc.Tables["salesorder"] {
		if r["ordernumber"] == demoOrder {
			r["_contoso_deliveryid_value"] = delivery
			r["freightamount"] = "12.5"
		}
	}
	if opts.Seed, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	e := newSimEnv(t, opts, Config{Model: customModel(t), TrackingColumn: "contoso_deliveryid",
		OrderFields:    []string{"shippingmethodcode", "freightamount", "willcall", "contoso_deliveryid", "contoso_trackingnumber", "requestdeliveryby"},
		CustomerFields: []string{"telephone1", "accountnumber"}})
	o, _, err := e.g.Order(context.Background(), "Order #"+demoOrder)
	if err != nil {
		t.Fatal(err)
	}
	if o.TrackingNumber == nil || *o.TrackingNumber != "DLV-1001" {
		t.Errorf("tracking number from the lookup's primary name: %v", o.TrackingNumber)
	}
	got, _ := json.Marshal(o.Fields)
	want := `{"contoso_deliveryid":{"value":"` + delivery + `","label":"DLV-1001","table":"contoso_delivery"},` +
		`"contoso_trackingnumber":{"value":"` + *trackingOf(t, opts.Seed) + `"},` +
		`"freightamount":{"value":"12.50","label":"$12.50"},` +
		`"requestdeliveryby":{"value":"2026-12-01T08:00:00Z","label":"12/1/2026 8:00 AM"},` +
		`"shippingmethodcode":{"value":1,"label":"Airborne"},` +
		`"willcall":{"value":false,"label":"Address"}}` // the yes/no column's own labels
	var g, w any
	_ = json.Unmarshal(got, &g)
	_ = json.Unmarshal([]byte(want), &w)
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("fields (-want +got):\n%s", d)
	}
	c, _, err := e.g.Customer(context.Background(), "alex.wu@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Fields["telephone1"]; len(c.Fields) != 1 || string(f.Value) == "null" {
		t.Errorf("a contact's fields (accountnumber is an account column): %v", c.Fields)
	}
	if n := len(e.webRequests()); n != 2 {
		t.Errorf("%d Dataverse requests for an order and a customer with fields, want 2", n)
	}
}

func trackingOf(t *testing.T, seed []byte) *string {
	t.Helper()
	var doc struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	_ = json.Unmarshal(seed, &doc)
	for _, r := range doc.Tables["salesorder"] {
		if r["ordernumber"] == demoOrder {
			s, _ := r["contoso_trackingnumber"].(string)
			return &s
		}
	}
	t.Fatal("no demo order")
	return nil
}
