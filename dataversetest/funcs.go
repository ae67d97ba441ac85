package dataversetest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Query functions (PAD webapi/query/filter-rows.md and the query function
// reference) are evaluated by rewriting them, per request, into
// comparisons: time functions against the server clock (in UTC: the
// simulator's users have no time zone), In/Between into or/and of eq/ge/le.

// queryFuncs lists the supported functions and their arity: 0 = no value,
// 1 = PropertyValue, -1 = PropertyValues (a list), 2 = a list of two.
var queryFuncs = map[string]int{
	"In": -1, "NotIn": -1, "Between": 2, "NotBetween": 2,
	"Today": 0, "Yesterday": 0, "Tomorrow": 0,
	"ThisWeek": 0, "ThisMonth": 0, "LastMonth": 0, "NextMonth": 0, "ThisYear": 0, "LastYear": 0, "NextYear": 0,
	"LastXHours": 1, "NextXHours": 1, "LastXDays": 1, "NextXDays": 1, "LastXWeeks": 1, "NextXWeeks": 1,
	"LastXMonths": 1, "NextXMonths": 1, "LastXYears": 1, "NextXYears": 1,
	"OlderThanXDays": 1, "OlderThanXWeeks": 1, "OlderThanXMonths": 1, "OlderThanXYears": 1,
	"On": 1, "OnOrAfter": 1, "OnOrBefore": 1, "NotOn": 1,
}

// bindFilter returns e with query functions rewritten for evaluation at
// now. e was validated against t.
func (d *dataset) bindFilter(t *table, e Expr, now time.Time) (Expr, error) {
	var err error
	switch x := e.(type) {
	case And:
		if x.Left, err = d.bindFilter(t, x.Left, now); err != nil {
			return nil, err
		}
		x.Right, err = d.bindFilter(t, x.Right, now)
		return x, err
	case Or:
		if x.Left, err = d.bindFilter(t, x.Left, now); err != nil {
			return nil, err
		}
		x.Right, err = d.bindFilter(t, x.Right, now)
		return x, err
	case Not:
		if _, ok := x.X.(QueryFunc); ok {
			// use-web-api-functions.md (wire facts §3.2)
			return nil, filterError("Not operator along with the Custom Named Condition operators is not allowed")
		}
		x.X, err = d.bindFilter(t, x.X, now)
		return x, err
	case Lambda:
		if x.Body != nil {
			x.Body, err = d.bindFilter(t.navs[x.Nav].target, x.Body, now)
		}
		return x, err
	case QueryFunc:
		return d.bindQueryFunc(t, x, now)
	}
	return e, nil
}

func (d *dataset) bindQueryFunc(t *table, f QueryFunc, now time.Time) (Expr, error) {
	c := t.colByName[f.Property]
	n := queryFuncs[f.Name]
	switch {
	case n == 0 && len(f.Values) != 0, n == 1 && len(f.Values) != 1, n == 2 && len(f.Values) != 2, n == -1 && len(f.Values) == 0:
		return nil, filterError(fmt.Sprintf("The function '%s' was given %d values.", f.Name, len(f.Values)))
	}
	cmp := func(op string, v any) Expr { return Compare{Column: f.Property, Op: op, Value: v} }
	between := func(from, to time.Time) Expr { return And{cmp("ge", from), cmp("lt", to)} }
	switch f.Name {
	case "In", "NotIn":
		var e Expr
		for _, v := range f.Values {
			lit, err := literalFor(c, v)
			if err != nil {
				return nil, err
			}
			var term Expr = cmp("eq", lit)
			if e == nil {
				e = term
			} else {
				e = Or{e, term}
			}
		}
		if f.Name == "NotIn" {
			return And{cmp("ne", nil), Not{e}}, nil
		}
		return e, nil
	case "Between", "NotBetween":
		lo, err := literalFor(c, f.Values[0])
		if err != nil {
			return nil, err
		}
		hi, err := literalFor(c, f.Values[1])
		if err != nil {
			return nil, err
		}
		e := And{cmp("ge", lo), cmp("le", hi)}
		if f.Name == "NotBetween" {
			return And{cmp("ne", nil), Not{e}}, nil
		}
		return e, nil
	}
	if c.kind != kDateTime {
		return nil, filterError(fmt.Sprintf("The function '%s' needs a date and time column; '%s' is not one.", f.Name, f.Property))
	}
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	year := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	x := 0
	if n == 1 && (strings.HasPrefix(f.Name, "Last") || strings.HasPrefix(f.Name, "Next") || strings.HasPrefix(f.Name, "OlderThan")) {
		var err error
		if x, err = strconv.Atoi(f.Values[0]); err != nil || x < 0 {
			return nil, filterError(fmt.Sprintf("The value '%s' of the function '%s' must be a non-negative integer.", f.Values[0], f.Name))
		}
	}
	var on time.Time
	if strings.HasPrefix(f.Name, "On") || f.Name == "NotOn" {
		v := f.Values[0]
		tm, err := time.Parse(time.DateOnly, v)
		if err != nil {
			if tm, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, filterError(fmt.Sprintf("The value '%s' of the function '%s' is not a date.", v, f.Name))
			}
			tm = time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
		}
		on = tm
	}
	switch f.Name {
	case "Today":
		return between(day, day.AddDate(0, 0, 1)), nil
	case "Yesterday":
		return between(day.AddDate(0, 0, -1), day), nil
	case "Tomorrow":
		return between(day.AddDate(0, 0, 1), day.AddDate(0, 0, 2)), nil
	case "ThisWeek":
		start := day.AddDate(0, 0, -int(day.Weekday()))
		return between(start, start.AddDate(0, 0, 7)), nil
	case "ThisMonth":
		return between(month, month.AddDate(0, 1, 0)), nil
	case "LastMonth":
		return between(month.AddDate(0, -1, 0), month), nil
	case "NextMonth":
		return between(month.AddDate(0, 1, 0), month.AddDate(0, 2, 0)), nil
	case "ThisYear":
		return between(year, year.AddDate(1, 0, 0)), nil
	case "LastYear":
		return between(year.AddDate(-1, 0, 0), year), nil
	case "NextYear":
		return between(year.AddDate(1, 0, 0), year.AddDate(2, 0, 0)), nil
	case "LastXHours":
		return And{cmp("ge", now.Add(-time.Duration(x)*time.Hour)), cmp("le", now)}, nil
	case "NextXHours":
		return And{cmp("ge", now), cmp("le", now.Add(time.Duration(x)*time.Hour))}, nil
	case "LastXDays":
		return And{cmp("ge", day.AddDate(0, 0, -x)), cmp("le", now)}, nil
	case "NextXDays":
		return And{cmp("ge", now), cmp("lt", day.AddDate(0, 0, x+1))}, nil
	case "LastXWeeks":
		return And{cmp("ge", day.AddDate(0, 0, -7*x)), cmp("le", now)}, nil
	case "NextXWeeks":
		return And{cmp("ge", now), cmp("lt", day.AddDate(0, 0, 7*x+1))}, nil
	case "LastXMonths":
		return And{cmp("ge", day.AddDate(0, -x, 0)), cmp("le", now)}, nil
	case "NextXMonths":
		return And{cmp("ge", now), cmp("lt", day.AddDate(0, x, 1))}, nil
	case "LastXYears":
		return And{cmp("ge", day.AddDate(-x, 0, 0)), cmp("le", now)}, nil
	case "NextXYears":
		return And{cmp("ge", now), cmp("lt", day.AddDate(x, 0, 1))}, nil
	case "OlderThanXDays":
		return cmp("lt", now.AddDate(0, 0, -x)), nil
	case "OlderThanXWeeks":
		return cmp("lt", now.AddDate(0, 0, -7*x)), nil
	case "OlderThanXMonths":
		return cmp("lt", now.AddDate(0, -x, 0)), nil
	case "OlderThanXYears":
		return cmp("lt", now.AddDate(-x, 0, 0)), nil
	case "On":
		return between(on, on.AddDate(0, 0, 1)), nil
	case "NotOn":
		return And{cmp("ne", nil), Not{between(on, on.AddDate(0, 0, 1))}}, nil
	case "OnOrAfter":
		return cmp("ge", on), nil
	case "OnOrBefore":
		return cmp("lt", on.AddDate(0, 0, 1)), nil
	}
	return nil, filterError("dataversetest: the query function " + f.Name + " is not supported.")
}

// literalFor converts a query function value to the literal type of c.
func literalFor(c *column, v string) (any, error) {
	switch c.kind {
	case kInt, kDecimal, kDouble:
		return Number(v), nil
	case kGuid:
		if !isGUID(v) {
			return nil, filterError(fmt.Sprintf("The value '%s' is not a valid Guid.", v))
		}
		return Guid(strings.ToLower(v)), nil
	case kBool:
		return v == "true" || v == "1", nil
	case kDateTime:
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			tm, err = time.Parse(time.DateOnly, v)
		}
		if err != nil {
			return nil, filterError(fmt.Sprintf("The value '%s' is not a date and time.", v))
		}
		return tm.UTC(), nil
	}
	return v, nil
}

// bindQuery binds the query functions of q's $filter, its expands' and its
// $apply filters.
func (d *dataset) bindQuery(t *table, q *queryOpts, now time.Time) error {
	var err error
	if q.filter != nil {
		if q.filter, err = d.bindFilter(t, q.filter, now); err != nil {
			return err
		}
	}
	for _, e := range q.expands {
		if e.target != nil {
			if err := d.bindQuery(e.target, e.q, now); err != nil {
				return err
			}
		}
	}
	if q.apply != nil {
		for i, st := range q.apply.steps {
			if st.filter != nil {
				if q.apply.steps[i].filter, err = d.bindFilter(t, st.filter, now); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
