package gateway

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fuzzInputs are seeds shared by the input fuzzers: hostile, long, quoted,
// encoded and Unicode input.
var fuzzInputs = []string{"", " ", "alex.wu@example.com", " ALEX.WU@Example.COM ", "o'brien@example.com",
	"x' or emailaddress1 ne 'y", `"x' or 1 eq 1"@example.com`, "a+b@x.co", "a%27b@x.co", "a#b@x.co", "a&b@x.co",
	"a\x00b@x.co", "zoë@exämple.com", "İ@x.com", "K@x.com", "{4FAF1F34-F06D-4E51-80D0-00155DB07CB1}",
	"4faf1f34-f06d-4e51-80d0-00155db07cb1", "ORD-01001-B2K9P7", "a/b", "..", "%2e%2e", strings.Repeat("a", 101),
	"\u00a0a@b.c\u00a0", "a@b.c\u2028", "\xff@x.com"}

func validOutput(t *testing.T, s string) {
	t.Helper()
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) || utf8.RuneCountInString(s) > maxTextLen ||
		strings.TrimSpace(s) != s {
		t.Fatalf("normalized output %q is not valid", s)
	}
}

// FuzzNormalizeEmail: never panics; a normalized email is valid, and
// normalizing it again changes nothing. For input the cache hit path
// accepts before validation (canonical), its key is the normalized form
// exactly when the input is valid: an invalid input can never hit an entry
// stored for a valid one.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range fuzzInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeEmail(s)
		if err == nil {
			validOutput(t, n)
			if again, err := normalizeEmail(n); err != nil || again != n {
				t.Fatalf("normalizeEmail(%q) = %q, but again: %q, %v", s, n, again, err)
			}
		}
		if c, ok := canonical(s); ok {
			key := hitKey("", c)
			if err == nil && key != n {
				t.Fatalf("hit key %q for %q differs from its normalized form %q", key, s, n)
			}
			if _, kerr := normalizeEmail(key); err != nil && kerr == nil {
				t.Fatalf("invalid %q (%v) has the hit key %q of a valid email", s, err, key)
			}
		}
	})
}

// FuzzNormalizeOrderRef: never panics; the normalized reference is a
// lower-case GUID or a valid order number, and is a fixed point.
func FuzzNormalizeOrderRef(f *testing.F) {
	for _, s := range fuzzInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := normalizeOrderRef(s, "")
		if err != nil {
			return
		}
		form := r.number
		if r.id != "" {
			if r.number != "" || !isGUID(r.id) || strings.ToLower(r.id) != r.id {
				t.Fatalf("normalizeOrderRef(%q) = %+v", s, r)
			}
			form = r.id
		}
		validOutput(t, form)
		if again, err := normalizeOrderRef(form, ""); err != nil || again != r {
			t.Fatalf("normalizeOrderRef(%q) = %+v, but again: %+v, %v", s, r, again, err)
		}
	})
}
