package gateway

import (
	"context"
	"testing"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/google/go-cmp/cmp"
)

// join-tables.md (wire facts §1.7, §11.3): the order query has a nested
// $expand, so Dataverse pages the expanded order_details and links the rest
// with order_details@odata.nextLink. The simulator pages at Options.PageSize
// rows; with one line per page the demo order's three lines span three
// pages, and the gateway must still return all of them.
func TestSimOrderLinesSpanPages(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{demoOrder, demoID} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, dataversetest.Options{PageSize: 1}, Config{})
			got, _, err := e.g.Order(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			type line struct {
				N       int
				Product string
				WriteIn bool
			}
			var lines []line
			for _, l := range got.Lines {
				p := ""
				if l.Product != nil {
					p = l.Product.SKU
				}
				lines = append(lines, line{l.Number, p, l.WriteIn})
			}
			want := []line{{1, "SKU-GAS-104", false}, {2, "SKU-GAS-105", false}, {3, "", true}}
			if diff := cmp.Diff(want, lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			var paths []string
			for _, r := range e.webRequests() {
				paths = append(paths, r.Path)
			}
			first := "/api/data/v9.2/salesorders"
			if ref == demoID {
				first += "(" + demoID + ")"
			}
			next := "/api/data/v9.2/salesorders(" + demoID + ")/order_details"
			if diff := cmp.Diff([]string{first, next, next}, paths); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}
