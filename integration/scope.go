package integration

import (
	"context"
	"slices"

	"github.com/dvgate/dvgate/gateway"
)

// OrderFor answers b.Order(ctx, ref) scoped to the customer with email: an
// order whose customer is not that customer answers CodeNotFound with the
// same message as an order that does not exist, so a caller tricked into
// asking for someone else's order learns nothing. "That customer" is the
// contact with that email, that contact's parent account, or the account
// with that email. An empty email means no scoping (b.Order).
//
// The order's answer carries its customer's email addresses (one request,
// see gateway.Order.CustomerEmails), so an order owned by a contact or by
// the account with that email costs nothing more. Only an order owned by an
// account whose addresses do not include email costs one contact lookup
// (itself cached), to learn whether email is a contact of that account.
// The Meta is the older of the answers used. Safe for concurrent use as b
// is.
func OrderFor(ctx context.Context, b Backend, ref, email string) (*gateway.Order, gateway.Meta, error) {
	if email == "" {
		return b.Order(ctx, ref)
	}
	email, err := gateway.NormalizeEmail(email)
	if err != nil {
		return nil, gateway.Meta{}, ErrorOf(err, "")
	}
	o, meta, err := b.Order(ctx, ref)
	if err != nil {
		return nil, meta, err
	}
	// Said exactly as a missing order is, X-Cache and Age included.
	notFound := &Error{Code: CodeNotFound, Message: notFoundOrder, Meta: &meta}
	if o.Customer == nil {
		return nil, gateway.Meta{}, notFound
	}
	if slices.Contains(o.CustomerEmails, email) {
		return o, meta, nil
	}
	if o.Customer.Type != "account" {
		return nil, gateway.Meta{}, notFound
	}
	c, cmeta, err := b.Customer(ctx, email, "contacts")
	if err != nil {
		if e := ErrorOf(err, notFoundOrder); e.Code == CodeNotFound {
			return nil, gateway.Meta{}, notFound
		}
		return nil, gateway.Meta{}, err
	}
	if c.Account == nil || c.Account.ID != o.Customer.ID {
		return nil, gateway.Meta{}, notFound
	}
	return o, older(meta, cmeta), nil
}

// older is the Meta of an answer built from two: stale if either is, as
// old as the older.
func older(a, b gateway.Meta) gateway.Meta {
	if b.Outcome == gateway.Stale {
		a.Outcome = gateway.Stale
	}
	a.Age = max(a.Age, b.Age)
	return a
}
