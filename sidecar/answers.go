package sidecar

import (
	"encoding/json"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

// The API's answers from the gateway's: amounts become decimal strings at
// the currency's precision, optional values pointers.

func customerOf(c *gateway.Customer) httpapi.Customer {
	out := httpapi.Customer{Type: httpapi.CustomerType(c.Type), Id: c.ID, Name: c.Name, Email: c.Email, Account: ref(c.Account)}
	if c.Phone != "" {
		p := c.Phone
		out.Phone = &p
	}
	out.Fields = fields(c.Fields)
	return out
}

// fields is the API's "fields": nil (absent) when none are configured.
func fields(in map[string]gateway.Field) *httpapi.Fields {
	if in == nil {
		return nil
	}
	out := make(httpapi.Fields, len(in))
	for k, f := range in {
		af := httpapi.Field{Value: f.Value}
		if f.Label != "" {
			l := f.Label
			af.Label = &l
		}
		if f.Table != "" {
			t := f.Table
			af.Table = &t
		}
		out[k] = af
	}
	return &out
}

func ref(r *gateway.Ref) *httpapi.Ref {
	if r == nil {
		return nil
	}
	out := &httpapi.Ref{Id: r.ID, Name: r.Name}
	if r.Type != "" {
		t := httpapi.CustomerType(r.Type)
		out.Type = &t
	}
	return out
}

func money(m gateway.Money) httpapi.Money {
	return httpapi.Money{Amount: gateway.AmountString(m.Amount), Currency: m.Currency, Formatted: m.Formatted}
}

func choice(c gateway.Choice) httpapi.Choice { return httpapi.Choice{Value: c.Value, Label: c.Label} }

func orderOf(o *gateway.Order) httpapi.Order {
	out := httpapi.Order{Id: o.ID, Number: o.Number, Name: o.Name, Status: o.Status,
		State: choice(o.State), StatusReason: choice(o.StatusReason),
		Total: money(o.Total), RequestedDeliveryBy: o.RequestedDeliveryBy, Customer: ref(o.Customer),
		TrackingNumber: o.TrackingNumber, Fields: fields(o.Fields), Lines: make([]httpapi.OrderLine, 0, len(o.Lines))}
	for _, l := range o.Lines {
		ol := httpapi.OrderLine{Number: l.Number, Description: l.Description, WriteIn: l.WriteIn,
			Quantity: l.Quantity.String(), UnitPrice: gateway.AmountString(l.UnitPrice), Amount: gateway.AmountString(l.Amount)}
		if l.Product != nil {
			ol.Product = &httpapi.Product{Id: l.Product.ID, Name: l.Product.Name, Sku: l.Product.SKU}
		}
		out.Lines = append(out.Lines, ol)
	}
	return out
}

func orderSummaryOf(s *gateway.OrderSummary) httpapi.OrderSummary {
	st, sr := choice(s.State), choice(s.StatusReason)
	out := httpapi.OrderSummary{Id: s.ID, Number: s.Number, Name: s.Name, Status: s.Status, State: &st, StatusReason: &sr,
		Total: money(s.Total)}
	if !s.CreatedOn.IsZero() {
		c := s.CreatedOn
		out.CreatedOn = &c
	}
	if !s.ModifiedOn.IsZero() {
		m := s.ModifiedOn
		out.ModifiedOn = &m
	}
	return out
}

// encodeBody encodes v as the generated response objects do
// (json.Encoder: HTML-escaped, with a trailing newline).
func encodeBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func encodeOrder(o *gateway.Order) ([]byte, error) {
	return encodeBody(httpapi.OrderResponse{Order: orderOf(o)})
}

func encodeCustomer(c *gateway.Customer) ([]byte, error) {
	return encodeBody(httpapi.CustomerResponse{Customer: customerOf(c)})
}
