package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// HashSize is the size of a [Hash] in bytes.
const HashSize = tlog.HashSize

// Hash is a SHA-256 Merkle tree hash. It is an alias of
// golang.org/x/mod/sumdb/tlog.Hash; its String method gives standard base64.
type Hash = tlog.Hash

// HashReader reads stored hashes by stored hash index (see
// [StoredHashIndex]). ReadHashes must return exactly one hash per index, in
// order, or an error. It is an alias of golang.org/x/mod/sumdb/tlog.HashReader.
type HashReader = tlog.HashReader

// HashReaderFunc adapts a function to a [HashReader].
type HashReaderFunc = tlog.HashReaderFunc

// emptyRoot is SHA-256 of the empty string: RFC 6962's MTH({}).
var emptyRoot = Hash(sha256.Sum256(nil))

// EmptyRoot returns the root hash of the empty tree, SHA-256 of the empty
// string (RFC 6962 section 2.1).
func EmptyRoot() Hash { return emptyRoot }

// LeafHash returns the RFC 6962 hash of a leaf entry: SHA-256(0x00 || entry).
func LeafHash(entry []byte) Hash { return tlog.RecordHash(entry) }

// NodeHash returns the RFC 6962 hash of an interior node:
// SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash { return tlog.NodeHash(left, right) }

// StoredHashIndex returns the stored hash index of the hash of the n'th
// subtree of 2^level leaves (level 0 holds leaf hashes).
func StoredHashIndex(level int, n int64) int64 { return tlog.StoredHashIndex(level, n) }

// StoredHashCount returns the number of stored hashes of a tree of size
// leaves.
func StoredHashCount(size int64) int64 { return tlog.StoredHashCount(size) }

// StoredHashes returns the hashes to store, in order, after the ones already
// stored for a tree of n leaves, when appending leaf n with leaf hash
// leafHash. r must serve the hashes stored for the first n leaves.
func StoredHashes(n int64, leafHash Hash, r HashReader) ([]Hash, error) {
	if n < 0 {
		return nil, errors.New("merkle: negative tree size")
	}
	return tlog.StoredHashesForRecordHash(n, leafHash, r)
}

// TreeHash returns the root hash of the tree of the first size leaves,
// reading stored hashes from r. TreeHash(0, r) is [EmptyRoot].
func TreeHash(size int64, r HashReader) (Hash, error) {
	if size < 0 {
		return Hash{}, errors.New("merkle: negative tree size")
	}
	if size == 0 {
		return emptyRoot, nil
	}
	return tlog.TreeHash(size, r)
}

// ProveInclusion returns the RFC 6962 audit path proving that leaf index is
// in the tree of size leaves, reading stored hashes from r. An error from r
// is wrapped, so callers can inspect their own HashReader's errors.
func ProveInclusion(index, size int64, r HashReader) ([]Hash, error) {
	if index < 0 || index >= size {
		return nil, fmt.Errorf("merkle: no leaf %d in tree of size %d", index, size)
	}
	p, err := tlog.ProveRecord(size, index, r)
	if err != nil {
		return nil, fmt.Errorf("merkle: prove inclusion: %w", err)
	}
	return p, nil
}

// VerifyInclusion checks that proof shows the leaf with hash leafHash at
// index in the tree of size leaves with root hash root. It returns nil or an
// [*InclusionProofError].
func VerifyInclusion(proof []Hash, index, size int64, leafHash, root Hash) error {
	fail := func(reason string) error {
		return &InclusionProofError{Index: index, Size: size, LeafHash: leafHash, Root: root,
			Proof: append([]Hash(nil), proof...), Reason: reason}
	}
	if index < 0 || index >= size {
		return fail("index outside tree")
	}
	if len(proof) > 64 {
		return fail("proof too long")
	}
	if err := tlog.CheckRecord(proof, size, root, index, leafHash); err != nil {
		return fail("root mismatch")
	}
	return nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size1 leaves is a prefix of the tree of size2 leaves, reading stored hashes
// from r. The proof is empty when size1 is 0 or size1 equals size2.
func ProveConsistency(size1, size2 int64, r HashReader) ([]Hash, error) {
	if size1 < 0 || size2 < size1 {
		return nil, fmt.Errorf("merkle: no consistency proof from size %d to %d", size1, size2)
	}
	if size1 == 0 || size1 == size2 {
		return []Hash{}, nil
	}
	p, err := tlog.ProveTree(size2, size1, r)
	if err != nil {
		return nil, fmt.Errorf("merkle: prove consistency: %w", err)
	}
	return p, nil
}

// VerifyConsistency checks that proof shows the tree of size1 leaves with
// root1 to be a prefix of the tree of size2 leaves with root2. It returns nil
// or a [*ConsistencyProofError].
//
// From size 0 the proof must be empty and root1 must be [EmptyRoot]; between
// equal sizes the proof must be empty and the roots equal.
func VerifyConsistency(proof []Hash, size1, size2 int64, root1, root2 Hash) error {
	fail := func(reason string) error {
		return &ConsistencyProofError{Size1: size1, Size2: size2, Root1: root1, Root2: root2,
			Proof: append([]Hash(nil), proof...), Reason: reason}
	}
	switch {
	case size1 < 0 || size2 < size1:
		return fail("sizes out of order")
	case len(proof) > 128:
		return fail("proof too long")
	case size1 == 0:
		if root1 != emptyRoot {
			return fail("root of empty tree is not SHA-256(\"\")")
		}
		if len(proof) != 0 {
			return fail("proof from empty tree must be empty")
		}
		return nil
	case size1 == size2:
		if len(proof) != 0 {
			return fail("proof between equal sizes must be empty")
		}
		if root1 != root2 {
			return fail("different roots at the same size")
		}
		return nil
	}
	if err := tlog.CheckTree(proof, size2, root2, size1, root1); err != nil {
		return fail("root mismatch")
	}
	return nil
}

// InclusionProofError reports an inclusion proof that does not verify, with
// everything needed to show it to a third party.
type InclusionProofError struct {
	Index, Size int64
	LeafHash    Hash
	Root        Hash
	Proof       []Hash
	Reason      string
}

func (e *InclusionProofError) Error() string {
	return fmt.Sprintf("merkle: inclusion proof of leaf %d (hash %s) in tree of size %d with root %s does not verify: %s; proof %s",
		e.Index, e.LeafHash, e.Size, e.Root, e.Reason, FormatProof(e.Proof))
}

// ConsistencyProofError reports a consistency proof that does not verify,
// with everything needed to show it to a third party.
type ConsistencyProofError struct {
	Size1, Size2 int64
	Root1, Root2 Hash
	Proof        []Hash
	Reason       string
}

func (e *ConsistencyProofError) Error() string {
	return fmt.Sprintf("merkle: consistency proof from size %d (root %s) to size %d (root %s) does not verify: %s; proof %s",
		e.Size1, e.Root1, e.Size2, e.Root2, e.Reason, FormatProof(e.Proof))
}

// FormatProof formats a proof as a bracketed, space-separated list of
// base64 hashes, for error messages and logs.
func FormatProof(proof []Hash) string {
	b := []byte{'['}
	for i, h := range proof {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, h.String()...)
	}
	return string(append(b, ']'))
}

// HashesFromBytes converts a proof transmitted as byte slices into hashes,
// rejecting any element that is not exactly [HashSize] bytes.
func HashesFromBytes(b [][]byte) ([]Hash, error) {
	hs := make([]Hash, len(b))
	for i, x := range b {
		if len(x) != HashSize {
			return nil, errors.New("merkle: malformed proof hash")
		}
		copy(hs[i][:], x)
	}
	return hs, nil
}

// HashesToBytes converts hashes into byte slices, for transmission.
func HashesToBytes(hs []Hash) [][]byte {
	b := make([][]byte, len(hs))
	for i := range hs {
		b[i] = append([]byte(nil), hs[i][:]...)
	}
	return b
}

// MemoryHashes is an in-memory store of stored hashes, indexed by stored
// hash index. It implements [HashReader]. It is meant for tests, tools and
// benchmarks; it is not safe for concurrent Append and ReadHashes.
type MemoryHashes []Hash

// ReadHashes implements [HashReader].
func (m MemoryHashes) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("merkle: stored hash %d not present", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// Append appends the leaf with the given entry data to the tree stored in
// *m and returns the leaf hash.
func (m *MemoryHashes) Append(entry []byte) (Hash, error) {
	size := m.Size()
	lh := LeafHash(entry)
	hs, err := StoredHashes(size, lh, *m)
	if err != nil {
		return Hash{}, err
	}
	*m = append(*m, hs...)
	return lh, nil
}

// Size returns the number of leaves stored in m.
func (m MemoryHashes) Size() int64 {
	// StoredHashCount(n) is 2n minus the number of one bits of n, so n lies
	// in [len/2, len/2+64].
	l := int64(len(m))
	lo := l / 2
	for n := lo; n <= lo+64; n++ {
		if tlog.StoredHashCount(n) == l {
			return n
		}
	}
	panic("merkle: MemoryHashes holds a partial leaf")
}
