// Package merkle implements the Merkle tree of a domicile cell log: RFC 6962
// hashing, inclusion and consistency proofs, and the tile and entry-bundle
// layout of C2SP tlog-tiles.
//
// The package is pure: it does no I/O and never imports the root package, so
// an auditor can verify a log with it and nothing of the server.
//
// # Hashes and storage
//
// [Hash] is an alias of golang.org/x/mod/sumdb/tlog's Hash, and [HashReader]
// of its HashReader: values pass to and from that package, the reference
// implementation this one builds on, without conversion. Hashes are stored
// by "stored hash index" (see [StoredHashIndex]): the log appends, for each
// new leaf, the hashes returned by [StoredHashes], and proofs are computed
// from any [HashReader] over that storage.
//
// Leaf and interior hashes follow RFC 6962 section 2.1:
//
//	leaf hash = SHA-256(0x00 || entry)
//	node hash = SHA-256(0x01 || left || right)
//
// and the root of the empty tree is SHA-256 of the empty string
// ([EmptyRoot]).
//
// # Tiles
//
// A [Tile] names one resource of C2SP tlog-tiles (https://c2sp.org/tlog-tiles)
// with height 8 (256 hashes per full tile):
//
//	tile/<L>/<N>[.p/<W>]        hashes, level L (0..63)
//	tile/entries/<N>[.p/<W>]    entry bundle (the leaves' data)
//
// N is written in zero-padded groups of three digits, all but the last
// prefixed with "x" (1234067 is x001/x234/067); .p/W marks a partial tile of
// W < 256 hashes or entries. [ParseTilePath] accepts only this canonical
// form. An entry bundle is a sequence of entries, each prefixed with its
// length as a big-endian uint16 ([EncodeEntryBundle], [DecodeEntryBundle]).
//
// # Proofs
//
// [ProveInclusion] and [ProveConsistency] return RFC 6962 audit paths and
// consistency proofs; [VerifyInclusion] and [VerifyConsistency] check them
// and report failure as an [*InclusionProofError] or
// [*ConsistencyProofError] that carries the proof and the claimed values.
//
// # Compatibility
//
// Hash values, tile paths, tile contents and entry bundles are wire formats
// fixed by RFC 6962 and C2SP tlog-tiles; they will not change.
package merkle
