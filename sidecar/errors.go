package sidecar

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// APIError is an error as the API reports it: a code from the ErrorCode
// enum, the HTTP status that goes with it and a message for whoever reads
// the help-desk's error banner (for auth, permission and config failures,
// the admin's remedy).
type APIError struct {
	Code           ErrorCode
	Status         int
	Message        string
	DataverseCode  string        // Dataverse "0x80040220" or Entra "AADSTS7000215"; "" if none
	RetryAfter     time.Duration // for throttled and unavailable
	UpstreamStatus int           // HTTP status Dataverse or Entra answered, for the log; 0 if none
	Err            error         // cause, for the log only
}

func (e *APIError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }

// Body renders e as the API's error document.
func (e *APIError) Body() ErrorResponse {
	out := ErrorResponse{Error: Error{Code: e.Code, Message: e.Message}}
	if e.DataverseCode != "" {
		c := e.DataverseCode
		out.Error.DataverseCode = &c
	}
	if s := retryAfterSeconds(e.RetryAfter); s > 0 {
		out.Error.RetryAfterSeconds = &s
	}
	return out
}

// retryAfterSeconds rounds up, so a client never retries too early.
func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

func errInvalid(format string, args ...any) *APIError {
	return &APIError{Code: ErrorCodeInvalidInput, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) *APIError {
	return &APIError{Code: ErrorCodeNotFound, Status: http.StatusNotFound, Message: msg}
}

// asAPIError returns err as an *APIError; errors that are not are internal
// failures (500) whose details stay in the log.
func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return &APIError{Code: ErrorCodeInternal, Status: http.StatusInternalServerError,
		Message: "The gateway failed unexpectedly; the log has the details under this request id.", Err: err}
}

// writeError writes the error document with its status (and Retry-After).
func writeError(w http.ResponseWriter, e *APIError) {
	if s := retryAfterSeconds(e.RetryAfter); s > 0 && (e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests) {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dvgate"`)
	}
	writeJSON(w, e.Status, e.Body())
}
