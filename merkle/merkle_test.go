package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// refTree is a naive RFC 6962 Merkle tree, written from the RFC's recursive
// definitions (section 2.1) with no code shared with the package. Subtree
// hashes are memoized so that tests over every size stay fast.
type refTree struct {
	leaves [][]byte
	memo   map[[2]int]Hash
}

func newRefTree(n int) *refTree {
	t := &refTree{memo: map[[2]int]Hash{}}
	for i := range n {
		t.leaves = append(t.leaves, fmt.Appendf(nil, "leaf %d", i))
	}
	return t
}

func refLeafHash(b []byte) Hash {
	return sha256.Sum256(append([]byte{0}, b...))
}

func refNodeHash(l, r Hash) Hash {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// k returns the largest power of two smaller than n (n > 1).
func refSplit(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// mth is MTH(D[lo:hi]).
func (t *refTree) mth(lo, hi int) Hash {
	if hi == lo {
		return sha256.Sum256(nil)
	}
	if h, ok := t.memo[[2]int{lo, hi}]; ok {
		return h
	}
	var h Hash
	if hi-lo == 1 {
		h = refLeafHash(t.leaves[lo])
	} else {
		k := refSplit(hi - lo)
		h = refNodeHash(t.mth(lo, lo+k), t.mth(lo+k, hi))
	}
	t.memo[[2]int{lo, hi}] = h
	return h
}

// path is PATH(m, D[lo:hi]).
func (t *refTree) path(m, lo, hi int) []Hash {
	n := hi - lo
	if n == 1 {
		return nil
	}
	k := refSplit(n)
	if m < k {
		return append(t.path(m, lo, lo+k), t.mth(lo+k, hi))
	}
	return append(t.path(m-k, lo+k, hi), t.mth(lo, lo+k))
}

// subproof is SUBPROOF(m, D[lo:hi], b).
func (t *refTree) subproof(m, lo, hi int, b bool) []Hash {
	n := hi - lo
	if m == n {
		if b {
			return nil
		}
		return []Hash{t.mth(lo, hi)}
	}
	k := refSplit(n)
	if m <= k {
		return append(t.subproof(m, lo, lo+k, b), t.mth(lo+k, hi))
	}
	return append(t.subproof(m-k, lo+k, hi, false), t.mth(lo, lo+k))
}

// buildMemory stores the leaves of ref in a MemoryHashes.
func buildMemory(tb testing.TB, ref *refTree) MemoryHashes {
	tb.Helper()
	var m MemoryHashes
	for _, l := range ref.leaves {
		if _, err := m.Append(l); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

const maxTestSize = 300

func TestTreeHashMatchesReference(t *testing.T) {
	ref := newRefTree(maxTestSize)
	m := buildMemory(t, ref)
	for size := int64(0); size <= maxTestSize; size++ {
		got, err := TreeHash(size, m)
		if err != nil {
			t.Fatalf("TreeHash(%d) error: %v", size, err)
		}
		if want := ref.mth(0, int(size)); got != want {
			t.Fatalf("TreeHash(%d) = %s, want %s", size, got, want)
		}
	}
	if got := m.Size(); got != maxTestSize {
		t.Errorf("Size() = %d, want %d", got, maxTestSize)
	}
}

func TestInclusionEveryLeafEverySize(t *testing.T) {
	ref := newRefTree(maxTestSize)
	m := buildMemory(t, ref)
	rng := rand.New(rand.NewPCG(1, 2))
	for size := int64(1); size <= maxTestSize; size++ {
		root := ref.mth(0, int(size))
		for index := range size {
			proof, err := ProveInclusion(index, size, m)
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d) error: %v", index, size, err)
			}
			want := ref.path(int(index), 0, int(size))
			if !equalHashes(proof, want) {
				t.Fatalf("ProveInclusion(%d, %d) = %s, want %s", index, size, FormatProof(proof), FormatProof(want))
			}
			lh := ref.mth(int(index), int(index)+1)
			if err := VerifyInclusion(proof, index, size, lh, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d) = %v, want nil", index, size, err)
			}
			// Corrupting every proof is slow under -race; do every proof for
			// small trees and a random sample for larger ones.
			if size <= 64 || rng.IntN(16) == 0 {
				checkInclusionCorruptions(t, proof, index, size, lh, root)
			}
		}
	}
}

func checkInclusionCorruptions(t *testing.T, proof []Hash, index, size int64, lh, root Hash) {
	t.Helper()
	type probe struct {
		name        string
		proof       []Hash
		index, size int64
		lh, root    Hash
	}
	other := Hash(sha256.Sum256([]byte("other")))
	probes := []probe{
		{"index-1", proof, index - 1, size, lh, root},
		{"index+1", proof, index + 1, size, lh, root},
		{"index^2", proof, index ^ 2, size, lh, root},
		{"size*2", proof, index, size * 2, lh, root},
		{"size/2", proof, index, size / 2, lh, root},
		{"wrong leaf", proof, index, size, other, root},
		{"wrong root", proof, index, size, lh, other},
		{"empty root", proof, index, size, lh, EmptyRoot()},
		{"trailing hash", append(clone(proof), other), index, size, lh, root},
		{"trailing root", append(clone(proof), root), index, size, lh, root},
		{"preceding root", append([]Hash{root}, proof...), index, size, lh, root},
	}
	if len(proof) > 0 {
		probes = append(probes, probe{"truncated", proof[:len(proof)-1], index, size, lh, root})
		probes = append(probes, probe{"first removed", proof[1:], index, size, lh, root})
	}
	for i := range proof {
		p := clone(proof)
		p[i][i%HashSize] ^= 1 << (i % 8)
		probes = append(probes, probe{fmt.Sprintf("flip proof[%d]", i), p, index, size, lh, root})
	}
	for _, pr := range probes {
		if err := VerifyInclusion(pr.proof, pr.index, pr.size, pr.lh, pr.root); err == nil {
			t.Errorf("VerifyInclusion(%s) of leaf %d in size %d = nil, want error", pr.name, index, size)
		} else if _, ok := err.(*InclusionProofError); !ok {
			t.Errorf("VerifyInclusion(%s) error type %T, want *InclusionProofError", pr.name, err)
		}
	}
}

func TestConsistencyEveryPair(t *testing.T) {
	ref := newRefTree(maxTestSize)
	m := buildMemory(t, ref)
	rng := rand.New(rand.NewPCG(3, 4))
	for size2 := int64(0); size2 <= maxTestSize; size2++ {
		root2 := ref.mth(0, int(size2))
		for size1 := int64(0); size1 <= size2; size1++ {
			root1 := ref.mth(0, int(size1))
			proof, err := ProveConsistency(size1, size2, m)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d) error: %v", size1, size2, err)
			}
			var want []Hash
			if size1 > 0 && size1 < size2 {
				want = ref.subproof(int(size1), 0, int(size2), true)
			}
			if !equalHashes(proof, want) {
				t.Fatalf("ProveConsistency(%d, %d) = %s, want %s", size1, size2, FormatProof(proof), FormatProof(want))
			}
			if err := VerifyConsistency(proof, size1, size2, root1, root2); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d) = %v, want nil", size1, size2, err)
			}
			if len(proof) > 0 && (size2 <= 64 || rng.IntN(16) == 0) {
				checkConsistencyCorruptions(t, proof, size1, size2, root1, root2)
			}
		}
	}
}

func checkConsistencyCorruptions(t *testing.T, proof []Hash, size1, size2 int64, root1, root2 Hash) {
	t.Helper()
	type probe struct {
		name         string
		proof        []Hash
		size1, size2 int64
		root1, root2 Hash
	}
	other := Hash(sha256.Sum256([]byte("other")))
	probes := []probe{
		{"size1-1", proof, size1 - 1, size2, root1, root2},
		{"size1+1", proof, size1 + 1, size2, root1, root2},
		{"size1^2", proof, size1 ^ 2, size2, root1, root2},
		{"size2*2", proof, size1, size2 * 2, root1, root2},
		{"size2/2", proof, size1, size2 / 2, root1, root2},
		{"wrong root1", proof, size1, size2, other, root2},
		{"wrong root2", proof, size1, size2, root1, other},
		{"swapped roots", proof, size1, size2, root2, root1},
		{"empty proof", nil, size1, size2, root1, root2},
		{"trailing root1", append(clone(proof), root1), size1, size2, root1, root2},
		{"trailing root2", append(clone(proof), root2), size1, size2, root1, root2},
		{"preceding root1", append([]Hash{root1}, proof...), size1, size2, root1, root2},
		{"preceding proof[0]", append([]Hash{proof[0]}, proof...), size1, size2, root1, root2},
		{"truncated", proof[:len(proof)-1], size1, size2, root1, root2},
	}
	for i := range proof {
		p := clone(proof)
		p[i][(i+3)%HashSize] ^= 1 << (i % 8)
		probes = append(probes, probe{fmt.Sprintf("flip proof[%d]", i), p, size1, size2, root1, root2})
	}
	for _, pr := range probes {
		if err := VerifyConsistency(pr.proof, pr.size1, pr.size2, pr.root1, pr.root2); err == nil {
			t.Errorf("VerifyConsistency(%s) from %d to %d = nil, want error", pr.name, size1, size2)
		} else if _, ok := err.(*ConsistencyProofError); !ok {
			t.Errorf("VerifyConsistency(%s) error type %T, want *ConsistencyProofError", pr.name, err)
		}
	}
}

func TestConsistencyEdgeCases(t *testing.T) {
	r1 := Hash(sha256.Sum256([]byte("r1")))
	r2 := Hash(sha256.Sum256([]byte("r2")))
	tests := []struct {
		name         string
		size1, size2 int64
		root1, root2 Hash
		proof        []Hash
		ok           bool
	}{
		{"from empty", 0, 5, EmptyRoot(), r2, nil, true},
		{"empty to empty", 0, 0, EmptyRoot(), EmptyRoot(), nil, true},
		{"same size same root", 3, 3, r1, r1, nil, true},
		{"from empty with non-empty root", 0, 5, r1, r2, nil, false},
		{"from empty with proof", 0, 5, EmptyRoot(), r2, []Hash{r1}, false},
		{"same size different roots", 3, 3, r1, r2, nil, false},
		{"same size with proof", 3, 3, r1, r1, []Hash{r1}, false},
		{"backwards", 4, 3, r1, r2, nil, false},
		{"negative", -1, 3, r1, r2, nil, false},
		{"empty proof between sizes", 1, 2, r1, r2, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyConsistency(tc.proof, tc.size1, tc.size2, tc.root1, tc.root2)
			if (err == nil) != tc.ok {
				t.Errorf("VerifyConsistency(%d, %d) = %v, want ok=%v", tc.size1, tc.size2, err, tc.ok)
			}
		})
	}
}

func TestInclusionInvalidInputs(t *testing.T) {
	m := buildMemory(t, newRefTree(10))
	for _, c := range [][2]int64{{0, 0}, {-1, 5}, {5, 5}, {11, 10}} {
		if _, err := ProveInclusion(c[0], c[1], m); err == nil {
			t.Errorf("ProveInclusion(%d, %d) = nil error, want error", c[0], c[1])
		}
		if err := VerifyInclusion(nil, c[0], c[1], Hash{}, Hash{}); err == nil {
			t.Errorf("VerifyInclusion(%d, %d) = nil, want error", c[0], c[1])
		}
	}
	if _, err := ProveConsistency(5, 4, m); err == nil {
		t.Error("ProveConsistency(5, 4) = nil error, want error")
	}
	if _, err := ProveConsistency(5, 11, m); err == nil {
		t.Error("ProveConsistency(5, 11) beyond stored hashes = nil error, want error")
	}
}

// RFC 6962 test vectors, as published with the Certificate Transparency
// reference implementation and transparency-dev/merkle.
var (
	vectorLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	vectorRoots  = []string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	vectorInclusion = []struct {
		index, size int64
		proof       []string
	}{
		{0, 1, nil},
		{0, 8, []string{
			"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{5, 8, []string{
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 3, []string{
			"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
		{1, 5, []string{
			"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	}
	vectorConsistency = []struct {
		size1, size2 int64
		proof        []string
	}{
		{1, 1, nil},
		{1, 8, []string{
			"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, []string{
			"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 5, []string{
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	}
)

func hexHash(tb testing.TB, s string) Hash {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		tb.Fatalf("bad test hash %q", s)
	}
	return Hash(b)
}

func hexHashes(tb testing.TB, ss []string) []Hash {
	var out []Hash
	for _, s := range ss {
		out = append(out, hexHash(tb, s))
	}
	return out
}

func TestRFC6962Vectors(t *testing.T) {
	var m MemoryHashes
	var leafHashes []Hash
	for _, l := range vectorLeaves {
		b, _ := hex.DecodeString(l)
		lh, err := m.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		leafHashes = append(leafHashes, lh)
	}
	for size, want := range vectorRoots {
		got, err := TreeHash(int64(size), m)
		if err != nil || got != hexHash(t, want) {
			t.Errorf("TreeHash(%d) = %x, %v; want %s", size, got, err, want)
		}
	}
	for _, v := range vectorInclusion {
		want := hexHashes(t, v.proof)
		got, err := ProveInclusion(v.index, v.size, m)
		if err != nil || !equalHashes(got, want) {
			t.Errorf("ProveInclusion(%d, %d) = %s, %v; want %s", v.index, v.size, FormatProof(got), err, FormatProof(want))
		}
		if err := VerifyInclusion(want, v.index, v.size, leafHashes[v.index], hexHash(t, vectorRoots[v.size])); err != nil {
			t.Errorf("VerifyInclusion(vector %d, %d) = %v", v.index, v.size, err)
		}
	}
	for _, v := range vectorConsistency {
		want := hexHashes(t, v.proof)
		got, err := ProveConsistency(v.size1, v.size2, m)
		if err != nil || !equalHashes(got, want) {
			t.Errorf("ProveConsistency(%d, %d) = %s, %v; want %s", v.size1, v.size2, FormatProof(got), err, FormatProof(want))
		}
		if err := VerifyConsistency(want, v.size1, v.size2, hexHash(t, vectorRoots[v.size1]), hexHash(t, vectorRoots[v.size2])); err != nil {
			t.Errorf("VerifyConsistency(vector %d, %d) = %v", v.size1, v.size2, err)
		}
	}
}

func TestHashesFromBytes(t *testing.T) {
	h := Hash(sha256.Sum256([]byte("x")))
	got, err := HashesFromBytes(HashesToBytes([]Hash{h, EmptyRoot()}))
	if err != nil || !equalHashes(got, []Hash{h, EmptyRoot()}) {
		t.Errorf("HashesFromBytes(HashesToBytes(x)) = %v, %v; want x", got, err)
	}
	if _, err := HashesFromBytes([][]byte{h[:31]}); err == nil {
		t.Error("HashesFromBytes(31 bytes) = nil error, want error")
	}
}

// fuzzTree is a tree shared by the fuzz targets, built once.
var fuzzTree = sync.OnceValues(func() (*refTree, MemoryHashes) {
	ref := newRefTree(2000)
	var m MemoryHashes
	for _, l := range ref.leaves {
		if _, err := m.Append(l); err != nil {
			panic(err)
		}
	}
	return ref, m
})

func FuzzInclusionProofAndVerify(f *testing.F) {
	for _, s := range [][2]int64{{0, 1}, {0, 2}, {1, 2}, {5, 8}, {255, 256}, {256, 257}, {1000, 1999}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, index, size int64) {
		ref, m := fuzzTree()
		if size < 1 || size > int64(len(ref.leaves)) || index < 0 || index >= size {
			if _, err := ProveInclusion(index, size, m); err == nil && (index < 0 || index >= size) {
				t.Fatalf("ProveInclusion(%d, %d) = nil error, want error", index, size)
			}
			return
		}
		proof, err := ProveInclusion(index, size, m)
		if err != nil {
			t.Fatalf("ProveInclusion(%d, %d) error: %v", index, size, err)
		}
		root := ref.mth(0, int(size))
		lh := refLeafHash(ref.leaves[index])
		if err := VerifyInclusion(proof, index, size, lh, root); err != nil {
			t.Fatalf("VerifyInclusion(%d, %d) = %v", index, size, err)
		}
		// And the independent reference check in x/mod agrees.
		if err := tlog.CheckRecord(proof, size, root, index, lh); err != nil {
			t.Fatalf("tlog.CheckRecord(%d, %d) = %v", index, size, err)
		}
	})
}

func FuzzConsistencyProofAndVerify(f *testing.F) {
	for _, s := range [][2]int64{{0, 0}, {0, 1}, {1, 1}, {1, 2}, {6, 8}, {255, 257}, {1000, 1999}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, size1, size2 int64) {
		ref, m := fuzzTree()
		if size1 < 0 || size2 < size1 || size2 > int64(len(ref.leaves)) {
			if _, err := ProveConsistency(size1, size2, m); err == nil && (size1 < 0 || size2 < size1) {
				t.Fatalf("ProveConsistency(%d, %d) = nil error, want error", size1, size2)
			}
			return
		}
		proof, err := ProveConsistency(size1, size2, m)
		if err != nil {
			t.Fatalf("ProveConsistency(%d, %d) error: %v", size1, size2, err)
		}
		root1, root2 := ref.mth(0, int(size1)), ref.mth(0, int(size2))
		if err := VerifyConsistency(proof, size1, size2, root1, root2); err != nil {
			t.Fatalf("VerifyConsistency(%d, %d) = %v", size1, size2, err)
		}
		if len(proof) > 0 {
			bad := clone(proof)
			bad[len(bad)-1][0] ^= 1
			if err := VerifyConsistency(bad, size1, size2, root1, root2); err == nil {
				t.Fatalf("VerifyConsistency(%d, %d) of corrupted proof = nil", size1, size2)
			}
		}
	})
}

func equalHashes(a, b []Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clone(p []Hash) []Hash { return append([]Hash(nil), p...) }
