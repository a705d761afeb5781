package hashtile_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/hashtile"
)

// model is a log kept the reference way: every stored hash computed by
// golang.org/x/mod/sumdb/tlog, and the tiles a store would hold.
type model struct {
	leaves []tlog.Hash
	hashes map[int64]tlog.Hash
	tiles  map[hashtile.Key][]byte
}

func newModel() *model {
	return &model{hashes: map[int64]tlog.Hash{}, tiles: map[hashtile.Key][]byte{}}
}

func leafHash(i int64) tlog.Hash { return tlog.RecordHash(fmt.Appendf(nil, "leaf %d", i)) }

func (m *model) append(t *testing.T, h tlog.Hash) {
	n := int64(len(m.leaves))
	hs, err := tlog.StoredHashesForRecordHash(n, h, tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			out[i] = m.hashes[id]
		}
		return out, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	base := tlog.StoredHashIndex(0, n)
	for i, x := range hs {
		m.hashes[base+int64(i)] = x
	}
	m.leaves = append(m.leaves, h)
}

func (m *model) fetch(t *testing.T) hashtile.TileViewer {
	return func(k hashtile.Key, use func([]byte)) (bool, error) {
		b, ok := m.tiles[k]
		if ok {
			// What use may keep must not alias the store's copy.
			use(bytes.Clone(b))
		}
		return ok, nil
	}
}

func (m *model) commit(tail *hashtile.Tail) {
	tail.Flush(func(tl hashtile.Tile) error {
		m.tiles[tl.Key] = tl.Data
		return nil
	})
}

// check reads every stored hash of the committed log through the tail and
// compares it with tlog's.
func (m *model) check(t *testing.T, tail *hashtile.Tail, size int64) {
	t.Helper()
	end := tlog.StoredHashIndex(0, size)
	ids := make([]int64, 0, end)
	for id := range end {
		ids = append(ids, id)
	}
	got, err := tail.Read(ids, m.fetch(t))
	if err != nil {
		t.Fatalf("size %d: Read: %v", size, err)
	}
	for i, id := range ids {
		if got[i] != m.hashes[id] {
			t.Fatalf("size %d: hash %d differs from tlog's", size, id)
		}
	}
}

// TestTailMatchesTlog appends leaves in random batches, rolls some batches
// back, and after every commit checks each stored hash against tlog's,
// through the tail and the stored tiles.
func TestTailMatchesTlog(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 99))
		m := newModel()
		tail := hashtile.New()
		var committed int64
		for committed < 70_000 {
			n := rng.Int64N(700) + 1
			if rng.IntN(4) == 0 {
				// A batch that fails: appended, then rolled back.
				for i := range n {
					tail.Append(leafHash(committed + i + 1_000_000))
				}
				if err := tail.Truncate(committed); err != nil {
					t.Fatal(err)
				}
				if tail.Size() != committed {
					t.Fatalf("size %d after truncate to %d", tail.Size(), committed)
				}
			}
			for i := range n {
				h := leafHash(committed + i)
				tail.Append(h)
				m.append(t, h)
			}
			m.commit(tail)
			committed += n
			if rng.IntN(10) == 0 || committed < 3000 {
				m.check(t, tail, committed)
			}
		}
		m.check(t, tail, committed)
		// Every complete tile was handed over, and only those.
		for level := range 3 {
			for n := range hashtile.CompleteTiles(level, committed) + 2 {
				_, ok := m.tiles[hashtile.Key{Level: level, N: n}]
				if want := n < hashtile.CompleteTiles(level, committed); ok != want {
					t.Fatalf("tile %d/%d flushed: %v, want %v", level, n, ok, want)
				}
			}
		}
	}
}

// TestRestore rebuilds a tail from the leaves and stored tiles at sizes
// around tile boundaries, checks it answers as the tail that was never
// rebuilt, then appends the rest of the log to it and checks again.
func TestRestore(t *testing.T) {
	m := newModel()
	tail := hashtile.New()
	const total = 66_000
	at := []int64{0, 1, 255, 256, 257, 65_535, 65_536, 65_537, 65_791, 65_792}
	restored := map[int64]*hashtile.Tail{}
	for i := int64(0); i <= total; i++ {
		if slices.Contains(at, i) {
			m.commit(tail)
			r, err := hashtile.Restore(i, func(from, to int64) ([]tlog.Hash, error) {
				return slices.Clone(m.leaves[from:to]), nil
			}, func(level int, from, to int64) ([][]byte, error) {
				var out [][]byte
				for n := from; n < to; n++ {
					b, ok := m.tiles[hashtile.Key{Level: level, N: n}]
					if !ok {
						return nil, fmt.Errorf("tile %d/%d missing", level, n)
					}
					out = append(out, b)
				}
				return out, nil
			})
			if err != nil {
				t.Fatalf("restore at %d: %v", i, err)
			}
			m.check(t, r, i)
			restored[i] = r
		}
		if i < total {
			h := leafHash(i)
			tail.Append(h)
			m.append(t, h)
		}
	}
	m.commit(tail)
	for from, r := range restored {
		for j := from; j < total; j++ {
			r.Append(m.leaves[j])
		}
		r.Flush(func(tl hashtile.Tile) error {
			if !bytes.Equal(tl.Data, m.tiles[tl.Key]) {
				t.Fatalf("restored at %d: tile %d/%d differs", from, tl.Key.Level, tl.Key.N)
			}
			return nil
		})
		m.check(t, r, total)
	}
}

func TestLocate(t *testing.T) {
	seen := map[hashtile.Key]map[int]bool{}
	for id := range tlog.StoredHashIndex(0, 1<<17) {
		k, pos := hashtile.Locate(id)
		if pos < 0 || pos >= hashtile.TileHashes {
			t.Fatalf("id %d: position %d", id, pos)
		}
		if seen[k] == nil {
			seen[k] = map[int]bool{}
		}
		if seen[k][pos] {
			t.Fatalf("id %d: tile %v position %d used twice", id, k, pos)
		}
		seen[k][pos] = true
	}
	for k, ps := range seen {
		if k.Level < 2 && len(ps) != hashtile.TileHashes {
			t.Fatalf("tile %v: %d positions", k, len(ps))
		}
	}
}

func TestTruncateRefusesCommittedTiles(t *testing.T) {
	tail := hashtile.New()
	for i := range int64(300) {
		tail.Append(leafHash(i))
	}
	tail.Flush(func(hashtile.Tile) error { return nil })
	if err := tail.Truncate(100); err == nil {
		t.Fatal("truncate below a committed tile succeeded")
	}
	if err := tail.Truncate(400); err == nil {
		t.Fatal("truncate beyond the size succeeded")
	}
}

func TestReadErrors(t *testing.T) {
	tail := hashtile.New()
	for i := range int64(600) {
		tail.Append(leafHash(i))
	}
	tail.Flush(func(hashtile.Tile) error { return nil })
	none := func(hashtile.Key, func([]byte)) (bool, error) { return false, nil }
	if _, err := tail.Read([]int64{0}, none); err == nil {
		t.Fatal("read of a tile the store lacks succeeded")
	}
	short := func(_ hashtile.Key, use func([]byte)) (bool, error) {
		use(make([]byte, 10))
		return true, nil
	}
	if _, err := tail.Read([]int64{0}, short); err == nil {
		t.Fatal("read of a short tile succeeded")
	}
	boom := errors.New("disk on fire")
	failing := func(hashtile.Key, func([]byte)) (bool, error) { return false, boom }
	if _, err := tail.Read([]int64{0}, failing); !errors.Is(err, boom) {
		t.Fatalf("read through a failing store: %v", err)
	}
	if _, err := tail.Read([]int64{-1}, none); err == nil {
		t.Fatal("read of a negative index succeeded")
	}
}
