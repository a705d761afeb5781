// Package figures defines, once, every number domicile reports: the
// transparency report's, the data statement's, the transfer evidence's,
// the impact report's and the live assessment's. Each figure is one
// function here, named for what it counts, and the documents and the
// verifier (`domicile transparency verify`) call the same functions;
// nothing recounts on its own. doc/communication.md and doc/transfers.md
// say the same in words.
//
// # Two sources
//
// Log figures count the leaves of a cell's log: its public tiles
// (package leaf: the minute, action, role, outcome and public tags of
// each event). Anyone can recount them from the log alone, at the
// checkpoint a report names ([Counter], [Cell], [Compare]).
//
// Ledger figures come from the transfer ledger: distinct people per
// legal entity, source jurisdiction, calendar year and class, and the
// record of each transfer ([PeopleYTD], [TransferRows], [LedgerDigest],
// [Crossings]). People are counted by person key, the keyed hash of a
// subject's id, the same for every registration of the id. A report
// names the ledger's digest; an auditor with the evidence export and the
// ledger's counts recomputes it.
package figures
