// Package seedgen deterministically generates the simulator's demo data
// (testdata/seed/demo.json): contacts, accounts, products, currencies and
// sales orders with lines, shaped to exercise the gateway's lookups. The same
// code always produces the same bytes; regenerate the file with
//
//	go test ./dataversetest -run TestDemoSeedUpToDate -update
package seedgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Well-known records of the demo data, for tests and documentation.
const (
	AlexEmail          = "alex.wu@example.com"
	AlexOrderNumber    = "ORD-01001-B2K9P7"
	FabrikamOrderEmail = "orders@fabrikam.example"
	SharedEmail        = "billing@litware.example" // held by an account and a contact
)

// ns roots the name-based GUIDs so IDs are stable across runs.
var ns = uuid.MustParse("6b1f0c3e-2a4d-4c5e-9f70-8a1b2c3d4e5f")

// ID returns the GUID of a demo record ("contact", "alex").
func ID(table, name string) string {
	return uuid.NewSHA1(ns, []byte(table+"/"+name)).String()
}

type rec map[string]any

const lookupLogical = "@Microsoft.Dynamics.CRM.lookuplogicalname"

type currency struct {
	id, iso, name, symbol string
	rate                  decimal.Decimal
}

var firstNames = []string{"Maria", "James", "Aiko", "Lars", "Priya", "Omar", "Chloe", "Diego", "Fatima", "Noah",
	"Ingrid", "Kwame", "Sofia", "Mateo", "Hana", "Liam", "Zara", "Elena", "Tomas", "Yuki"}
var lastNames = []string{"Garcia", "Smith", "Tanaka", "Nilsson", "Patel", "Haddad", "Martin", "Lopez", "Khan", "Brown",
	"Berg", "Mensah", "Rossi", "Silva", "Kim", "Murphy", "Ahmed", "Popescu", "Novak", "Sato"}
var companies = []string{"Litware, Inc.", "Adventure Works Cycles", "Contoso Pharmaceuticals", "Fabrikam, Inc.", "Northwind Traders",
	"Tailspin Toys", "Wingtip Toys", "Woodgrove Bank", "Proseware, Inc.", "Lucerne Publishing", "Margie's Travel",
	"Alpine Ski House", "Blue Yonder Airlines", "City Power & Light", "Coho Winery", "Consolidated Messenger",
	"Graphic Design Institute", "Humongous Insurance", "Trey Research", "Wide World Importers"}
var productWords = []string{"Widget", "Gasket", "Bracket", "Sensor", "Valve", "Cable", "Adapter", "Filter", "Bearing", "Panel"}
var productKinds = []string{"Standard", "Pro", "Mini"}

// Generate returns the demo seed document.
func Generate() ([]byte, error) {
	rng := rand.New(rand.NewPCG(2026, 7))
	base := time.Date(2025, 1, 6, 9, 30, 0, 0, time.UTC)
	stamp := func(days int) string { return base.Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339) }

	currencies := []currency{
		{ID("transactioncurrency", "USD"), "USD", "US Dollar", "$", decimal.NewFromInt(1)},
		{ID("transactioncurrency", "EUR"), "EUR", "Euro", "€", decimal.RequireFromString("0.92")},
		{ID("transactioncurrency", "GBP"), "GBP", "Pound Sterling", "£", decimal.RequireFromString("0.79")},
	}
	var tcs []rec
	for _, c := range currencies {
		tcs = append(tcs, rec{"transactioncurrencyid": c.id, "isocurrencycode": c.iso, "currencyname": c.name,
			"currencysymbol": c.symbol, "exchangerate": c.rate.StringFixed(10)})
	}
	owner := ID("systemuser", "dana")
	users := []rec{{"ownerid": owner, "systemuserid": owner, "fullname": "Dana Whitfield", "domainname": "dana@contoso.example",
		"internalemailaddress": "dana@contoso.example"}}
	uom := ID("uom", "primary")
	uoms := []rec{{"uomid": uom, "name": "Primary Unit", "quantity": "1"}}

	// Accounts.
	var accounts []rec
	accountCur := map[string]currency{}
	for i, name := range companies {
		id := ID("account", fmt.Sprint(i))
		cur := currencies[i%3]
		if name == "Fabrikam, Inc." || name == "Litware, Inc." || name == "Adventure Works Cycles" {
			cur = currencies[0]
		}
		accountCur[id] = cur
		domain := strings.ToLower(strings.NewReplacer(",", "", ".", "", " ", "", "'", "", "&", "and").Replace(strings.Fields(name)[0])) + ".example"
		email := "info@" + domain
		switch name {
		case "Fabrikam, Inc.":
			email = FabrikamOrderEmail
		case "Litware, Inc.":
			email = SharedEmail
		case "Woodgrove Bank":
			email = "Accounts.Payable@WoodgroveBank.example"
		}
		state, status := 0, 1
		if i == 17 || i == 18 {
			state, status = 1, 2
		}
		revenue := decimal.NewFromInt(int64(50_000 + rng.IntN(5_000_000))).Add(decimal.New(int64(rng.IntN(100)), -2))
		accounts = append(accounts, rec{
			"accountid": id, "name": name, "accountnumber": fmt.Sprintf("AC-%04d", 1000+i*7),
			"emailaddress1": email, "telephone1": fmt.Sprintf("+1-425-555-%04d", 100+i*37), "websiteurl": "https://www." + domain,
			"customertypecode": []int{3, 3, 5, 9, 3, 10}[i%6], "revenue": revenue.StringFixed(2),
			"_transactioncurrencyid_value": cur.id, "exchangerate": cur.rate.StringFixed(10),
			"statecode": state, "statuscode": status, "_ownerid_value": owner, "_ownerid_value" + lookupLogical: "systemuser",
			"createdon": stamp(i), "modifiedon": stamp(i + 30),
		})
	}

	// Contacts.
	var contacts []rec
	type person struct{ id, name, email string }
	var people []person
	for i := 0; i < 60; i++ {
		id := ID("contact", fmt.Sprint(i))
		first, last := firstNames[i%len(firstNames)], lastNames[(i*7+i/20)%len(lastNames)]
		email := strings.ToLower(first + "." + last + "@example.com")
		switch i {
		case 0:
			first, last, email = "Alex", "Wu", AlexEmail
		case 1:
			first, last, email = "Mia", "O'Connor", "Mia.O'Connor@Example.com"
		case 2:
			first, last, email = "Sam", "Rivera", "sam+orders@example.com"
		case 3:
			first, last, email = "Jordan", "Lee", "Jordan.LEE@Contoso.example"
		}
		if i >= 20 && i%20 >= 4 {
			email = fmt.Sprintf("%s.%s%d@example.net", strings.ToLower(first), strings.ToLower(last), i)
		}
		c := rec{
			"contactid": id, "firstname": first, "lastname": last, "fullname": first + " " + last,
			"jobtitle":      []string{"Purchasing Manager", "Buyer", "Operations Lead", "Owner", "Accountant"}[i%5],
			"emailaddress1": email, "telephone1": fmt.Sprintf("+1-206-555-%04d", 200+i*13), "mobilephone": fmt.Sprintf("+1-206-555-%04d", 5000+i*17),
			"preferredcontactmethodcode": 1 + i%5, "donotemail": i%11 == 5, "birthdate": fmt.Sprintf("19%02d-%02d-%02d", 60+i%35, 1+i%12, 1+i%28),
			"_transactioncurrencyid_value": currencies[0].id, "exchangerate": "1.0000000000",
			"statecode": 0, "statuscode": 1, "_ownerid_value": owner, "_ownerid_value" + lookupLogical: "systemuser",
			"createdon": stamp(40 + i), "modifiedon": stamp(100 + i),
		}
		if i%3 != 2 { // two thirds work for an account
			acc := accounts[i%len(accounts)]
			if i == 0 {
				acc = accounts[1] // Alex works at Adventure Works Cycles
			}
			if acc["name"] == "Fabrikam, Inc." {
				acc = accounts[4]
			}
			c["_parentcustomerid_value"] = acc["accountid"]
			c["_parentcustomerid_value"+lookupLogical] = "account"
			cur := accountCur[acc["accountid"].(string)]
			c["_transactioncurrencyid_value"], c["exchangerate"] = cur.id, cur.rate.StringFixed(10)
		}
		if i == 5 {
			c["emailaddress2"] = SharedEmail
		}
		if i == 6 {
			c["emailaddress3"] = "m.secondary+" + strings.ToLower(last) + "@example.org"
		}
		if i%13 == 12 {
			c["statecode"], c["statuscode"] = 1, 2
		}
		contacts = append(contacts, c)
		people = append(people, person{id, first + " " + last, email})
	}
	// Primary contacts of the first accounts.
	for i := range 10 {
		for j, c := range contacts {
			if c["_parentcustomerid_value"] == accounts[i]["accountid"] && j != 0 {
				accounts[i]["_primarycontactid_value"] = c["contactid"]
				break
			}
		}
	}

	// Products.
	var products []rec
	for i := 0; i < 30; i++ {
		id := ID("product", fmt.Sprint(i))
		price := decimal.NewFromInt(int64(5 + rng.IntN(400))).Add(decimal.New(int64(rng.IntN(100)), -2))
		state, status := 0, 1
		if i == 28 {
			state, status = 1, 2
		}
		products = append(products, rec{
			"productid": id, "name": productKinds[i%3] + " " + productWords[i/3], "productnumber": fmt.Sprintf("SKU-%s-%03d", strings.ToUpper(productWords[i/3][:3]), 100+i),
			"description": "A " + strings.ToLower(productKinds[i%3]) + " " + strings.ToLower(productWords[i/3]) + ".",
			"price":       price.StringFixed(2), "_defaultuomid_value": uom, "quantitydecimal": 0, "productstructure": 1, "producttypecode": 1 + i%3,
			"validfromdate": "2025-01-01", "_transactioncurrencyid_value": currencies[0].id, "exchangerate": "1.0000000000",
			"statecode": state, "statuscode": status, "createdon": stamp(i), "modifiedon": stamp(i + 5),
		})
	}

	// Orders and lines.
	states := [][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 100001}, {3, 100002}, {4, 100003}}
	const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var orders, lines []rec
	// Orders 200 and 201 (after the others, so that the random choices of
	// the first 200 stay as they were) are Contoso Pharmaceuticals' (a GBP
	// account) in USD and EUR: a customer whose orders are in three
	// currencies, whose total spent must add them in the base currency.
	multi := accounts[2]
	for i := 0; i < 202; i++ {
		n := 1001 + i
		suffix := make([]byte, 6)
		for k := range suffix {
			suffix[k] = alnum[rng.IntN(len(alnum))]
		}
		number := fmt.Sprintf("ORD-%05d-%s", n, suffix)
		st := states[i%len(states)]
		var custID, custTable, custName string
		var cur currency
		if i == 0 {
			number, st = AlexOrderNumber, [2]int{1, 3}
			custID, custTable, custName, cur = people[0].id, "contact", people[0].name, accountCur[accounts[1]["accountid"].(string)]
		} else if i >= 200 {
			custID, custTable, custName, cur = multi["accountid"].(string), "account", multi["name"].(string), currencies[i-200]
		} else if i%4 == 3 {
			a := accounts[(i/4)%len(accounts)]
			custID, custTable, custName, cur = a["accountid"].(string), "account", a["name"].(string), accountCur[a["accountid"].(string)]
		} else {
			p := people[(i*7)%len(people)]
			custID, custTable, custName = p.id, "contact", p.name
			cur = currencies[0]
			if pc, ok := contacts[(i*7)%len(people)]["_parentcustomerid_value"].(string); ok {
				cur = accountCur[pc]
			}
		}
		id := ID("salesorder", number)
		nLines := 1 + rng.IntN(8)
		if i == 0 {
			nLines = 3
		}
		total := decimal.Zero
		for l := 0; l < nLines; l++ {
			qty := decimal.NewFromInt(int64(1 + rng.IntN(12)))
			line := rec{
				"salesorderdetailid": ID("salesorderdetail", fmt.Sprintf("%s/%d", number, l+1)), "_salesorderid_value": id,
				"lineitemnumber": l + 1, "sequencenumber": l + 1, "quantity": qty.StringFixed(5), "ispriceoverridden": false,
				"_uomid_value": uom, "_transactioncurrencyid_value": cur.id, "exchangerate": cur.rate.StringFixed(10),
				"salesorderstatecode": st[0], "producttypecode": 1, "createdon": stamp(60 + i/2), "modifiedon": stamp(61 + i/2),
			}
			var price decimal.Decimal
			writeIn := (i == 0 && l == 2) || (i > 0 && rng.IntN(9) == 0)
			if writeIn {
				price = decimal.NewFromInt(int64(20 + rng.IntN(300))).Add(decimal.New(int64(rng.IntN(100)), -2))
				desc := []string{"Custom engraving", "Rush handling fee", "On-site installation", "Extended warranty (2 years)"}[rng.IntN(4)]
				line["isproductoverridden"], line["productdescription"] = true, desc
				line["salesorderdetailname"], line["productname"] = desc, desc
			} else {
				p := products[rng.IntN(28)]
				price = decimal.RequireFromString(p["price"].(string))
				line["isproductoverridden"] = false
				line["_productid_value"] = p["productid"]
				line["productname"], line["productnumber"], line["salesorderdetailname"] = p["name"], p["productnumber"], p["name"]
			}
			amount := qty.Mul(price)
			line["priceperunit"], line["baseamount"], line["extendedamount"] = price.StringFixed(2), amount.StringFixed(2), amount.StringFixed(2)
			line["manualdiscountamount"], line["volumediscountamount"], line["tax"] = "0.00", "0.00", "0.00"
			total = total.Add(amount)
			lines = append(lines, line)
		}
		delivery := time.Date(2026, time.Month(1+i%12), 1+(i*3)%28, 8, 0, 0, 0, time.UTC)
		if i == 0 {
			delivery = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		}
		o := rec{
			"salesorderid": id, "ordernumber": number, "name": "Order " + number + " for " + custName,
			"_customerid_value": custID, "_customerid_value" + lookupLogical: custTable,
			"requestdeliveryby":   delivery.Format(time.RFC3339),
			"totallineitemamount": total.StringFixed(2), "totaldiscountamount": "0.00", "totaltax": "0.00", "freightamount": "0.00",
			"discountamount": "0.00", "totalamountlessfreight": total.StringFixed(2), "totalamount": total.StringFixed(2),
			// The base currency (USD, exchange rate 1) amount, as Dataverse
			// stores it: the amount divided by the order's exchange rate,
			// at the _base columns' precision of 4.
			"totalamount_base":             total.DivRound(cur.rate, 4).StringFixed(4),
			"_transactioncurrencyid_value": cur.id, "exchangerate": cur.rate.StringFixed(10),
			"shippingmethodcode": 1 + i%7, "paymenttermscode": 1 + i%4, "willcall": false,
			"shipto_name": custName, "shipto_line1": fmt.Sprintf("%d Main Street", 10+i), "shipto_city": []string{"Seattle", "Redmond", "London", "Dublin", "Berlin"}[i%5],
			"shipto_postalcode": fmt.Sprintf("%05d", 98000+i), "shipto_country": []string{"USA", "USA", "United Kingdom", "Ireland", "Germany"}[i%5],
			"statecode": st[0], "statuscode": st[1], "_ownerid_value": owner, "_ownerid_value" + lookupLogical: "systemuser",
			"createdon": stamp(60 + i/2), "modifiedon": stamp(62 + i/2),
		}
		if custTable == "account" {
			o["_accountid_value"] = custID
		} else {
			o["_contactid_value"] = custID
		}
		if st[0] >= 1 && st[0] != 2 {
			o["submitdate"] = time.Date(2026, time.Month(1+i%12), 1, 8, 0, 0, 0, time.UTC).Format(time.RFC3339)
		}
		if st[0] >= 3 {
			o["datefulfilled"] = delivery.Format(time.RFC3339)
		}
		orders = append(orders, o)
	}
	doc := map[string]any{"tables": map[string]any{
		"transactioncurrency": tcs, "systemuser": users, "uom": uoms, "account": accounts, "contact": contacts,
		"product": products, "salesorder": orders, "salesorderdetail": lines,
	}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
