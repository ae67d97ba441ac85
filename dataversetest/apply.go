package dataversetest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// $apply in the subset Dataverse supports (PAD webapi/query/aggregate-data.md,
// wire facts §4.1): a chain of filter(...), groupby((cols)[,aggregate(...)])
// and aggregate(...) separated by '/', with sum, avg, min, max,
// countdistinct and $count. At most Limits.AggregateRecords (50,000) rows
// may be aggregated: more answer 0x8004E023.

type applyOpts struct {
	steps []applyStep
	// context lists the output properties, for the context URL.
	context []string
}

type applyStep struct {
	filter  Expr
	groupBy []string
	aggs    []aggSpec
}

type aggSpec struct {
	col, fn, alias string // col "" and fn "$count" for "$count as alias"
}

// codeAggregateLimit is AggregateQueryRecordLimit (wire facts §4.1).
const codeAggregateLimit = "0x8004E023"

func (d *dataset) parseApply(t *table, s string) (*applyOpts, error) {
	steps, err := splitTop(s, '/')
	if err != nil {
		return nil, err
	}
	a := &applyOpts{}
	bad := func() error { return filterError(fmt.Sprintf("Invalid $apply expression '%s'.", s)) }
	for _, raw := range steps {
		raw = strings.TrimSpace(raw)
		name, args, ok := strings.Cut(raw, "(")
		if !ok || !strings.HasSuffix(args, ")") {
			return nil, bad()
		}
		args = args[:len(args)-1]
		var st applyStep
		switch name {
		case "filter":
			e, err := ParseFilter(args)
			if err != nil {
				return nil, err
			}
			if err := d.checkFilter(t, e); err != nil {
				return nil, err
			}
			st.filter = e
		case "aggregate":
			aggs, err := d.parseAggregates(t, args)
			if err != nil {
				return nil, err
			}
			st.aggs = aggs
		case "groupby":
			parts, err := splitTop(args, ',')
			if err != nil || len(parts) == 0 || len(parts) > 2 {
				return nil, bad()
			}
			cols := strings.TrimSpace(parts[0])
			if !strings.HasPrefix(cols, "(") || !strings.HasSuffix(cols, ")") {
				return nil, bad()
			}
			for _, c := range strings.Split(cols[1:len(cols)-1], ",") {
				c = strings.TrimSpace(c)
				col := t.colByName[c]
				if col == nil {
					return nil, notFoundProperty(t, c)
				}
				if col.kind == kDateTime {
					// "groupby on datetime is not supported" (aggregate-data.md);
					// the text is the simulator's.
					return nil, filterError(fmt.Sprintf("Grouping by the datetime column '%s' is not supported; use FetchXML dategrouping.", c))
				}
				st.groupBy = append(st.groupBy, c)
			}
			if len(parts) == 2 {
				inner := strings.TrimSpace(parts[1])
				in, ok := strings.CutPrefix(inner, "aggregate(")
				if !ok || !strings.HasSuffix(in, ")") {
					return nil, bad()
				}
				if st.aggs, err = d.parseAggregates(t, in[:len(in)-1]); err != nil {
					return nil, err
				}
			}
		default:
			return nil, filterError(fmt.Sprintf("The $apply transformation '%s' is not supported.", name))
		}
		a.steps = append(a.steps, st)
	}
	for i, st := range a.steps {
		if st.filter == nil && i != len(a.steps)-1 {
			return nil, filterError("dataversetest: only filter(...) may come before the last $apply transformation.")
		}
	}
	last := a.steps[len(a.steps)-1]
	a.context = append(a.context, last.groupBy...)
	for _, ag := range last.aggs {
		a.context = append(a.context, ag.alias)
	}
	return a, nil
}

func (d *dataset) parseAggregates(t *table, s string) ([]aggSpec, error) {
	items, err := splitTop(s, ',')
	if err != nil {
		return nil, err
	}
	var out []aggSpec
	for _, it := range items {
		f := strings.Fields(it)
		switch {
		case len(f) == 3 && f[0] == "$count" && f[1] == "as":
			out = append(out, aggSpec{fn: "$count", alias: f[2]})
		case len(f) == 5 && f[1] == "with" && f[3] == "as":
			if t.colByName[f[0]] == nil {
				return nil, notFoundProperty(t, f[0])
			}
			switch f[2] {
			case "sum", "average", "min", "max", "countdistinct":
			default:
				return nil, filterError(fmt.Sprintf("The aggregation method '%s' is not supported.", f[2]))
			}
			out = append(out, aggSpec{col: f[0], fn: f[2], alias: f[4]})
		default:
			return nil, filterError(fmt.Sprintf("Invalid aggregate expression '%s'.", strings.TrimSpace(it)))
		}
	}
	return out, nil
}

// serveApply answers an aggregation over rows (already $filter-ed).
func (s *Server) serveApply(w http.ResponseWriter, t *table, rows []*row, q *queryOpts, rn *render) {
	d := s.data
	for _, st := range q.apply.steps {
		if st.filter != nil {
			out := rows[:0:0]
			for _, r := range rows {
				if d.eval(t, r, st.filter) {
					out = append(out, r)
				}
			}
			rows = out
		}
	}
	if len(rows) > s.aggregateLimit {
		writeError(w, http.StatusBadRequest, codeAggregateLimit, "AggregateQueryRecordLimit exceeded. Cannot perform this operation.")
		return
	}
	last := q.apply.steps[len(q.apply.steps)-1]
	type group struct {
		first *row
		rows  []*row
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, r := range rows {
		key := ""
		for _, c := range last.groupBy {
			key += fmt.Sprintf("%v\x00", r.vals[c])
		}
		g := byKey[key]
		if g == nil {
			g = &group{first: r}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, r)
	}
	if len(last.groupBy) == 0 && len(groups) == 0 {
		groups = []*group{{}} // an aggregate over no rows is one row
	}
	slices.SortStableFunc(groups, func(a, b *group) int {
		for _, c := range last.groupBy {
			if x := orderCompare(a.first.vals[c], b.first.vals[c]); x != 0 {
				return x
			}
		}
		return 0
	})
	vals := make([]object, 0, len(groups))
	for _, g := range groups {
		o := object{}
		for _, c := range last.groupBy {
			o = rn.appendColumn(o, t, g.first, t.colByName[c])
		}
		for _, ag := range last.aggs {
			v, money := aggregate(t, g.rows, ag)
			if money && v != nil && rn.ann.want(annFormatted) {
				cur := g.first
				if cur == nil && len(rows) > 0 {
					cur = rows[0]
				}
				sym := "$"
				if cur != nil {
					sym = d.currencySymbol(t, cur)
				}
				if dv, ok := v.(decimal.Decimal); ok {
					o = append(o, member{ag.alias + "@" + annFormatted, sym + formatMoney(dv)})
				}
			}
			if dv, ok := v.(decimal.Decimal); ok {
				// aggregate-data.md shows money sums as 440000.000000000
				v = rawNumber(dv.StringFixed(9))
			}
			o = append(o, member{ag.alias, v})
		}
		vals = append(vals, o)
	}
	writeOData(w, http.StatusOK, object{
		{"@odata.context", rn.base + "$metadata#" + t.set + "(" + strings.Join(q.apply.context, ",") + ")"},
		{"value", vals},
	})
}

// aggregate computes one aggregate; nulls are ignored (fetchxml
// aggregate-data.md). money reports a money column.
func aggregate(t *table, rows []*row, ag aggSpec) (v any, money bool) {
	if ag.fn == "$count" {
		return len(rows), false
	}
	c := t.colByName[ag.col]
	var nonNull []any
	for _, r := range rows {
		if x := r.vals[ag.col]; x != nil {
			nonNull = append(nonNull, x)
		}
	}
	switch ag.fn {
	case "countdistinct":
		seen := map[string]bool{}
		for _, x := range nonNull {
			seen[fmt.Sprint(x)] = true
		}
		return len(seen), false
	case "min", "max":
		if len(nonNull) == 0 {
			return nil, false
		}
		best := nonNull[0]
		for _, x := range nonNull[1:] {
			if c := orderCompare(x, best); ag.fn == "min" && c < 0 || ag.fn == "max" && c > 0 {
				best = x
			}
		}
		if tm, ok := best.(time.Time); ok {
			return tm.UTC().Format("2006-01-02T15:04:05Z"), false
		}
		if dv, ok := best.(decimal.Decimal); ok {
			return dv, c.money
		}
		return best, false
	}
	// sum, average
	if len(nonNull) == 0 {
		return nil, false
	}
	sum := decimal.Zero
	for _, x := range nonNull {
		switch n := x.(type) {
		case decimal.Decimal:
			sum = sum.Add(n)
		case int64:
			sum = sum.Add(decimal.NewFromInt(n))
		case float64:
			sum = sum.Add(decimal.NewFromFloat(n))
		default:
			return nil, false
		}
	}
	if ag.fn == "average" {
		sum = sum.DivRound(decimal.NewFromInt(int64(len(nonNull))), 9)
	} else if c.kind == kInt {
		return sum.IntPart(), false
	}
	return sum, c.money
}
