package hashtile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/hashtile"
)

// grown returns a model log of n leaves with its tiles.
func grown(t *testing.T, n int64) *model {
	m := newModel()
	tail := hashtile.New()
	for i := range n {
		h := leafHash(i)
		tail.Append(h)
		m.append(t, h)
	}
	m.commit(tail)
	return m
}

func (m *model) leafFunc(calls *int) func(from, to int64) ([]tlog.Hash, error) {
	return func(from, to int64) ([]tlog.Hash, error) {
		*calls++
		return slices.Clone(m.leaves[from:to]), nil
	}
}

// sameTiles checks that f holds exactly m's tiles of levels 0 and 1.
func sameTiles(t *testing.T, f *hashtile.Files, m *model, size int64) {
	t.Helper()
	for level := range 2 {
		want := hashtile.CompleteTiles(level, size)
		if got := f.Count(level); got != want {
			t.Fatalf("level %d: %d tiles, want %d", level, got, want)
		}
		for n := range want {
			k := hashtile.Key{Level: level, N: n}
			got, err := f.Read([]hashtile.Key{k})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[k], m.tiles[k]) {
				t.Fatalf("tile %d/%d differs from the model's", level, n)
			}
		}
	}
}

func TestFilesRepairAndReopen(t *testing.T) {
	const size = 66_000
	m := grown(t, size)
	dir := t.TempDir()
	f, err := hashtile.OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	if err := f.Repair(size, m.leafFunc(&calls)); err != nil {
		t.Fatal(err)
	}
	sameTiles(t, f, m, size)
	tail, err := f.Restore(size, m.leafFunc(&calls))
	if err != nil {
		t.Fatal(err)
	}
	m.check(t, tail, size)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// After a clean close, nothing is recomputed.
	f, err = hashtile.OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls = 0
	if err := f.Repair(size, m.leafFunc(&calls)); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("repair after a clean close read leaves %d times", calls)
	}
	sameTiles(t, f, m, size)

	// A log cut short (by an operator) drops the tiles beyond it.
	if err := f.Repair(60_000, m.leafFunc(&calls)); err != nil {
		t.Fatal(err)
	}
	sameTiles(t, f, m, 60_000)
	f.Close()
}

func TestFilesRecoverFromCrash(t *testing.T) {
	const size = 70_000
	m := grown(t, size)
	cases := []struct {
		name  string
		crash func(t *testing.T, dir string)
	}{
		{"torn last tile", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "level0.tiles")
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()-1000); err != nil {
				t.Fatal(err)
			}
		}},
		{"unsynced tiles garbled", func(t *testing.T, dir string) {
			// The tiles after the last Sync hold zeros, as after a power
			// loss that kept the file's length but not its data.
			p := filepath.Join(dir, "level0.tiles")
			st, _ := os.Stat(p)
			fh, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fh.WriteAt(make([]byte, 3*hashtile.TileBytes), st.Size()-3*hashtile.TileBytes)
			fh.Close()
		}},
		{"synced record lost", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "synced"))
			fh, _ := os.OpenFile(filepath.Join(dir, "level1.tiles"), os.O_WRONLY, 0)
			fh.WriteAt(make([]byte, 64), 100)
			fh.Close()
		}},
		{"synced record garbled", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "synced"), []byte("nonsense"), 0o600)
			fh, _ := os.OpenFile(filepath.Join(dir, "level0.tiles"), os.O_WRONLY, 0)
			fh.WriteAt(make([]byte, 64), 5000)
			fh.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, err := hashtile.OpenFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			// Durable up to 60,000 leaves; the tiles of the last 10,000
			// are written but never synced.
			if err := f.Repair(60_000, m.leafFunc(&calls)); err != nil {
				t.Fatal(err)
			}
			tail, err := f.Restore(60_000, m.leafFunc(&calls))
			if err != nil {
				t.Fatal(err)
			}
			for i := int64(60_000); i < size; i++ {
				tail.Append(m.leaves[i])
			}
			if err := tail.Flush(f.Write); err != nil {
				t.Fatal(err)
			}
			// The process dies: no Close.
			tc.crash(t, dir)
			f2, err := hashtile.OpenFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f2.Close()
			if err := f2.Repair(size, m.leafFunc(&calls)); err != nil {
				t.Fatal(err)
			}
			sameTiles(t, f2, m, size)
		})
	}
}

func TestFilesWriteOrder(t *testing.T) {
	f, err := hashtile.OpenFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tile := make([]byte, hashtile.TileBytes)
	if err := f.Write(hashtile.Tile{Key: hashtile.Key{Level: 0, N: 1}, Data: tile}); err == nil {
		t.Fatal("a tile written before the one preceding it was accepted")
	}
	if err := f.Write(hashtile.Tile{Key: hashtile.Key{Level: 0, N: 0}, Data: tile[:10]}); err == nil {
		t.Fatal("a short tile was accepted")
	}
	if err := f.Write(hashtile.Tile{Key: hashtile.Key{Level: 9, N: 0}, Data: tile}); err == nil {
		t.Fatal("a tile of level 9 was accepted")
	}
	for range 2 {
		if err := f.Write(hashtile.Tile{Key: hashtile.Key{Level: 0, N: 0}, Data: tile}); err != nil {
			t.Fatal(err)
		}
	}
	if f.Count(0) != 1 {
		t.Fatalf("%d tiles after writing one twice", f.Count(0))
	}
}

// TestFlushFailureKeepsTiles: a tile whose write fails stays readable from
// the tail and is written by the next Flush.
func TestFlushFailureKeepsTiles(t *testing.T) {
	m := newModel()
	tail := hashtile.New()
	for i := range int64(600) {
		h := leafHash(i)
		tail.Append(h)
		m.append(t, h)
	}
	boom := errors.New("disk full")
	if err := tail.Flush(func(hashtile.Tile) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the write's error", err)
	}
	m.check(t, tail, 600) // m.tiles is empty: everything from the tail
	m.commit(tail)
	if len(m.tiles) != 2 {
		t.Fatalf("%d tiles written by the second flush, want 2", len(m.tiles))
	}
	m.check(t, tail, 600)
}
