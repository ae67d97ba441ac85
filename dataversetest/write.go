package dataversetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Writes (create-entity-web-api.md, update-delete-entities-using-web-api.md,
// perform-conditional-operations-using-web-api.md):
//
//	POST   contacts               create: 204 + OData-EntityId, or 201 with the
//	                              row when Prefer: return=representation
//	PATCH  contacts(<key>)        update, or create when absent (upsert);
//	                              If-Match: * = update only (404 when absent),
//	                              If-Match: W/"v" = update only that version (412),
//	                              If-None-Match: * = create only (412 when present)
//	DELETE contacts(<key>)        204; If-Match as for PATCH
//
// Every write stamps modifiedon (createdon on create) from the server clock
// and gives the row a new versionnumber, which is its @odata.etag.
// Lookups are set with "<single-valued nav>@odata.bind": "/accounts(<id>)".

// maxWriteBody bounds a create/update body.
const maxWriteBody = 4 << 20

// codeVersionMismatch is the 412 for an If-Match with an old etag
// (perform-conditional-operations-using-web-api.md).
const codeVersionMismatch = "0x80060882"

// ensureOwned gives the server its private, writable dataset. The caller
// holds s.dmu exclusively.
func (s *Server) ensureOwned() error {
	if s.owned {
		return nil
	}
	d, err := buildDataset(s.opts)
	if err != nil {
		return err
	}
	s.data, s.owned = d, true
	return nil
}

// serveWrite handles POST, PATCH and DELETE on entity sets and records.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, path string) {
	body, err := readWriteBody(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if err := s.ensureOwned(); err != nil {
		writeError(w, http.StatusInternalServerError, "0x80040216", "dataversetest: "+err.Error())
		return
	}
	s.writeLocked(w, r, path, body, nil)
}

// readWriteBody decodes a create/update body (nil for DELETE).
func readWriteBody(r *http.Request) (map[string]any, error) {
	if r.Method == http.MethodDelete {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxWriteBody+1))
	if err != nil || len(raw) > maxWriteBody {
		return nil, &apiError{http.StatusRequestEntityTooLarge, codeBadRequest, "The request body is too large or could not be read."}
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil, &apiError{http.StatusBadRequest, codeBadRequest, "The request body is not a JSON object: " + errText(err)}
	}
	return body, nil
}

// undoLog records how to undo the writes of a change set, newest last.
type undoLog []func()

func (u *undoLog) add(f func()) {
	if u != nil {
		*u = append(*u, f)
	}
}

// rollback undoes the logged writes, newest first.
func (u undoLog) rollback() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// writeLocked performs one write. The caller holds s.dmu exclusively on an
// owned dataset; undo (nil outside change sets) records how to revert it.
func (s *Server) writeLocked(w http.ResponseWriter, r *http.Request, path string, body map[string]any, undo *undoLog) {
	d := s.data
	setName, keyPart, hasKey := strings.Cut(path, "(")
	if i := strings.IndexByte(setName, '/'); i >= 0 {
		writeAPIError(w, segmentNotFound(setName[:i]))
		return
	}
	t := d.sets[setName]
	if t == nil {
		writeAPIError(w, segmentNotFound(setName))
		return
	}
	if hasKey {
		k, ok := strings.CutSuffix(keyPart, ")")
		if !ok {
			// a path below the record: a navigation or a single property
			writeError(w, http.StatusMethodNotAllowed, codeBadRequest, "dataversetest: writes are supported on entity sets and records only.")
			return
		}
		keyPart = k
	}
	pairs, err := queryPairs(r.URL.RawQuery)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	count := 0
	q, err := d.parseOptions(t, pairs, 0, &count)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	representation := preferReturnRepresentation(r.Header)

	switch {
	case r.Method == http.MethodPost && !hasKey:
		rec, err := s.create(t, "", nil, body, undo)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		s.writeWritten(w, t, rec, q, representation, http.StatusCreated)
	case r.Method == http.MethodPatch && hasKey:
		rec, err := d.lookupKey(t, keyPart)
		var ae *apiError
		if err != nil && !(asAPIError(err, &ae) && ae.status == http.StatusNotFound) {
			writeAPIError(w, err)
			return
		}
		if err := checkPreconditions(r.Header, rec, t, keyPart); err != nil {
			writeAPIError(w, err)
			return
		}
		status := http.StatusOK
		if rec == nil { // upsert creates
			id, alt, kerr := d.keyValues(t, keyPart)
			if kerr != nil {
				writeAPIError(w, kerr)
				return
			}
			rec, err = s.create(t, id, alt, body, undo)
			status = http.StatusCreated
		} else {
			vals, targets, version := rec.vals, rec.targets, rec.version
			if err = s.update(t, rec, body); err == nil {
				updated := rec
				undo.add(func() {
					t.unindex(updated)
					updated.vals, updated.targets, updated.version = vals, targets, version
					t.index(updated)
				})
			}
		}
		if err != nil {
			writeAPIError(w, err)
			return
		}
		s.writeWritten(w, t, rec, q, representation, status)
	case r.Method == http.MethodDelete && hasKey:
		rec, err := d.lookupKey(t, keyPart)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		if err := checkPreconditions(r.Header, rec, t, keyPart); err != nil {
			writeAPIError(w, err)
			return
		}
		t.remove(rec)
		// A tombstone for change tracking: deletions are reported by the
		// next delta with a version after the token.
		d.version += 17
		t.tombs = append(t.tombs, tombstone{id: rec.vals[t.key].(string), version: d.version})
		undo.add(func() {
			t.tombs = t.tombs[:len(t.tombs)-1]
			t.insert(rec)
		})
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, codeBadRequest, fmt.Sprintf("The HTTP method '%s' is not allowed on '%s'.", r.Method, path))
	}
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

func asAPIError(err error, target **apiError) bool {
	ae, ok := err.(*apiError)
	if ok {
		*target = ae
	}
	return ok
}

// checkPreconditions applies If-Match / If-None-Match to a write on rec
// (nil = the record does not exist).
func checkPreconditions(h http.Header, rec *row, t *table, key string) error {
	if im := h.Get("If-Match"); im != "" {
		if rec == nil {
			return &apiError{http.StatusNotFound, "0x80040217", fmt.Sprintf("%s With Id = %s Does Not Exist", t.name, strings.ToLower(key))}
		}
		if !etagMatches(im, fmt.Sprintf(`W/"%d"`, rec.version)) {
			return &apiError{http.StatusPreconditionFailed, codeVersionMismatch, "The version of the existing record doesn't match the RowVersion property provided."}
		}
	}
	if inm := h.Get("If-None-Match"); inm == "*" && rec != nil {
		return &apiError{http.StatusPreconditionFailed, "0x80040237", "A record with matching key values already exists."}
	}
	return nil
}

// preferReturnRepresentation reads Prefer: return=representation.
func preferReturnRepresentation(h http.Header) bool {
	for _, line := range h.Values("Prefer") {
		for _, p := range splitPrefer(line) {
			if strings.TrimSpace(p) == "return=representation" {
				return true
			}
		}
	}
	return false
}

// writeWritten answers a successful create or update: 204 with
// OData-EntityId, or with return=representation the row (201 for a create,
// 200 for an update) in the projection of $select/$expand.
func (s *Server) writeWritten(w http.ResponseWriter, t *table, rec *row, q *queryOpts, representation bool, status int) {
	id := rec.vals[t.key].(string)
	w.Header().Set("OData-EntityId", s.url+webAPIPrefix+t.set+"("+id+")")
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, rec.version))
	if !representation {
		setODataVersion(w.Header())
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rn := &render{d: s.data, base: s.url + webAPIPrefix, pageSize: s.pageSize}
	body := object{{"@odata.context", rn.base + "$metadata#" + t.set + contextProjection(q) + "/$entity"}}
	body = append(body, rn.renderRow(t, rec, q)...)
	w.Header().Set("Preference-Applied", "return=representation")
	writeOData(w, status, body)
}

// keyValues returns the id, or the alternate-key column values, of a key
// segment, for an upsert that creates.
func (d *dataset) keyValues(t *table, k string) (id string, alt map[string]any, err error) {
	if isGUID(k) {
		return strings.ToLower(k), nil, nil
	}
	parts, err := splitTop(k, ',')
	if err != nil {
		return "", nil, err
	}
	alt = map[string]any{}
	for _, p := range parts {
		c, v, _ := strings.Cut(p, "=")
		c, v = strings.TrimSpace(c), strings.TrimSpace(v)
		if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
			alt[c] = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		} else {
			alt[c] = json.Number(v)
		}
	}
	if id, ok := alt[t.key].(string); ok && len(alt) == 1 {
		return strings.ToLower(id), nil, nil
	}
	return "", alt, nil
}

// create inserts a row from a request body; id "" = a new GUID (or the key
// in the body). A deep insert (create-entity-web-api.md, "Create related
// table rows in one operation": a single-valued navigation property with an
// object, a collection one with an array of objects) creates the related
// rows too, all or nothing. Every row created is logged in undo (may be
// nil). The caller holds s.dmu exclusively on an owned dataset.
func (s *Server) create(t *table, id string, alt, body map[string]any, undo *undoLog) (*row, error) {
	var local undoLog
	r, err := s.createRow(t, id, alt, body, &local)
	if err != nil {
		local.rollback()
		return nil, err
	}
	if undo != nil {
		*undo = append(*undo, local...)
	}
	return r, nil
}

func (s *Server) createRow(t *table, id string, alt, body map[string]any, undo *undoLog) (*row, error) {
	r := &row{vals: map[string]any{}, targets: map[string]string{}}
	if err := s.apply(t, r, alt, nil); err != nil {
		return nil, err
	}
	deep := map[*navInfo][]map[string]any{}
	if err := s.apply(t, r, body, func(n *navInfo, v any) error {
		if !n.collection {
			obj, ok := v.(map[string]any)
			if !ok || n.target == nil || n.lookupCol == "" {
				return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The value of the navigation property '%s' must be an object.", n.name)}
			}
			child, err := s.createRow(n.target, "", nil, obj, undo)
			if err != nil {
				return err
			}
			r.vals[n.lookupCol] = child.vals[n.target.key]
			r.targets[n.lookupCol] = n.target.name
			return nil
		}
		arr, ok := v.([]any)
		if !ok || n.target == nil || n.partnerCol == "" {
			return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The value of the navigation property '%s' must be an array of objects.", n.name)}
		}
		for _, x := range arr {
			obj, ok := x.(map[string]any)
			if !ok {
				return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The value of the navigation property '%s' must be an array of objects.", n.name)}
			}
			deep[n] = append(deep[n], obj)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if v, ok := r.vals[t.key].(string); ok && id == "" {
		id = v
	}
	if id == "" {
		id = uuid.NewString()
	}
	if t.byKey[id] != nil {
		return nil, &apiError{http.StatusPreconditionFailed, "0x80040237", "A record with matching key values already exists."}
	}
	r.vals[t.key] = id
	now := s.clock().UTC().Truncate(1e9)
	for col, v := range map[string]any{"createdon": now, "statecode": int64(0), "statuscode": int64(1)} {
		if t.colByName[col] != nil && r.vals[col] == nil {
			r.vals[col] = v
		}
	}
	s.stamp(t, r)
	t.insert(r)
	undo.add(func() { t.remove(r) })
	for n, children := range deep {
		// The children point back through the single-valued navigation
		// that sets the partner lookup to this table.
		back := ""
		for _, cn := range n.target.navs {
			if !cn.collection && cn.lookupCol == n.partnerCol && (cn.target == nil || cn.target == t) {
				back = cn.name
				break
			}
		}
		if back == "" {
			return nil, &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("dataversetest: no navigation property of %s refers back to %s.", n.target.name, t.name)}
		}
		for _, obj := range children {
			withParent := make(map[string]any, len(obj)+1)
			for k, v := range obj {
				withParent[k] = v
			}
			withParent[back+"@odata.bind"] = "/" + t.set + "(" + id + ")"
			if _, err := s.createRow(n.target, "", nil, withParent, undo); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// update changes a row in place. The caller holds s.dmu exclusively on an
// owned dataset.
func (s *Server) update(t *table, r *row, body map[string]any) error {
	next := &row{vals: make(map[string]any, len(r.vals)), targets: make(map[string]string, len(r.targets))}
	for k, v := range r.vals {
		next.vals[k] = v
	}
	for k, v := range r.targets {
		next.targets[k] = v
	}
	if err := s.apply(t, next, body, nil); err != nil {
		return err
	}
	if next.vals[t.key] != r.vals[t.key] {
		return &apiError{http.StatusBadRequest, codeBadRequest, "The primary key of a record cannot be changed."}
	}
	t.unindex(r)
	r.vals, r.targets = next.vals, next.targets
	s.stamp(t, r)
	t.index(r)
	return nil
}

// stamp sets modifiedon and a new version.
func (s *Server) stamp(t *table, r *row) {
	if t.colByName["modifiedon"] != nil {
		r.vals["modifiedon"] = s.clock().UTC().Truncate(1e9)
	}
	if t.colByName["fullname"] != nil && (r.vals["firstname"] != nil || r.vals["lastname"] != nil) {
		f, _ := r.vals["firstname"].(string)
		l, _ := r.vals["lastname"].(string)
		r.vals["fullname"] = strings.TrimSpace(f + " " + l)
	}
	s.data.version += 17
	r.version = s.data.version
	if t.colByName["versionnumber"] != nil {
		r.vals["versionnumber"] = r.version
	}
}

// apply sets the body's columns and @odata.bind lookups on r. deep handles
// navigation properties given inline (a deep insert); nil = not allowed
// (an update).
func (s *Server) apply(t *table, r *row, body map[string]any, deep func(n *navInfo, v any) error) error {
	names := make([]string, 0, len(body))
	for k := range body {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := body[k]
		if navName, ok := strings.CutSuffix(k, "@odata.bind"); ok {
			if err := s.bind(t, r, navName, v); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(k, "@") || strings.Contains(k, "@") {
			continue // annotations (e.g. @odata.type, @odata.etag) are ignored
		}
		if n := t.navs[k]; n != nil && t.colByName[k] == nil {
			if deep == nil {
				return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("dataversetest: related rows ('%s') can be created only with the row (deep insert), not in an update.", k)}
			}
			if err := deep(n, v); err != nil {
				return err
			}
			continue
		}
		c := t.colByName[k]
		if c == nil || c.lookup != nil {
			// Lookups are set through their navigation property with
			// @odata.bind; the "_x_value" property is read-only. The text is
			// guessed (SUPPORT.md).
			return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
				"The property '%s' does not exist on type '%s'. Make sure to only use property names that are defined by the type.", k, t.qualified)}
		}
		val, err := convertSeedValue(c, v)
		if err != nil {
			return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Cannot convert the literal '%v' to the expected type '%s'.", v, c.edm)}
		}
		r.vals[k] = val
	}
	return nil
}

// bind sets a lookup from "<nav>@odata.bind": "/accounts(<id>)" (or the
// full URL, or null to clear it).
func (s *Server) bind(t *table, r *row, navName string, v any) error {
	n := t.navs[navName]
	if n == nil || n.collection || n.lookupCol == "" {
		return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("An undeclared property '%s' which only has property annotations in the payload but no property value was found in the payload.", navName)}
	}
	if v == nil {
		delete(r.vals, n.lookupCol)
		delete(r.targets, n.lookupCol)
		return nil
	}
	ref, ok := v.(string)
	if !ok {
		return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The value of '%s@odata.bind' must be a URL.", navName)}
	}
	if u, err := url.Parse(ref); err == nil && u.IsAbs() {
		ref = u.Path
	}
	ref = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(ref, "/api/data/v9.2"), "/"), "/")
	setName, key, _ := strings.Cut(strings.TrimSuffix(ref, ")"), "(")
	tt := s.data.sets[setName]
	if tt == nil {
		return segmentNotFound(setName)
	}
	if n.target != nil && n.target != tt {
		return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The navigation property '%s' cannot refer to a %s.", navName, tt.name)}
	}
	target, err := s.data.lookupKey(tt, key)
	if err != nil {
		return err
	}
	r.vals[n.lookupCol] = target.vals[tt.key]
	r.targets[n.lookupCol] = tt.name
	return nil
}

// insert adds r in key order and indexes it.
func (t *table) insert(r *row) {
	id := r.vals[t.key].(string)
	i, _ := slices.BinarySearchFunc(t.rows, id, func(x *row, k string) int { return strings.Compare(x.vals[t.key].(string), k) })
	t.rows = slices.Insert(t.rows, i, r)
	for j := i; j < len(t.rows); j++ {
		t.rows[j].pos = j
	}
	t.byKey[id] = r
	t.index(r)
}

// remove deletes r and its index entries.
func (t *table) remove(r *row) {
	t.unindex(r)
	delete(t.byKey, r.vals[t.key].(string))
	i := r.pos
	t.rows = slices.Delete(t.rows, i, i+1)
	for j := i; j < len(t.rows); j++ {
		t.rows[j].pos = j
	}
}

// index adds r to the lookup and string indexes.
func (t *table) index(r *row) {
	for col, idx := range t.lookIdx {
		if id, ok := r.vals[col].(string); ok {
			idx[id] = append(idx[id], r)
		}
	}
	for col, idx := range t.strIdx {
		if s, ok := r.vals[col].(string); ok {
			k := strings.ToLower(s)
			idx[k] = append(idx[k], r)
		}
	}
}

// unindex removes r from the lookup and string indexes.
func (t *table) unindex(r *row) {
	drop := func(list []*row) []*row {
		return slices.DeleteFunc(slices.Clone(list), func(x *row) bool { return x == r })
	}
	for col, idx := range t.lookIdx {
		if id, ok := r.vals[col].(string); ok {
			idx[id] = drop(idx[id])
		}
	}
	for col, idx := range t.strIdx {
		if s, ok := r.vals[col].(string); ok {
			k := strings.ToLower(s)
			idx[k] = drop(idx[k])
		}
	}
}
