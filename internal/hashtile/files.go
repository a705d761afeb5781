package hashtile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/blobdir"
)

// Files keeps complete tiles in one append-only file per tile level
// ("level0.tiles", ...), tile N at offset N×[TileBytes], so reading a tile
// is one pread. Tiles are derived from the log's leaves, so the files are
// not written in the store's transaction nor synced with each commit:
// [Files.Sync] makes them durable and records, in the file "synced", how
// many tiles of each level are; [Files.Repair] recomputes, on open,
// whatever a crash may have lost since. Files is safe for concurrent use.
type Files struct {
	dir string

	mu     sync.RWMutex
	files  [MaxLevel + 1]*os.File
	count  [MaxLevel + 1]int64 // tiles in each file
	synced [MaxLevel + 1]int64 // tiles known durable

	syncMu sync.Mutex // one Sync at a time
	err    error      // the first write error, kept until Repair
}

const syncedName = "synced"

// syncedMagic begins the "synced" file.
var syncedMagic = []byte("domicile hash tiles synced v1\n")

// OpenFiles opens (creating if needed) the tile files in dir. A file that
// ends in part of a tile is cut to whole tiles.
func OpenFiles(dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hashtile: %w", err)
	}
	f := &Files{dir: dir}
	for level := range f.files {
		fh, err := os.OpenFile(filepath.Join(dir, "level"+strconv.Itoa(level)+".tiles"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			f.closeFiles()
			return nil, fmt.Errorf("hashtile: %w", err)
		}
		f.files[level] = fh
		st, err := fh.Stat()
		if err != nil {
			f.closeFiles()
			return nil, fmt.Errorf("hashtile: %w", err)
		}
		f.count[level] = st.Size() / TileBytes
		if st.Size()%TileBytes != 0 {
			if err := fh.Truncate(f.count[level] * TileBytes); err != nil {
				f.closeFiles()
				return nil, fmt.Errorf("hashtile: %w", err)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, syncedName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.closeFiles()
		return nil, fmt.Errorf("hashtile: %w", err)
	}
	// A missing or unreadable record trusts no tile: Repair recomputes.
	if counts, err := parseSynced(b); err == nil {
		f.synced = counts
	}
	return f, nil
}

// parseSynced reads the "synced" file: the magic line, then one
// little-endian uint64 tile count per level.
func parseSynced(b []byte) ([MaxLevel + 1]int64, error) {
	var out [MaxLevel + 1]int64
	if !bytes.HasPrefix(b, syncedMagic) {
		return out, errors.New("hashtile: synced record: bad header")
	}
	b = b[len(syncedMagic):]
	if len(b) != 8*len(out) {
		return out, fmt.Errorf("hashtile: synced record: %d bytes of counts, want %d", len(b), 8*len(out))
	}
	for i := range out {
		v := binary.LittleEndian.Uint64(b[8*i:])
		if v > 1<<55 {
			return out, fmt.Errorf("hashtile: synced record: count %d out of range", v)
		}
		out[i] = int64(v)
	}
	return out, nil
}

func formatSynced(counts [MaxLevel + 1]int64) []byte {
	b := append([]byte(nil), syncedMagic...)
	for _, c := range counts {
		b = binary.LittleEndian.AppendUint64(b, uint64(c))
	}
	return b
}

// Count returns the number of tiles of a level in the files.
func (f *Files) Count(level int) int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.count[level]
}

// Write stores t, which must be the next tile of its level; a tile
// already stored is not written again.
func (f *Files) Write(t Tile) error {
	if t.Key.Level < 0 || t.Key.Level > MaxLevel || len(t.Data) != TileBytes {
		return fmt.Errorf("hashtile: write of an invalid tile %d/%d (%d bytes)", t.Key.Level, t.Key.N, len(t.Data))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	n := f.count[t.Key.Level]
	switch {
	case t.Key.N < n:
		return nil
	case t.Key.N > n:
		return fmt.Errorf("hashtile: write of tile %d/%d before tile %d", t.Key.Level, t.Key.N, n)
	}
	if _, err := f.files[t.Key.Level].WriteAt(t.Data, n*TileBytes); err != nil {
		// The file may now end in part of a tile: refuse further writes
		// until the next open cuts and repairs it.
		f.err = fmt.Errorf("hashtile: write tile %d/%d: %w", t.Key.Level, t.Key.N, err)
		return f.err
	}
	f.count[t.Key.Level] = n + 1
	return nil
}

// Read returns the stored tiles among keys; a key beyond the files is
// left out.
func (f *Files) Read(keys []Key) (map[Key][]byte, error) {
	out := make(map[Key][]byte, len(keys))
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, k := range keys {
		if k.Level < 0 || k.Level > MaxLevel || k.N < 0 || k.N >= f.count[k.Level] {
			continue
		}
		b := make([]byte, TileBytes)
		if _, err := f.files[k.Level].ReadAt(b, k.N*TileBytes); err != nil {
			return nil, fmt.Errorf("hashtile: read tile %d/%d: %w", k.Level, k.N, err)
		}
		out[k] = b
	}
	return out, nil
}

// bufs holds tile-sized buffers for View.
var bufs = sync.Pool{New: func() any { return new([TileBytes]byte) }}

// View implements [TileViewer]: it reads tile k into a pooled buffer, so
// that a proof's read allocates nothing.
func (f *Files) View(k Key, use func(tile []byte)) (bool, error) {
	if k.Level < 0 || k.Level > MaxLevel || k.N < 0 {
		return false, nil
	}
	f.mu.RLock()
	if k.N >= f.count[k.Level] {
		f.mu.RUnlock()
		return false, nil
	}
	b := bufs.Get().(*[TileBytes]byte)
	defer bufs.Put(b)
	_, err := f.files[k.Level].ReadAt(b[:], k.N*TileBytes)
	f.mu.RUnlock()
	if err != nil {
		return false, fmt.Errorf("hashtile: read tile %d/%d: %w", k.Level, k.N, err)
	}
	use(b[:])
	return true, nil
}

// tile returns stored tile k, or an error if it is not stored.
func (f *Files) tile(k Key) ([]byte, error) {
	got, err := f.Read([]Key{k})
	if err != nil {
		return nil, err
	}
	b, ok := got[k]
	if !ok {
		return nil, fmt.Errorf("hashtile: tile %d/%d missing", k.Level, k.N)
	}
	return b, nil
}

// Sync makes every tile written so far durable, then records their counts
// in the "synced" file.
func (f *Files) Sync() error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.RLock()
	counts, synced := f.count, f.synced
	f.mu.RUnlock()
	if counts == synced {
		return nil
	}
	for level, c := range counts {
		if c != synced[level] {
			if err := f.files[level].Sync(); err != nil {
				return fmt.Errorf("hashtile: sync: %w", err)
			}
		}
	}
	tmp := filepath.Join(f.dir, syncedName+".tmp")
	if err := writeSync(tmp, formatSynced(counts)); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, syncedName)); err != nil {
		return fmt.Errorf("hashtile: sync: %w", err)
	}
	if err := blobdir.SyncDir(f.dir); err != nil {
		return fmt.Errorf("hashtile: sync: %w", err)
	}
	f.mu.Lock()
	for level, c := range counts {
		// A Repair may have cut a file meanwhile.
		f.synced[level] = min(c, f.count[level])
	}
	f.mu.Unlock()
	return nil
}

func writeSync(path string, b []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("hashtile: sync: %w", err)
	}
	_, err = fh.Write(b)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("hashtile: sync: %w", err)
	}
	return nil
}

// repairChunk is how many tiles Repair computes per call of leaves.
const repairChunk = 256

// Repair makes the files hold exactly the complete tiles of a log of size
// leaves: it keeps the tiles a Sync made durable, recomputes those after
// them (which a crash may have lost or torn) from the leaves (level 0) and
// the tiles of the level below (above that), and drops tiles beyond the
// log. leaves returns the record hashes of leaves [from, to). A store
// calls it on open, before any Write; after a clean Close it recomputes
// nothing.
func (f *Files) Repair(size int64, leaves func(from, to int64) ([]tlog.Hash, error)) error {
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
	for level := 0; level <= MaxLevel; level++ {
		want := CompleteTiles(level, size)
		f.mu.Lock()
		keep := min(f.count[level], f.synced[level], want)
		if keep != f.count[level] {
			if err := f.files[level].Truncate(keep * TileBytes); err != nil {
				f.mu.Unlock()
				return fmt.Errorf("hashtile: repair: %w", err)
			}
			f.count[level] = keep
		}
		f.synced[level] = min(f.synced[level], keep)
		f.mu.Unlock()
		for from := keep; from < want; from += repairChunk {
			to := min(from+repairChunk, want)
			var nodes []tlog.Hash
			if level == 0 {
				hs, err := leaves(from*Width, to*Width)
				if err != nil {
					return fmt.Errorf("hashtile: repair: %w", err)
				}
				nodes = hs
			} else {
				for n := from * Width; n < to*Width; n++ {
					b, err := f.tile(Key{Level: level - 1, N: n})
					if err != nil {
						return fmt.Errorf("hashtile: repair: %w", err)
					}
					r, err := Root(b)
					if err != nil {
						return err
					}
					nodes = append(nodes, r)
				}
			}
			if int64(len(nodes)) != (to-from)*Width {
				return fmt.Errorf("hashtile: repair level %d: %d nodes, want %d", level, len(nodes), (to-from)*Width)
			}
			for n := from; n < to; n++ {
				i := (n - from) * Width
				b, err := Build(nodes[i : i+Width])
				if err != nil {
					return err
				}
				if err := f.Write(Tile{Key: Key{Level: level, N: n}, Data: b}); err != nil {
					return err
				}
			}
		}
	}
	return f.Sync()
}

// Restore rebuilds the tail of the log of size leaves whose complete tiles
// the files hold (after [Files.Repair]).
func (f *Files) Restore(size int64, leaves func(from, to int64) ([]tlog.Hash, error)) (*Tail, error) {
	return Restore(size, leaves, func(level int, from, to int64) ([][]byte, error) {
		var out [][]byte
		for n := from; n < to; n++ {
			b, err := f.tile(Key{Level: level, N: n})
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	})
}

// Close syncs and closes the files.
func (f *Files) Close() error {
	return errors.Join(f.Sync(), f.closeFiles())
}

func (f *Files) closeFiles() error {
	var err error
	for i, fh := range f.files {
		if fh != nil {
			err = errors.Join(err, fh.Close())
			f.files[i] = nil
		}
	}
	return err
}

// Rebuild recomputes every tile of a log of size leaves from its leaves,
// trusting none of those stored: for tiles found to disagree with the
// leaves, which [Files.Repair] (trusting synced tiles) would keep.
// Readers of the files during Rebuild may find tiles missing.
func (f *Files) Rebuild(size int64, leaves func(from, to int64) ([]tlog.Hash, error)) error {
	f.mu.Lock()
	f.synced = [MaxLevel + 1]int64{}
	f.mu.Unlock()
	return f.Repair(size, leaves)
}
