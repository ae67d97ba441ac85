// Package bench holds dvgate's cross-package benchmarks and the pieces the
// load generator (cmd/dvgate-load) and the report (bench/report) share: a
// help-desk workload drawn from the demo seed (Zipf-distributed tickets
// with a configurable share of never-seen keys), an in-process sidecar on
// the Dataverse simulator, and the two baselines every figure is compared
// with in the same run:
//
//   - FixedServer, a plain net/http handler returning a fixed JSON body of
//     the size of an order answer: the limit of the HTTP stack;
//   - Naive, the client a team would write without dvgate: no cache, no
//     deduplication, the order, then its lines, then each product, one
//     request at a time.
//
// Nothing here is used by the gateway itself. All types are safe for
// concurrent use unless their doc says otherwise.
package bench
