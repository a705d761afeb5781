package bench

// What the log costs a write, measured in one run:
//
//	go test -run '^$' -bench 'CellPutRecord(Logged|Unlogged)' -count 3 ./bench/
//
// Both benchmarks run the same cell (policy, custody, sealing, event and
// leaf construction) on the same SQLite store; the unlogged one drops the
// events at the store's door, so its difference from the logged one is
// what appending leaves and Merkle hashes in the data's transaction costs.

import (
	"context"
	"path/filepath"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/sqlite"
)

// unlogged is the real store with the log switched off: it commits a
// batch's data operations and not its events. For measurement only.
type unlogged struct{ *sqlite.Store }

func (u unlogged) Commit(ctx context.Context, b *domicile.Batch) error {
	return u.Store.Commit(ctx, &domicile.Batch{Ops: b.Ops})
}

func newCellOn(b *testing.B, wrap func(*sqlite.Store) domicile.CellStore) *cell.Cell {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	dep := deploy.Default()
	cc := dep.Cells[0]
	st, err := sqlite.Open(ctx, filepath.Join(dir, cc.ID))
	if err != nil {
		b.Fatal(err)
	}
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody"))
	if err != nil {
		b.Fatal(err)
	}
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", "kek.json"), ID: cc.ID + "/kek"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close(); ks.Close() })
	c := cell.New(cell.Config{Cell: cc, Deployment: dep, Store: wrap(st), KEK: kek, KeyStore: ks})
	for i := range benchSubjects {
		if _, err := c.CreateSubject(ctx, appActor, subjectKey(i), "CN"); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func BenchmarkCellPutRecordLogged(b *testing.B) {
	benchPutOn(b, newCellOn(b, func(s *sqlite.Store) domicile.CellStore { return s }))
}

func BenchmarkCellPutRecordUnlogged(b *testing.B) {
	benchPutOn(b, newCellOn(b, func(s *sqlite.Store) domicile.CellStore { return unlogged{s} }))
}

func benchPutOn(b *testing.B, c *cell.Cell) {
	body := RecordBody(1024)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			s, id := pair()
			if _, err := c.PutRecord(ctx, appActor, subjectKey(s), RecordKind, id, body, domicile.AnyVersion); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
