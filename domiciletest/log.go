package domiciletest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"domicile"
)

// ReferenceRoot computes the RFC 6962 Merkle tree hash of leaves naively,
// from the definition (RFC 6962 section 2.1), independently of
// golang.org/x/mod/sumdb/tlog.
func ReferenceRoot(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := ReferenceRoot(leaves[:k]), ReferenceRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// HashReader adapts a cell store's ReadHashes to tlog.HashReader.
func HashReader(ctx context.Context, s domicile.CellStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := s.ReadHashes(ctx, indexes)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = tlog.Hash(h)
		}
		return out, nil
	})
}

// CheckLog verifies that s's log is whole and consistent: LogSize entries
// with consecutive indexes from 0, each leaf's stored record hash, and the
// tree hash that tlog computes from the stored hashes equal to
// [ReferenceRoot] of the leaves. It returns the leaves.
func CheckLog(tb testing.TB, ctx context.Context, s domicile.CellStore) [][]byte {
	tb.Helper()
	n, err := s.LogSize(ctx)
	if err != nil {
		tb.Fatalf("LogSize: %v", err)
	}
	leaves, err := s.Leaves(ctx, 0, n)
	if err != nil {
		tb.Fatalf("Leaves(0, %d): %v", n, err)
	}
	if int64(len(leaves)) != n {
		tb.Fatalf("Leaves(0, %d) returned %d leaves", n, len(leaves))
	}
	evs, err := s.Events(ctx, 0, n)
	if err != nil {
		tb.Fatalf("Events(0, %d): %v", n, err)
	}
	if int64(len(evs)) != n {
		tb.Fatalf("Events(0, %d) returned %d events", n, len(evs))
	}
	for i, e := range evs {
		if e.Index != int64(i) {
			tb.Fatalf("Events(0, %d)[%d].Index = %d", n, i, e.Index)
		}
		if !bytes.Equal(e.Leaf, leaves[i]) {
			tb.Fatalf("event %d's leaf differs from Leaves' %d", i, i)
		}
	}
	if n > 0 {
		idx := make([]int64, n)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, int64(i))
		}
		hs, err := s.ReadHashes(ctx, idx)
		if err != nil {
			tb.Fatalf("ReadHashes(level-0 hashes of %d leaves): %v", n, err)
		}
		for i, h := range hs {
			if tlog.Hash(h) != tlog.RecordHash(leaves[i]) {
				tb.Fatalf("stored hash of leaf %d = %x, want the leaf's record hash %x", i, h, tlog.RecordHash(leaves[i]))
			}
		}
	}
	th, err := tlog.TreeHash(n, HashReader(ctx, s))
	if err != nil {
		tb.Fatalf("tlog.TreeHash(%d) over stored hashes: %v", n, err)
	}
	if want := ReferenceRoot(leaves); n > 0 && th != tlog.Hash(want) {
		tb.Fatalf("tree hash of %d stored leaves = %x, want %x", n, th, want)
	}
	return leaves
}

// MustCommit commits b to s and fails the test on error.
func MustCommit(tb testing.TB, ctx context.Context, s domicile.CellStore, b *domicile.Batch) {
	tb.Helper()
	if err := s.Commit(ctx, b); err != nil {
		tb.Fatalf("Commit: %v", err)
	}
}

// BenchCommit1KParallel measures group commit: many goroutines (32 per
// GOMAXPROCS) each commit batches of one new 1 KiB record and one event.
// It reports batches/s. s must be new and empty.
func BenchCommit1KParallel(b *testing.B, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("bench")
	MustCommit(b, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN", Created: t0}}}})
	body := bytes.Repeat([]byte{0xa5}, 1024)
	var next atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := next.Add(1)
			r := domicile.StoredRecord{Ref: ref, Kind: "message", ID: strconv.FormatInt(id, 10), Version: 1, Body: body, Fields: []string{"text"}, Updated: t0}
			e := NewEntry(ref)
			if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: r, Expect: domicile.NoVersion}}, Events: []*domicile.LogEntry{e}}); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}
