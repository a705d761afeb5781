// Package checkpoint implements the checkpoints of a domicile cell log: the
// C2SP tlog-checkpoint body, its signature as a signed note
// (golang.org/x/mod/sumdb/note, Ed25519), and witness cosignatures in the
// C2SP tlog-cosignature format (cosignature/v1, Ed25519).
//
// # Checkpoint body
//
// A checkpoint body (https://c2sp.org/tlog-checkpoint) is three or more
// lines, each ending in a newline:
//
//	cn-gz1.log.example.com
//	20852163
//	CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//
// the origin (the log's identity, also the name of its signing key), the
// tree size in decimal without leading zeroes, the RFC 6962 root hash in
// standard base64, then optional non-empty extension lines. [Parse] accepts
// only the encoding [Format] produces.
//
// # Signatures
//
// A signed checkpoint is a signed note: the body, a blank line, and one or
// more signature lines "— <key name> base64(key ID || signature)". The log
// signs with an Ed25519 note key ([GenerateKey], [NewSigner]); its verifier
// key "<origin>+<key ID hex>+<base64 key>" is what verifiers are given.
// [Open] verifies a signed checkpoint and any required cosignatures.
//
// # Cosignatures
//
// A witness cosigns a checkpoint after checking it is consistent with the
// last one it cosigned (see package domicile/witness). A cosignature is a
// note signature line whose key ID is SHA-256(name || "\n" || 0x04 ||
// public key)[:4] and whose signature is an 8-byte big-endian Unix
// timestamp followed by the Ed25519 signature of
//
//	cosignature/v1
//	time <timestamp>
//	<checkpoint body>
//
// [Cosigner] and [CosignatureVerifier] implement note.Signer and
// note.Verifier, so cosignatures are made by note.Sign and verified by
// note.Open like any other note signature.
//
// # Security
//
// A checkpoint is only as trustworthy as the keys used to open it: obtain
// the log's verifier key, and the witnesses' keys, out of band. Signer keys
// begin with "PRIVATE+KEY" and must be kept secret.
//
// # Compatibility
//
// The formats are those of the cited C2SP specifications; they will not
// change.
package checkpoint
