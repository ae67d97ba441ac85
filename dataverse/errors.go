package dataverse

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind classifies an error by what the caller (or an admin) should do about
// it. The zero value KindUnknown is only reported by KindOf for errors that
// did not come from this package.
type Kind int

// Kinds of failure.
const (
	KindUnknown     Kind = iota
	KindConfig           // the configuration is wrong; nothing was sent, or Dataverse says the URL is wrong
	KindAuth             // Entra refused to sign in, or Dataverse refused the token (401)
	KindPermission       // 403: application user missing or lacking a privilege
	KindNotFound         // 404: the record does not exist
	KindBadRequest       // 400 and other 4xx: the request does not fit this environment
	KindThrottled        // 429: service protection limit; RetryAfter says how long
	KindUnavailable      // 5xx or an unusable response: try again later
	KindNetwork          // DNS, TCP, TLS or connection reset
	KindTimeout          // the caller's deadline passed
	KindCanceled         // the caller canceled the request
	// KindBusy: this client shed the request before sending it, to protect
	// the org (no free concurrency slot within Config.SlotWait, or a
	// caller's request budget is spent); RetryAfter says when to try again.
	// Nothing reached Dataverse.
	KindBusy
)

var kindNames = [...]string{
	KindUnknown:     "unknown",
	KindConfig:      "config",
	KindAuth:        "auth",
	KindPermission:  "permission",
	KindNotFound:    "not_found",
	KindBadRequest:  "bad_request",
	KindThrottled:   "throttled",
	KindUnavailable: "unavailable",
	KindNetwork:     "network",
	KindTimeout:     "timeout",
	KindCanceled:    "canceled",
	KindBusy:        "busy",
}

// String returns a short snake_case name, suitable as a metrics label.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is every error this package returns. Message and Err never contain
// the client secret, the certificate key or an access token.
type Error struct {
	Kind          Kind
	Status        int           // HTTP status from Dataverse or Entra (0 if none)
	Code          string        // Dataverse "0x80040220" or Entra "AADSTS7000215"
	CorrelationID string        // Entra correlation id
	RetryAfter    time.Duration // how long to wait before trying again (throttling)
	Remedy        string        // one sentence for an admin: what to fix
	Message       string        // upstream message, sanitized
	Op            string        // what we were doing ("sign in", "GET salesorders")
	Err           error         // wrapped cause

	// transient marks failures a retry may fix (429, 502-504, resets).
	transient bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dataverse: ")
	kind := e.Kind.String()
	switch {
	case e.Op == "":
		b.WriteString(kind)
	case strings.HasPrefix(e.Op, kind+" ") || e.Op == kind:
		// "config TenantID" says the kind already: not "config TenantID: config".
		b.WriteString(e.Op)
	default:
		b.WriteString(e.Op)
		b.WriteString(": ")
		b.WriteString(kind)
	}
	var details []string
	if e.Status != 0 {
		details = append(details, fmt.Sprintf("HTTP %d", e.Status))
	}
	if e.Code != "" {
		details = append(details, e.Code)
	}
	if e.CorrelationID != "" {
		details = append(details, "correlation id "+e.CorrelationID)
	}
	if e.RetryAfter > 0 {
		details = append(details, "retry after "+e.RetryAfter.String())
	}
	if len(details) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(details, ", "))
		b.WriteString(")")
	}
	switch {
	case e.Message != "":
		b.WriteString(": ")
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Remedy != "" {
		b.WriteString(" -- remedy: ")
		b.WriteString(e.Remedy)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf reports the Kind of the first *Error in err's chain, or KindUnknown.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// Remedies. Tests and the gateway's docs quote them; keep each one sentence.
const (
	RemedySecretInvalid = "The client secret is wrong, has expired, or the Secret ID was copied instead of the Value: generate a new secret."
	RemedySecretExpired = "The client secret has expired: " + remedyRotateSecret
	RemedyAppNotFound   = "Application not found: the tenant ID or client ID is wrong; check both on the app's overview page."
	RemedyTenant        = "The tenant ID is wrong or not a valid tenant."
	RemedyResource      = "The organization URL is not a Dataverse environment in this tenant: check it, including the region segment."
	RemedyCertificate   = "The certificate is not registered on the app registration or its key does not match: upload the certificate's public key under Certificates & secrets."
	RemedyFederated     = "No federated credential on the app registration matches the workload identity token: add one with this service account's issuer and subject."
	RemedyAppDisabled   = "The app registration is disabled: enable it in Enterprise applications."
	RemedySignIn        = "Microsoft Entra rejected the sign-in: check the tenant ID, client ID and credential."
	RemedyEntraDown     = "Microsoft Entra is unavailable or throttling sign-ins: retry later."
	RemedyEntraNetwork  = "Microsoft Entra cannot be reached: check the authority host (AZURE_AUTHORITY_HOST), DNS and any proxy."

	RemedyNoAppUser401 = "The app registration has Dataverse permission but no application user exists in the environment: create one."
	RemedyNoAppUser403 = "No application user exists in the environment for this app: create one and assign a security role."
	RemedyForbidden    = "The application user lacks a privilege for this request: check its security roles."
	RemedyOrgURL       = "The organization URL is wrong, or its region segment is (crm vs crm4): copy it from the Power Platform admin center."
	RemedyNoRecord     = "The record does not exist in this environment (it may have been deleted)."
	RemedyNoResource   = "The table or path does not exist in this environment: regenerate the client from its $metadata."
	RemedyBadRequest   = "Dataverse rejected the query: if a table or column is unknown, regenerate the client from this environment's $metadata."
	RemedyUnavailable  = "Dataverse is temporarily unavailable: retry later, and check service health in the Power Platform admin center if it persists."
	RemedyNetwork      = "Dataverse cannot be reached: check the network, DNS and any proxy."
	RemedyTLS          = "The server's TLS certificate is not trusted: check the URL and any TLS-intercepting proxy."
	RemedyTimeout      = "The request did not finish before its deadline: retry, or allow more time if Dataverse is slow."
	RemedyBusy         = "Too many Dataverse requests are in flight or were sent recently, so this one was not sent: retry after the Retry-After period."
)

// ErrAbandoned is the cause (Error.Err, with KindCanceled) of a request
// that was not sent because everyone waiting for it had left (see
// WithAbandon).
var ErrAbandoned = errors.New("dataverse: request abandoned before it was sent")

// remedyPrivilege names the table the application user cannot read.
func remedyPrivilege(table string) string {
	return "The application user has no security role with read on " + table +
		": assign Salesperson or a custom role with read on account, contact, salesorder and product."
}

// Dataverse service protection error codes (api-limits.md).
const (
	codeLimitRequests    = "0x80072322"
	codeLimitExecution   = "0x80072321"
	codeLimitConcurrency = "0x80072326"
)

// remedyThrottled names the limit that was hit.
func remedyThrottled(code string, after time.Duration) string {
	limit := "service protection"
	switch strings.ToLower(code) {
	case codeLimitRequests:
		limit = "number of requests"
	case codeLimitExecution:
		limit = "combined execution time"
	case codeLimitConcurrency:
		limit = "concurrent requests"
	}
	secs := int64((after + time.Second - 1) / time.Second)
	return fmt.Sprintf("Dataverse service protection limit reached (%s); retry after %d seconds.", limit, secs)
}

// redactor removes known secrets from upstream text before it becomes part
// of an error. Upstream services do not echo secrets in practice; this is a
// second line of defence, because an error string ends up in logs.
type redactor struct{ secrets []string }

func (r redactor) clean(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return jwtPattern.ReplaceAllString(s, "[REDACTED-JWT]")
}

// jwtPattern matches JWT-shaped strings (access tokens, client assertions).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// firstLine trims upstream messages to their first line and a sane length.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	const max = 600
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
