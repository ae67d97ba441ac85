package dataversetest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Change tracking (PAD use-change-tracking-synchronize-data-external-
// systems.md, wire facts §4.2): a collection request with Prefer:
// odata.track-changes answers every row and an @odata.deltaLink; GETting
// that link answers the rows created or changed since (in full, selected
// columns), then the deleted ones as $deletedEntity, and a new deltaLink.
// $filter, $orderby, $expand and $top are rejected with the documented
// text. The token is "<version>!<date>" like the real one; rows changed
// after it have a higher version. Deltas are not paged.

// wantsTracking reads Prefer: odata.track-changes.
func wantsTracking(h http.Header) bool {
	for _, line := range h.Values("Prefer") {
		for _, p := range splitPrefer(line) {
			if strings.TrimSpace(p) == "odata.track-changes" {
				return true
			}
		}
	}
	return false
}

// serveDelta answers a change-tracking request on t (q.delta "" = the
// initial request).
func (s *Server) serveDelta(w http.ResponseWriter, t *table, q *queryOpts, rn *render, pairs [][2]string) {
	for _, bad := range []struct {
		name string
		used bool
	}{{"filter", q.filter != nil}, {"orderby", q.orderby != nil}, {"expand", q.expands != nil}, {"top", q.top >= 0}} {
		if bad.used {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf(`The "$%s" query parameter isn't supported when Change Tracking is enabled.`, bad.name))
			return
		}
	}
	since := int64(-1)
	if q.delta != "" {
		v, _, _ := strings.Cut(q.delta, "!")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, "dataversetest: the $deltatoken is not valid.")
			return
		}
		since = n
	}
	ctx := rn.base + "$metadata#" + t.set + contextProjection(q)
	if since >= 0 {
		ctx += "/$delta"
	}
	vals := []any{}
	for _, r := range t.rows {
		if r.version > since {
			vals = append(vals, rn.renderRow(t, r, q))
		}
	}
	if since >= 0 {
		for _, tb := range t.tombs {
			if tb.version > since {
				vals = append(vals, object{{"@odata.context", rn.base + "$metadata#" + t.set + "/$deletedEntity"}, {"id", tb.id}, {"reason", "deleted"}})
			}
		}
	}
	var opts []string
	for _, kv := range pairs {
		if kv[0] != "$deltatoken" && kv[0] != "$skiptoken" {
			opts = append(opts, kv[0]+"="+escapeQueryValue(kv[1]))
		}
	}
	token := strconv.FormatInt(s.data.version, 10) + "!" + s.clock().UTC().Format("01/02/2006 15:04:05")
	opts = append(opts, "$deltatoken="+escapeLower(token))
	w.Header().Set("Preference-Applied", "odata.track-changes")
	writeOData(w, http.StatusOK, object{
		{"@odata.context", ctx},
		{"@odata.deltaLink", rn.base + t.set + "?" + strings.Join(opts, "&")},
		{"value", vals},
	})
}
