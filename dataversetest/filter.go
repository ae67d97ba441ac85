package dataversetest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Expr is a parsed $filter expression: Compare, Func, And, Or or Not.
// Request.ParsedFilter holds one so tests can assert on what a client sent.
type Expr interface{ isExpr() }

// Compare is "Column Op Value". Op is eq, ne, gt, ge, lt or le. Value is a
// string (string literal), Guid, Number, bool, time.Time or nil (null).
// Column may be a path through a single-valued navigation property
// ("primarycontactid/fullname").
type Compare struct {
	Column string
	Op     string
	Value  any
}

// Func is a string function call: contains, startswith or endswith.
type Func struct {
	Name   string
	Column string
	Value  string
}

// And, Or and Not are the logical operators.
type (
	And struct{ Left, Right Expr }
	Or  struct{ Left, Right Expr }
	Not struct{ X Expr }
)

// Guid is an unquoted GUID literal, lower-cased.
type Guid string

// Number is a numeric literal as written ("42", "10.5").
type Number string

func (Compare) isExpr() {}
func (Func) isExpr()    {}
func (And) isExpr()     {}
func (Or) isExpr()      {}
func (Not) isExpr()     {}

// ParseFilter parses an OData $filter in the subset Dataverse clients use.
// Errors carry the Dataverse wording.
func ParseFilter(s string) (Expr, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{src: s, toks: toks}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.syntaxError(p.toks[p.i].pos)
	}
	return e, nil
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tGuid
	tDateTime
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func filterError(msg string) error {
	return &apiError{status: http.StatusBadRequest, code: "0x80060888", message: msg}
}

func lexFilter(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, filterError(fmt.Sprintf("There is an unterminated literal at position %d in '%s'.", len(s), s))
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{tString, b.String(), i})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n(),'", rune(s[j])) {
				j++
			}
			word := s[i:j]
			kind := tIdent
			switch {
			case isGUID(word):
				kind = tGuid
			case len(word) > 0 && (word[0] == '-' || word[0] >= '0' && word[0] <= '9'):
				if _, err := time.Parse(time.RFC3339, word); err == nil {
					kind = tDateTime
				} else if _, err := decimal.NewFromString(strings.TrimRight(word, "mMdDfFlL")); err == nil {
					kind = tNumber
				} else {
					return nil, filterError(fmt.Sprintf("Syntax error at position %d in '%s'.", j, s))
				}
			}
			toks = append(toks, token{kind, word, i})
			i = j
		}
	}
	return toks, nil
}

type filterParser struct {
	src  string
	toks []token
	i    int
}

func (p *filterParser) syntaxError(pos int) error {
	return filterError(fmt.Sprintf("Syntax error at position %d in '%s'.", pos, p.src))
}

func (p *filterParser) peekWord(w string) bool {
	return p.i < len(p.toks) && p.toks[p.i].kind == tIdent && p.toks[p.i].text == w
}

func (p *filterParser) parseOr() (Expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peekWord("or") {
		p.i++
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = Or{l, r}
	}
	return l, nil
}

func (p *filterParser) parseAnd() (Expr, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peekWord("and") {
		p.i++
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = And{l, r}
	}
	return l, nil
}

func (p *filterParser) parseUnary() (Expr, error) {
	if p.peekWord("not") {
		p.i++
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	}
	return p.parsePrimary()
}

func (p *filterParser) end() int { return len(p.src) }

func (p *filterParser) parsePrimary() (Expr, error) {
	if p.i >= len(p.toks) {
		return nil, p.syntaxError(p.end())
	}
	t := p.toks[p.i]
	if t.kind == tLParen {
		p.i++
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.toks) || p.toks[p.i].kind != tRParen {
			return nil, p.syntaxError(p.posOrEnd())
		}
		p.i++
		return e, nil
	}
	if t.kind != tIdent {
		return nil, p.syntaxError(t.pos)
	}
	p.i++
	switch t.text {
	case "contains", "startswith", "endswith":
		if p.i+4 >= len(p.toks) {
			return nil, p.syntaxError(p.end())
		}
		if p.toks[p.i].kind != tLParen || p.toks[p.i+1].kind != tIdent || p.toks[p.i+2].kind != tComma ||
			p.toks[p.i+3].kind != tString || p.toks[p.i+4].kind != tRParen {
			return nil, p.syntaxError(p.toks[p.i].pos)
		}
		f := Func{Name: t.text, Column: p.toks[p.i+1].text, Value: p.toks[p.i+3].text}
		p.i += 5
		return f, nil
	}
	if p.i >= len(p.toks) || p.toks[p.i].kind != tIdent {
		return nil, p.syntaxError(p.posOrEnd())
	}
	op := p.toks[p.i].text
	switch op {
	case "eq", "ne", "gt", "ge", "lt", "le":
	default:
		return nil, p.syntaxError(p.toks[p.i].pos)
	}
	p.i++
	if p.i >= len(p.toks) {
		return nil, p.syntaxError(p.end())
	}
	lit := p.toks[p.i]
	p.i++
	var v any
	switch lit.kind {
	case tString:
		v = lit.text
	case tGuid:
		v = Guid(strings.ToLower(lit.text))
	case tNumber:
		v = Number(lit.text)
	case tDateTime:
		tm, _ := time.Parse(time.RFC3339, lit.text)
		v = tm.UTC()
	case tIdent:
		switch lit.text {
		case "null":
			v = nil
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, p.syntaxError(lit.pos)
		}
	default:
		return nil, p.syntaxError(lit.pos)
	}
	return Compare{Column: t.text, Op: op, Value: v}, nil
}

func (p *filterParser) posOrEnd() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].pos
	}
	return p.end()
}

// filterColumns lists the column paths an expression references.
func filterColumns(e Expr, out []string) []string {
	switch e := e.(type) {
	case Compare:
		return append(out, e.Column)
	case Func:
		return append(out, e.Column)
	case And:
		return filterColumns(e.Right, filterColumns(e.Left, out))
	case Or:
		return filterColumns(e.Right, filterColumns(e.Left, out))
	case Not:
		return filterColumns(e.X, out)
	}
	return out
}

// eval reports whether r matches e. Columns were validated beforehand.
func (d *dataset) eval(t *table, r *row, e Expr) bool {
	switch e := e.(type) {
	case And:
		return d.eval(t, r, e.Left) && d.eval(t, r, e.Right)
	case Or:
		return d.eval(t, r, e.Left) || d.eval(t, r, e.Right)
	case Not:
		return !d.eval(t, r, e.X)
	case Func:
		v, _ := d.pathValue(t, r, e.Column)
		s, ok := v.(string)
		if !ok {
			return false
		}
		s, lit := strings.ToLower(s), strings.ToLower(e.Value)
		switch e.Name {
		case "contains":
			return strings.Contains(s, lit)
		case "startswith":
			return strings.HasPrefix(s, lit)
		default:
			return strings.HasSuffix(s, lit)
		}
	case Compare:
		v, c := d.pathValue(t, r, e.Column)
		if e.Value == nil || v == nil {
			eq := e.Value == nil && v == nil
			switch e.Op {
			case "eq":
				return eq
			case "ne":
				return !eq
			}
			return false
		}
		cmp, ok := compareValues(c, v, e.Value)
		if !ok {
			return false
		}
		switch e.Op {
		case "eq":
			return cmp == 0
		case "ne":
			return cmp != 0
		case "gt":
			return cmp > 0
		case "ge":
			return cmp >= 0
		case "lt":
			return cmp < 0
		default:
			return cmp <= 0
		}
	}
	return false
}

// pathValue returns a column's value, following one single-valued
// navigation ("primarycontactid/fullname").
func (d *dataset) pathValue(t *table, r *row, path string) (any, *column) {
	nav, col, ok := strings.Cut(path, "/")
	if !ok {
		return r.vals[path], t.colByName[path]
	}
	n := t.navs[nav]
	if n == nil {
		return nil, nil
	}
	tt, rr := d.follow(t, r, n)
	if rr == nil {
		return nil, nil
	}
	return rr.vals[col], tt.colByName[col]
}

// compareValues orders a stored value against a literal.
func compareValues(c *column, v, lit any) (int, bool) {
	switch x := v.(type) {
	case string:
		var s string
		switch l := lit.(type) {
		case string:
			s = l
		case Guid:
			s = string(l)
		case Number:
			s = string(l)
		default:
			return 0, false
		}
		return strings.Compare(strings.ToLower(x), strings.ToLower(s)), true
	case int64:
		n, ok := lit.(Number)
		if !ok {
			return 0, false
		}
		dn, err := decimal.NewFromString(string(n))
		if err != nil {
			return 0, false
		}
		return decimal.NewFromInt(x).Cmp(dn), true
	case decimal.Decimal:
		n, ok := lit.(Number)
		if !ok {
			return 0, false
		}
		dn, err := decimal.NewFromString(strings.TrimRight(string(n), "mMdD"))
		if err != nil {
			return 0, false
		}
		return x.Cmp(dn), true
	case float64:
		n, ok := lit.(Number)
		if !ok {
			return 0, false
		}
		dn, err := decimal.NewFromString(string(n))
		if err != nil {
			return 0, false
		}
		return decimal.NewFromFloat(x).Cmp(dn), true
	case bool:
		b, ok := lit.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == b:
			return 0, true
		case b:
			return -1, true
		default:
			return 1, true
		}
	case time.Time:
		switch l := lit.(type) {
		case time.Time:
			return x.Compare(l), true
		case string:
			if tm, err := time.Parse(time.RFC3339, l); err == nil {
				return x.Compare(tm), true
			}
		}
		return 0, false
	}
	return 0, false
}

// candidates uses the equality indexes: for "col eq 'x'" on an indexed
// column, and or/and combinations of such terms, it returns a superset of
// the matching rows (in key order) without a scan; ok is false when the
// expression needs a scan.
func (t *table) candidates(e Expr) (rows []*row, ok bool) {
	switch e := e.(type) {
	case Compare:
		if e.Op != "eq" {
			return nil, false
		}
		var s string
		switch v := e.Value.(type) {
		case string:
			s = v
		case Guid:
			s = string(v)
		default:
			return nil, false
		}
		if e.Column == t.key {
			if r := t.byKey[strings.ToLower(s)]; r != nil {
				return []*row{r}, true
			}
			return nil, true
		}
		if idx, ok := t.strIdx[e.Column]; ok {
			return idx[strings.ToLower(s)], true
		}
		if idx, ok := t.lookIdx[e.Column]; ok {
			return idx[strings.ToLower(s)], true
		}
		return nil, false
	case Or:
		l, ok1 := t.candidates(e.Left)
		if !ok1 {
			return nil, false
		}
		r, ok2 := t.candidates(e.Right)
		if !ok2 {
			return nil, false
		}
		return unionRows(l, r), true
	case And:
		if l, ok := t.candidates(e.Left); ok {
			return l, true
		}
		return t.candidates(e.Right)
	}
	return nil, false
}

func unionRows(a, b []*row) []*row {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	seen := make(map[*row]bool, len(a)+len(b))
	out := make([]*row, 0, len(a)+len(b))
	for _, r := range append(append([]*row(nil), a...), b...) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
