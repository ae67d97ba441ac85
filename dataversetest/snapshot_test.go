package dataversetest

import (
	"testing"

	"github.com/dvgate/dvgate/testdata"
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
