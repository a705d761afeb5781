// Package keyd implements an external key custodian for domicile: a small
// HTTPS service, run by the customer wherever they choose, that holds a cell's
// key-encryption key and rules on every unwrap with the customer's policy.
// It follows the pattern of Google's Key Access Justifications, applied to a
// customer's own data.
//
// # Roles
//
// [Server] is the custodian (`domicile keyd serve`). It holds its own KEK (a
// kms/filekms keyring), a [Policy], and an append-only decision log. [Client]
// is what a cell uses: a [kms.KEK] whose every call goes to the custodian.
//
// # Authentication
//
// Both sides authenticate with TLS 1.3 client and server certificates
// ([ServerTLSConfig], [ClientTLSConfig]). The common name of the client
// certificate is the cell's id: the custodian denies an unwrap whose
// Access.Cell names another cell, so a cell cannot borrow another's policy.
// [CA] issues development certificates (ECDSA P-256).
//
// # Protocol
//
// JSON over HTTPS; byte strings are base64; unknown fields and bodies larger
// than [MaxRequestBytes] are refused.
//
//	POST /v1/wrap     {"plaintext","aad"}                      → {"version","ciphertext"}
//	POST /v1/unwrap   {"access","version","ciphertext","aad"}  → {"plaintext","decision"}
//	POST /v1/rotate   {}                                       → {"version"}
//	POST /v1/retire   {"version"}                              → {"version"}
//	GET  /v1/versions                                          → {"kek","current","all"}
//
// Errors are {"error": code, "message", "decision"?, "version"?, "version_problem"?}
// with code bad_request (400), unauthenticated (401), denied (403), version
// (409), invalid_ciphertext (422) or unavailable (503, with Retry-After).
//
// # Policy
//
// A policy file is YAML: an ordered list of clauses; the first clause whose
// matchers all match decides; if none matches, the answer is deny.
//
//	key_admin: [rotate]          # key operations cells may request (default none)
//	clauses:
//	  - name: app-service
//	    effect: allow
//	    roles: [app]
//	    reasons: ["service:*"]
//	    cells: [cn-gz1]
//	  - name: support-office-hours
//	    effect: allow
//	    roles: [operator]
//	    reasons: [support]
//	    reference_required: true
//	    hours: "09:00-18:00"
//	    timezone: Asia/Shanghai
//	  - name: lawful-domestic
//	    effect: allow
//	    roles: [authority]
//	    reasons: [lawful-request-domestic]
//	    reference_required: true
//	    jurisdictions: [CN]
//	  - name: incident-2026-001
//	    effect: allow
//	    roles: [operator]
//	    reasons: [emergency]
//	    not_before: 2026-03-01T00:00:00Z
//	    not_after: 2026-03-08T00:00:00Z
//
// [ParsePolicy] refuses unknown fields, duplicate keys, anchors and aliases,
// and names the line and field of every error. [Policy.Format] writes the
// canonical form.
//
// # Decisions and logs
//
// Every unwrap decision, and every rotate or retire request, is appended to
// the decision log as one JSON line ([LogEntry]) and fsynced before the
// custodian answers; if the log cannot be written, the custodian answers 503
// and releases nothing. The decision is also returned to the client, which
// passes it to ClientConfig.OnDecision so the cell records the same facts.
// Wraps are not logged: they reveal nothing and are on the write path.
//
// # Failure
//
// A custodian that cannot be reached, or does not answer within
// ClientConfig.Timeout (default 2 s), yields an error wrapping
// [kms.ErrUnavailable]; a refusal is a *[kms.DeniedError].
package keyd
