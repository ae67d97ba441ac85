package dataverse

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzHTTPError feeds arbitrary error answers (status, Retry-After, body)
// to the classification: never a panic, always a kind and a remedy, a
// bounded non-negative Retry-After, and a one-line message without the
// client secret.
func FuzzHTTPError(f *testing.F) {
	const secret = "Fuzz~Secret.value-0123456789"
	for _, s := range []string{``, `{}`, `{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit"}}`,
		`{"error":{"code":"0x80040220","message":"Principal user is missing prvReadSalesOrder privilege for entity 'salesorder'.\nmore"}}`,
		`{"error":{"code":1,"message":["x"]}}`, `{"error":null}`, `<html>502 Bad Gateway</html>`, `{"error":{"message":"` + secret + `"}}`,
		"\xff\xfe"} {
		f.Add(429, "300", []byte(s))
		f.Add(503, "Wed, 21 Oct 2026 07:28:00 GMT", []byte(s))
		f.Add(403, "", []byte(s))
	}
	c := &Conn{clock: realClock{}, red: redactor{secrets: []string{secret}}}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 400 || status > 599 {
			status = 400 + (status%200+200)%200
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}}
		e := c.httpError("GET salesorders", resp, body)
		if e.Kind == KindUnknown || e.Remedy == "" || e.Status != status {
			t.Fatalf("httpError(%d, %q) = %+v", status, body, e)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour+time.Minute {
			t.Fatalf("Retry-After %q gave %v", retryAfter, e.RetryAfter)
		}
		if strings.Contains(e.Message, "\n") || strings.Contains(e.Error(), secret) {
			t.Fatalf("message %q", e.Message)
		}
	})
}
