package tlog_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/checkpoint"
	"domicile/merkle"
	"domicile/sqlite"
	"domicile/tlog"
)

// BenchmarkProveFromStore: inclusion proofs of random leaves, hashes read
// from the SQLite cell store (its partial tiles in memory, complete tiles
// from the tile files), at 200,000 leaves, and at the sizes that
// DOMICILE_BENCH_PROOF_LEAVES lists (comma-separated), such as 10,000,000
// (DOMICILE_BENCH_PROOF_DIR, if set, keeps the logs built there for the
// next run):
//
//	go test -run '^$' -bench ProveFromStore ./tlog/
//	DOMICILE_BENCH_PROOF_LEAVES=10000000 go test -run '^$' -bench ProveFromStore -timeout 1h ./tlog/
//
// It times building the proof, as a log serves it; every 64th proof is
// also verified, outside the timing.
func BenchmarkProveFromStore(b *testing.B) {
	sizes := []int64{200_000}
	if v := os.Getenv("DOMICILE_BENCH_PROOF_LEAVES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n < 1 {
				b.Fatalf("DOMICILE_BENCH_PROOF_LEAVES: %q is not a positive number of leaves", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("leaves=%d", n), func(b *testing.B) { benchProve(b, n) })
	}
}

func benchProve(b *testing.B, n int64) {
	ctx := context.Background()
	dir := b.TempDir()
	if keep := os.Getenv("DOMICILE_BENCH_PROOF_DIR"); keep != "" {
		// Built once, kept, and reused by later runs.
		dir = filepath.Join(keep, fmt.Sprintf("leaves-%d", n))
	}
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	leaf := func(i int64) []byte { return []byte("leaf " + strconv.FormatInt(i, 10)) }
	have, err := st.LogSize(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := have; i < n; i += 5000 {
		batch := &domicile.Batch{}
		for j := i; j < min(i+5000, n); j++ {
			batch.Events = append(batch.Events, &domicile.LogEntry{Time: time.Now(), Leaf: leaf(j)})
		}
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	// Closing checkpoints the WAL the appends grew, so that no checkpoint
	// runs beside the timed proofs; the reopened store starts cold, with
	// its partial tiles rebuilt.
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	st, err = sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	skey, vkey, err := checkpoint.GenerateKey(crand.Reader, "example/bench")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(skey)
	l := tlog.New(tlog.Config{Store: st, Origin: "example/bench", Signer: signer, Verifier: vkey})
	h, err := l.Publish(ctx)
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
		if i%64 == 0 {
			b.StopTimer()
			if err := merkle.VerifyInclusion(p, idx, h.Size, merkle.LeafHash(leaf(idx)), h.Root); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
}
