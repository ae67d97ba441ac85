package integration

import (
	"errors"
	"testing"

	"github.com/dvgate/dvgate/gateway"
)

func TestRenameParam(t *testing.T) {
	t.Parallel()
	other := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"renamed", ErrorOf(&gateway.InputError{Field: "ref", Message: "it has a control character"}, ""), "invalid_input: The order is not valid: it has a control character."},
		{"other field", &gateway.InputError{Field: "email", Message: "x"}, "gateway: invalid email: x"},
		{"other error", other, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := RenameParam(tc.err, "ref", "order")
			var e *Error
			if errors.As(got, &e) {
				got = errors.New(string(e.Code) + ": " + e.Message)
			}
			if got.Error() != tc.want {
				t.Errorf("RenameParam = %q, want %q", got, tc.want)
			}
		})
	}
	if RenameParam(nil, "ref", "order") != nil {
		t.Error("RenameParam(nil) is not nil")
	}
}
