package tlog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"domicile"
	"domicile/merkle"
)

// BenchmarkProveFromStore: inclusion proofs of random leaves, hashes read
// from the SQLite store, at 200,000 leaves:
//
//	go test -run '^$' -bench ProveFromStore ./tlog/
func BenchmarkProveFromStore(b *testing.B) {
	ctx := context.Background()
	l, st, _ := newLogB(b, "example/bench")
	const n = 200_000
	for i := 0; i < n; i += 2000 {
		batch := &domicile.Batch{}
		for j := i; j < i+2000; j++ {
			batch.Events = append(batch.Events, &domicile.LogEntry{Time: time.Now(), Leaf: []byte(fmt.Sprintf("leaf %d", j))})
		}
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	h, err := l.Latest(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := r.Int64N(n)
		p, err := l.ProveInclusion(ctx, idx, h.Size)
		if err != nil {
			b.Fatal(err)
		}
		if err := merkle.VerifyInclusion(p, idx, h.Size, merkle.LeafHash([]byte(fmt.Sprintf("leaf %d", idx))), h.Root); err != nil {
			b.Fatal(err)
		}
	}
}
