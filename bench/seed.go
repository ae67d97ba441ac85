package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Seed is what the workload needs from a simulator seed document (the demo
// data in testdata/seed): the customers' email addresses and the orders
// with the email of their customer.
type Seed struct {
	// ContactEmails and AccountEmails are every emailaddress1..3 of the
	// contacts and accounts, in seed order.
	ContactEmails, AccountEmails []string
	// Orders are the sales orders in seed order.
	Orders []SeedOrder
}

// SeedOrder is one sales order of the seed.
type SeedOrder struct {
	Number string
	// Email is the customer's emailaddress1 (a contact's or an account's),
	// "" when the customer has none.
	Email string
	// Account is true when Email is an account's and no contact's, so that
	// a customer lookup of it falls back from contacts to accounts.
	Account bool
	// Lines and Products count the order's lines and the lines naming a
	// catalogue product (what the naive client fetches one by one).
	Lines, Products int
}

// ParseSeed reads a seed document ({"tables":{"contact":[...],...}}).
func ParseSeed(doc []byte) (*Seed, error) {
	var d struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	str := func(row map[string]any, k string) string { s, _ := row[k].(string); return s }
	s := &Seed{}
	emailOf := map[string]string{} // contactid/accountid -> emailaddress1
	for _, tbl := range []struct {
		name, key string
		dst       *[]string
	}{{"contact", "contactid", &s.ContactEmails}, {"account", "accountid", &s.AccountEmails}} {
		for _, row := range d.Tables[tbl.name] {
			for _, col := range []string{"emailaddress1", "emailaddress2", "emailaddress3"} {
				if e := str(row, col); e != "" {
					*tbl.dst = append(*tbl.dst, e)
				}
			}
			emailOf[str(row, tbl.key)] = str(row, "emailaddress1")
		}
	}
	lines, products := map[string]int{}, map[string]int{}
	for _, row := range d.Tables["salesorderdetail"] {
		id := str(row, "_salesorderid_value")
		lines[id]++
		if str(row, "_productid_value") != "" {
			products[id]++
		}
	}
	contactEmail := map[string]bool{}
	for _, e := range s.ContactEmails {
		contactEmail[e] = true
	}
	for _, row := range d.Tables["salesorder"] {
		id := str(row, "salesorderid")
		email := emailOf[str(row, "_customerid_value")]
		s.Orders = append(s.Orders, SeedOrder{
			Number:   str(row, "ordernumber"),
			Email:    email,
			Account:  email != "" && !contactEmail[email],
			Lines:    lines[id],
			Products: products[id],
		})
	}
	s.Orders = slices.DeleteFunc(s.Orders, func(o SeedOrder) bool { return o.Number == "" })
	if len(s.Orders) == 0 || len(s.ContactEmails) == 0 {
		return nil, errors.New("bench: seed has no orders or no contact emails")
	}
	return s, nil
}
