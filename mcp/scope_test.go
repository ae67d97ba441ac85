package mcp

import (
	"testing"
)

// TestGetOrderEmailScoping: with email, an order that is not that
// customer's answers exactly as a missing order does, and an order owned by
// a contact costs its one Dataverse request and nothing more.
func TestGetOrderEmailScoping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, order, email string
		found              bool
		requests           int // Dataverse requests, cold cache
	}{
		{"contact's own order", alexOrder, alexEmail, true, 1},
		{"contact's own order, email in another case", alexOrder, "ALEX.WU@example.COM", true, 1},
		{"another contact's email on a contact's order", alexOrder, mariaEmail, false, 1},
		{"the parent account's email on a contact's order", alexOrder, awEmail, false, 1},
		{"unknown email on a contact's order", alexOrder, "attacker@evil.example", false, 1},
		{"account's own order", litOrder, litEmail, true, 1},
		{"a contact of the ordering account", litOrder, mariaEmail, true, 2},
		{"a contact of another account", litOrder, alexEmail, false, 2},
		{"Alex on his company's order", awOrder, alexEmail, true, 2},
		{"another account's email on an account's order", litOrder, awEmail, false, 2},
		{"no such order", "ORD-99999-NOSUCH", alexEmail, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t)
			got := result[GetOrderOut](t, call(t, e.cs, "get_order", map[string]any{"order": tt.order, "email": tt.email}))
			if got.Found != tt.found {
				t.Errorf("found = %v, want %v (%+v)", got.Found, tt.found, got)
			}
			if !got.Found && (got.Order != nil || got.Message != "No sales order has this number or id.") {
				t.Errorf("not found answer %+v: must be the same as for a missing order", got)
			}
			if n := e.sim.WebAPIRequests(); n != tt.requests {
				t.Errorf("%d Dataverse requests, want %d", n, tt.requests)
			}
			// Asked again, everything comes from the cache.
			call(t, e.cs, "get_order", map[string]any{"order": tt.order, "email": tt.email})
			if n := e.sim.WebAPIRequests(); n != tt.requests {
				t.Errorf("after a repeat: %d Dataverse requests, want %d", n, tt.requests)
			}
		})
	}
}
