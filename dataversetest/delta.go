package dataversetest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Change tracking (PAD use-change-tracking-synchronize-data-external-
// systems.md, wire facts §4.2): a collection request with Prefer:
// odata.track-changes answers every row and an @odata.deltaLink; GETting
// that link answers the rows created or changed since (in full, selected
// columns), then the deleted ones as $deletedEntity, and a new deltaLink.
// $filter, $orderby, $expand and $top are rejected with the documented
// text. The token is "<version>!<date>" like the real one; rows changed
// after it have a higher version.
//
// Paging ("pages hold 5,000 rows", §4.2): like any collection, an answer
// holds at most the page size (Options.PageSize or odata.maxpagesize) and
// an @odata.nextLink; the deltaLink comes with the last page only. The
// pages of one answer are the changes up to the version of its first page:
// a row changed while a client pages drops out of the later pages and comes
// with the next delta, so nothing is skipped or answered twice.
//
// Tokens expire after Options.ChangeTrackingExpiry (7 days, the default
// of organization.ExpireChangeTrackingInDays). A table listed in
// Options.UntrackedTables has ChangeTrackingEnabled false: see
// serveUntracked.

// defaultTrackingExpiry is ExpireChangeTrackingInDays' default (§4.2).
const defaultTrackingExpiry = 7 * 24 * time.Hour

// tokenDate is the date part of a $deltatoken ("919042!08/22/2017 08:10:44").
const tokenDate = "01/02/2006 15:04:05"

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

// deltaItem is one entry of a delta answer: a row, or a tombstone.
type deltaItem struct {
	r       *row
	id      string
	version int64
	deleted bool
}

// serveDelta answers a change-tracking request on t (q.delta "" = the
// initial request).
func (s *Server) serveDelta(w http.ResponseWriter, r *http.Request, t *table, q *queryOpts, rn *render, pairs [][2]string) {
	if s.untracked[t.name] {
		s.serveUntracked(w, r, t, q, rn, pairs)
		return
	}
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
		v, date, _ := strings.Cut(q.delta, "!")
		n, err := strconv.ParseInt(v, 10, 64)
		issued, derr := time.Parse(tokenDate, date)
		if err != nil || n < 0 || derr != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "dataversetest: the $deltatoken is not valid.")
			return
		}
		if s.clock().UTC().Sub(issued) > s.trackingExpiry {
			// The real text is not in the shared facts ("older unprocessed
			// changes throw"): this one is the simulator's own, and says
			// what a client must do.
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
				"dataversetest: the $deltatoken has expired: it is older than the organization's change tracking retention (ExpireChangeTrackingInDays, %v). Request the table again with Prefer: odata.track-changes.",
				s.trackingExpiry))
			return
		}
		since = n
	}
	// The answer's upper bound, and where the previous page ended.
	upto := s.data.version
	var after deltaItem
	afterSet := false
	for _, kv := range pairs {
		if kv[0] != "$skiptoken" {
			continue
		}
		ok := false
		if f := strings.Split(kv[1], "!"); len(f) == 4 {
			u, e1 := strconv.ParseInt(f[0], 10, 64)
			av, e2 := strconv.ParseInt(f[2], 10, 64)
			if e1 == nil && e2 == nil && (f[1] == "r" || f[1] == "d") {
				upto, after, afterSet, ok = u, deltaItem{id: f[3], version: av, deleted: f[1] == "d"}, true, true
			}
		}
		if !ok {
			writeError(w, http.StatusBadRequest, codeBadRequest, "dataversetest: the $skiptoken is not valid.")
			return
		}
	}
	ctx := rn.base + "$metadata#" + t.set + contextProjection(q)
	if since >= 0 {
		ctx += "/$delta"
	}
	// New and updated rows first, deletions last (§4.2), each in version
	// order so that a page can resume after the last item it answered.
	var items []deltaItem
	for _, r := range t.rows {
		if r.version > since && r.version <= upto {
			items = append(items, deltaItem{r: r, id: r.vals[t.key].(string), version: r.version})
		}
	}
	if since >= 0 {
		for _, tb := range t.tombs {
			if tb.version > since && tb.version <= upto {
				items = append(items, deltaItem{id: tb.id, version: tb.version, deleted: true})
			}
		}
	}
	order := func(a, b deltaItem) int {
		if a.deleted != b.deleted {
			if a.deleted {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.version, b.version), strings.Compare(a.id, b.id))
	}
	slices.SortFunc(items, order)
	if afterSet {
		i, _ := slices.BinarySearchFunc(items, after, order)
		if i < len(items) && order(items[i], after) == 0 {
			i++
		}
		items = items[i:]
	}
	size := rn.pageSize
	page := items[:min(size, len(items))]
	vals := make([]any, 0, len(page))
	for _, it := range page {
		if it.deleted {
			vals = append(vals, object{{"@odata.context", rn.base + "$metadata#" + t.set + "/$deletedEntity"}, {"id", it.id}, {"reason", "deleted"}})
		} else {
			vals = append(vals, rn.renderRow(t, it.r, q))
		}
	}
	var opts []string
	for _, kv := range pairs {
		if kv[0] != "$deltatoken" && kv[0] != "$skiptoken" {
			opts = append(opts, kv[0]+"="+escapeQueryValue(kv[1]))
		}
	}
	body := object{{"@odata.context", ctx}}
	if len(page) < len(items) {
		last := page[len(page)-1]
		phase := "r"
		if last.deleted {
			phase = "d"
		}
		next := append(slices.Clone(opts), "$skiptoken="+escapeLower(fmt.Sprintf("%d!%s!%d!%s", upto, phase, last.version, last.id)))
		if q.delta != "" {
			next = append(next, "$deltatoken="+escapeLower(q.delta))
		}
		body = append(body, member{"@odata.nextLink", rn.base + t.set + "?" + strings.Join(next, "&")})
	} else {
		token := strconv.FormatInt(upto, 10) + "!" + s.clock().UTC().Format(tokenDate)
		opts = append(opts, "$deltatoken="+escapeLower(token))
		body = append(body, member{"@odata.deltaLink", rn.base + t.set + "?" + strings.Join(opts, "&")})
	}
	body = append(body, member{"value", vals})
	w.Header().Set("Preference-Applied", "odata.track-changes")
	writeOData(w, http.StatusOK, body)
}

// serveUntracked answers a change-tracking request on a table whose
// ChangeTrackingEnabled is false. What Dataverse answers then is not in the
// shared facts. The simulator follows OData's rule for preferences a
// service does not apply (OData 4.01 Protocol §8.2.8: a Prefer header is a
// hint, and Preference-Applied names only what was applied): the initial
// request is a plain collection answer, without Preference-Applied and
// without a deltaLink, so a client that needs the feed must check for the
// deltaLink. A $deltatoken on such a table (a token from elsewhere) is
// refused with the simulator's own message.
func (s *Server) serveUntracked(w http.ResponseWriter, r *http.Request, t *table, q *queryOpts, rn *render, pairs [][2]string) {
	if q.delta != "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
			"dataversetest: change tracking is not enabled for the %s table (EntityMetadata.ChangeTrackingEnabled is false): a $deltatoken cannot be used.", t.name))
		return
	}
	rn.navURL = true
	s.serveCollection(w, r, t, nil, q, rn, 0, nil, pairs)
}
