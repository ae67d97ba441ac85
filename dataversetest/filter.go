package dataversetest

import (
	"fmt"
	"net/http"
	"regexp"
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

// QueryFunc is a Dataverse query function, "Microsoft.Dynamics.CRM.In(
// PropertyName='statecode',PropertyValues=['0','1'])" (PAD
// webapi/query/filter-rows.md, query functions): Name without the
// namespace, Property the column, Values the PropertyValue(s) as written.
type QueryFunc struct {
	Name     string
	Property string
	Values   []string
}

// Lambda is "nav/any(x:x/col eq …)" or "nav/all(…)" over a collection
// navigation property; Body's columns are relative to the related table
// (nil Body: any() = has a related row).
type Lambda struct {
	Nav  string
	All  bool
	Body Expr
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

func (Compare) isExpr()   {}
func (QueryFunc) isExpr() {}
func (Lambda) isExpr()    {}
func (Func) isExpr()      {}
func (And) isExpr()       {}
func (Or) isExpr()        {}
func (Not) isExpr()       {}

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
	if name, ok := strings.CutPrefix(t.text, crmNS); ok {
		return p.parseQueryFunc(t, name)
	}
	if nav, ok := strings.CutSuffix(t.text, "/any"); ok {
		return p.parseLambda(t, nav, false)
	}
	if nav, ok := strings.CutSuffix(t.text, "/all"); ok {
		return p.parseLambda(t, nav, true)
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

// argsText returns the source between the '(' token after the current one
// and its matching ')', and moves past that ')'.
func (p *filterParser) argsText(t token) (string, error) {
	p.i++
	if p.i >= len(p.toks) || p.toks[p.i].kind != tLParen {
		return "", p.syntaxError(p.posOrEnd())
	}
	open := p.toks[p.i].pos
	depth := 0
	for ; p.i < len(p.toks); p.i++ {
		switch p.toks[p.i].kind {
		case tLParen:
			depth++
		case tRParen:
			depth--
			if depth == 0 {
				end := p.toks[p.i].pos
				p.i++
				return p.src[open+1 : end], nil
			}
		}
	}
	return "", p.syntaxError(p.end())
}

// parseQueryFunc parses Microsoft.Dynamics.CRM.Name(PropertyName='c'[,
// PropertyValue=v | PropertyValues=[…]]).
func (p *filterParser) parseQueryFunc(t token, name string) (Expr, error) {
	args, err := p.argsText(t)
	if err != nil {
		return nil, err
	}
	f := QueryFunc{Name: name}
	parts, err := splitArgs(args)
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, p.syntaxError(t.pos)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "PropertyName":
			f.Property = unquote(v)
		case "PropertyValue":
			f.Values = []string{unquote(v)}
		case "PropertyValues":
			vals, err := parseArray(v)
			if err != nil {
				return nil, err
			}
			f.Values = vals
		default:
			return nil, filterError(fmt.Sprintf("The parameter '%s' is not valid for the function '%s'.", k, name))
		}
	}
	if f.Property == "" {
		return nil, filterError(fmt.Sprintf("The function '%s' needs a PropertyName.", name))
	}
	if _, ok := queryFuncs[name]; !ok {
		return nil, filterError(fmt.Sprintf("dataversetest: the query function %s%s is not supported (SUPPORT.md).", crmNS, name))
	}
	return f, nil
}

// parseLambda parses nav/any(x:x/col eq v) and nav/all(...).
func (p *filterParser) parseLambda(t token, nav string, all bool) (Expr, error) {
	args, err := p.argsText(t)
	if err != nil {
		return nil, err
	}
	l := Lambda{Nav: nav, All: all}
	if strings.TrimSpace(args) == "" {
		if all {
			return nil, p.syntaxError(t.pos)
		}
		return l, nil
	}
	v, body, ok := strings.Cut(args, ":")
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return nil, p.syntaxError(t.pos)
	}
	e, err := ParseFilter(body)
	if err != nil {
		return nil, err
	}
	l.Body, err = stripVar(e, v)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// stripVar removes the lambda variable prefix "x/" from column paths.
func stripVar(e Expr, v string) (Expr, error) {
	col := func(c string) (string, error) {
		rest, ok := strings.CutPrefix(c, v+"/")
		if !ok {
			return "", filterError(fmt.Sprintf("The lambda variable '%s' must prefix the property '%s'.", v, c))
		}
		return rest, nil
	}
	var err error
	switch x := e.(type) {
	case Compare:
		x.Column, err = col(x.Column)
		return x, err
	case Func:
		x.Column, err = col(x.Column)
		return x, err
	case QueryFunc:
		x.Property, err = col(x.Property)
		return x, err
	case And:
		if x.Left, err = stripVar(x.Left, v); err != nil {
			return nil, err
		}
		x.Right, err = stripVar(x.Right, v)
		return x, err
	case Or:
		if x.Left, err = stripVar(x.Left, v); err != nil {
			return nil, err
		}
		x.Right, err = stripVar(x.Right, v)
		return x, err
	case Not:
		x.X, err = stripVar(x.X, v)
		return x, err
	}
	return nil, filterError("Nested lambda operators are not supported.")
}

// splitArgs splits at commas outside quotes and brackets.
func splitArgs(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '(':
			depth++
		case c == ']' || c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quote != 0 || depth != 0 {
		return nil, filterError(fmt.Sprintf("Syntax error in the function arguments '%s'.", s))
	}
	return append(out, s[start:]), nil
}

// unquote strips '…' (with ” escapes) or "…" from a literal.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// parseArray parses ['a','b'] or ["a","b"] (filter-rows.md uses JSON
// arrays with double quotes in parameter aliases).
func parseArray(v string) ([]string, error) {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, filterError(fmt.Sprintf("Invalid JSON. An array was expected in '%s'.", v))
	}
	parts, err := splitArgs(v[1 : len(v)-1])
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, unquote(p))
		}
	}
	return out, nil
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
	case QueryFunc:
		return append(out, e.Property)
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
	case Lambda:
		n := t.navs[e.Nav]
		kids := d.children(t, r, n)
		if e.Body == nil {
			return len(kids) > 0
		}
		for _, k := range kids {
			if m := d.eval(n.target, k, e.Body); m != e.All {
				return m
			}
		}
		return e.All
	case Func:
		v, _ := d.pathValue(t, r, e.Column)
		s, ok := v.(string)
		if !ok {
			return false
		}
		s, lit := strings.ToLower(s), strings.ToLower(e.Value)
		if strings.ContainsAny(lit, "%_[") {
			return likeMatch(s, e.Name, lit)
		}
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

// likeMatch evaluates contains/startswith/endswith whose value has SQL LIKE
// wildcards: "%" any run, "_" one character, "[abc]" / "[a-c]" a set,
// "[^abc]" its complement; "[%]" is a literal % (PAD
// webapi/query/filter-rows.md, "Use wildcard characters"; wire facts
// §11.4). s and pattern are lower-cased.
func likeMatch(s, fn, pattern string) bool {
	var b strings.Builder
	b.WriteString("(?s)^")
	if fn != "startswith" {
		b.WriteString(".*")
	}
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				b.WriteString(regexp.QuoteMeta(pattern[i:]))
				i = len(pattern)
				continue
			}
			set := pattern[i+1 : i+1+end]
			neg := strings.HasPrefix(set, "^")
			set = strings.TrimPrefix(set, "^")
			b.WriteByte('[')
			if neg {
				b.WriteByte('^')
			}
			for _, r := range set {
				if r == '-' {
					b.WriteByte('-')
				} else {
					b.WriteString(regexp.QuoteMeta(string(r)))
				}
			}
			b.WriteByte(']')
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if fn != "endswith" {
		b.WriteString(".*")
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}
