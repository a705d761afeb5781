// Package hashtile keeps a cell log's stored Merkle hashes
// (golang.org/x/mod/sumdb/tlog's layout: the hash of every complete
// subtree, addressed by tlog.StoredHashIndex) in tiles, so that a cell
// store writes one tile per 256 leaves, outside its transaction, instead
// of about two hash rows per leaf inside it, and an inclusion proof reads
// at most one tile from disk.
//
// A tile at tile level T and index N holds every stored hash of hash
// levels 8T to 8T+7 inside the subtree of hash level 8T+8, node N: 256
// hashes of level 8T, 128 of level 8T+1, and so on down to 2 of level
// 8T+7, 510 in all ([TileHashes]), concatenated level by level. Unlike a
// C2SP tlog-tiles tile, which holds only its lowest level, no hash inside
// a stored tile has to be recomputed to build a proof.
//
// Only complete tiles are stored, in [Files]. The partial tile of each
// tile level lives in a [Tail], owned by the store's single writer: it
// computes the hashes each appended leaf adds, holds the tiles the leaves
// complete until the store has committed the leaves and written the tiles
// ([Tail.Flush]), and answers readers for the hashes not yet in a stored
// tile. Everything here is derived from the leaves, which the store keeps
// durably: a store rebuilds its Tail on open ([Restore]) and recomputes
// the stored tiles a crash may have lost ([Files.Repair]), so tiles are
// never part of the store's transaction.
package hashtile

import (
	"bytes"
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

const (
	// Height is the number of hash levels in a tile.
	Height = 8
	// Width is the number of lowest-level hashes in a complete tile.
	Width = 1 << Height
	// TileHashes is the number of hashes in a complete tile.
	TileHashes = 2*Width - 2
	// TileBytes is the size of a stored tile.
	TileBytes = TileHashes * tlog.HashSize
	// MaxLevel is the highest tile level: tile level 7 covers hash levels
	// 56-63, beyond any log that fits in an int64.
	MaxLevel = 7
)

// A Key names a tile: Level is its tile level T (hash levels 8T..8T+7)
// and N its index within that level.
type Key struct {
	Level int
	N     int64
}

// levelStart returns where hash level lo (0..7) of a tile starts in its
// concatenation: 256 + 128 + ... over the levels below it.
func levelStart(lo int) int { return 2*Width - (2*Width)>>lo }

// Locate returns the tile holding stored hash id and the hash's position
// in that tile (0..TileHashes-1).
func Locate(id int64) (Key, int) {
	level, n := tlog.SplitStoredHashIndex(id)
	t, lo := level/Height, level%Height
	w := int64(Width >> lo)
	k := Key{Level: t, N: n / w}
	return k, levelStart(lo) + int(n-k.N*w)
}

// leavesPer returns the number of leaves a tile of level t covers, or 0
// when that does not fit in an int64.
func leavesPer(t int) int64 {
	if Height*(t+1) >= 63 {
		return 0
	}
	return 1 << (Height * (t + 1))
}

// CompleteTiles returns how many tiles of a tile level are complete in a
// log of size leaves: a store holds exactly tiles 0 to CompleteTiles-1 of
// each level.
func CompleteTiles(level int, size int64) int64 {
	per := leavesPer(level)
	if per == 0 || level < 0 {
		return 0
	}
	return size / per
}

// Hash returns the hash at position pos of a stored tile.
func Hash(tile []byte, pos int) (tlog.Hash, error) {
	if len(tile) != TileBytes {
		return tlog.Hash{}, fmt.Errorf("hashtile: tile of %d bytes, want %d", len(tile), TileBytes)
	}
	if pos < 0 || pos >= TileHashes {
		return tlog.Hash{}, fmt.Errorf("hashtile: position %d out of range", pos)
	}
	var h tlog.Hash
	copy(h[:], tile[pos*tlog.HashSize:])
	return h, nil
}

// Root returns the hash of the subtree a stored tile covers: the node of
// hash level 8T+8 that the next tile level holds.
func Root(tile []byte) (tlog.Hash, error) {
	l, err := Hash(tile, levelStart(Height-1))
	if err != nil {
		return tlog.Hash{}, err
	}
	r, _ := Hash(tile, levelStart(Height-1)+1)
	return tlog.NodeHash(l, r), nil
}

// A Tile is a complete tile and its key.
type Tile struct {
	Key  Key
	Data []byte
}

// part is the partial tile of one tile level: nodes[lo] holds the
// complete nodes of hash level 8T+lo inside it, from its first.
type part struct {
	nodes [Height][]tlog.Hash
}

func (p *part) encode() []byte {
	b := make([]byte, 0, TileBytes)
	for lo := range Height {
		for _, h := range p.nodes[lo] {
			b = append(b, h[:]...)
		}
	}
	return b
}

func (p *part) decode(tile []byte) {
	for lo := range Height {
		n := Width >> lo
		p.nodes[lo] = p.nodes[lo][:0]
		for i := range n {
			var h tlog.Hash
			copy(h[:], tile[(levelStart(lo)+i)*tlog.HashSize:])
			p.nodes[lo] = append(p.nodes[lo], h)
		}
	}
}

// fill computes the levels of p above its lowest from the lowest.
func (p *part) fill() {
	for lo := 1; lo < Height; lo++ {
		below := p.nodes[lo-1]
		p.nodes[lo] = p.nodes[lo][:0]
		for i := 0; i+1 < len(below); i += 2 {
			p.nodes[lo] = append(p.nodes[lo], tlog.NodeHash(below[i], below[i+1]))
		}
	}
}

// Build returns the tile whose lowest level is nodes, which must be
// [Width] hashes: for a tile of level 0 the record hashes of its 256
// leaves, above that the roots of the 256 tiles below it ([Root]).
func Build(nodes []tlog.Hash) ([]byte, error) {
	if len(nodes) != Width {
		return nil, fmt.Errorf("hashtile: build a tile of %d nodes, want %d", len(nodes), Width)
	}
	p := &part{}
	p.nodes[0] = nodes
	p.fill()
	return p.encode(), nil
}

// DefaultCacheTiles is how many stored tiles above level 0 a Tail keeps
// for readers (about 4 MiB): every one of a 16,777,216-leaf log.
const DefaultCacheTiles = 256

// Tail is the partial tiles of a log and the complete tiles not yet
// flushed to storage. Append, Truncate and Flush belong to the store's
// single writer; Read, Size and Pending are safe from any goroutine.
type Tail struct {
	mu      sync.RWMutex
	size    int64
	parts   []*part
	pending map[Key][]byte

	cmu   sync.Mutex
	cache map[Key]*list.Element // of *Tile
	lru   *list.List
	max   int
}

// New returns the tail of an empty log.
func New() *Tail {
	return &Tail{pending: map[Key][]byte{}, cache: map[Key]*list.Element{}, lru: list.New(), max: DefaultCacheTiles}
}

// Size returns the number of leaves appended, committed or not.
func (t *Tail) Size() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

// Append adds the leaf whose record hash is h (tlog.RecordHash of the
// leaf) as leaf number Size().
func (t *Tail) Append(h tlog.Hash) {
	t.mu.Lock()
	t.add(0, h)
	t.size++
	t.mu.Unlock()
}

// add appends node h at hash level: to its tile level's partial tile, and
// its parent one level up when it completes a pair.
func (t *Tail) add(level int, h tlog.Hash) {
	tl, lo := level/Height, level%Height
	for len(t.parts) <= tl {
		t.parts = append(t.parts, &part{})
	}
	p := t.parts[tl]
	p.nodes[lo] = append(p.nodes[lo], h)
	n := len(p.nodes[lo])
	if n%2 != 0 {
		return
	}
	parent := tlog.NodeHash(p.nodes[lo][n-2], p.nodes[lo][n-1])
	if lo == Height-1 {
		// The pair at the tile's top level: the tile is complete.
		k := Key{Level: tl, N: t.size / leavesPer(tl)}
		t.pending[k] = p.encode()
		for i := range p.nodes {
			p.nodes[i] = p.nodes[i][:0]
		}
	}
	t.add(level+1, parent)
}

// Reset replaces the tail's state by u's (a tail [Restore] built after
// the store rebuilt its tiles) and empties its cache of stored tiles,
// which may hold tiles read before the rebuild. It belongs to the store's
// single writer; u must not be used after.
func (t *Tail) Reset(u *Tail) {
	u.mu.RLock()
	size, parts, pending := u.size, u.parts, u.pending
	u.mu.RUnlock()
	t.mu.Lock()
	t.size, t.parts, t.pending = size, parts, pending
	t.mu.Unlock()
	t.cmu.Lock()
	t.cache = map[Key]*list.Element{}
	t.lru.Init()
	t.cmu.Unlock()
}

// Pending returns the tiles completed and not yet flushed, by level and
// index.
func (t *Tail) Pending() []Tile {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Tile, 0, len(t.pending))
	for k, b := range t.pending {
		out = append(out, Tile{Key: k, Data: b})
	}
	slices.SortFunc(out, func(a, b Tile) int {
		if c := cmp.Compare(a.Key.Level, b.Key.Level); c != 0 {
			return c
		}
		return cmp.Compare(a.Key.N, b.Key.N)
	})
	return out
}

// Flush hands the completed tiles to write, by level and index, and
// forgets each one written; call it only after the store committed the
// leaves they cover. A tile whose write fails stays pending, with the
// tiles after it: readers still find them here, and the next Flush tries
// again.
func (t *Tail) Flush(write func(Tile) error) error {
	if t.pendingCount() == 0 {
		return nil
	}
	for _, tl := range t.Pending() {
		if err := write(tl); err != nil {
			return err
		}
		t.mu.Lock()
		delete(t.pending, tl.Key)
		t.mu.Unlock()
	}
	return nil
}

func (t *Tail) pendingCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.pending)
}

// Truncate forgets the leaves from size on, after the store rolled back
// the transaction (or savepoint) that appended them. size must not be
// below the size of the last commit: the tiles its leaves completed may
// already be flushed, and Truncate refuses to go back past them.
func (t *Tail) Truncate(size int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if size > t.size || size < 0 {
		return fmt.Errorf("hashtile: truncate to %d of %d leaves", size, t.size)
	}
	for tl, p := range t.parts {
		per := leavesPer(tl)
		if per == 0 {
			break
		}
		n, cur := size/per, t.size/per
		if n != cur {
			b, ok := t.pending[Key{Level: tl, N: n}]
			if !ok {
				return fmt.Errorf("hashtile: truncate to %d: tile %d/%d already committed", size, tl, n)
			}
			p.decode(b)
			for k := range t.pending {
				if k.Level == tl && k.N >= n {
					delete(t.pending, k)
				}
			}
		}
		for lo := range Height {
			keep := size>>(Height*tl+lo) - n*int64(Width>>lo)
			p.nodes[lo] = p.nodes[lo][:keep]
		}
	}
	t.size = size
	return nil
}

// ErrMissing is returned by Read when a hash is neither in the tail nor in
// a stored tile: the index is beyond the log.
var ErrMissing = errors.New("hashtile: hash not stored")

// A TileViewer shows a stored tile: it calls use with the tile's bytes,
// valid only during the call, and reports whether the tile is stored.
type TileViewer func(k Key, use func(tile []byte)) (bool, error)

// Read returns the stored hashes at ids. Hashes of partial tiles come from
// the tail; the others from complete tiles, through view. Tiles above
// level 0, few and shared by every proof, are kept in a bounded cache (a
// complete tile never changes); a level-0 tile is read for the hashes
// asked and not kept, as a proof needs only 8 of its 510 and a large log
// has too many to cache. Read never returns a hash of a leaf it has not
// been given, but it may return one the store has not yet committed:
// callers ask only for hashes below a committed size.
func (t *Tail) Read(ids []int64, view TileViewer) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	type want struct {
		i   int
		pos int
	}
	var miss map[Key][]want
	t.mu.RLock()
	for i, id := range ids {
		if id < 0 {
			t.mu.RUnlock()
			return nil, fmt.Errorf("hashtile: negative index %d", id)
		}
		k, pos := Locate(id)
		if h, ok := t.lookupLocked(k, pos); ok {
			out[i] = h
			continue
		}
		if miss == nil {
			miss = map[Key][]want{}
		}
		miss[k] = append(miss[k], want{i, pos})
	}
	t.mu.RUnlock()
	for k, ws := range miss {
		if b := t.cached(k); b != nil {
			for _, w := range ws {
				out[w.i], _ = Hash(b, w.pos)
			}
			continue
		}
		var bad error
		ok, err := view(k, func(b []byte) {
			if len(b) != TileBytes {
				bad = fmt.Errorf("hashtile: stored tile %d/%d has %d bytes, want %d", k.Level, k.N, len(b), TileBytes)
				return
			}
			for _, w := range ws {
				out[w.i], _ = Hash(b, w.pos)
			}
			if k.Level > 0 {
				t.keep(k, bytes.Clone(b))
			}
		})
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, fmt.Errorf("%w: tile %d/%d", ErrMissing, k.Level, k.N)
		case bad != nil:
			return nil, bad
		}
	}
	return out, nil
}

// lookupLocked finds the hash at pos of tile k in the partial tiles or the
// pending ones. The caller holds mu.
func (t *Tail) lookupLocked(k Key, pos int) (tlog.Hash, bool) {
	if b, ok := t.pending[k]; ok {
		h, _ := Hash(b, pos)
		return h, true
	}
	if k.Level >= len(t.parts) {
		return tlog.Hash{}, false
	}
	per := leavesPer(k.Level)
	if per == 0 || k.N != t.size/per {
		return tlog.Hash{}, false
	}
	lo := Height - 1
	for lo > 0 && pos < levelStart(lo) {
		lo--
	}
	off := pos - levelStart(lo)
	nodes := t.parts[k.Level].nodes[lo]
	if off >= len(nodes) {
		return tlog.Hash{}, false
	}
	return nodes[off], true
}

func (t *Tail) cached(k Key) []byte {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	if e, ok := t.cache[k]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*Tile).Data
	}
	return nil
}

func (t *Tail) keep(k Key, b []byte) {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	if e, ok := t.cache[k]; ok {
		t.lru.MoveToFront(e)
		return
	}
	t.cache[k] = t.lru.PushFront(&Tile{Key: k, Data: b})
	for t.lru.Len() > t.max {
		e := t.lru.Back()
		t.lru.Remove(e)
		delete(t.cache, e.Value.(*Tile).Key)
	}
}

// Restore rebuilds the tail of a log of size leaves from what the store
// holds: leaves returns the record hashes of leaves [from, to), tiles the
// stored tiles of one level with indexes [from, to), in order. It reads at
// most 255 leaves and 255 tiles per tile level.
func Restore(size int64, leaves func(from, to int64) ([]tlog.Hash, error), tiles func(level int, from, to int64) ([][]byte, error)) (*Tail, error) {
	t := New()
	t.size = size
	for tl := 0; tl <= MaxLevel; tl++ {
		per := leavesPer(tl)
		if per == 0 {
			break
		}
		if tl > 0 && size < leavesPer(tl-1) {
			break
		}
		n := size / per
		// The tile's lowest level: nodes of hash level 8T from index n*256.
		from, to := n*Width, size>>(Height*tl)
		var base []tlog.Hash
		if tl == 0 {
			hs, err := leaves(from, to)
			if err != nil {
				return nil, err
			}
			base = hs
		} else {
			bs, err := tiles(tl-1, from, to)
			if err != nil {
				return nil, err
			}
			for _, b := range bs {
				r, err := Root(b)
				if err != nil {
					return nil, err
				}
				base = append(base, r)
			}
		}
		if int64(len(base)) != to-from {
			return nil, fmt.Errorf("hashtile: restore level %d: %d nodes, want %d", tl, len(base), to-from)
		}
		p := &part{}
		p.nodes[0] = append(p.nodes[0], base...)
		p.fill()
		t.parts = append(t.parts, p)
	}
	return t, nil
}
