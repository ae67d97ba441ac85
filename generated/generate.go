// Package generated is the typed Dataverse client for the tables dvgate
// uses (account, contact, salesorder, salesorderdetail, product, and
// transactioncurrency for the ISO code of money columns), generated
// by dvgen from testdata/csdl/org.xml and testdata/entitydefs/org.json.
//
// One file per table (salesorder.gen.go, ...) holds its model (from
// oapi-codegen: every column an optional pointer, formatted values and
// lookup annotations as fields, and Extra for the members the model has no
// field for), its column identifiers (SalesOrderColumns), navigation
// properties, option-set constants and its typed entity set (Get, GetByXxx,
// List, First, Next, over package odataq), from dvgen's own templates.
// service.gen.go holds the Service. openapi.json is the document the models
// are generated from, kept for other languages.
//
// Do not edit the generated files; change the inputs and run go generate.
package generated

//go:generate go run ../cmd/dvgen --metadata ../testdata/csdl/org.xml --entity-definitions ../testdata/entitydefs/org.json --tables account,contact,salesorder,salesorderdetail,product,transactioncurrency --out . --package generated
