package integration

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/gateway"
)

// scopeBackend serves two orders, one of a contact and one of an account,
// and one contact of that account; it counts customer lookups.
type scopeBackend struct {
	broken
	customerCalls int
}

func (b *scopeBackend) Order(_ context.Context, ref string) (*gateway.Order, gateway.Meta, error) {
	switch ref {
	case "contact-order":
		return &gateway.Order{Number: ref, Customer: &gateway.Ref{Type: "contact", ID: "c1"},
			CustomerEmails: []string{"ann@example.com"}, CustomerAccount: &gateway.Ref{Type: "account", ID: "a1"}}, gateway.Meta{Age: time.Second}, nil
	case "account-order":
		return &gateway.Order{Number: ref, Customer: &gateway.Ref{Type: "account", ID: "a1"},
			CustomerEmails: []string{"info@acme.example"}}, gateway.Meta{Age: time.Second}, nil
	}
	return nil, gateway.Meta{}, &Error{Code: CodeNotFound, Message: notFoundOrder}
}

func (b *scopeBackend) Customer(_ context.Context, email, mode string) (*gateway.Customer, gateway.Meta, error) {
	b.customerCalls++
	if mode != "contacts" {
		return nil, gateway.Meta{}, &Error{Code: CodeInternal, Message: "mode " + mode}
	}
	switch email {
	case "ann@example.com":
		return &gateway.Customer{Type: "contact", ID: "c1", Account: &gateway.Ref{Type: "account", ID: "a1"}},
			gateway.Meta{Outcome: gateway.Stale, Age: time.Minute}, nil
	case "bob@example.com":
		return &gateway.Customer{Type: "contact", ID: "c2", Account: &gateway.Ref{Type: "account", ID: "a2"}}, gateway.Meta{}, nil
	case "down@example.com":
		return nil, gateway.Meta{}, &Error{Code: CodeUnavailable, Message: "down"}
	}
	return nil, gateway.Meta{}, &Error{Code: CodeNotFound, Message: "No contact or account has this email address."}
}

func TestOrderFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ref, email string
		wantCode         Code // "" = found
		wantMeta         gateway.Meta
		customerCalls    int
	}{
		{"no email: unscoped", "account-order", "", "", gateway.Meta{Age: time.Second}, 0},
		{"the contact's own order", "contact-order", "Ann@Example.com ", "", gateway.Meta{Age: time.Second}, 0},
		{"another's contact order", "contact-order", "bob@example.com", CodeNotFound, gateway.Meta{}, 0},
		{"the parent account's email on a contact's order", "contact-order", "info@acme.example", CodeNotFound, gateway.Meta{}, 0},
		{"the account's own order", "account-order", "info@acme.example", "", gateway.Meta{Age: time.Second}, 0},
		{"a contact of the ordering account", "account-order", "ann@example.com", "", gateway.Meta{Outcome: gateway.Stale, Age: time.Minute}, 1},
		{"a contact of another account", "account-order", "bob@example.com", CodeNotFound, gateway.Meta{}, 1},
		{"an unknown email", "account-order", "nobody@example.com", CodeNotFound, gateway.Meta{}, 1},
		{"the contact lookup fails", "account-order", "down@example.com", CodeUnavailable, gateway.Meta{}, 1},
		{"no such order", "nope", "ann@example.com", CodeNotFound, gateway.Meta{}, 0},
		{"not an email", "contact-order", "ann", CodeInvalidInput, gateway.Meta{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &scopeBackend{}
			o, meta, err := OrderFor(context.Background(), b, tt.ref, tt.email)
			var code Code
			if err != nil {
				code = ErrorOf(err, "").Code
			}
			if code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if code == CodeNotFound && ErrorOf(err, "").Message != notFoundOrder {
				t.Errorf("message %q: a foreign order must read like a missing one", ErrorOf(err, "").Message)
			}
			if code == "" && o.Number != tt.ref {
				t.Errorf("order %q", o.Number)
			}
			if diff := cmp.Diff(tt.wantMeta, meta); diff != "" {
				t.Errorf("meta (-want +got):\n%s", diff)
			}
			if b.customerCalls != tt.customerCalls {
				t.Errorf("%d customer lookups, want %d", b.customerCalls, tt.customerCalls)
			}
		})
	}
}
