package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

const (
	// TileHeight is the height of a tile: each full tile holds 2^8 hashes.
	TileHeight = 8
	// TileWidth is the number of hashes in a full tile, and of entries in a
	// full entry bundle.
	TileWidth = 1 << TileHeight
	// EntriesLevel is the [Tile.L] value of an entry bundle.
	EntriesLevel = -1
	// MaxLevel is the highest hash tile level.
	MaxLevel = 63
	// MaxEntrySize is the largest entry an entry bundle can carry: its length
	// prefix is a uint16.
	MaxEntrySize = 1<<16 - 1
	// MaxTileBytes is the size of a full hash tile.
	MaxTileBytes = TileWidth * HashSize
)

// A Tile is the coordinate of one tlog-tiles resource: a hash tile at level
// L (0..[MaxLevel]) or, when L is [EntriesLevel], an entry bundle; N is the
// tile's index within its level and W its width, 1..[TileWidth] (TileWidth
// for a full tile).
type Tile struct {
	L int
	N int64
	W int
}

// Validate reports whether t is a valid tile coordinate.
func (t Tile) Validate() error {
	if t.L < EntriesLevel || t.L > MaxLevel || t.N < 0 || t.W < 1 || t.W > TileWidth {
		return errors.New("merkle: invalid tile")
	}
	return nil
}

// Path returns t's canonical tlog-tiles path, such as "tile/0/x001/234.p/5"
// or "tile/entries/007". If t is invalid (see [Tile.Validate]), Path panics.
func (t Tile) Path() string {
	if err := t.Validate(); err != nil {
		panic(fmt.Sprintf("merkle: Path of invalid tile %+v", t))
	}
	var b strings.Builder
	b.WriteString("tile/")
	if t.L == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.L))
	}
	b.WriteByte('/')
	// Three-digit groups, most significant first.
	var groups []int64
	for n := t.N; ; n /= 1000 {
		groups = append(groups, n%1000)
		if n < 1000 {
			break
		}
	}
	for i := len(groups) - 1; i >= 0; i-- {
		if i > 0 {
			fmt.Fprintf(&b, "x%03d/", groups[i])
		} else {
			fmt.Fprintf(&b, "%03d", groups[i])
		}
	}
	if t.W < TileWidth {
		fmt.Fprintf(&b, ".p/%d", t.W)
	}
	return b.String()
}

// String returns t's path.
func (t Tile) String() string { return t.Path() }

// FormatTilePath returns t's canonical path; see [Tile.Path].
func FormatTilePath(t Tile) string { return t.Path() }

// errTilePath is the one error ParseTilePath returns: it does not echo its
// input.
var errTilePath = errors.New("merkle: malformed tile path")

// ParseTilePath parses a canonical tlog-tiles path, such as
// "tile/1/x001/234" or "tile/entries/000.p/17". A path that [FormatTilePath]
// would not produce byte for byte is rejected.
func ParseTilePath(path string) (Tile, error) {
	if len(path) > 64 {
		return Tile{}, errTilePath
	}
	f := strings.Split(path, "/")
	if len(f) < 3 || f[0] != "tile" {
		return Tile{}, errTilePath
	}
	var t Tile
	if f[1] == "entries" {
		t.L = EntriesLevel
	} else {
		l, err := strconv.Atoi(f[1])
		if err != nil || l < 0 || l > MaxLevel {
			return Tile{}, errTilePath
		}
		t.L = l
	}
	f = f[2:]
	t.W = TileWidth
	if len(f) >= 2 && strings.HasSuffix(f[len(f)-2], ".p") {
		last := f[len(f)-2]
		w, err := strconv.Atoi(f[len(f)-1])
		if err != nil || w < 1 || w >= TileWidth {
			return Tile{}, errTilePath
		}
		t.W = w
		f[len(f)-2] = strings.TrimSuffix(last, ".p")
		f = f[:len(f)-1]
	}
	if len(f) > 7 { // 7 groups of 3 digits exceed int64's 19 digits
		return Tile{}, errTilePath
	}
	for i, g := range f {
		if i < len(f)-1 {
			if !strings.HasPrefix(g, "x") {
				return Tile{}, errTilePath
			}
			g = g[1:]
		}
		if len(g) != 3 || g[0] < '0' || g[0] > '9' || g[1] < '0' || g[1] > '9' || g[2] < '0' || g[2] > '9' {
			return Tile{}, errTilePath
		}
		d := int64(g[0]-'0')*100 + int64(g[1]-'0')*10 + int64(g[2]-'0')
		if t.N > (1<<63-1-d)/1000 {
			return Tile{}, errTilePath
		}
		t.N = t.N*1000 + d
	}
	if t.Path() != path {
		return Tile{}, errTilePath
	}
	return t, nil
}

// TlogTile returns t as a golang.org/x/mod/sumdb/tlog tile of height
// [TileHeight]. An entry bundle maps to tlog's data level, -1.
func (t Tile) TlogTile() tlog.Tile {
	return tlog.Tile{H: TileHeight, L: t.L, N: t.N, W: t.W}
}

// FromTlogTile converts a golang.org/x/mod/sumdb/tlog tile of height
// [TileHeight] into a Tile.
func FromTlogTile(tt tlog.Tile) (Tile, error) {
	t := Tile{L: tt.L, N: tt.N, W: tt.W}
	if tt.H != TileHeight || t.Validate() != nil {
		return Tile{}, errors.New("merkle: tile not of height 8")
	}
	return t, nil
}

// NewTiles returns the hash tiles, full and partial, that a log publishes
// when it grows from oldSize to newSize leaves (all of them when oldSize is
// 0). A partial tile made obsolete by a wider one is not listed again.
func NewTiles(oldSize, newSize int64) []Tile {
	if oldSize < 0 || newSize < oldSize {
		return nil
	}
	var out []Tile
	for _, tt := range tlog.NewTiles(TileHeight, oldSize, newSize) {
		out = append(out, Tile{L: tt.L, N: tt.N, W: tt.W})
	}
	return out
}

// NewEntryBundles returns the entry bundles, full and partial, that a log
// publishes when it grows from oldSize to newSize leaves.
func NewEntryBundles(oldSize, newSize int64) []Tile {
	var out []Tile
	for _, t := range NewTiles(oldSize, newSize) {
		if t.L == 0 {
			t.L = EntriesLevel
			out = append(out, t)
		}
	}
	return out
}

// EntryBundleFor returns the entry bundle that holds leaf index in a tree
// of size leaves, and the leaf's position within it.
func EntryBundleFor(index, size int64) (Tile, int, error) {
	if index < 0 || index >= size {
		return Tile{}, 0, fmt.Errorf("merkle: no leaf %d in tree of size %d", index, size)
	}
	n := index / TileWidth
	w := size - n*TileWidth
	if w > TileWidth {
		w = TileWidth
	}
	return Tile{L: EntriesLevel, N: n, W: int(w)}, int(index % TileWidth), nil
}

// ReadTileData returns the contents of hash tile t (W concatenated hashes),
// reading stored hashes from r.
func ReadTileData(t Tile, r HashReader) ([]byte, error) {
	if err := t.Validate(); err != nil || t.L == EntriesLevel {
		return nil, errors.New("merkle: not a hash tile")
	}
	return tlog.ReadTileData(t.TlogTile(), r)
}

var errBundle = errors.New("merkle: malformed entry bundle")

// EncodeEntryBundle encodes 1 to [TileWidth] entries, each at most
// [MaxEntrySize] bytes, as an entry bundle.
func EncodeEntryBundle(entries [][]byte) ([]byte, error) {
	if len(entries) == 0 || len(entries) > TileWidth {
		return nil, errors.New("merkle: entry bundle must hold 1 to 256 entries")
	}
	n := 0
	for _, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, errors.New("merkle: entry too large for an entry bundle")
		}
		n += 2 + len(e)
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b, nil
}

// DecodeEntryBundle decodes an entry bundle of 1 to [TileWidth] entries.
// Trailing bytes, truncated entries and empty bundles are rejected. The
// returned entries alias data.
func DecodeEntryBundle(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, errBundle
	}
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 || len(out) == TileWidth {
			return nil, errBundle
		}
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		if len(data) < n {
			return nil, errBundle
		}
		out = append(out, data[:n:n])
		data = data[n:]
	}
	return out, nil
}
