package dataversetest

import (
	"strings"
	"testing"

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
