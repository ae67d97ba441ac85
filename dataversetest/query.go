package dataversetest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

const (
	maxExpands  = 15
	maxPageSize = 5000

	annFormatted = "OData.Community.Display.V1.FormattedValue"
	annNav       = "Microsoft.Dynamics.CRM.associatednavigationproperty"
	annLogical   = "Microsoft.Dynamics.CRM.lookuplogicalname"
	annCount     = "Microsoft.Dynamics.CRM.totalrecordcount"
	annCountMax  = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
	annMetaVer   = "Microsoft.Dynamics.CRM.globalmetadataversion"
)

// queryOpts are the parsed system query options of one level.
type queryOpts struct {
	selects []string // nil = all columns
	filter  Expr
	orderby []orderTerm
	top     int // -1 = none
	expands []*expandOpt
	count   bool   // $count=true
	delta   string // $deltatoken
	apply   *applyOpts
	raw     []string // the options as written, "$select=a,b", for nextLinks
}

// nested reports whether the query has a nested $expand (an $expand inside
// an $expand): then "paging is applied to each of the expanded collections"
// (join-tables.md, wire facts §1.7, §11.3).
func (q *queryOpts) nested() bool {
	for _, e := range q.expands {
		if len(e.q.expands) > 0 {
			return true
		}
	}
	return false
}

type orderTerm struct {
	col  string
	desc bool
}

type expandOpt struct {
	nav    *navInfo
	target *table
	q      *queryOpts
}

func notFoundProperty(t *table, name string) error {
	return &apiError{http.StatusBadRequest, "0x80060888", fmt.Sprintf("Could not find a property named '%s' on type '%s'.", name, t.qualified)}
}

// parseOptions parses and validates query options for table t. depth is 0
// for the request, 1 for an $expand of it, and so on.
func (d *dataset) parseOptions(t *table, opts [][2]string, depth int, count *int) (*queryOpts, error) {
	q := &queryOpts{top: -1}
	aliases := map[string]string{}
	for _, kv := range opts {
		if name, ok := strings.CutPrefix(kv[0], "@"); ok {
			aliases[name] = kv[1]
		}
	}
	for _, kv := range opts {
		k, v := kv[0], kv[1]
		q.raw = append(q.raw, k+"="+v)
		switch k {
		case "$select":
			for _, c := range strings.Split(v, ",") {
				c = strings.TrimSpace(c)
				if c == "" {
					continue
				}
				if t.colByName[c] == nil {
					return nil, notFoundProperty(t, c)
				}
				if !slices.Contains(q.selects, c) {
					q.selects = append(q.selects, c)
				}
			}
			if q.selects == nil {
				q.selects = []string{}
			}
		case "$filter":
			v, err := substituteAliases(v, aliases)
			if err != nil {
				return nil, err
			}
			e, err := ParseFilter(v)
			if err != nil {
				return nil, err
			}
			if err := d.checkFilter(t, e); err != nil {
				return nil, err
			}
			q.filter = e
		case "$orderby":
			for _, term := range strings.Split(v, ",") {
				f := strings.Fields(term)
				if len(f) == 0 || len(f) > 2 || len(f) == 2 && f[1] != "asc" && f[1] != "desc" {
					return nil, filterError(fmt.Sprintf("Syntax error in $orderby '%s'.", v))
				}
				if t.colByName[f[0]] == nil {
					return nil, notFoundProperty(t, f[0])
				}
				q.orderby = append(q.orderby, orderTerm{f[0], len(f) == 2 && f[1] == "desc"})
			}
		case "$top":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, filterError(fmt.Sprintf("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v))
			}
			q.top = n
		case "$expand":
			items, err := splitTop(v, ',')
			if err != nil {
				return nil, err
			}
			for _, item := range items {
				name, inner, _ := strings.Cut(item, "(")
				name = strings.TrimSpace(name)
				n := t.navs[name]
				if n == nil {
					return nil, notFoundProperty(t, name)
				}
				*count++
				if *count > maxExpands {
					return nil, filterError(fmt.Sprintf("The number of $expand options exceeds the maximum of %d.", maxExpands))
				}
				var sub [][2]string
				if inner != "" {
					inner = strings.TrimSuffix(strings.TrimSpace(inner), ")")
					parts, err := splitTop(inner, ';')
					if err != nil {
						return nil, err
					}
					for _, p := range parts {
						k, v, _ := strings.Cut(p, "=")
						sub = append(sub, [2]string{strings.TrimSpace(k), v})
					}
				}
				target := n.target
				if target == nil {
					target = d.tables["systemuser"]
					if target == nil {
						return nil, notFoundProperty(t, name)
					}
				}
				sq, err := d.parseOptions(target, sub, depth+1, count)
				if err != nil {
					return nil, err
				}
				if (sq.top >= 0 || sq.orderby != nil) && (!n.collection || depth > 0 || len(sq.expands) > 0) {
					return nil, filterError("Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested one-to-many relationship.")
				}
				q.expands = append(q.expands, &expandOpt{nav: n, target: n.target, q: sq})
			}
		case "$count":
			if depth > 0 {
				return nil, filterError("The query parameter $count is not supported in $expand.")
			}
			if v != "true" && v != "false" {
				return nil, filterError(fmt.Sprintf("Invalid value '%s' for $count query option found. Valid values are 'true' and 'false'.", v))
			}
			q.count = v == "true"
		case "$apply":
			if depth > 0 {
				return nil, filterError("The query parameter $apply is not supported in $expand.")
			}
			a, err := d.parseApply(t, v)
			if err != nil {
				return nil, err
			}
			q.apply = a
		case "$skiptoken":
		case "$deltatoken":
			if depth > 0 {
				return nil, filterError("The query parameter $deltatoken is not supported in $expand.")
			}
			q.delta = v
		case "$skip", "$search", "$format", "$levels":
			return nil, filterError(fmt.Sprintf("The query parameter %s is not supported", k))
		default:
			if strings.HasPrefix(k, "@") {
				continue // a parameter alias; q.raw keeps it for nextLinks
			}
			if strings.HasPrefix(k, "$") {
				return nil, filterError(fmt.Sprintf("The query parameter %s is not supported", k))
			}
		}
	}
	return q, nil
}

// checkFilter validates the columns a $filter references, and the
// navigation properties and bodies of its lambda operators.
func (d *dataset) checkFilter(t *table, e Expr) error {
	for _, path := range filterColumns(e, nil) {
		if err := d.checkPath(t, path); err != nil {
			return err
		}
	}
	var walk func(e Expr) error
	walk = func(e Expr) error {
		switch x := e.(type) {
		case And:
			if err := walk(x.Left); err != nil {
				return err
			}
			return walk(x.Right)
		case Or:
			if err := walk(x.Left); err != nil {
				return err
			}
			return walk(x.Right)
		case Not:
			return walk(x.X)
		case Lambda:
			n := t.navs[x.Nav]
			if n == nil || !n.collection || n.target == nil || n.partnerCol == "" {
				return notFoundProperty(t, x.Nav)
			}
			if x.Body != nil {
				return d.checkFilter(n.target, x.Body)
			}
		}
		return nil
	}
	return walk(e)
}

// substituteAliases replaces parameter aliases ("@p1", outside string
// literals) in a $filter by their values from the query string
// (filter-rows.md: $filter=emailaddress1 eq @p1&@p1='a@b.com').
func substituteAliases(filter string, aliases map[string]string) (string, error) {
	if len(aliases) == 0 || !strings.Contains(filter, "@") {
		return filter, nil
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(filter); i++ {
		c := filter[i]
		if c == '\'' {
			quoted = !quoted
		}
		if c != '@' || quoted {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(filter) && (filter[j] == '_' || 'a' <= filter[j] && filter[j] <= 'z' || 'A' <= filter[j] && filter[j] <= 'Z' || '0' <= filter[j] && filter[j] <= '9') {
			j++
		}
		v, ok := aliases[filter[i+1:j]]
		if !ok {
			return "", filterError(fmt.Sprintf("The parameter alias '%s' has no value in the query string.", filter[i:j]))
		}
		b.WriteString(v)
		i = j - 1
	}
	return b.String(), nil
}

func (d *dataset) checkPath(t *table, path string) error {
	nav, col, ok := strings.Cut(path, "/")
	if !ok {
		if t.colByName[path] == nil {
			return notFoundProperty(t, path)
		}
		return nil
	}
	n := t.navs[nav]
	if n == nil || n.collection || n.target == nil {
		return notFoundProperty(t, nav)
	}
	if n.target.colByName[col] == nil {
		return notFoundProperty(n.target, col)
	}
	return nil
}

// splitTop splits s at sep outside parentheses and quotes.
func splitTop(s string, sep byte) ([]string, error) {
	var out []string
	depth, start, quoted := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, filterError(fmt.Sprintf("Syntax error: unbalanced parentheses in '%s'.", s))
			}
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 {
		return nil, filterError(fmt.Sprintf("Syntax error: unbalanced parentheses in '%s'.", s))
	}
	if strings.TrimSpace(s[start:]) != "" {
		out = append(out, s[start:])
	}
	return out, nil
}

// selectRows filters and orders rows of t (base = nil means the whole table).
func (d *dataset) selectRows(t *table, base []*row, q *queryOpts) []*row {
	var rows []*row
	if base == nil {
		rows = t.rows
		if q.filter != nil {
			if c, ok := t.candidates(q.filter); ok {
				rows = slices.Clone(c)
				slices.SortFunc(rows, func(a, b *row) int { return a.pos - b.pos })
			}
		}
	} else {
		rows = base
	}
	if q.filter != nil {
		out := make([]*row, 0, min(len(rows), 64))
		for _, r := range rows {
			if d.eval(t, r, q.filter) {
				out = append(out, r)
			}
		}
		rows = out
	}
	if len(q.orderby) > 0 {
		rows = slices.Clone(rows)
		slices.SortStableFunc(rows, func(a, b *row) int {
			for _, o := range q.orderby {
				c := orderCompare(d.orderValue(t, a, o.col), d.orderValue(t, b, o.col))
				if o.desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return a.pos - b.pos
		})
	}
	return rows
}

// orderValue is what $orderby sorts a column by: a lookup by the related
// row's primary name (PAD webapi/query/order-rows.md, wire facts §7), any
// other column by its value.
func (d *dataset) orderValue(t *table, r *row, col string) any {
	v := r.vals[col]
	if c := t.colByName[col]; v != nil && c.lookup != nil {
		if name := d.formatted(t, r, c, v); name != "" {
			return name
		}
	}
	return v
}

// orderCompare orders values; nulls first, as SQL Server does.
func orderCompare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(strings.ToLower(x), strings.ToLower(b.(string)))
	case int64:
		return cmpOrdered(x, b.(int64))
	case float64:
		return cmpOrdered(x, b.(float64))
	case decimal.Decimal:
		return x.Cmp(b.(decimal.Decimal))
	case time.Time:
		return x.Compare(b.(time.Time))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return 0
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// follow resolves a single-valued navigation of r, or nil.
func (d *dataset) follow(t *table, r *row, n *navInfo) (*table, *row) {
	id, ok := r.vals[n.lookupCol].(string)
	if !ok {
		return nil, nil
	}
	tt := n.target
	if tt == nil {
		tt = d.tables[r.targets[n.lookupCol]]
	} else if tgt := r.targets[n.lookupCol]; tgt != "" && tgt != tt.name {
		return nil, nil // polymorphic lookup pointing at another table
	}
	if tt == nil {
		return nil, nil
	}
	rr := tt.byKey[id]
	if rr == nil {
		return nil, nil
	}
	return tt, rr
}

// children lists the rows of a collection navigation of r, in key order.
func (d *dataset) children(t *table, r *row, n *navInfo) []*row {
	if n.target == nil || n.partnerCol == "" {
		return nil
	}
	id := r.vals[t.key].(string)
	var out []*row
	for _, c := range n.target.lookIdx[n.partnerCol][id] {
		if tgt := c.targets[n.partnerCol]; tgt == "" || tgt == t.name {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *row) int { return a.pos - b.pos })
	return out
}

// annotations is the parsed odata.include-annotations preference.
type annotations struct {
	patterns []string
	raw      string
}

func (a annotations) want(term string) bool {
	for _, p := range a.patterns {
		if p == "*" || p == term {
			return true
		}
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(term, pre) {
			return true
		}
	}
	return false
}

// render carries what rendering a response needs.
type render struct {
	d      *dataset
	base   string // org URL + Web API prefix
	ann    annotations
	navURL bool // add <nav>@odata.nextLink to collection expands (entity-set queries)
	// nested: the query has a nested $expand, so expanded collections are
	// paged at pageSize rows with a <nav>@odata.nextLink carrying a
	// $skiptoken when there are more.
	nested   bool
	pageSize int
}

// renderRow builds one entity object.
func (rn *render) renderRow(t *table, r *row, q *queryOpts) object {
	o := make(object, 0, 8)
	o = append(o, member{"@odata.etag", fmt.Sprintf(`W/"%d"`, r.version)})
	cols := q.selects
	if cols == nil {
		cols = make([]string, len(t.cols))
		for i, c := range t.cols {
			cols[i] = c.name
		}
	}
	money := false
	for _, name := range cols {
		c := t.colByName[name]
		o = rn.appendColumn(o, t, r, c)
		money = money || c.money
	}
	if q.selects != nil {
		if cur := t.colByName["_transactioncurrencyid_value"]; money && cur != nil && !slices.Contains(q.selects, cur.name) {
			o = rn.appendColumn(o, t, r, cur)
		}
		if !slices.Contains(q.selects, t.key) {
			o = append(o, member{t.key, r.vals[t.key]})
		}
	}
	for _, e := range q.expands {
		if !e.nav.collection {
			tt, rr := rn.d.follow(t, r, e.nav)
			if rr == nil {
				o = append(o, member{e.nav.name, nil})
			} else {
				o = append(o, member{e.nav.name, rn.renderRow(tt, rr, e.q)})
			}
			continue
		}
		rows := rn.d.selectRows(e.target, rn.d.children(t, r, e.nav), e.q)
		if e.q.top >= 0 && len(rows) > e.q.top {
			rows = rows[:e.q.top]
		}
		more := rn.nested && len(rows) > rn.pageSize
		if more {
			rows = rows[:rn.pageSize]
		}
		arr := make([]object, len(rows))
		for i, cr := range rows {
			arr[i] = rn.renderRow(e.target, cr, e.q)
		}
		o = append(o, member{e.nav.name, arr})
		if more || rn.navURL && !rn.nested {
			link := rn.base + t.set + "(" + r.vals[t.key].(string) + ")/" + e.nav.name
			var opts []string
			for _, kv := range e.q.raw {
				k, v, _ := strings.Cut(kv, "=")
				opts = append(opts, k+"="+escapeQueryValue(v))
			}
			if more {
				first, last := rows[0].vals[e.target.key].(string), rows[len(rows)-1].vals[e.target.key].(string)
				opts = append(opts, "$skiptoken="+escapeSkiptoken(pagingCookie(e.target.key, 1, first, last)))
			}
			if len(opts) > 0 {
				link += "?" + strings.Join(opts, "&")
			}
			o = append(o, member{e.nav.name + "@odata.nextLink", link})
		}
	}
	return o
}

// appendColumn adds a column's annotations and value.
func (rn *render) appendColumn(o object, t *table, r *row, c *column) object {
	v := r.vals[c.name]
	if v != nil && len(rn.ann.patterns) > 0 {
		if rn.ann.want(annFormatted) {
			if f := rn.d.formatted(t, r, c, v); f != "" {
				o = append(o, member{c.name + "@" + annFormatted, f})
			}
		}
		if c.lookup != nil {
			target := r.targets[c.name]
			if rn.ann.want(annNav) {
				nav := strings.TrimSuffix(strings.TrimPrefix(c.name, "_"), "_value")
				for _, n := range c.lookup.navs {
					if n.target == nil || n.target.name == target {
						nav = n.name
						break
					}
				}
				o = append(o, member{c.name + "@" + annNav, nav})
			}
			if rn.ann.want(annLogical) && target != "" {
				o = append(o, member{c.name + "@" + annLogical, target})
			}
		}
	}
	return append(o, member{c.name, wireValue(c, v)})
}

// wireValue converts a stored value to its JSON form.
func wireValue(c *column, v any) any {
	switch x := v.(type) {
	case decimal.Decimal:
		if c.money {
			return rawNumber(x.StringFixed(4))
		}
		return rawNumber(x.StringFixed(max(2, -x.Exponent())))
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05Z")
	}
	return v
}

// formatted returns the FormattedValue of a non-null value, "" for none.
func (d *dataset) formatted(t *table, r *row, c *column, v any) string {
	switch {
	case c.lookup != nil:
		tt := d.tables[r.targets[c.name]]
		if tt == nil || tt.primaryName == "" {
			return ""
		}
		if rr := tt.byKey[v.(string)]; rr != nil {
			s, _ := rr.vals[tt.primaryName].(string)
			return s
		}
		return ""
	case c.options:
		n := 0
		switch x := v.(type) {
		case int64:
			n = int(x)
		case bool:
			if x {
				n = 1
			}
		}
		if l, ok := d.defs.Label(t.name, c.name, n); ok {
			return l
		}
	}
	switch x := v.(type) {
	case bool:
		if x {
			return "Yes"
		}
		return "No"
	case int64:
		if c.edm == "Edm.Int32" {
			return groupThousands(x)
		}
	case decimal.Decimal:
		if c.money {
			return d.currencySymbol(t, r) + formatMoney(x)
		}
	case time.Time:
		return x.UTC().Format("1/2/2006 3:04 PM")
	case string:
		if c.kind == kDate {
			if tm, err := time.Parse(time.DateOnly, x); err == nil {
				return tm.Format("1/2/2006")
			}
		}
	}
	return ""
}

func (d *dataset) currencySymbol(t *table, r *row) string {
	if id, ok := r.vals["_transactioncurrencyid_value"].(string); ok {
		if ct := d.tables["transactioncurrency"]; ct != nil {
			if cr := ct.byKey[id]; cr != nil {
				if s, ok := cr.vals["currencysymbol"].(string); ok {
					return s
				}
			}
		}
	}
	return "$"
}

// formatMoney formats en-US style with two decimals: 1234.5 -> "1,234.50";
// negative amounts as "-1,234.50" (the caller prefixes the symbol).
func formatMoney(x decimal.Decimal) string {
	s := x.Abs().StringFixed(2)
	intPart, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(intPart, 10, 64)
	out := groupThousands(n) + "." + frac
	if x.IsNegative() {
		return "-" + out
	}
	return out
}

// contextProjection is the "(a,b,nav(c))" part of a context URL.
func contextProjection(q *queryOpts) string {
	var items []string
	items = append(items, q.selects...)
	for _, e := range q.expands {
		items = append(items, e.nav.name+contextProjectionOrEmpty(e.q))
	}
	if len(items) == 0 {
		return ""
	}
	return "(" + strings.Join(items, ",") + ")"
}

func contextProjectionOrEmpty(q *queryOpts) string {
	if p := contextProjection(q); p != "" {
		return p
	}
	return "()"
}

var pageNumberRE = regexp.MustCompile(`pagenumber="(\d+)"`)

// pagingCookie builds the $skiptoken value for the page after rows.
func pagingCookie(key string, page int, first, last string) string {
	inner := fmt.Sprintf(`<cookie page="%d"><%s last="{%s}" first="{%s}" /></cookie>`, page, key, strings.ToUpper(last), strings.ToUpper(first))
	return fmt.Sprintf(`<cookie pagenumber="%d" pagingcookie="%s" istracking="False" />`, page+1, escapeLower(inner))
}

// escapeLower percent-encodes like the paging cookie's inner layer
// (lower-case hex, everything but letters, digits and -._).
func escapeLower(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}

// escapeQueryValue percent-encodes a query option value for a link,
// keeping the characters OData expressions are readable with.
func escapeQueryValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~$(),'*:@/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escapeSkiptoken encodes the outer cookie as the real nextLinks do.
func escapeSkiptoken(s string) string {
	return strings.NewReplacer("%", "%25", "<", "%3C", ">", "%3E", " ", "%20", `"`, "%22").Replace(s)
}

// parsePrefer reads the Prefer header(s).
func parsePrefer(h http.Header) (ann annotations, pageSize int) {
	for _, line := range h.Values("Prefer") {
		for _, p := range splitPrefer(line) {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.TrimSpace(k) {
			case "odata.include-annotations":
				v = strings.Trim(strings.TrimSpace(v), `"`)
				ann.raw = v
				for _, a := range strings.Split(v, ",") {
					if a = strings.TrimSpace(a); a != "" {
						ann.patterns = append(ann.patterns, a)
					}
				}
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					pageSize = min(n, maxPageSize)
				}
			}
		}
	}
	return ann, pageSize
}

// splitPrefer splits a Prefer header at commas outside quotes.
func splitPrefer(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// queryPairs splits a raw query into decoded (name, value) pairs in order.
func queryPairs(raw string) ([][2]string, error) {
	var out [][2]string
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, filterError("The query string is not correctly encoded.")
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, filterError("The query string is not correctly encoded.")
		}
		out = append(out, [2]string{dk, dv})
	}
	return out, nil
}
