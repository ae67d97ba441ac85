package dataversetest

import (
	"strings"
	"testing"

	"github.com/dvgate/dvgate/testdata"
	"github.com/google/go-cmp/cmp"
)

// TestDefaultDataShared checks that servers with the default schema share one
// parsed dataset (so starting many is cheap) and that other inputs get their own.
func TestDefaultDataShared(t *testing.T) {
	t.Parallel()
	a := newTestServer(t, Options{})
	b := newTestServer(t, Options{ClientSecret: "other"})
	if a.data != b.data {
		t.Error("two default servers built separate datasets")
	}
	e1 := newTestServer(t, Options{Seed: EmptySeed})
	e2 := newTestServer(t, Options{Seed: []byte(`{"tables":{}}`)})
	if e1.data != e2.data || e1.data == a.data {
		t.Error("empty-seed servers do not share their own dataset")
	}
	if len(e1.data.tables["contact"].rows) != 0 || len(a.data.tables["contact"].rows) == 0 {
		t.Error("the shared datasets hold the wrong rows")
	}
	c := newTestServer(t, Options{CSDL: testdata.OrgCSDL()})
	if c.data == a.data {
		t.Error("a server with its own CSDL reused the default dataset")
	}
}

// A snapshot, used as a seed, gives back the same rows, writes included.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	tok := secretToken(t, s)
	if r := send(t, s, tok, "POST", "contacts", `{"firstname":"Snap","lastname":"Shot","emailaddress1":"snap@example.com"}`); r.status != 204 {
		t.Fatal(r.body)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s2 := newTestServer(t, Options{Seed: snap})
	tok2 := secretToken(t, s2)
	for _, path := range []string{
		q("contacts", "$filter", "emailaddress1 eq 'snap@example.com'", "$select", "fullname,versionnumber"),
		q("salesorders", "$select", "totalamount,requestdeliveryby,_customerid_value", "$expand", "order_details($select=quantity)"),
	} {
		a, b := get(t, s, tok, path, "Prefer", `odata.include-annotations="*"`), get(t, s2, tok2, path, "Prefer", `odata.include-annotations="*"`)
		if a.status != 200 || b.body != strings.ReplaceAll(a.body, s.URL(), s2.URL()) {
			t.Errorf("%s differs after a snapshot round trip:\n%s", path, cmp.Diff(strings.ReplaceAll(a.body, s.URL(), s2.URL()), b.body))
		}
	}
}
