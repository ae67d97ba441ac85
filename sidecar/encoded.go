package sidecar

import (
	"context"

	"github.com/dvgate/dvgate/gateway"
)

// The hot lookups with the answer's JSON encoded once per cached answer
// (encodedBackend).

var _ encodedBackend = (*gatewayBackend)(nil)

func (b *gatewayBackend) CustomerJSON(ctx context.Context, email string, mode Mode) ([]byte, Meta, error) {
	c, m, err := b.customer(ctx, email, mode)
	if err != nil {
		return nil, Meta{}, err
	}
	body, err := b.customers.get(c, encodeGatewayCustomer)
	if err != nil {
		return nil, Meta{}, err
	}
	return body, meta(m), nil
}

func (b *gatewayBackend) OrderJSON(ctx context.Context, ref string) ([]byte, Meta, error) {
	o, m, err := b.gw.Order(ctx, ref)
	if err != nil {
		return nil, Meta{}, apiError(err, "No sales order has this number or id.")
	}
	body, err := b.orders.get(o, encodeGatewayOrder)
	if err != nil {
		return nil, Meta{}, err
	}
	return body, meta(m), nil
}

func encodeGatewayCustomer(c *gateway.Customer) ([]byte, error) { return encodeCustomer(customerOf(c)) }
func encodeGatewayOrder(o *gateway.Order) ([]byte, error)       { return encodeOrder(orderOf(o)) }
