package gateway

import (
	"errors"
	"github.com/dvgate/dvgate/generated"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 95) + "@b.com" // 101 characters
	tests := []struct {
		in, want string
		errPart  string
	}{
		{in: "alex.wu@example.com", want: "alex.wu@example.com"},
		{in: "  Alex.Wu@Example.COM \t", want: "alex.wu@example.com"},
		{in: "o'brien+orders@example.com", want: "o'brien+orders@example.com"},
		{in: strings.Repeat("a", 94) + "@b.com", want: strings.Repeat("a", 94) + "@b.com"},
		{in: "", errPart: "is empty"},
		{in: "   ", errPart: "is empty"},
		{in: long, errPart: "101 characters"},
		{in: "alex\x00@example.com", errPart: "control characters"},
		{in: "alex@exa\nmple.com", errPart: "control characters"},
		{in: "alex\u0085@example.com", errPart: "control characters"},
		{in: "\xff@example.com", errPart: "UTF-8"},
		{in: "alex.example.com", errPart: "not an email"},
		{in: "alex@", errPart: "not an email"},
		{in: "@example.com", errPart: "not an email"},
		{in: "Alex Wu <alex.wu@example.com>", errPart: "not an email"},
		{in: "alex wu@example.com", errPart: "not an email"},
		{in: "alex@example.com (work)", errPart: "not an email"},
		{in: "a@b@c.com", errPart: "not an email"},
		// Compatibility characters are rejected, not folded into another
		// customer's address: the Kelvin sign lowercases to "k".
		{in: "\u212Aate@example.com", errPart: "compatibility characters"},
		{in: "\u212Aate@example.com ", errPart: "compatibility characters"},
		{in: "ro\u017Fe@example.com", errPart: "compatibility characters"},   // long s
		{in: "\uFF41lex@example.com", errPart: "compatibility characters"},   // full-width a
		{in: "\uFB01nance@example.com", errPart: "compatibility characters"}, // fi ligature
		{in: "alex@exa\u2160ple.com", errPart: "compatibility characters"},
		{in: "\u0130van@example.com", errPart: "compatibility characters"}, // lower-cases to "i"   // Roman numeral one
		{in: "jos\u00e9@example.com", want: "jos\u00e9@example.com"},
		{in: "jose\u0301@example.com", want: "jos\u00e9@example.com"}, // decomposed: composed, not refused         // composed é is NFKC
		{in: "J\u00d6RG@example.com", want: "j\u00f6rg@example.com"},  // Ö lowercases to ö
	}
	for _, tc := range tests {
		got, err := normalizeEmail(tc.in)
		if tc.errPart != "" {
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(ie.Error(), tc.errPart) || ie.Field != "email" {
				t.Errorf("normalizeEmail(%q) err = %v, want InputError containing %q", tc.in, err, tc.errPart)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeOrderRef(t *testing.T) {
	t.Parallel()
	const id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	tests := []struct {
		in, prefix string
		want       orderRef
		errPart    string
	}{
		{in: id, want: orderRef{id: id}},
		{in: strings.ToUpper(id), want: orderRef{id: id}},
		{in: "{" + strings.ToUpper(id) + "}", want: orderRef{id: id}},
		{in: " ORD-01001-B2K9P7 ", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", want: orderRef{number: "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"}},
		{in: "{" + id, want: orderRef{id: id}},
		// As agents and customers paste them.
		{in: "#ORD-01001-B2K9P7", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "Order ORD-01001-B2K9P7.", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "order no. ord-01001-b2k9p7", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "Sales order #: (ORD-01001-B2K9P7)", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "\u201cORD-01001-B2K9P7\u201d,", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "Order number: " + id, want: orderRef{id: id}},
		{in: "order-5", want: orderRef{number: "order-5"}},
		{in: "01001-B2K9P7", prefix: "ORD-", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "ord-01001-B2K9P7", prefix: "ORD-", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: "Order #01001-B2K9P7", prefix: "ORD-", want: orderRef{number: "ord-01001-b2k9p7"}},
		{in: id, prefix: "ORD-", want: orderRef{id: id}},
		{in: "Order #", errPart: "has no order number"},
		{in: "O'Hara-1", want: orderRef{number: "o'hara-1"}},
		{in: "", errPart: "is empty"},
		{in: strings.Repeat("9", 101), errPart: "101 characters"},
		{in: "ORD\t1", errPart: "control characters"},
	}
	for _, tc := range tests {
		got, err := normalizeOrderRef(tc.in, tc.prefix)
		if tc.errPart != "" {
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("normalizeOrderRef(%q) err = %v, want InputError containing %q", tc.in, err, tc.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("normalizeOrderRef(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(orderRef{})); diff != "" {
			t.Errorf("normalizeOrderRef(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestNormalizeCustomerAndLimit(t *testing.T) {
	t.Parallel()
	const id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	if typ, g, err := normalizeCustomer(" Account ", "{"+strings.ToUpper(id)+"}"); err != nil || typ != "account" || g != id {
		t.Errorf("normalizeCustomer = %q, %q, %v", typ, g, err)
	}
	for _, bad := range [][2]string{{"lead", id}, {"contact", "42"}, {"contact", ""}} {
		if _, _, err := normalizeCustomer(bad[0], bad[1]); err == nil {
			t.Errorf("normalizeCustomer(%q, %q) accepted", bad[0], bad[1])
		}
	}
	for n, ok := range map[int]bool{0: false, 1: true, 50: true, 51: false, -3: false} {
		if err := checkLimit(n); (err == nil) != ok {
			t.Errorf("checkLimit(%d) = %v", n, err)
		}
	}
}

// The gateway's queries, built by odataq, keep any input inside its
// literal: the $filter decodes back to exactly the comparison we meant.
func TestQueryEncodingRoundTrips(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{contactQuery("a&b#c%d;e+f g", nil).Encode(), "emailaddress1 eq 'a&b#c%d;e+f g' or emailaddress2 eq 'a&b#c%d;e+f g' or emailaddress3 eq 'a&b#c%d;e+f g'"},
		{orderQuery(nil).Filter(generated.SalesOrderColumns.OrderNumber.Eq("O'Hara=1/2?")).Encode(), "ordernumber eq 'O''Hara=1/2?'"},
		{orderQuery(nil).Filter(generated.SalesOrderColumns.OrderNumber.Eq("é ü")).Encode(), "ordernumber eq 'é ü'"},
	} {
		got, err := url.ParseQuery(tc.raw)
		if err != nil || got.Get("$filter") != tc.want {
			t.Errorf("%q decodes to $filter %q, %v; want %q", tc.raw, got.Get("$filter"), err, tc.want)
		}
		for _, opt := range strings.Split(tc.raw, "&") {
			if strings.HasPrefix(opt, "$filter=") && strings.ContainsAny(strings.TrimPrefix(opt, "$filter="), "#+; ") {
				t.Errorf("%q leaves a separator unescaped", opt)
			}
		}
	}
}
