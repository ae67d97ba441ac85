package gateway

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
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

// normalizeEmail validates an email address and returns it trimmed,
// NFC-composed and lowercased (Dataverse compares strings
// case-insensitively, so the lowercase form is both the cache key and the
// filter literal). Characters that would fold into other ones are refused
// (see compatFree).
func normalizeEmail(s string) (string, error) {
	s, err := checkText("email", s)
	if err != nil {
		return "", err
	}
	if !compatFree(s) {
		// Compatibility characters (the Kelvin sign U+212A, the long s
		// U+017F, ligatures, full-width letters) would be folded by
		// lower-casing, normalization or Dataverse's collation into
		// another address ("\u212Aate@..." into "kate@..."), answering with
		// someone else's record. No real address needs them: reject, do
		// not fold.
		return "", inputErr("email", "contains compatibility characters (such as the Kelvin sign or full-width letters); type the address with ordinary letters")
	}
	// Canonically equivalent spellings (a decomposed "e" + U+0301 from a
	// macOS clipboard) are one address: compose them.
	s = norm.NFC.String(s)
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

// compatFree reports whether no character of s changes under NFKC on its
// own, and no non-ASCII character lower-cases to an ASCII one (U+0130,
// capital I with dot, lower-cases to "i" in Go). Checked per character,
// before composing: NFC alone already maps some compatibility characters
// (the Kelvin sign is a canonical singleton of "K"), while a combining
// accent after its letter is fine.
func compatFree(s string) bool {
	var buf [utf8.UTFMax]byte
	for _, r := range s {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.ToLower(r) < utf8.RuneSelf || !norm.NFKC.IsNormal(utf8.AppendRune(buf[:0], r)) {
			return false
		}
	}
	return norm.NFKC.IsNormalString(norm.NFC.String(s))
}

// orderRef is a normalized order reference: a record id or an order number.
type orderRef struct {
	id     string // lowercase hyphenated GUID, or ""
	number string // lowercased order number when id == ""
}

// normalizeOrderRef accepts a GUID (any case, with or without braces) or an
// order number (matched exactly, case-insensitively, by Dataverse).
func normalizeOrderRef(s, prefix string) (orderRef, error) {
	s, err := checkText("ref", s)
	if err != nil {
		return orderRef{}, err
	}
	s = tidyOrderRef(s)
	if s == "" {
		return orderRef{}, inputErr("ref", "has no order number or id")
	}
	if id, ok := parseGUID(s); ok {
		return orderRef{id: id}, nil
	}
	n := strings.ToLower(s)
	if p := strings.ToLower(prefix); p != "" && !strings.HasPrefix(n, p) {
		n = p + n
	}
	return orderRef{number: n}, nil
}

// orderLabel is what people write before an order number: "Order",
// "order no.", "Sales order #", "Order number:".
var orderLabel = regexp.MustCompile(`(?i)^(?:sales\s+)?order(?:\s*(?:number|num|no\.?|nr\.?|id))?\s*(?:[:#]\s*|\s+)`)

// refPunct is the punctuation around a pasted reference: quotes, brackets,
// and a sentence's end.
const refPunct = "\"'`“”‘’()[]<>.,;:!?*"

// tidyOrderRef takes an order reference as an agent or a customer pastes it
// ("Order #ORD-01001-B2K9P7.", "(ord-01001-b2k9p7)") down to the number or
// id: surrounding white space and punctuation, a leading "#", and a leading
// "Order"/"Order no."/"Order number:" go, until nothing more does (so the
// result is a fixed point). Inner characters are kept: the match in
// Dataverse stays exact.
func tidyOrderRef(s string) string {
	for range 8 { // each round removes something; real input needs 2 or 3
		prev := s
		s = strings.TrimSpace(strings.Trim(s, refPunct))
		s = strings.TrimSpace(orderLabel.ReplaceAllString(s, ""))
		s = strings.TrimSpace(strings.TrimLeft(s, "#"))
		if strings.HasPrefix(s, "{") != strings.HasSuffix(s, "}") {
			s = strings.Trim(s, "{}")
		}
		if s == prev {
			break
		}
	}
	return s
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
