package dataversetest

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// Snapshot returns the server's rows, writes included, as a seed document
// for Options.Seed (dvsim --data-dir saves it on exit and loads it on
// start). Deletions are not remembered for change tracking across it.
func (s *Server) Snapshot() ([]byte, error) {
	s.dmu.RLock()
	defer s.dmu.RUnlock()
	doc := seedDoc{Tables: map[string][]map[string]any{}}
	for _, t := range s.data.order {
		if len(t.rows) == 0 {
			continue
		}
		rows := make([]map[string]any, 0, len(t.rows))
		for _, r := range t.rows {
			m := make(map[string]any, len(r.vals)+len(r.targets))
			for k, v := range r.vals {
				switch x := v.(type) {
				case decimal.Decimal:
					m[k] = x.StringFixed(max(0, -x.Exponent())) // exact digits and scale
				case time.Time:
					m[k] = x.UTC().Format(time.RFC3339)
				default:
					m[k] = v
				}
			}
			for col, target := range r.targets {
				if _, ok := r.vals[col]; ok && target != "" {
					m[col+lookupLogicalNameSuffix] = target
				}
			}
			rows = append(rows, m)
		}
		doc.Tables[t.name] = rows
	}
	return json.Marshal(doc)
}
