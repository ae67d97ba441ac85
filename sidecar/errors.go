package sidecar

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

// statusOf is the HTTP API's status table: the HTTP status that answers
// each of the domain's error codes (integration.Code). The codes
// themselves are the API's "code" enum (openapi.yaml), checked by a test.
var statusOf = map[integration.Code]int{
	integration.CodeInvalidInput: http.StatusBadRequest,
	integration.CodeNotFound:     http.StatusNotFound,
	// Sign-in, permission and configuration failures are the upstream's
	// answer to the gateway, not the caller's fault: 502, with the remedy.
	integration.CodeAuth:        http.StatusBadGateway,
	integration.CodePermission:  http.StatusBadGateway,
	integration.CodeConfig:      http.StatusBadGateway,
	integration.CodeThrottled:   http.StatusServiceUnavailable,
	integration.CodeBusy:        http.StatusServiceUnavailable,
	integration.CodeUnavailable: http.StatusServiceUnavailable,
	integration.CodeTimeout:     http.StatusGatewayTimeout,
	integration.CodeInternal:    http.StatusInternalServerError,
}

// apiError is an error as the API reports it: the domain's error and the
// HTTP status its code has in statusOf (or the HTTP layer's own, such as
// 401 for a missing API token).
type apiError struct {
	domainError
	Status int
}

// domainError names the embedded field, whose Error method a field
// named Error would hide.
type domainError = integration.Error

// body renders e as the API's error document.
func (e *apiError) body() httpapi.ErrorResponse {
	out := httpapi.ErrorResponse{Error: httpapi.Error{Code: httpapi.ErrorCode(e.Code), Message: e.Message}}
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

func errInvalid(format string, args ...any) *apiError {
	return &apiError{domainError{Code: integration.CodeInvalidInput, Message: fmt.Sprintf(format, args...)}, http.StatusBadRequest}
}

func errNotFound(msg string) *apiError {
	return &apiError{domainError{Code: integration.CodeNotFound, Message: msg}, http.StatusNotFound}
}

// asAPIError returns err as the API reports it: an *apiError as it is, an
// integration error through the status table, anything else as an internal
// failure (500) whose details stay in the log.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	ie := integration.ErrorOf(err, "")
	status, ok := statusOf[ie.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &apiError{*ie, status}
}

// writeError writes the error document with its status (and Retry-After).
func writeError(w http.ResponseWriter, e *apiError) {
	if s := retryAfterSeconds(e.RetryAfter); s > 0 && (e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests) {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dvgate"`)
	}
	if m := e.Meta; m != nil {
		// A "not found" from the cache says so, as found answers do.
		w.Header().Set("X-Cache", m.Outcome.String())
		w.Header().Set("Age", strconv.Itoa(ageSeconds(*m)))
	}
	writeJSON(w, e.Status, e.body())
}
