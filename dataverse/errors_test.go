package dataverse

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"1.5", 1500 * time.Millisecond},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRemedyThrottledNamesTheLimit(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{
		"0x80072322": "(number of requests); retry after 7 seconds.",
		"0x80072321": "(combined execution time); retry after 7 seconds.",
		"0x80072326": "(concurrent requests); retry after 7 seconds.",
		"":           "(service protection); retry after 7 seconds.",
	} {
		if got := remedyThrottled(code, 6500*time.Millisecond); !strings.HasSuffix(got, want) {
			t.Errorf("remedyThrottled(%q) = %q, want suffix %q", code, got, want)
		}
	}
}

func TestPrivilegeTable(t *testing.T) {
	t.Parallel()
	msg := "Principal user (Id=d96e9f55-f06d-4e51-80d0-00155db07cb1, type=8, roleCount=1, privilegeCount=12, accessMode=4), is missing prvReadSalesOrder privilege (Id=1a2b) on OTC=1088 for entity 'salesorder'. context.Caller=d96e"
	if got := privilegeTable(msg, "GET contacts"); got != "salesorder" {
		t.Errorf("privilegeTable = %q", got)
	}
	if got := privilegeTable("no entity named", "GET contacts"); got != "contacts" {
		t.Errorf("fallback = %q", got)
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for attempt := 1; attempt <= 12; attempt++ {
		for range 20 {
			d := backoff(attempt)
			full := min(backoffBase<<(attempt-1), backoffCap)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
			seen[d] = true
		}
	}
	if len(seen) < 20 {
		t.Errorf("backoff has no jitter: %d distinct values", len(seen))
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := redactor{secrets: []string{testSecret, ""}}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJodHRwczovL3gifQ.c2lnbmF0dXJl"
	got := r.clean("secret " + testSecret + " token Bearer " + jwt)
	if strings.Contains(got, testSecret) || strings.Contains(got, jwt) {
		t.Errorf("clean left a secret: %q", got)
	}
}

func TestErrorFormatAndKindOf(t *testing.T) {
	t.Parallel()
	cause := errors.New("boom")
	e := &Error{Kind: KindThrottled, Status: 429, Code: "0x80072322", RetryAfter: 7 * time.Second,
		Op: "GET contacts", Message: "Number of requests exceeded the limit", Remedy: remedyThrottled("0x80072322", 7*time.Second), Err: cause}
	want := "dataverse: GET contacts: throttled (HTTP 429, 0x80072322, retry after 7s): Number of requests exceeded the limit -- remedy: Dataverse service protection limit reached (number of requests); retry after 7 seconds."
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	wrapped := fmt.Errorf("lookup: %w", e)
	if KindOf(wrapped) != KindThrottled || !errors.Is(wrapped, cause) {
		t.Errorf("KindOf/Unwrap broken for %v", wrapped)
	}
	if KindOf(cause) != KindUnknown || KindOf(nil) != KindUnknown {
		t.Error("KindOf of a foreign error is not KindUnknown")
	}
	for k := KindUnknown; k <= KindBusy; k++ {
		if strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d has no name", int(k))
		}
	}
}

// asError is errors.As for *Error, keeping tests short.
func asError(err error, e **Error) bool { return errors.As(err, e) }

func TestEscapeQuery(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"$select=name":                            "$select=name",
		"$filter=ordernumber eq 'ORD-1'&$top=1":   "$filter=ordernumber%20eq%20'ORD-1'&$top=1",
		`$filter=contains(name,"x")`:              "$filter=contains(name,%22x%22)",
		"$filter=name eq 'Müller'":                "$filter=name%20eq%20'M%C3%BCller'",
		"$filter=emailaddress1 eq 'a%2Bb@x.test'": "$filter=emailaddress1%20eq%20'a%2Bb@x.test'",
	} {
		if got := escapeQuery(in); got != want {
			t.Errorf("escapeQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
