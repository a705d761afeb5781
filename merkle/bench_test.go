package merkle

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
)

// benchTrees holds in-memory trees built once per size, shared by the
// benchmarks (10M leaves take about 640 MB of stored hashes).
var benchTrees sync.Map // int64 -> MemoryHashes

func benchTree(b *testing.B, size int64) MemoryHashes {
	if m, ok := benchTrees.Load(size); ok {
		return m.(MemoryHashes)
	}
	m := make(MemoryHashes, 0, StoredHashCount(size))
	var entry [8]byte
	for i := range size {
		binary.BigEndian.PutUint64(entry[:], uint64(i))
		if _, err := m.Append(entry[:]); err != nil {
			b.Fatal(err)
		}
	}
	benchTrees.Store(size, m)
	return m
}

// BenchmarkInclusion measures generating and verifying one inclusion proof
// in trees of 1M and 10M leaves whose stored hashes are in memory.
func BenchmarkInclusion(b *testing.B) {
	for _, size := range []int64{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("leaves=%d", size), func(b *testing.B) {
			m := benchTree(b, size)
			root, err := TreeHash(size, m)
			if err != nil {
				b.Fatal(err)
			}
			var entry [8]byte
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				index := int64(uint64(i) * 2654435761 % uint64(size))
				proof, err := ProveInclusion(index, size, m)
				if err != nil {
					b.Fatal(err)
				}
				binary.BigEndian.PutUint64(entry[:], uint64(index))
				if err := VerifyInclusion(proof, index, size, LeafHash(entry[:]), root); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConsistency measures generating and verifying one consistency
// proof in a tree of 1M leaves.
func BenchmarkConsistency(b *testing.B) {
	const size = 1_000_000
	m := benchTree(b, size)
	root2, err := TreeHash(size, m)
	if err != nil {
		b.Fatal(err)
	}
	size1 := int64(size - 12345)
	root1, err := TreeHash(size1, m)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		proof, err := ProveConsistency(size1, size, m)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyConsistency(proof, size1, size, root1, root2); err != nil {
			b.Fatal(err)
		}
	}
}
