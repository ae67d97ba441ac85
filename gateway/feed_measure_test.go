package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestFeedInitialCost measures what the follower's initial sync reads on
// an org of 100,000 orders with 3 lines each (the demo org's contacts,
// accounts and products): Dataverse refuses $top and $filter with change
// tracking (wire facts §4.2), so the first deltaLink costs one paged read
// of every tracked table, with only the key and the columns the deps need.
// It is a measurement (seconds, ~1 GB), run with DVGATE_FEED_MEASURE=1.
func TestFeedInitialCost(t *testing.T) {
	if os.Getenv("DVGATE_FEED_MEASURE") == "" {
		t.Skip("a measurement: set DVGATE_FEED_MEASURE=1 to run it")
	}
	const orders, linesPer = 100_000, 3
	raw, err := os.ReadFile("../testdata/seed/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	var seed struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	ns := uuid.MustParse("0f0e0d0c-0b0a-4908-8706-050403020100")
	for i := range orders {
		id := uuid.NewSHA1(ns, fmt.Appendf(nil, "o%d", i)).String()
		seed.Tables["salesorder"] = append(seed.Tables["salesorder"], map[string]any{
			"salesorderid": id, "ordernumber": fmt.Sprintf("ORD-9%06d", i), "name": fmt.Sprintf("Order %d", i),
			"_customerid_value": alexID, "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact"})
		for l := range linesPer {
			seed.Tables["salesorderdetail"] = append(seed.Tables["salesorderdetail"], map[string]any{
				"salesorderdetailid":  uuid.NewSHA1(ns, fmt.Appendf(nil, "l%d/%d", i, l)).String(),
				"_salesorderid_value": id, "lineitemnumber": l + 1})
		}
	}
	big, _ := json.Marshal(seed)
	e := newFeedEnv(t, dataversetest.Options{Seed: big})
	start := time.Now()
	e.poll(t)
	took := time.Since(start)
	st := e.f.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("initial sync of %d orders, %d lines: %d requests, %d rows, %.1f MB read, %v (simulator on loopback)",
		orders, orders*linesPer, st.Requests, st.InitialRows, float64(st.InitialBytes)/1e6, took.Round(time.Millisecond))
	// A later poll with nothing changed: one request per table.
	before := st.Requests
	e.poll(t)
	t.Logf("a poll with no change: %d requests", e.f.Stats().Requests-before)
}
