package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"domicile"
	"domicile/domiciletest"
	"domicile/internal/hashtile"
	"domicile/tlog"
)

// TestLogIntegrity runs the integrity suite: tiles are tampered with in
// their files, events in the database.
func TestLogIntegrity(t *testing.T) {
	domiciletest.TestLogIntegrity(t, func(t *testing.T) (func() domiciletest.IntegrityStore, domiciletest.Tamper) {
		dir := t.TempDir()
		open := func() domiciletest.IntegrityStore { return mustOpen(t, dir) }
		exec := func(t *testing.T, q string, args ...any) {
			t.Helper()
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "cell.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatal(err)
			}
		}
		return open, domiciletest.Tamper{
			FlipHash: func(t *testing.T, id int64) { flipTileHash(t, dir, id) },
			SetEvent: func(t *testing.T, idx int64, column string, value []byte) {
				exec(t, `UPDATE events SET `+column+`=? WHERE idx=?`, value, idx)
			},
			DeleteEventsFrom: func(t *testing.T, idx int64) { exec(t, `DELETE FROM events WHERE idx>=?`, idx) },
		}
	})
}

// flipTileHash flips one byte of stored hash id in its tile file.
func flipTileHash(t *testing.T, dir string, id int64) {
	t.Helper()
	k, pos := hashtile.Locate(id)
	f, err := os.OpenFile(filepath.Join(dir, "hashes", "level"+strconv.Itoa(k.Level)+".tiles"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := k.N*hashtile.TileBytes + int64(pos)*32 + 7
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("hash %d is not in a stored tile: %v", id, err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestQuickCheckFindsCorruptPage overwrites a page of the records table
// of a closed store: the store opens (nothing at open reads that page),
// and CheckDatabase reports the damage that a read would otherwise meet
// only when it hits the page.
func TestQuickCheckFindsCorruptPage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if rep, err := s.CheckDatabase(ctx); err != nil || rep != "" {
		t.Fatalf("CheckDatabase of a new store = %q, %v", rep, err)
	}
	ref := domiciletest.Ref("pages")
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN", Created: time.Unix(1, 0)}}}})
	for i := range 200 {
		r := domicile.StoredRecord{Ref: ref, Kind: "message", ID: fmt.Sprintf("m%03d", i), Version: 1, Body: bytes.Repeat([]byte{byte(i)}, 900), Updated: time.Unix(2, 0)}
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: r, Expect: domicile.NoVersion}}})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cell.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name='records'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, int(pageSize)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = mustOpen(t, dir)
	defer s.Close()
	rep, err := s.CheckDatabase(ctx)
	if err != nil || rep == "" {
		t.Fatalf("CheckDatabase of a corrupt database = %q, %v; want a report", rep, err)
	}
	t.Logf("quick_check: %s", rep)
}

// BenchmarkLogCheck measures tlog.Check over a log of 100,000 events
// (doc/log.md quotes it): one pass over the events and the tiles.
func BenchmarkLogCheck(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, b.TempDir())
	defer s.Close()
	const n = 100_000
	for i := 0; i < n; i += 500 {
		batch := &domicile.Batch{}
		for k := range 500 {
			batch.Events = append(batch.Events, domiciletest.LeafEntry(i+k))
		}
		domiciletest.MustCommit(b, ctx, s, batch)
	}
	b.ResetTimer()
	for b.Loop() {
		// No checkpoint: the events' commitments are checked and every
		// tile compared, as on a signed log.
		if _, err := tlog.Check(ctx, s, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
