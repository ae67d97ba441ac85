package dataversetest

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// The Web API's JSON has a meaningful member order (annotations precede
// their value, the key comes last, ...) and exact number spellings (money
// with four decimals), which encoding/json's maps and floats cannot express.
// These small types build such documents.

// member is one name/value pair of an object.
type member struct {
	k string
	v any
}

// object is a JSON object with ordered members. Values may be nil, string,
// bool, int, int64, rawNumber, object, []object or []any.
type object []member

// rawNumber is a JSON number written verbatim ("20000.0000").
type rawNumber string

const jsonContentType = "application/json; odata.metadata=minimal"

func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case rawNumber:
		return append(b, v...)
	case object:
		b = append(b, '{')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.k)
			b = append(b, ':')
			b = appendJSON(b, m.v)
		}
		return append(b, '}')
	case []object:
		b = append(b, '[')
		for i, o := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, o)
		}
		return append(b, ']')
	case []any:
		b = append(b, '[')
		for i, o := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, o)
		}
		return append(b, ']')
	default:
		return append(b, "null"...)
	}
}

const hexDigits = "0123456789abcdef"

// appendString writes a JSON string. Like the real service it leaves
// non-ASCII text and <>& unescaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// writeOData writes an OData JSON response with the standard headers.
func writeOData(w http.ResponseWriter, status int, body object) {
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	setODataVersion(h)
	w.WriteHeader(status)
	_, _ = w.Write(appendJSON(make([]byte, 0, 1024), body))
}

// writeError writes a Dataverse error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeOData(w, status, object{{"error", object{{"code", code}, {"message", msg}}}})
}

// setODataVersion sets "OData-Version: 4.0" spelled as the real service
// spells it. Header.Set would canonicalise the name to "Odata-Version";
// HTTP names are case-insensitive, but some clients compare them literally
// (wire facts §11.4).
func setODataVersion(h http.Header) {
	h.Del("OData-Version")
	h["OData-Version"] = []string{"4.0"}
}

// Error codes the simulator uses in more than one place.
const (
	// codeBadRequest is the generic OData query error (an unknown property,
	// a syntax error): wire facts §3.2.
	codeBadRequest = "0x80060888"
	// codeNoSegment is an unknown resource segment (entity set, navigation
	// property): wire facts §3.2, from custom-api.md.
	codeNoSegment = "0x8006088a"
)

// segmentNotFound is the 404 for an unknown path segment.
func segmentNotFound(seg string) error {
	return &apiError{http.StatusNotFound, codeNoSegment, "Resource not found for the segment '" + seg + "'."}
}
