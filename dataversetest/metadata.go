package dataversetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The EntityDefinitions endpoint, served from Options.EntityDefs, in the
// subset that dvgen uses (wire facts §6):
//
//	EntityDefinitions?$select=...&$filter=LogicalName eq 'a' or LogicalName eq 'b'&$expand=Attributes($select=...)
//	EntityDefinitions(LogicalName='a')?$select=...&$expand=Attributes(...)
//	EntityDefinitions(LogicalName='a')/Attributes[/Microsoft.Dynamics.CRM.<Type>AttributeMetadata]
//	    ?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)
//
// The definitions are parsed per request (only code generators ask), into
// ordered objects so that responses keep the fixture's member order.

const crmNS = "Microsoft.Dynamics.CRM."

// metaQuery is a parsed $select/$filter/$expand of a metadata request.
type metaQuery struct {
	selects []string // nil = all properties
	names   []string // $filter LogicalName eq ... or ...; nil = no filter
	expands map[string]*metaQuery
	order   []string // expand names in request order, for the context URL
}

// navProps are the navigation properties of the metadata types we serve:
// they appear only when expanded.
var navProps = map[string]bool{"Attributes": true, "OptionSet": true, "GlobalOptionSet": true,
	"Keys": true, "ManyToOneRelationships": true, "OneToManyRelationships": true, "ManyToManyRelationships": true}

func (s *Server) serveEntityDefinitions(w http.ResponseWriter, r *http.Request, rest string) {
	ents, err := parseEntityDefs(s.data.defsRaw)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "0x80040216", "dataversetest: "+err.Error())
		return
	}
	pairs, err := queryPairs(r.URL.RawQuery)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	q, err := parseMetaOptions(pairs)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	base := s.url + webAPIPrefix + "$metadata#"
	seg, sub, _ := strings.Cut(strings.TrimPrefix(rest, "EntityDefinitions"), "/")
	if seg == "" {
		if sub != "" {
			writeError(w, http.StatusBadRequest, "0x80060888", "Resource not found for the segment '"+sub+"'.")
			return
		}
		var out []object
		for _, e := range ents {
			if q.names == nil || containsFold(q.names, stringMember(e, "LogicalName")) {
				out = append(out, projectMeta(e, q, false))
			}
		}
		writeOData(w, http.StatusOK, object{{"@odata.context", base + "EntityDefinitions" + q.context()}, {"value", out}})
		return
	}
	if q.names != nil {
		writeError(w, http.StatusBadRequest, "0x80060888", "$filter is not supported when retrieving a single EntityDefinition.")
		return
	}
	ent, key, err := findEntityDef(ents, seg)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if sub == "" {
		body := object{{"@odata.context", base + "EntityDefinitions" + q.context() + "/$entity"}}
		writeOData(w, http.StatusOK, append(body, projectMeta(ent, q, false)...))
		return
	}
	nav, cast, _ := strings.Cut(sub, "/")
	if nav != "Attributes" || strings.Contains(cast, "/") || (cast != "" && !strings.HasPrefix(cast, crmNS)) {
		writeAPIError(w, segmentNotFound(sub))
		return
	}
	if cast == crmNS+"EnumAttributeMetadata" {
		writeError(w, http.StatusBadRequest, "0x80060888", "The type 'Microsoft.Dynamics.CRM.EnumAttributeMetadata' cannot be used in a cast; use a derived type.")
		return
	}
	attrs, _ := memberValue(ent, "Attributes").([]any)
	var out []object
	for _, a := range attrs {
		ao, ok := a.(object)
		if !ok {
			continue
		}
		if cast != "" && attributeType(ao) != "#"+cast {
			continue
		}
		out = append(out, projectMeta(ao, q, cast == ""))
	}
	path := "EntityDefinitions(" + key + ")/Attributes"
	if cast != "" {
		path += "/" + cast
	}
	writeOData(w, http.StatusOK, object{{"@odata.context", base + path + q.context()}, {"value", out}})
}

// attributeType is the attribute's @odata.type, derived from AttributeType
// when the fixture omits it.
func attributeType(a object) string {
	if t := stringMember(a, "@odata.type"); t != "" {
		return t
	}
	switch at := stringMember(a, "AttributeType"); at {
	case "Customer", "Owner", "Lookup":
		return "#" + crmNS + "LookupAttributeMetadata"
	case "Uniqueidentifier":
		return "#" + crmNS + "UniqueIdentifierAttributeMetadata"
	default:
		return "#" + crmNS + at + "AttributeMetadata"
	}
}

// findEntityDef resolves "(LogicalName='x')" or "(<MetadataId>)"; key is how
// the context URL names it.
func findEntityDef(ents []object, seg string) (object, string, error) {
	k, _ := strings.CutPrefix(seg, "(")
	k, ok := strings.CutSuffix(k, ")")
	if !ok || !strings.HasPrefix(seg, "(") {
		return nil, "", filterError(fmt.Sprintf("Bad Request - Error in query syntax: '%s'.", seg))
	}
	if name, ok := strings.CutPrefix(k, "LogicalName="); ok {
		name = strings.Trim(name, "'")
		for _, e := range ents {
			if strings.EqualFold(stringMember(e, "LogicalName"), name) {
				return e, "'" + stringMember(e, "LogicalName") + "'", nil
			}
		}
		return nil, "", &apiError{http.StatusNotFound, "0x80040217", fmt.Sprintf("Could not find entity with name '%s'.", name)}
	}
	for _, e := range ents {
		if strings.EqualFold(stringMember(e, "MetadataId"), k) {
			return e, stringMember(e, "MetadataId"), nil
		}
	}
	return nil, "", &apiError{http.StatusNotFound, "0x80040217", fmt.Sprintf("Could not find entity with MetadataId '%s'.", k)}
}

// projectMeta applies $select and $expand to a metadata object. MetadataId is
// always returned; navigation properties only when expanded. keepType keeps
// @odata.type (members of a collection of a base type carry it).
func projectMeta(o object, q *metaQuery, keepType bool) object {
	var out object
	for _, m := range o {
		switch {
		case m.k == "@odata.type":
			if keepType {
				out = append(out, m)
			}
		case navProps[m.k]:
		case m.k == "MetadataId" || q.selects == nil || containsFold(q.selects, m.k):
			out = append(out, m)
		}
	}
	for _, name := range q.order {
		sub := q.expands[name]
		v := memberValue(o, name)
		if name == "GlobalOptionSet" && v == nil {
			if os, ok := memberValue(o, "OptionSet").(object); ok && memberValue(os, "IsGlobal") == true {
				v = os
			}
		}
		switch v := v.(type) {
		case object:
			out = append(out, member{name, projectMeta(v, sub, false)})
		case []any:
			arr := make([]object, 0, len(v))
			for _, x := range v {
				if xo, ok := x.(object); ok {
					arr = append(arr, projectMeta(xo, sub, true))
				}
			}
			out = append(out, member{name, arr})
		default:
			out = append(out, member{name, nil})
		}
	}
	return out
}

// context renders the projection for @odata.context: "(A,B,Attributes(C))".
func (q *metaQuery) context() string {
	items := append([]string(nil), q.selects...)
	for _, name := range q.order {
		items = append(items, name+q.expands[name].context())
	}
	if len(items) == 0 {
		return ""
	}
	return "(" + strings.Join(items, ",") + ")"
}

func parseMetaOptions(pairs [][2]string) (*metaQuery, error) {
	q := &metaQuery{expands: map[string]*metaQuery{}}
	for _, kv := range pairs {
		if err := q.set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (q *metaQuery) set(k, v string) error {
	switch k {
	case "$select":
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				q.selects = append(q.selects, s)
			}
		}
	case "$filter":
		f, err := ParseFilter(v)
		if err != nil {
			return err
		}
		names, ok := logicalNames(f, nil)
		if !ok {
			return &apiError{http.StatusBadRequest, "0x80060888", "dataversetest: EntityDefinitions supports only $filter=LogicalName eq '...' [or ...]."}
		}
		q.names = names
	case "$expand":
		items, err := splitTop(v, ',')
		if err != nil {
			return err
		}
		for _, it := range items {
			name, inner, _ := strings.Cut(strings.TrimSpace(it), "(")
			if !navProps[name] {
				return &apiError{http.StatusBadRequest, "0x80060888", fmt.Sprintf("Could not find a navigation property named '%s'.", name)}
			}
			sub := &metaQuery{expands: map[string]*metaQuery{}}
			if inner != "" {
				inner, ok := strings.CutSuffix(inner, ")")
				if !ok {
					return filterError(fmt.Sprintf("Syntax error: unbalanced parentheses in '%s'.", it))
				}
				opts, err := splitTop(inner, ';')
				if err != nil {
					return err
				}
				for _, o := range opts {
					ok, ov, _ := strings.Cut(strings.TrimSpace(o), "=")
					if err := sub.set(ok, ov); err != nil {
						return err
					}
				}
			}
			if q.expands[name] == nil {
				q.order = append(q.order, name)
			}
			q.expands[name] = sub
		}
	default:
		return &apiError{http.StatusBadRequest, "0x80060888", fmt.Sprintf("The query parameter %s is not supported on metadata.", k)}
	}
	return nil
}

// logicalNames collects the names of "LogicalName eq 'a' or LogicalName eq 'b'".
func logicalNames(e Expr, out []string) ([]string, bool) {
	switch e := e.(type) {
	case Or:
		out, ok := logicalNames(e.Left, out)
		if !ok {
			return nil, false
		}
		return logicalNames(e.Right, out)
	case Compare:
		s, ok := e.Value.(string)
		if e.Column != "LogicalName" || e.Op != "eq" || !ok {
			return nil, false
		}
		return append(out, s), true
	}
	return nil, false
}

// parseEntityDefs reads {"value":[...]}, [...] or one entity into ordered objects.
func parseEntityDefs(raw []byte) ([]object, error) {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\uFEFF"))))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("EntityDefinitions: %w", err)
	}
	if o, ok := v.(object); ok {
		if vv := memberValue(o, "value"); vv != nil {
			v = vv
		} else {
			v = []any{o}
		}
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("EntityDefinitions: not a collection")
	}
	out := make([]object, 0, len(arr))
	for _, x := range arr {
		if o, ok := x.(object); ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// decodeOrdered decodes one JSON value keeping object member order.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, member{kt.(string), v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, io.ErrUnexpectedEOF
	case json.Number:
		return rawNumber(t), nil
	default:
		return t, nil // string, bool, nil
	}
}

func memberValue(o object, k string) any {
	for _, m := range o {
		if m.k == k {
			return m.v
		}
	}
	return nil
}

func stringMember(o object, k string) string {
	s, _ := memberValue(o, k).(string)
	return s
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
