package dataversetest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// serveResource serves entity-set queries and their /$count, retrieves by
// key or alternate key (with conditional GET), single-property GETs, and
// navigations from one record ("accounts(<id>)/contact_customer_accounts",
// also with /$count). The caller holds s.dmu for reading.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, rc *reqCtx, path string) {
	d := s.data
	segs := strings.Split(path, "/")
	seg := segs[0]
	setName, keyPart, hasKey := strings.Cut(seg, "(")
	t := d.sets[setName]
	if t == nil {
		writeAPIError(w, segmentNotFound(setName))
		return
	}
	rest := segs[1:]
	countOnly := len(rest) > 0 && rest[len(rest)-1] == "$count"
	if countOnly {
		rest = rest[:len(rest)-1]
	}
	rawValue := len(rest) == 2 && rest[1] == "$value"
	if rawValue {
		rest = rest[:1]
	}
	if len(rest) > 1 {
		writeAPIError(w, segmentNotFound(rest[1]))
		return
	}
	// Parse against the table the response is about.
	target := t
	var nav *navInfo
	var prop *column
	if len(rest) == 1 {
		switch n, c := t.navs[rest[0]], t.colByName[rest[0]]; {
		case !hasKey:
			writeAPIError(w, segmentNotFound(rest[0]))
			return
		case n != nil && n.target != nil && (n.collection || !countOnly) && !rawValue:
			nav, target = n, n.target
		case c != nil && !countOnly:
			prop = c
		case rawValue:
			writeAPIError(w, segmentNotFound("$value"))
			return
		default:
			writeAPIError(w, segmentNotFound(rest[0]))
			return
		}
	}
	pairs, err := queryPairs(r.URL.RawQuery)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	count := 0
	q, err := d.parseOptions(target, pairs, 0, &count)
	if q != nil {
		rc.parsed = q.filter
	} else if f, ferr := ParseFilter(rc.req.Filter); ferr == nil && rc.req.Filter != "" {
		rc.parsed = f
	}
	if err == nil {
		err = d.bindQuery(target, q, s.clock())
	}
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if denied := s.deniedTable(t, q); denied != nil {
		writeError(w, http.StatusForbidden, "0x80040220", s.privilegeMessage(denied))
		return
	}
	ann, pageSize := parsePrefer(r.Header)
	var applied []string
	if ann.raw != "" {
		applied = append(applied, `odata.include-annotations="`+ann.raw+`"`)
	}
	rn := &render{d: d, base: s.url + webAPIPrefix, ann: ann, nested: q.nested(), pageSize: pageSize}
	if rn.pageSize == 0 {
		rn.pageSize = s.pageSize
	}

	if !hasKey {
		if countOnly {
			writeCount(w, len(d.selectRows(t, nil, q)))
			return
		}
		if q.apply != nil {
			s.serveApply(w, t, d.selectRows(t, nil, q), q, rn)
			return
		}
		if q.delta != "" || wantsTracking(r.Header) {
			s.serveDelta(w, r, t, q, rn, pairs)
			return
		}
		rn.navURL = true
		s.serveCollection(w, r, t, nil, q, rn, pageSize, applied, pairs)
		return
	}
	keyPart, ok := strings.CutSuffix(keyPart, ")")
	if !ok {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Bad Request - Error in query syntax: '%s'.", seg))
		return
	}
	rec, err := d.lookupKey(t, keyPart)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if prop != nil {
		s.serveProperty(w, t, rec, prop, rawValue)
		return
	}
	if nav != nil {
		if nav.collection {
			base := d.children(t, rec, nav)
			if base == nil {
				base = []*row{}
			}
			if countOnly {
				writeCount(w, len(d.selectRows(target, base, q)))
				return
			}
			if q.apply != nil {
				s.serveApply(w, target, d.selectRows(target, base, q), q, rn)
				return
			}
			rn.navURL = true
			s.serveCollection(w, r, target, base, q, rn, pageSize, applied, pairs)
			return
		}
		tt, rr := d.follow(t, rec, nav)
		if rr == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		t, rec = tt, rr
	}
	etag := fmt.Sprintf(`W/"%d"`, rec.version)
	w.Header().Set("ETag", etag)
	// Conditional GET (perform-conditional-operations-using-web-api.md):
	// the current ETag in If-None-Match answers 304 without a body. The
	// documented "If-None-Match: null" never matches.
	if inm := r.Header.Get("If-None-Match"); inm != "" && q.expands == nil && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := object{{"@odata.context", rn.base + "$metadata#" + t.set + contextProjection(q) + "/$entity"}}
	body = append(body, rn.renderRow(t, rec, q)...)
	if len(applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(applied, ","))
	}
	writeOData(w, http.StatusOK, body)
}

// etagMatches reports whether an If-Match / If-None-Match list names etag
// (weak comparison).
func etagMatches(header, etag string) bool {
	for _, e := range strings.Split(header, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || strings.TrimPrefix(e, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// writeCount answers a /$count request: the number as text/plain, which
// "includes the UTF-8 byte order mark (BOM)" (retrieve-entity-using-web-api.md,
// wire facts §1.4), counting at most 5,000 rows (count-rows.md, §11.2).
func writeCount(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "text/plain")
	setODataVersion(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("\ufeff" + strconv.Itoa(min(n, maxPageSize))))
}

// serveProperty answers a single-property GET, "contacts(<id>)/fullname":
// {"@odata.context":"…/$metadata#contacts(<id>)/fullname","value":…}
// (wire facts §1.4, §11.4), or with /$value the bare value as text/plain
// (retrieve-entity-using-web-api.md); a null value answers 204 No Content.
func (s *Server) serveProperty(w http.ResponseWriter, t *table, rec *row, c *column, raw bool) {
	v := rec.vals[c.name]
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if raw {
		w.Header().Set("Content-Type", "text/plain")
		setODataVersion(w.Header())
		w.WriteHeader(http.StatusOK)
		text := appendJSON(nil, wireValue(c, v))
		if sv, ok := wireValue(c, v).(string); ok {
			text = []byte(sv)
		}
		_, _ = w.Write(text)
		return
	}
	writeOData(w, http.StatusOK, object{
		{"@odata.context", s.url + webAPIPrefix + "$metadata#" + t.set + "(" + rec.vals[t.key].(string) + ")/" + c.name},
		{"value", wireValue(c, v)},
	})
}

func (s *Server) serveCollection(w http.ResponseWriter, r *http.Request, t *table, base []*row, q *queryOpts, rn *render, pageSize int, applied []string, pairs [][2]string) {
	rows := s.data.selectRows(t, base, q)
	total := len(rows)
	size := pageSize
	if size == 0 {
		size = s.pageSize
		if q.top >= 0 && q.top < len(rows) {
			rows = rows[:q.top] // $top is ignored with odata.maxpagesize
		}
	} else {
		applied = append(applied, "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	page, start := 1, 0
	for _, kv := range pairs {
		if kv[0] == "$skiptoken" {
			page, start = resumePoint(t, rows, q, kv[1], size)
		}
	}
	end := min(start+size, len(rows))
	pageRows := rows[start:end]

	body := object{{"@odata.context", rn.base + "$metadata#" + t.set + contextProjection(q)}}
	if q.count {
		body = append(body, member{"@odata.count", min(total, maxPageSize)})
	}
	if rn.ann.want(annCount) {
		n := -1
		if q.count {
			n = min(total, maxPageSize)
		}
		body = append(body, member{"@" + annCount, n})
	}
	if rn.ann.want(annCountMax) {
		body = append(body, member{"@" + annCountMax, q.count && total > maxPageSize})
	}
	if rn.ann.want(annMetaVer) {
		body = append(body, member{"@" + annMetaVer, "1144249"})
	}
	arr := make([]object, len(pageRows))
	for i, row := range pageRows {
		arr[i] = rn.renderRow(t, row, q)
	}
	body = append(body, member{"value", arr})
	if end < len(rows) {
		var parts []string
		for _, p := range strings.Split(r.URL.RawQuery, "&") {
			if p != "" && !strings.HasPrefix(p, "$skiptoken=") && !strings.HasPrefix(p, "%24skiptoken=") {
				parts = append(parts, p)
			}
		}
		first, last := pageRows[0].vals[t.key].(string), pageRows[len(pageRows)-1].vals[t.key].(string)
		parts = append(parts, "$skiptoken="+escapeSkiptoken(pagingCookie(t.key, page, first, last)))
		body = append(body, member{"@odata.nextLink", rn.base + strings.TrimPrefix(r.URL.Path, "/api/data/v9.2/") + "?" + strings.Join(parts, "&")})
	}
	if len(applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(applied, ","))
	}
	writeOData(w, http.StatusOK, body)
}

var lastKeyRE = regexp.MustCompile(`last="\{([0-9A-Fa-f-]{36})\}"`)

// resumePoint reads a $skiptoken paging cookie: the page number it names
// and the index of the first row after the cookie's last key. Like the real
// cookie (which carries the last key, not an offset), it does not depend on
// the page size, so a nextLink followed without the Prefer header, or with
// another size, still continues after the last row seen (wire facts §1.9,
// §11.4). Rows deleted since fall back to the page arithmetic.
func resumePoint(t *table, rows []*row, q *queryOpts, token string, size int) (page, start int) {
	page = 2
	if m := pageNumberRE.FindStringSubmatch(token); m != nil {
		page, _ = strconv.Atoi(m[1])
		page = max(page, 2)
	}
	inner := token
	if i := strings.Index(token, `pagingcookie="`); i >= 0 {
		inner, _, _ = strings.Cut(token[i+len(`pagingcookie="`):], `"`)
		if u, err := url.PathUnescape(inner); err == nil {
			inner = u
		}
	}
	if m := lastKeyRE.FindStringSubmatch(inner); m != nil {
		last := strings.ToLower(m[1])
		for i, r := range rows {
			if r.vals[t.key] == last {
				return page, i + 1
			}
		}
		if len(q.orderby) == 0 { // key order: the first key after last
			i, found := slices.BinarySearchFunc(rows, last, func(r *row, k string) int { return strings.Compare(r.vals[t.key].(string), k) })
			if found {
				i++
			}
			return page, i
		}
	}
	return page, min((page-1)*size, len(rows))
}

// lookupKey finds a record by "<guid>", "key=<guid>" or an alternate key
// "col='v',col2=..." that the CSDL declares.
func (d *dataset) lookupKey(t *table, k string) (*row, error) {
	if isGUID(k) {
		id := strings.ToLower(k)
		if r := t.byKey[id]; r != nil {
			return r, nil
		}
		return nil, &apiError{http.StatusNotFound, "0x80040217", fmt.Sprintf("%s With Id = %s Does Not Exist", t.name, id)}
	}
	parts, err := splitTop(k, ',')
	if err != nil {
		return nil, err
	}
	vals := map[string]string{}
	var cols []string
	for _, p := range parts {
		c, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, filterError(fmt.Sprintf("Bad Request - Error in query syntax: key '%s'.", k))
		}
		c = strings.TrimSpace(c)
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "'") {
			if len(v) < 2 || !strings.HasSuffix(v, "'") {
				return nil, filterError(fmt.Sprintf("There is an unterminated literal at position %d in '%s'.", len(k), k))
			}
			v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		}
		if t.colByName[c] == nil {
			return nil, notFoundProperty(t, c)
		}
		vals[c] = v
		cols = append(cols, c)
	}
	if len(cols) == 1 && cols[0] == t.key {
		return d.lookupKey(t, vals[t.key])
	}
	declared := false
	for _, ak := range t.altKeys {
		if sameSet(ak, cols) {
			declared = true
		}
	}
	if !declared {
		return nil, &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
			"The key %s is not defined as an alternate key for entity %s.", strings.Join(cols, ","), t.name)}
	}
	var cands []*row
	if idx, ok := t.strIdx[cols[0]]; ok {
		cands = idx[strings.ToLower(vals[cols[0]])]
	} else {
		cands = t.rows
	}
	for _, r := range cands {
		match := true
		for _, c := range cols {
			if !strings.EqualFold(fmt.Sprint(r.vals[c]), vals[c]) {
				match = false
			}
		}
		if match {
			return r, nil
		}
	}
	return nil, &apiError{http.StatusNotFound, "0x80040217", fmt.Sprintf("A record with the specified key values does not exist in %s entity", t.name)}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

// deniedTable returns the first table of the query whose read is denied.
func (s *Server) deniedTable(t *table, q *queryOpts) *table {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.denied) == 0 {
		return nil
	}
	var walk func(t *table, q *queryOpts) *table
	walk = func(t *table, q *queryOpts) *table {
		if s.denied[t.name] {
			return t
		}
		for _, e := range q.expands {
			if e.target != nil {
				if d := walk(e.target, e.q); d != nil {
					return d
				}
			}
		}
		return nil
	}
	return walk(t, q)
}

func (s *Server) privilegeMessage(t *table) string {
	priv := uuid.NewSHA1(uuid.NameSpaceOID, []byte("prvRead"+t.schemaName)).String()
	return fmt.Sprintf("Principal user (Id=%s, type=8, roleCount=1, privilegeCount=%d, accessMode=0), is missing prvRead%s privilege (Id=%s) on OTC=%d for entity '%s'. context.Caller=%s",
		DefaultUserID, 431, t.schemaName, priv, t.otc, t.name, DefaultUserID)
}

// serveServiceDocument lists the entity sets and function imports.
func (s *Server) serveServiceDocument(w http.ResponseWriter) {
	var vals []object
	for _, t := range s.data.order {
		vals = append(vals, object{{"name", t.set}, {"kind", "EntitySet"}, {"url", t.set}})
	}
	if c := s.data.model.Container; c != nil {
		for _, f := range c.FunctionImports {
			vals = append(vals, object{{"name", f.Name}, {"kind", "FunctionImport"}, {"url", f.Name}})
		}
	}
	writeOData(w, http.StatusOK, object{{"@odata.context", s.url + webAPIPrefix + "$metadata"}, {"value", vals}})
}
