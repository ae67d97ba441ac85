package gateway

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// maxTextLen is the MaxLength of the columns we match on: emailaddress1-3
// and ordernumber are all String(100). Longer input cannot match, so it is
// rejected before asking Dataverse.
const maxTextLen = 100

// checkText trims s and rejects empty, overlong and control-character input.
func checkText(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", inputErr(field, "is empty")
	case !utf8.ValidString(s):
		return "", inputErr(field, "is not valid UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", inputErr(field, "contains control characters")
	}
	if n := utf8.RuneCountInString(s); n > maxTextLen {
		return "", inputErr(field, "is %d characters long; Dataverse stores at most %d", n, maxTextLen)
	}
	return s, nil
}

// normalizeEmail validates an email address and returns it trimmed and
// lowercased (Dataverse compares strings case-insensitively, so the
// lowercase form is both the cache key and the filter literal).
func normalizeEmail(s string) (string, error) {
	s, err := checkText("email", s)
	if err != nil {
		return "", err
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		// a.Address != s rejects "Name <a@b>" and "a@b (comment)": we want
		// the bare address only.
		return "", inputErr("email", "is not an email address (want name@domain)")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", inputErr("email", "is not an email address (want name@domain)")
	}
	return strings.ToLower(s), nil
}

// orderRef is a normalized order reference: a record id or an order number.
type orderRef struct {
	id     string // lowercase hyphenated GUID, or ""
	number string // lowercased order number when id == ""
}

// normalizeOrderRef accepts a GUID (any case, with or without braces) or an
// order number (matched exactly, case-insensitively, by Dataverse).
func normalizeOrderRef(s string) (orderRef, error) {
	s, err := checkText("ref", s)
	if err != nil {
		return orderRef{}, err
	}
	if id, ok := parseGUID(s); ok {
		return orderRef{id: id}, nil
	}
	return orderRef{number: strings.ToLower(s)}, nil
}

// parseGUID accepts only the two forms people paste from Dataverse: the
// hyphenated 36-character form and the same in braces. (uuid.Parse would
// also take 32 bare hex digits and urn:uuid:, which could be order numbers.)
func parseGUID(s string) (string, bool) {
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// normalizeCustomer validates a customer type and id for RecentOrders.
func normalizeCustomer(typ, id string) (string, string, error) {
	t := strings.ToLower(strings.TrimSpace(typ))
	if t != "contact" && t != "account" {
		return "", "", inputErr("customerType", "must be \"contact\" or \"account\"")
	}
	g, ok := parseGUID(strings.TrimSpace(id))
	if !ok {
		return "", "", inputErr("customerId", "is not a GUID")
	}
	return t, g, nil
}

// MaxRecentOrders is the largest limit RecentOrders accepts.
const MaxRecentOrders = 50

func checkLimit(n int) error {
	if n < 1 || n > MaxRecentOrders {
		return inputErr("limit", "must be between 1 and %d", MaxRecentOrders)
	}
	return nil
}

// canonical returns s trimmed when it is printable ASCII of at most
// maxTextLen bytes. Such input normalizes by lowering its letters, which
// hitKey does while building the cache key, so it can be looked up in the
// cache before (and, on a hit, instead of) full validation: only validated
// input is ever stored, so a hit proves the input valid, and Dataverse
// compares case-insensitively, so the answer is the same. Anything else
// takes the full path.
func canonical(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxTextLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return "", false
		}
	}
	return s, true
}

// hitKey returns prefix + the ASCII-lowercased s with one allocation.
func hitKey(prefix, s string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(s))
	b.WriteString(prefix)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isGUID reports whether canonical input is a GUID in the form
// normalizeOrderRef takes as an id (36 characters, hyphenated), without
// allocating.
func isGUID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }

// NormalizeEmail validates an email address as the customer lookups do and
// returns it trimmed and lowercased, for front ends that compare it with
// Order.CustomerEmails.
func NormalizeEmail(s string) (string, error) { return normalizeEmail(s) }
