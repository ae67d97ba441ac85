package odataq

import (
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

type order struct{}
type line struct{}

const (
	name     StringCol[order]            = "name"
	email    StringCol[order]            = "emailaddress1"
	total    Col[order, decimal.Decimal] = "totalamount"
	state    Col[order, int32]           = "statecode"
	customer Col[order, uuid.UUID]       = "_customerid_value"
	created  Col[order, time.Time]       = "createdon"
	lines    Nav[order, line]            = "order_details"
	product  StringCol[line]             = "productdescription"
	qty      Col[line, decimal.Decimal]  = "quantity"
)

func TestEncode(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("70BF4D48-34CB-ED11-B596-0022481D68CD")
	tests := []struct {
		name string
		q    Query[order]
		want string
	}{
		{"empty", Query[order]{}, ""},
		{"plus address", Query[order]{}.Select(name, email).Filter(email.Eq("a+b@x.com")),
			"$select=name,emailaddress1&$filter=emailaddress1%20eq%20'a%2Bb%40x.com'"},
		{"quote doubled", Query[order]{}.Filter(name.Eq("O'Bryan & #1 100%")),
			"$filter=name%20eq%20'O''Bryan%20%26%20%231%20100%25'"},
		{"guid unquoted lower case", Query[order]{}.Filter(customer.Eq(id)),
			"$filter=_customerid_value%20eq%2070bf4d48-34cb-ed11-b596-0022481d68cd"},
		{"precedence", Query[order]{}.Filter(Or(state.Eq(0), state.Eq(1)), Not(name.IsNull())),
			"$filter=(statecode%20eq%200%20or%20statecode%20eq%201)%20and%20not%20(name%20eq%20null)"},
		{"functions and order", Query[order]{}.Filter(name.StartsWith("Con"), name.Contains("a;b")).OrderBy(created.Desc(), name.Asc()).Top(5),
			"$filter=startswith(name,'Con')%20and%20contains(name,'a%3Bb')&$orderby=createdon%20desc,name%20asc&$top=5"},
		{"values", Query[order]{}.Filter(total.Ge(decimal.RequireFromString("20000.0000")), created.Lt(time.Date(2023, 4, 7, 21, 59, 1, 0, time.UTC))),
			"$filter=totalamount%20ge%2020000%20and%20createdon%20lt%202023-04-07T21:59:01Z"},
		{"nested expand", Query[order]{}.Select(name).Expand(lines.Expand(Query[line]{}.Select(product, qty).Filter(product.Ne("x y")))),
			"$select=name&$expand=order_details($select=productdescription,quantity%3B$filter=productdescription%20ne%20'x%20y')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.q.Encode()); diff != "" {
				t.Errorf("Encode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrefer(t *testing.T) {
	t.Parallel()
	q := Query[order]{}.Annotations(FormattedValues, LookupLogicalName).PageSize(9000)
	want := `odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname",odata.maxpagesize=5000`
	if got := q.Prefer(); got != want {
		t.Errorf("Prefer = %q, want %q", got, want)
	}
}

func TestQueryIsImmutable(t *testing.T) {
	t.Parallel()
	base := Query[order]{}.Select(name)
	a := base.Select(email)
	b := base.Select(state)
	if a.Encode() != "$select=name,emailaddress1" || b.Encode() != "$select=name,statecode" {
		t.Fatalf("shared backing array: a=%q b=%q", a.Encode(), b.Encode())
	}
}

// token is one OData filter token: kind 's' string literal, 'w' word.
type token struct {
	kind byte
	text string
}

// tokenize splits a decoded OData filter into words and string literals,
// failing on an unterminated literal.
func tokenize(t *testing.T, s string) []token {
	var out []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					t.Fatalf("unterminated literal in %q", s)
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, token{'s', b.String()})
		case c == '(' || c == ')' || c == ',':
			out = append(out, token{'w', string(c)})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" '(),", rune(s[j])) {
				j++
			}
			out = append(out, token{'w', s[i:j]})
			i = j
		}
	}
	return out
}

// FuzzStringLiteral: whatever the string, the query has exactly the options
// we set, and its $filter is exactly one comparison whose value is s.
func FuzzStringLiteral(f *testing.F) {
	for _, s := range []string{"", "a+b@x.com", "O'Bryan", "'", "''", "x' or 1 eq 1 or 'a", "a&$top=1", "#frag", "100%", "a;b=c", "é ü", "\x00", "%27"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		raw := Query[order]{}.Filter(name.Eq(s)).Top(3).Encode()
		vals, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("ParseQuery(%q): %v", raw, err)
		}
		if len(vals) != 2 || len(vals["$filter"]) != 1 || vals.Get("$top") != "3" {
			t.Fatalf("options of %q = %v, want exactly $filter and $top=3", raw, vals)
		}
		got := tokenize(t, vals.Get("$filter"))
		want := []token{{'w', "name"}, {'w', "eq"}, {'s', s}}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(token{})); diff != "" {
			t.Fatalf("filter %q (-want +got):\n%s", vals.Get("$filter"), diff)
		}
		if strings.ContainsAny(raw, "+ #") {
			t.Fatalf("unencoded + space or # in %q", raw)
		}
	})
}

func TestFollowStaysOnHost(t *testing.T) {
	t.Parallel()
	base := "https://org.crm4.dynamics.com/api/data/v9.2/"
	if _, err := Follow(base, "https://org.crm4.dynamics.com/api/data/v9.2/contacts?$skiptoken=x", ""); err != nil {
		t.Errorf("same host: %v", err)
	}
	if _, err := Follow(base, "https://evil.example/api/data/v9.2/contacts", ""); err == nil {
		t.Error("a nextLink to another host was followed")
	}
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	type choice int32
	tests := []struct {
		v    any
		want string
	}{
		{choice(100000001), "100000001"},
		{true, "true"},
		{nil, "null"},
		{1e21, "1E+21"},
		{decimal.RequireFromString("12345678901234567.8901"), "12345678901234567.8901"},
	}
	for _, tt := range tests {
		if got, ok := Literal(tt.v); !ok || got != tt.want {
			t.Errorf("Literal(%v) = %q, %v; want %q", tt.v, got, ok, tt.want)
		}
	}
	if _, ok := Literal(struct{}{}); ok {
		t.Error("Literal accepted a struct")
	}
	if err := (Query[order]{}).Filter(Col[order, struct{}]("x").Eq(struct{}{})).Err(); err == nil {
		t.Error("a filter with an unwritable value has no error")
	}
}
