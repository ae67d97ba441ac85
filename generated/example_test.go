package generated_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
)

// Example is the way a backend service embeds the generated client: one
// dataverse.Conn per org (sign-in, retries, throttling) as the doer of the
// typed Service. Here the org is the dataversetest simulator with its demo
// data; against a real org only the Config values differ.
func Example() {
	ctx := context.Background()
	opts, err := dataversetest.CustomizedDemo() // the demo org, with a column added after generation
	if err != nil {
		log.Fatal(err)
	}
	srv, err := dataversetest.NewServer(opts)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	conn, err := dataverse.New(dataverse.Config{
		URL:           srv.URL(), // https://<org>.crm4.dynamics.com
		TenantID:      srv.TenantID(),
		ClientID:      srv.ClientID(),
		ClientSecret:  srv.ClientSecret(),
		AuthorityHost: srv.AuthorityHost(), // default: login.microsoftonline.com
		HTTPClient:    srv.Client(),        // trusts the simulator's certificate
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	svc, err := generated.NewService(conn.BaseURL(), conn)
	if err != nil {
		log.Fatal(err)
	}

	// The active customer with this address in any of the three e-mail
	// columns, with the name of the account the contact belongs to.
	c := generated.ContactColumns
	email := "alex.wu@example.com"
	contact, err := svc.Contacts().First(ctx, svc.Contacts().Query().
		Select(c.FullName, c.JobTitle).
		Filter(odataq.Or(c.EMailAddress1.Eq(email), c.EMailAddress2.Eq(email), c.EMailAddress3.Eq(email)),
			c.StateCode.Eq(generated.ContactStateCodeActive)).
		Expand(generated.ContactNav.ParentCustomerIDAccount.Expand(
			svc.Accounts().Query().Select(generated.AccountColumns.Name))))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %s at %s\n", *contact.FullName, *contact.JobTitle, *contact.ParentCustomerIDAccount.Name)

	// An order by its number, with its lines. Dataverse refuses $orderby
	// inside a nested $expand, so the lines are sorted here.
	o, d := generated.SalesOrderColumns, generated.SalesOrderDetailColumns
	order, err := svc.SalesOrders().First(ctx, svc.SalesOrders().Query().
		Select(o.OrderNumber, o.StateCode, o.StatusCode, o.TotalAmount).
		Filter(o.OrderNumber.Eq("ORD-01001-B2K9P7")).
		Expand(generated.SalesOrderNav.OrderDetails.Expand(
			svc.SalesOrderDetails().Query().Select(d.LineItemNumber, d.ProductName, d.Quantity, d.PricePerUnit, d.ExtendedAmount))))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s / %s, total %s\n", *order.OrderNumber, order.StateCode.Label(), order.StatusCode.Label(), order.TotalAmount.StringFixed(2))
	lines := order.OrderDetails
	slices.SortFunc(lines, func(a, b generated.SalesOrderDetail) int { return cmp.Compare(*a.LineItemNumber, *b.LineItemNumber) })
	for _, l := range lines {
		fmt.Printf("  %d. %-16s %2s x %6s = %7s\n", *l.LineItemNumber, *l.ProductName, l.Quantity, l.PricePerUnit.StringFixed(2), l.ExtendedAmount.StringFixed(2))
	}

	// A column the org added after this package was generated: selected by
	// name, it arrives in the model's Extra.
	tracking := odataq.StringCol[generated.SalesOrder]("contoso_trackingnumber")
	row, err := svc.SalesOrders().First(ctx, svc.SalesOrders().Query().
		Select(o.OrderNumber, tracking).Filter(o.OrderNumber.Eq("ORD-01001-B2K9P7")))
	if err != nil {
		log.Fatal(err)
	}
	if number, ok, err := odataq.Extra[string](row.Extra, "contoso_trackingnumber"); ok && err == nil {
		fmt.Printf("tracking number %s\n", number)
	}

	// Output:
	// Alex Wu, Purchasing Manager at Adventure Works Cycles
	// ORD-01001-B2K9P7: Submitted / In Progress, total 5178.96
	//   1. Pro Gasket       12 x 242.12 = 2905.44
	//   2. Mini Gasket       6 x 318.20 = 1909.20
	//   3. Custom engraving  4 x  91.08 =  364.32
	// tracking number 1Z999AA10283172831
}
