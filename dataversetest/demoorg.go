package dataversetest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	"github.com/dvgate/dvgate/testdata"
)

// CustomizedDemo returns the options of a simulator serving the demo org as
// a customised org: the schema of testdata/csdl/org-custom.xml (a custom
// text column salesorder.contoso_trackingnumber, and a custom table
// contoso_delivery) and the demo data with a tracking number on every
// submitted or fulfilled order. Other options are zero.
func CustomizedDemo() (Options, error) {
	var doc struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(testdata.DemoSeed(), &doc); err != nil {
		return Options{}, err
	}
	for _, r := range doc.Tables["salesorder"] {
		if st, _ := r["statecode"].(float64); st != 1 && st != 3 {
			continue // active or canceled orders have not shipped
		}
		num, _ := r["ordernumber"].(string)
		h := fnv.New64a()
		h.Write([]byte(num))
		r["contoso_trackingnumber"] = fmt.Sprintf("1Z999AA1%010d", h.Sum64()%1e10)
	}
	seed, err := json.Marshal(doc)
	if err != nil {
		return Options{}, err
	}
	return Options{CSDL: testdata.OrgCustomCSDL(), EntityDefs: testdata.OrgCustomEntityDefs(), Seed: seed}, nil
}
