package gateway

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned (wrapped or as is) when Dataverse has no matching
// record. Note that Dataverse also hides rows the application user may not
// read, so "not found" can be a permission effect; the answer is cached for
// Config.NotFoundTTL (by default as long as a found answer of its kind) and
// never served stale.
var ErrNotFound = errors.New("gateway: not found")

// InputError reports invalid lookup input. It is returned before any
// upstream call. Its kind is always "invalid_input".
type InputError struct {
	Field   string // "email", "ref", "customerId", ...
	Message string // what is wrong, safe to show to the user
}

func (e *InputError) Error() string {
	return fmt.Sprintf("gateway: invalid %s: %s", e.Field, e.Message)
}

// Kind returns "invalid_input".
func (e *InputError) Kind() string { return "invalid_input" }

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}
