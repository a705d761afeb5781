// Package law evaluates data-residency and cross-border transfer law as data.
//
// Rules live in YAML documents embedded in the binary (rules/*.yaml, one per
// instrument or jurisdiction) over a declared vocabulary of facts, dated
// derived predicates and effects (vocabulary.yaml). Conditions are CEL
// expressions, type-checked against the fact vocabulary and compiled once by
// [New]; evaluation does no I/O and reads no clock: the date of the law to
// apply is always passed in.
//
// # Inputs
//
// [Parse] reads either a fact file (a YAML or JSON mapping of fact names to
// values, with an optional as_of date) or a business inventory (a document
// with entity: and flows:). [Engine.Assess] turns either into a [Report];
// [Engine.Decide] decides one transfer from facts, as the transfer gateway
// does with counts taken from its own ledger.
//
// An inventory flow says where its data comes from, is stored and is read
// from. Each crossing of a border is a [Leg], evaluated under the rules of
// the jurisdiction the data leaves ([Engine.LawOf] maps a country to the
// rules that govern it: DE to the EU's), and the counts the thresholds read
// are aggregated per law. The report merges the findings of every
// jurisdiction: one per rule, with the legs it fired for, earliest
// deadline first.
//
// # Outcome
//
// A report names the strongest transfer mechanism among the rules that fired
// (prohibited > security_assessment > gba_standard_contract >
// sc_or_certification > exempt > not_regulated; legal_review only when nothing
// else decides), every rule that fired with its citation, effective dates and
// confidence, the obligations, headroom warnings near the volume thresholds,
// and review flags for rules resting on secondary or unconfirmed sources.
// [Engine.Explain] shows, fact by fact, why one rule fired or did not.
//
// # Dates
//
// Every rule and every derived predicate carries effective_from and, when it
// has ceased, effective_until (both inclusive, YYYY-MM-DD). The regime before
// 2024-03-22 (2022 Security Assessment Measures Art. 4 and 2023 Standard
// Contract Measures Art. 4, counting since 1 January of the previous year) is
// modelled beside the 2024 Provisions, so an assessment as of 2023-06-01 and
// one as of 2024-06-01 of the same business can differ; the report's regime
// and not_in_force sections say why.
//
// # Limits
//
// The engine maps declared facts to rules. It does not decide whether a fact
// is true (whether data is important, whether a transfer is necessary), it
// models only the rules in its documents, and its output is not legal advice.
package law
