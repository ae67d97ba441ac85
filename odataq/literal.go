package odataq

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/shopspring/decimal"
)

// Literal returns the OData URL literal of v, not yet percent-encoded:
// strings quoted with ' doubled, GUIDs unquoted and lower case, date-times in
// UTC RFC 3339, dates as YYYY-MM-DD, decimals exact, booleans true/false,
// integer kinds (also named ones such as option-set types) in decimal, and
// nil as null. It reports false for a type it cannot write.
func Literal(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "null", true
	case string:
		return quote(x), true
	case uuid.UUID:
		return x.String(), true
	case *uuid.UUID:
		if x == nil {
			return "null", true
		}
		return x.String(), true
	case decimal.Decimal:
		return x.String(), true
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), true
	case openapi_types.Date:
		return x.Format(time.DateOnly), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return formatFloat(x, 64), true
	case float32:
		return formatFloat(float64(x), 32), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.String:
		return quote(rv.String()), true
	}
	return "", false
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "INF"
	case math.IsInf(f, -1):
		return "-INF"
	}
	return strconv.FormatFloat(f, 'G', -1, bits)
}

// quote writes s as an OData string literal: in single quotes, each ' doubled.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// safe reports whether URL-encoding leaves byte c alone: RFC 3986 unreserved
// characters, the quote that delimits literals, and the structural , ( ) / :
// that Microsoft's examples write literally. Everything else, notably + & # %
// ; = ? @ space and non-ASCII bytes, is percent-encoded.
func safe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '\'', ',', '(', ')', '/', ':', '*':
		return true
	}
	return false
}

// Escape percent-encodes s for use as the value of a query option.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
