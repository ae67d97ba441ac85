package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/odataq"
)

// RefundsConfig names the org's own refunds table and its columns
// (logical names), e.g. {Table: "contoso_refund", OrderLookup:
// "contoso_salesorderid", Amount: "contoso_amount", Status: "statuscode",
// Date: "createdon", Reason: "contoso_reason"}. Reason is optional.
type RefundsConfig struct {
	Table, OrderLookup, Amount, Status, Date, Reason string
}

// refundsTable is a RefundsConfig resolved against the org's schema.
type refundsTable struct {
	set, key                    string // entity set and primary key
	order, amount, status, date fieldSpec
	reason                      *fieldSpec
}

// kindRefunds is the lookup kind of refunds (metrics, cache keys).
const kindRefunds = "refunds"

// maxRefunds bounds the refunds read per order: the most recent first.
const maxRefunds = 50

func resolveRefunds(m *csdl.Model, rc *RefundsConfig) (*refundsTable, error) {
	t := m.EntityType("Microsoft.Dynamics.CRM." + rc.Table)
	if t == nil {
		return nil, &ColumnError{Setting: "refunds.table", Column: rc.Table,
			Problem: fmt.Sprintf("the org has no table %q (use the table's logical name, e.g. contoso_refund)", rc.Table)}
	}
	set := m.EntitySetOf(t)
	key := t.EffectiveKey()
	if set == nil || len(key) != 1 {
		return nil, &ColumnError{Setting: "refunds.table", Table: rc.Table, Column: rc.Table, Problem: "has no entity set with a single key"}
	}
	rt := &refundsTable{set: set.Name, key: key[0]}
	var err error
	for _, c := range []struct {
		setting, name string
		into          *fieldSpec
		kinds         []fieldKind
	}{
		{"refunds.orderLookup", rc.OrderLookup, &rt.order, []fieldKind{fieldLookup}},
		{"refunds.amount", rc.Amount, &rt.amount, []fieldKind{fieldDecimal}},
		{"refunds.status", rc.Status, &rt.status, []fieldKind{fieldNumber, fieldText, fieldBool}},
		{"refunds.date", rc.Date, &rt.date, []fieldKind{fieldText}},
	} {
		if *c.into, err = resolveField(t, c.setting, c.name); err != nil {
			return nil, err
		}
		if !kindIn(c.into.kind, c.kinds) {
			return nil, &ColumnError{Setting: c.setting, Table: rc.Table, Column: c.name, Problem: "does not have a type this setting can use"}
		}
	}
	if rc.Reason != "" {
		r, err := resolveField(t, "refunds.reason", rc.Reason)
		if err != nil {
			return nil, err
		}
		rt.reason = &r
	}
	return rt, nil
}

func kindIn(k fieldKind, ks []fieldKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// findRefunds reads an order's refunds: one request on the refunds table,
// filtered by the order lookup, most recent first.
func (g *Gateway) findRefunds(ctx context.Context, o *Order) ([]Refund, error) {
	rt := g.refunds
	id, err := uuid.Parse(o.ID)
	if err != nil {
		return nil, err
	}
	type row struct{}
	cols := []odataq.Column[row]{odataq.StringCol[row](rt.key), odataq.StringCol[row](rt.amount.prop),
		odataq.StringCol[row](rt.status.prop), odataq.StringCol[row](rt.date.prop)}
	if rt.reason != nil {
		cols = append(cols, odataq.StringCol[row](rt.reason.prop))
	}
	q := odataq.Query[row]{}.Select(cols...).
		Filter(odataq.Col[row, uuid.UUID](rt.order.prop).Eq(id)).
		OrderBy(odataq.StringCol[row](rt.date.prop).Desc()).
		Top(maxRefunds).
		Annotations(annotations...)
	const op = "GET refunds"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.baseURL+rt.set, nil)
	if err != nil {
		return nil, err
	}
	_ = odataq.Editor(q.Encode(), q.Prefer())(ctx, req)
	resp, err := g.up.Do(req)
	if err != nil {
		return nil, upstreamErr(op, err)
	}
	defer resp.Body.Close()
	var page struct {
		Value []map[string]json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, upstreamErr(op, err)
	}
	specs := []fieldSpec{rt.amount, rt.status, rt.date}
	if rt.reason != nil {
		specs = append(specs, *rt.reason)
	}
	out := make([]Refund, 0, len(page.Value))
	for _, raw := range page.Value {
		f, err := readFields(raw, specs)
		if err != nil {
			return nil, upstreamErr(op, err)
		}
		var r Refund
		if err := json.Unmarshal(raw[rt.key], &r.ID); err != nil || r.ID == "" {
			return nil, upstreamErr(op, errNoKey)
		}
		a := f[rt.amount.name]
		var amount string
		if json.Unmarshal(a.Value, &amount) == nil {
			if d, err := decimal.NewFromString(amount); err == nil {
				r.Amount = Money{Amount: d, Currency: o.Total.Currency, Formatted: a.Label}
			}
		}
		st := f[rt.status.name]
		r.Status = st.Label
		if r.Status == "" {
			r.Status = string(st.Value)
		}
		var date string
		if json.Unmarshal(f[rt.date.name].Value, &date) == nil && date != "" {
			if t, err := time.Parse(time.RFC3339, date); err == nil {
				r.Date = &t
			} else if t, err := time.Parse(time.DateOnly, date); err == nil {
				r.Date = &t
			}
		}
		if rt.reason != nil {
			_ = json.Unmarshal(f[rt.reason.name].Value, &r.Reason)
		}
		out = append(out, r)
	}
	return out, nil
}

// refundsKey is the cache key of an order's refunds.
func (g *Gateway) refundsKey(orderID string) string {
	return g.key(kindRefunds, g.refunds.set, orderID)
}
