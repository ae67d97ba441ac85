// Package odataq is the hand-written runtime that dvgen's generated code
// imports: OData literal encoding, a typed $filter builder, query-string
// encoding for $select/$filter/$orderby/$top/$expand, the Prefer header, and
// a pager that follows @odata.nextLink.
//
// Everything table-specific is generated; this package holds what is the
// same for every table, so it is written and tested once.
//
// Type safety comes from a phantom type parameter: a column of salesorder is
// a Col[SalesOrder, V] (or a StringCol[SalesOrder]), and Query[SalesOrder]
// accepts only salesorder columns, filters and navigation properties. The
// value type V fixes what a comparison accepts (a GUID lookup compares with a
// uuid.UUID and is written unquoted).
//
// Encoding contract: a value never changes the structure of a query. String
// literals are quoted with ' and an embedded ' is doubled (OData ABNF); then
// every byte outside a small safe set is percent-encoded, so '+' becomes %2B
// (Dataverse reads a raw '+' as a space), '&', '#', '%', ';' and '=' cannot
// end the option, and a space is %20. Option names ($select, ...) and the
// structural characters , ( ) / : stay literal, as in Microsoft's examples.
//
// All values are immutable: builder methods return modified copies, so a
// Query may be shared between goroutines.
package odataq
