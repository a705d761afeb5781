// Package transfer is domicile's cross-border transfer gateway: the one
// gate through which subject data leaves its cell's jurisdiction
// (invariant 2 of the design).
//
// # What it keeps
//
//   - A registry of the mechanisms a business holds (CAC security
//     assessment, standard contract, certification, GBA standard contract,
//     the exemptions it relies on, adequacy, SCCs, BCRs), each with its
//     scope (destinations, recipients, purposes, data categories, fields, a
//     volume ceiling) and its dates. Deadlines in China are counted in
//     working days on the State Council's holiday schedule, adjusted
//     working days (调休) included ([CN], [Calendar]).
//   - Subjects' separate consents to transfer abroad (PIPL Art. 39) and to
//     processing of sensitive information (Art. 29), with the version of the
//     consent text; each change is an event in the subject's cell log.
//   - The ledger: durable year-to-date counts of distinct people per legal
//     entity, source jurisdiction and calendar year, non-sensitive and
//     sensitive apart, with per-mechanism and per-destination breakdowns,
//     keyed by subject reference (never by raw id), and a record of every
//     transfer kept as evidence.
//
// # How a request is decided
//
// [Gateway.Decide] builds the law engine's facts from the system itself:
// the ledger's counts including this request's new subjects, the
// categories of the requested fields, the deployment's declarations
// (CIIO, important data), the destination, the ground relied on, and the
// consents. The engine names the mechanism the law requires; the request
// passes only if a registered mechanism of that kind (or a stronger one)
// covers its destination, recipient and purpose, is valid on the day and,
// for a standard contract, was filed within 10 working days. Subjects
// without a consent the law requires are left out. Only fields the
// mechanism's scope allows leave. A refusal is a [RefusedError] carrying
// the decision: its reasons, the rule ids, and what would make it pass.
//
// Decisions and the counts they change are serialised per legal entity
// (one mutex, one transaction), so two concurrent requests that together
// would cross a threshold cannot both pass.
//
// # Remote access
//
// A read by an actor acting from outside the cell's jurisdiction is a
// transfer. The gateway implements the cell's RemoteGate: the same rules,
// the same counts; a subject counts once per year, however often read.
//
// # Bundles
//
// An allowed export streams a JSON-lines bundle (see [BundleFormat]),
// encrypted with age to the recipient's X25519 key unless the request
// asks for a plain bundle explicitly.
package transfer
