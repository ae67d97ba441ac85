package codegen

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// commonInitialisms are the words that Go spells in one case (as
// protoc-gen-go and golint do): a word "Id" of a SchemaName becomes "ID".
var commonInitialisms = map[string]string{
	"Api": "API", "Guid": "GUID", "Html": "HTML", "Http": "HTTP", "Https": "HTTPS", "Id": "ID", "Ip": "IP",
	"Json": "JSON", "Sku": "SKU", "Sql": "SQL", "Uri": "URI", "Url": "URL", "Utc": "UTC", "Uuid": "UUID", "Xml": "XML",
}

// initialisms upper-cases the words of id that are common initialisms. A
// word is an upper-case letter and the lower-case letters after it
// ("AccountIdValue" has the words Account, Id, Value; "Idle" is one word).
func initialisms(id string) string {
	r := []rune(id)
	for i := 0; i < len(r); {
		if !unicode.IsUpper(r[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(r) && unicode.IsLower(r[j]) {
			j++
		}
		if up, ok := commonInitialisms[string(r[i:j])]; ok {
			copy(r[i:j], []rune(up))
		}
		i = j
	}
	return string(r)
}

// goIdent turns a SchemaName ("EMailAddress1", "cr5b2_PreferredChannel") or
// a label ("In Progress", "2-Day") into an exported Go identifier: letters
// and digits are kept, a dropped character capitalizes the next letter, a
// leading digit gets an "X" prefix ("X2Day"). Casing inside words is kept,
// except that common initialisms are upper-cased ("AccountId" -> "AccountID").
// It returns "" when s has no letter or digit.
func goIdent(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	id := initialisms(b.String())
	if id == "" {
		return ""
	}
	if r, _ := utf8.DecodeRuneInString(id); unicode.IsDigit(r) {
		return "X" + id
	}
	if r, _ := utf8.DecodeRuneInString(id); !unicode.IsUpper(r) {
		// A letter without an upper case (e.g. CJK) cannot start an
		// exported name.
		return "X" + id
	}
	return id
}

// camel is the fallback when EntityDefinitions give no SchemaName: each
// part between underscores gets an upper-case first letter
// ("emailaddress1" -> "Emailaddress1", "order_details" -> "OrderDetails").
func camel(logical string) string {
	id := goIdent(logical)
	if id == "" {
		return "X"
	}
	return id
}

// namespace hands out unique identifiers in one scope (a struct's fields, or
// the package). Whoever claims a name first keeps it; later claims get a
// numeric suffix, so resolution depends only on the claim order, which the
// callers fix (sorted by logical name).
type namespace struct{ used map[string]bool }

func newNamespace(reserved ...string) *namespace {
	ns := &namespace{used: make(map[string]bool)}
	for _, r := range reserved {
		ns.used[r] = true
	}
	return ns
}

func (ns *namespace) taken(name string) bool { return ns.used[name] }

// claim returns name, or name2, name3, ... whichever is free, and marks it used.
func (ns *namespace) claim(name string) string {
	if !ns.used[name] {
		ns.used[name] = true
		return name
	}
	for i := 2; ; i++ {
		n := name + strconv.Itoa(i)
		if !ns.used[n] {
			ns.used[n] = true
			return n
		}
	}
}
