package integration

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

// Code is what went wrong, as every front end reports it. The codes are the
// domain's: each front end maps them to its own statuses (the HTTP API to
// 400/404/502/503/504, MCP to tool errors).
type Code string

// The codes.
const (
	CodeInvalidInput Code = "invalid_input" // the caller's input is not valid; nothing was sent
	CodeNotFound     Code = "not_found"     // no such record, or no such integration
	CodeAuth         Code = "auth"          // sign-in failed: the app registration's credentials
	CodePermission   Code = "permission"    // signed in, but the application user may not read
	CodeConfig       Code = "config"        // the integration's configuration is wrong
	CodeThrottled    Code = "throttled"     // Dataverse service protection; RetryAfter says when
	CodeBusy         Code = "busy"          // dvgate's own request budget is spent; RetryAfter says when
	CodeUnavailable  Code = "unavailable"   // Dataverse or the network failed; try again shortly
	CodeTimeout      Code = "timeout"       // Dataverse did not answer in time
	CodeInternal     Code = "internal"      // a bug; the log has the details
)

// Codes lists every Code, for front ends' status tables and their tests.
var Codes = []Code{CodeInvalidInput, CodeNotFound, CodeAuth, CodePermission, CodeConfig, CodeThrottled,
	CodeBusy, CodeUnavailable, CodeTimeout, CodeInternal}

// Error is every error a Backend returns: a Code, a message for whoever
// reads it (for auth, permission and config failures, the admin's remedy)
// and the upstream details.
type Error struct {
	Code           Code
	Message        string
	DataverseCode  string        // Dataverse "0x80040220" or Entra "AADSTS7000215"; "" if none
	RetryAfter     time.Duration // for throttled, busy and unavailable
	UpstreamStatus int           // HTTP status Dataverse or Entra answered, for the log; 0 if none
	// Meta is how a "not found" answer was served: from the cache (Hit,
	// with its Age) or from Dataverse just now (Miss), so that front ends
	// can say so (X-Cache, Age) as they do for found answers. nil for
	// every other error.
	Meta *gateway.Meta
	Err  error // cause, for the log only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorOf returns err as an *Error: itself if it is one, else the
// translation of a gateway or dataverse error (notFound is the message for
// gateway.ErrNotFound). Errors it does not know are internal failures whose
// details stay in Err.
func ErrorOf(err error, notFound string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = &Error{Code: codeOf(err), Err: err}
	var (
		de *dataverse.Error
		ie *gateway.InputError
	)
	switch {
	case errors.As(err, &ie):
		e.Message = ie.Message
		if ie.Field != "" {
			e.Message = fmt.Sprintf("The %s is not valid: %s.", ie.Field, ie.Message)
		}
	case errors.Is(err, gateway.ErrNotFound):
		e.Message = notFound
	case errors.As(err, &de):
		e.Message, e.DataverseCode, e.RetryAfter, e.UpstreamStatus = de.Remedy, de.Code, de.RetryAfter, de.Status
	}
	if e.RetryAfter == 0 {
		e.RetryAfter = gateway.RetryAfter(err)
	}
	if e.Message == "" {
		e.Message = defaultMessages[e.Code]
	}
	return e
}

func codeOf(err error) Code {
	code := gateway.ErrorCode(err)
	for _, c := range Codes {
		if string(c) == code {
			return c
		}
	}
	return CodeInternal
}

var defaultMessages = map[Code]string{
	CodeInvalidInput: "The request is not valid.",
	CodeNotFound:     "Not found.",
	CodeAuth:         "The gateway could not sign in to Dataverse; check the app registration's credentials.",
	CodePermission:   "Dataverse refused access; check the application user and its security roles.",
	CodeConfig:       "The integration's configuration is wrong; check the Dataverse URL and app registration.",
	CodeThrottled:    "Dataverse is throttling requests; try again after the indicated time.",
	CodeBusy:         "The gateway's request budget for this Dataverse org is spent; try again after the indicated time.",
	CodeUnavailable:  "Dataverse is unavailable; try again shortly.",
	CodeTimeout:      "Dataverse did not answer in time; try again.",
	CodeInternal:     "The gateway failed unexpectedly; the log has the details under this request id.",
}

// RenameParam makes an input error name the parameter the caller sent (to)
// rather than the gateway's name for it (from): a front end's "order"
// parameter is the gateway's order "ref". Other errors are returned as
// they are.
func RenameParam(err error, from, to string) error {
	var ie *gateway.InputError
	if errors.As(err, &ie) && ie.Field == from {
		return ErrorOf(&gateway.InputError{Field: to, Message: ie.Message}, "")
	}
	return err
}

// lookupError is ErrorOf for a lookup's error, carrying the lookup's Meta
// when the answer is "not found" (a cached one says so).
func lookupError(err error, notFound string, m gateway.Meta) *Error {
	e := ErrorOf(err, notFound)
	if errors.Is(err, gateway.ErrNotFound) {
		e.Meta = &m
	}
	return e
}

// remedyOf is what an admin reads about an integration that cannot start:
// the problem and, when dataverse knows one, its remedy, said once.
func remedyOf(err error) string {
	var de *dataverse.Error
	if errors.As(err, &de) && de.Remedy != "" {
		if de.Message == "" {
			return de.Remedy
		}
		return sentence(de.Message) + " " + de.Remedy
	}
	return sentence(err.Error())
}

// sentence capitalizes s and ends it with a period.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
