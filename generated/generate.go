// Package generated is the typed Dataverse client for the tables dvgate
// uses (account, contact, salesorder, salesorderdetail, product, and
// transactioncurrency for the ISO code of money columns), generated
// by dvgen from testdata/csdl/org.xml and testdata/entitydefs/org.json.
//
// Models (one struct per table, every column an optional pointer, formatted
// values and lookup annotations as extra fields, and Extra for the members
// the model has no field for) come from oapi-codegen (models.gen.go); column
// identifiers, navigation properties, option-set constants and the typed
// Service (Get, GetByXxx, List, First, Next per table, over package odataq)
// come from dvgen's own templates (tables.gen.go). openapi.json is the
// document the models are generated from, kept for other languages.
//
// Do not edit the generated files; change the inputs and run go generate.
package generated

//go:generate go run ../cmd/dvgen --metadata ../testdata/csdl/org.xml --entity-definitions ../testdata/entitydefs/org.json --tables account,contact,salesorder,salesorderdetail,product,transactioncurrency --out . --package generated
