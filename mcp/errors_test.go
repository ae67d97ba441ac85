package mcp

import (
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/integration"
)

// TestToolErrorsEveryCode: every code a backend can answer becomes a tool
// error (isError, not a protocol error) whose text starts with the code and
// carries the remedy, with the wait when there is one; not_found of a
// lookup is not an error but found:false.
func TestToolErrorsEveryCode(t *testing.T) {
	t.Parallel()
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"find_customer", map[string]any{"email": alexEmail}},
		{"get_order", map[string]any{"order": alexOrder}},
		{"get_order", map[string]any{"order": alexOrder, "email": alexEmail}},
		{"list_recent_orders", map[string]any{"email": alexEmail}},
		{"list_recent_orders", map[string]any{"customer": map[string]any{"type": "contact", "id": alexID}}},
		{"list_refunds", map[string]any{"order": alexOrder}},
		{"check_connection", map[string]any{}},
	}
	for _, code := range integration.Codes {
		e := &integration.Error{Code: code, Message: "Remedy for " + string(code) + "."}
		if code == integration.CodeThrottled {
			e.RetryAfter = 1500 * time.Millisecond
		}
		cs := connect(t, NewServer(Options{Registry: fakeRegistry{e}}))
		for _, c := range calls {
			res := call(t, cs, c.tool, c.args)
			lookup := c.tool != "list_refunds" && c.tool != "check_connection"
			if code == integration.CodeNotFound && lookup {
				got := result[struct {
					Found   bool   `json:"found"`
					Message string `json:"message"`
				}](t, res)
				if got.Found || got.Message != e.Message {
					t.Errorf("%s %v: %+v, want found:false with the message", c.tool, c.args, got)
				}
				continue
			}
			want := string(code) + ": " + e.Message
			if code == integration.CodeThrottled {
				want += " Retry after 2s."
			}
			if !res.IsError || text(res) != want {
				t.Errorf("%s %v with %s: isError %v, text %q, want %q", c.tool, c.args, code, res.IsError, text(res), want)
			}
		}
	}
}

// TestToolErrorsOfInput: input the tools reject, before or after the
// backend, is a tool error naming what to fix.
func TestToolErrorsOfInput(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	named := connect(t, NewServer(Options{Registry: e.reg, Integration: "default", Fixed: true}))
	tests := []struct {
		name string
		tool string
		args map[string]any
		want string // the text starts with it
	}{
		{"missing required argument", "get_order", map[string]any{}, `validating "arguments"`},
		{"wrong type", "get_order", map[string]any{"order": 12}, `validating "arguments"`},
		{"unknown argument", "find_customer", map[string]any{"email": alexEmail, "phone": "1"}, `validating "arguments"`},
		{"not an email", "find_customer", map[string]any{"email": "alex"}, "invalid_input: The email is not valid"},
		{"bad mode", "find_customer", map[string]any{"email": alexEmail, "mode": "people"}, "invalid_input:"},
		{"scoping email not an email", "get_order", map[string]any{"order": alexOrder, "email": "alex"}, "invalid_input: The email is not valid"},
		{"empty order", "list_refunds", map[string]any{"order": " "}, "invalid_input: The "},
		{"neither email nor customer", "list_recent_orders", map[string]any{}, "invalid_input: Give either email or customer"},
		{"both email and customer", "list_recent_orders", map[string]any{"email": alexEmail, "customer": map[string]any{"type": "contact", "id": alexID}}, "invalid_input: Give either"},
		{"limit too large", "list_recent_orders", map[string]any{"email": alexEmail, "limit": 51}, "invalid_input: The limit is not valid"},
		{"bad customer type", "list_recent_orders", map[string]any{"customer": map[string]any{"type": "lead", "id": alexID}}, "invalid_input:"},
		{"unknown integration", "check_connection", map[string]any{"integration": "acme"}, `not_found: No integration is named "acme".`},
	}
	for _, tt := range tests {
		res := call(t, e.cs, tt.tool, tt.args)
		if !res.IsError || !strings.HasPrefix(text(res), tt.want) {
			t.Errorf("%s: isError %v, text %q, want prefix %q", tt.name, res.IsError, text(res), tt.want)
		}
	}
	res := call(t, named, "check_connection", map[string]any{"integration": "other"})
	if !res.IsError || !strings.HasPrefix(text(res), `invalid_input: This endpoint serves the integration "default" only`) {
		t.Errorf("fixed endpoint, another integration: %q", text(res))
	}
	if res := call(t, named, "check_connection", map[string]any{"integration": "default"}); res.IsError {
		t.Errorf("fixed endpoint, its own integration: %q", text(res))
	}
	if n := e.sim.WebAPIRequests(); n != 1 {
		t.Errorf("%d Dataverse requests, want 1 (the check): rejected input must not reach Dataverse: %+v", n, e.sim.Requests())
	}
}

// TestToolErrorsFromDataverse: failures the simulator produces reach the
// agent as tool errors with the remedy.
func TestToolErrorsFromDataverse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*dataversetest.Server)
		tool  string
		args  map[string]any
		want  string
	}{
		{"permission", func(s *dataversetest.Server) { s.DenyRead("salesorder") }, "get_order", map[string]any{"order": alexOrder}, "permission: "},
		{"auth", func(s *dataversetest.Server) { s.SetClientSecret("rotated-elsewhere") }, "check_connection", nil, "auth: "},
		{"no application user", func(s *dataversetest.Server) { s.SetApplicationUser(false) }, "find_customer", map[string]any{"email": alexEmail}, "permission: "},
		{"throttled", func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Status: 429, RetryAfter: 30 * time.Second})
		}, "get_order", map[string]any{"order": alexOrder}, "throttled: "},
		{"unavailable", func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Status: 503})
		}, "find_customer", map[string]any{"email": alexEmail}, "unavailable: "},
		{"malformed answer", func(s *dataversetest.Server) {
			s.InjectFault(dataversetest.Fault{Malformed: true})
		}, "get_order", map[string]any{"order": alexOrder}, "unavailable: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t)
			tt.setup(e.sim)
			res := call(t, e.cs, tt.tool, tt.args)
			if !res.IsError || !strings.HasPrefix(text(res), tt.want) || len(text(res)) < len(tt.want)+20 {
				t.Errorf("isError %v, text %q, want %q and a remedy", res.IsError, text(res), tt.want)
			}
		})
	}
}
