// Package report writes the documents domicile gives people: a subject's
// data statement, a stakeholder impact report and the per-subject notice of
// a change plan, and a periodic transparency report. Each is built from
// what the system holds and did (cells, logs, requests, transfers), in
// English or Simplified Chinese, and rendered as JSON, Markdown or HTML
// (with inline SVG charts and a print stylesheet).
//
// # Honesty
//
// A document is never more reassuring than the truth. Concretely:
//
//   - who holds the keys is said for each custody kind, naming the party
//     that can unwrap a subject's data key;
//   - what the operator and the authorities of the cell's jurisdiction can
//     reach is taken from the law engine's rules, with their ids; where the
//     rule set says nothing about a jurisdiction, the document says so
//     instead of implying there is nothing;
//   - a transfer section with no transfer source wired says that transfers
//     are not reported here, not that there were none; transfer events in
//     the log are counted either way;
//   - accesses under an authority request whose notice the law defers are
//     left out until the deferral ends, and every statement says that such
//     deferrals exist and that the log already commits to them.
//
// Building a document is pure ([BuildStatement], [BuildTransparency]);
// gathering its inputs from a running deployment is in gather.go.
package report
