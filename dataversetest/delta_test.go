package dataversetest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// use-change-tracking-synchronize-data-external-systems.md (wire facts
// §4.2): Prefer: odata.track-changes, @odata.deltaLink, changed rows then
// $deletedEntity records, and the documented rejection of $filter.
func TestChangeTracking(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Clock: newFakeClock().Now})
	tok := secretToken(t, s)
	r := get(t, s, tok, q("accounts", "$select", "name"), "Prefer", "odata.track-changes")
	m := decode(t, r.body)
	all := m["value"].([]any)
	link, _ := m["@odata.deltaLink"].(string)
	if r.status != 200 || len(all) != 20 || r.header.Get("Preference-Applied") != "odata.track-changes" ||
		!strings.Contains(link, "$deltatoken=") || !strings.Contains(link, "%2103%2f02%2f2026%2009%3a00%3a00") {
		t.Fatalf("initial: %d, %d rows, link %q", r.status, len(all), link)
	}
	if !strings.HasPrefix(r.body, `{"@odata.context":"`+s.URL()+`/api/data/v9.2/$metadata#accounts(name)","@odata.deltaLink":`) {
		t.Errorf("member order: %.150s", r.body)
	}
	id := func(i int) string { return all[i].(map[string]any)["accountid"].(string) }
	if r := send(t, s, tok, "PATCH", "accounts("+id(3)+")", `{"name":"Renamed"}`); r.status != 204 {
		t.Fatal(r.body)
	}
	if r := send(t, s, tok, "DELETE", "accounts("+id(5)+")", ""); r.status != 204 {
		t.Fatal(r.body)
	}
	r = get(t, s, tok, strings.TrimPrefix(link, s.URL()+"/api/data/v9.2/"))
	m = decode(t, r.body)
	var got []string
	for _, v := range m["value"].([]any) {
		o := v.(map[string]any)
		if o["reason"] == "deleted" {
			got = append(got, "deleted "+o["id"].(string))
		} else {
			got = append(got, o["name"].(string))
		}
	}
	if diff := cmp.Diff([]string{"Renamed", "deleted " + id(5)}, got); diff != "" || !strings.HasSuffix(m["@odata.context"].(string), "#accounts(name)/$delta") {
		t.Errorf("delta %s (-want +got):\n%s", m["@odata.context"], diff)
	}
	next := strings.TrimPrefix(m["@odata.deltaLink"].(string), s.URL()+"/api/data/v9.2/")
	if r := get(t, s, tok, next); len(decode(t, r.body)["value"].([]any)) != 0 {
		t.Errorf("nothing changed since: %s", r.body)
	}
	r = get(t, s, tok, q("accounts", "$select", "name", "$filter", "statecode eq 0"), "Prefer", "odata.track-changes")
	if r.status != 400 || !strings.Contains(r.body, `The \"$filter\" query parameter isn't supported when Change Tracking is enabled.`) {
		t.Errorf("$filter with track-changes: %d %s", r.status, r.body)
	}
}

// Wire facts §4.2: every option the doc names is refused with its text.
func TestChangeTrackingRefusedOptions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Clock: newFakeClock().Now})
	tok := secretToken(t, s)
	for _, tc := range []struct{ opt, val string }{
		{"$filter", "statecode eq 0"}, {"$orderby", "name"}, {"$expand", "primarycontactid($select=fullname)"}, {"$top", "3"},
	} {
		r := get(t, s, tok, q("accounts", "$select", "name", tc.opt, tc.val), "Prefer", "odata.track-changes")
		want := `The \"` + tc.opt + `\" query parameter isn't supported when Change Tracking is enabled.`
		if r.status != 400 || !strings.Contains(r.body, want) {
			t.Errorf("%s: %d %s", tc.opt, r.status, r.body)
		}
	}
}

// Wire facts §4.2: "pages hold 5,000 rows"; the deltaLink comes after the
// last page, and a row changed while the client pages is answered once,
// in the next delta.
func TestChangeTrackingPaging(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Clock: newFakeClock().Now, PageSize: 6})
	tok := secretToken(t, s)
	link := q("accounts", "$select", "name")
	hdr := []string{"Prefer", "odata.track-changes"}
	seen := map[string]int{}
	var delta string
	for pages := 0; link != ""; pages++ {
		if pages > 10 {
			t.Fatal("no end")
		}
		m := decode(t, get(t, s, tok, link, hdr...).body)
		for _, v := range m["value"].([]any) {
			seen[v.(map[string]any)["accountid"].(string)]++
		}
		if pages == 0 {
			// Change a row the next pages have not answered yet.
			ids := []string{}
			for _, r := range decode(t, get(t, s, tok, q("accounts", "$select", "accountid", "$orderby", "accountid desc")).body)["value"].([]any) {
				ids = append(ids, r.(map[string]any)["accountid"].(string))
			}
			for _, id := range ids {
				if seen[id] == 0 {
					if r := send(t, s, tok, "PATCH", "accounts("+id+")", `{"name":"Changed while paging"}`); r.status != 204 {
						t.Fatal(r.body)
					}
					break
				}
			}
		}
		next, _ := m["@odata.nextLink"].(string)
		dl, _ := m["@odata.deltaLink"].(string)
		if (next == "") == (dl == "") {
			t.Fatalf("page %d: nextLink %q, deltaLink %q: want exactly one", pages, next, dl)
		}
		link, delta = strings.TrimPrefix(next, s.URL()+"/api/data/v9.2/"), strings.TrimPrefix(dl, s.URL()+"/api/data/v9.2/")
	}
	if len(seen) != 19 {
		t.Errorf("initial pages answered %d distinct rows, want the 19 unchanged ones", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s answered %d times", id, n)
		}
	}
	var names []string
	for _, v := range decode(t, get(t, s, tok, delta).body)["value"].([]any) {
		names = append(names, v.(map[string]any)["name"].(string))
	}
	if diff := cmp.Diff([]string{"Changed while paging"}, names); diff != "" {
		t.Errorf("next delta (-want +got):\n%s", diff)
	}
}

// Wire facts §4.2: tokens are valid for ExpireChangeTrackingInDays (7 by
// default); an older one is refused and the client must start again.
func TestChangeTrackingExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		expiry  time.Duration
		advance time.Duration
		ok      bool
	}{
		{"default, 6 days", 0, 6 * 24 * time.Hour, true},
		{"default, 8 days", 0, 8 * 24 * time.Hour, false},
		{"1h, 59m", time.Hour, 59 * time.Minute, true},
		{"1h, 61m", time.Hour, 61 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			s := newTestServer(t, Options{Clock: clk.Now, ChangeTrackingExpiry: tc.expiry})
			tok := secretToken(t, s)
			m := decode(t, get(t, s, tok, q("contacts", "$select", "fullname"), "Prefer", "odata.track-changes").body)
			clk.Advance(tc.advance)
			tok = secretToken(t, s)
			r := get(t, s, tok, strings.TrimPrefix(m["@odata.deltaLink"].(string), s.URL()+"/api/data/v9.2/"))
			if got := r.status == 200; got != tc.ok || (!tc.ok && !strings.Contains(r.body, "$deltatoken has expired")) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}

// A table without change tracking: the preference is not applied (no
// Preference-Applied, no deltaLink), and a $deltatoken is refused.
func TestChangeTrackingDisabled(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Clock: newFakeClock().Now, UntrackedTables: []string{"salesorder"}})
	tok := secretToken(t, s)
	r := get(t, s, tok, q("salesorders", "$select", "name"), "Prefer", "odata.track-changes")
	m := decode(t, r.body)
	if _, has := m["@odata.deltaLink"]; r.status != 200 || has || r.header.Get("Preference-Applied") != "" || len(m["value"].([]any)) == 0 {
		t.Errorf("untracked initial: %d %q %.200s", r.status, r.header.Get("Preference-Applied"), r.body)
	}
	r = get(t, s, tok, q("salesorders", "$select", "name", "$deltatoken", "1000000!03/02/2026 09:00:00"))
	if r.status != 400 || !strings.Contains(r.body, "change tracking is not enabled for the salesorder table") {
		t.Errorf("untracked delta: %d %s", r.status, r.body)
	}
	// Other tables are still tracked.
	if r := get(t, s, tok, q("contacts", "$select", "fullname"), "Prefer", "odata.track-changes"); r.header.Get("Preference-Applied") != "odata.track-changes" {
		t.Errorf("contacts: %q", r.header.Get("Preference-Applied"))
	}
}
