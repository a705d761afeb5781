package merkle

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePathRoundTrip(t *testing.T) {
	tests := []struct {
		tile Tile
		path string
	}{
		{Tile{L: 0, N: 0, W: 256}, "tile/0/000"},
		{Tile{L: 0, N: 0, W: 1}, "tile/0/000.p/1"},
		{Tile{L: 1, N: 999, W: 255}, "tile/1/999.p/255"},
		{Tile{L: 2, N: 1000, W: 256}, "tile/2/x001/000"},
		{Tile{L: 4, N: 1234067, W: 256}, "tile/4/x001/x234/067"},
		{Tile{L: 63, N: 1234067, W: 8}, "tile/63/x001/x234/067.p/8"},
		{Tile{L: EntriesLevel, N: 7, W: 256}, "tile/entries/007"},
		{Tile{L: EntriesLevel, N: 1234067, W: 17}, "tile/entries/x001/x234/067.p/17"},
		{Tile{L: 0, N: 1<<63 - 1, W: 256}, "tile/0/x009/x223/x372/x036/x854/x775/807"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := FormatTilePath(tc.tile); got != tc.path {
				t.Errorf("FormatTilePath(%+v) = %q, want %q", tc.tile, got, tc.path)
			}
			got, err := ParseTilePath(tc.path)
			if err != nil || got != tc.tile {
				t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
			}
		})
	}
}

func TestParseTilePathRejectsNonCanonical(t *testing.T) {
	for _, p := range []string{
		"", "tile", "tile/0", "tile/0/", "/tile/0/000", "tile/0/000/",
		"tile/00/000", "tile/64/000", "tile/-1/000", "tile/data/000", "tile/8/0/000",
		"tile/0/0", "tile/0/0000", "tile/0/x000/001", "tile/0/001/002", "tile/0/x001",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/", "tile/0/000.p",
		"tile/0/000.p/1/2", "tile/0/x1000/000", "tile/0/+01", "tile/0/ 01",
		"tile/0/x010/x000/x000/x000/x000/x000/x000/000", // overflows int64
		"tile/0/x009/x223/x372/x036/x854/x775/808",      // 2^63
		"tile/entries/000.p/256", "tile/Entries/000",
	} {
		if tile, err := ParseTilePath(p); err == nil {
			t.Errorf("ParseTilePath(%q) = %+v, want error", p, tile)
		} else if len(p) > 12 && strings.Contains(err.Error(), p) {
			t.Errorf("ParseTilePath(%q) error %q echoes its input", p, err)
		}
	}
}

// TestTilePathMatchesTlog checks hash tile paths against x/mod's encoding,
// which differs only in carrying the height: tile/8/L/N.
func TestTilePathMatchesTlog(t *testing.T) {
	for _, tt := range tlog.NewTiles(TileHeight, 0, 300000) {
		tile, err := FromTlogTile(tt)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(tt.Path(), "tile/8/", "tile/", 1)
		if got := tile.Path(); got != want {
			t.Errorf("Path(%+v) = %q, want %q", tile, got, want)
		}
		if tile.TlogTile() != tt {
			t.Errorf("TlogTile(%+v) = %+v, want %+v", tile, tile.TlogTile(), tt)
		}
	}
	if _, err := FromTlogTile(tlog.Tile{H: 2, L: 0, N: 0, W: 4}); err == nil {
		t.Error("FromTlogTile(height 2) = nil error, want error")
	}
}

// TestNewTilesSpecExample checks the example of C2SP tlog-tiles: a tree of
// size 70,000 has 273 full level 0 tiles, a partial level 0 tile of width
// 112, a full level 1 tile, a partial level 1 tile of width 17 and a
// partial level 2 tile of width 1.
func TestNewTilesSpecExample(t *testing.T) {
	count := map[[2]int]int{} // (level, width) -> tiles
	for _, tile := range NewTiles(0, 70000) {
		count[[2]int{tile.L, tile.W}]++
	}
	want := map[[2]int]int{{0, 256}: 273, {0, 112}: 1, {1, 256}: 1, {1, 17}: 1, {2, 1}: 1}
	if len(count) != len(want) {
		t.Errorf("NewTiles(0, 70000) = %v, want %v", count, want)
	}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("NewTiles(0, 70000): %d tiles at level %d width %d, want %d", count[k], k[0], k[1], v)
		}
	}
	// A tree of 256 leaves: one full level 0 tile, a level 1 tile of width 1.
	got := NewTiles(0, 256)
	if len(got) != 2 || got[0] != (Tile{0, 0, 256}) || got[1] != (Tile{1, 0, 1}) {
		t.Errorf("NewTiles(0, 256) = %v, want [tile/0/000 tile/1/000.p/1]", got)
	}
	bundles := NewEntryBundles(250, 600)
	wantB := []Tile{{EntriesLevel, 0, 256}, {EntriesLevel, 1, 256}, {EntriesLevel, 2, 88}}
	if len(bundles) != len(wantB) {
		t.Fatalf("NewEntryBundles(250, 600) = %v, want %v", bundles, wantB)
	}
	for i := range wantB {
		if bundles[i] != wantB[i] {
			t.Errorf("NewEntryBundles(250, 600)[%d] = %v, want %v", i, bundles[i], wantB[i])
		}
	}
}

func TestEntryBundleFor(t *testing.T) {
	tests := []struct {
		index, size int64
		tile        Tile
		pos         int
	}{
		{0, 1, Tile{EntriesLevel, 0, 1}, 0},
		{255, 256, Tile{EntriesLevel, 0, 256}, 255},
		{256, 300, Tile{EntriesLevel, 1, 44}, 0},
		{10, 600, Tile{EntriesLevel, 0, 256}, 10},
	}
	for _, tc := range tests {
		tile, pos, err := EntryBundleFor(tc.index, tc.size)
		if err != nil || tile != tc.tile || pos != tc.pos {
			t.Errorf("EntryBundleFor(%d, %d) = %v, %d, %v; want %v, %d", tc.index, tc.size, tile, pos, err, tc.tile, tc.pos)
		}
	}
	if _, _, err := EntryBundleFor(5, 5); err == nil {
		t.Error("EntryBundleFor(5, 5) = nil error, want error")
	}
}

// TestReadTileData checks that level 1 tile hashes are the roots of full
// level 0 tiles, as tlog-tiles defines them.
func TestReadTileData(t *testing.T) {
	ref := newRefTree(600)
	m := buildMemory(t, ref)
	l0, err := ReadTileData(Tile{L: 0, N: 1, W: 256}, m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l0[:HashSize], func() []byte { h := ref.mth(256, 257); return h[:] }()) {
		t.Error("tile/0/001 does not start with the hash of leaf 256")
	}
	l1, err := ReadTileData(Tile{L: 1, N: 0, W: 2}, m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		want := ref.mth(i*256, (i+1)*256)
		if !bytes.Equal(l1[i*HashSize:(i+1)*HashSize], want[:]) {
			t.Errorf("tile/1/000.p/2 hash %d is not MTH of leaves [%d, %d)", i, i*256, (i+1)*256)
		}
	}
	if _, err := ReadTileData(Tile{L: EntriesLevel, N: 0, W: 1}, m); err == nil {
		t.Error("ReadTileData(entry bundle) = nil error, want error")
	}
}

func TestEntryBundle(t *testing.T) {
	entries := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{7}, MaxEntrySize)}
	b, err := EncodeEntryBundle(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0, 1, 'a', 0, 0, 0xff, 0xff}) {
		t.Errorf("EncodeEntryBundle prefix = %x, want 0001 61 0000 ffff", b[:7])
	}
	got, err := DecodeEntryBundle(b)
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], entries[2]) || len(got[1]) != 0 {
		t.Errorf("DecodeEntryBundle(EncodeEntryBundle(x)) = %d entries, %v; want x", len(got), err)
	}
	for _, bad := range [][][]byte{nil, make([][]byte, 257), {make([]byte, MaxEntrySize+1)}} {
		if _, err := EncodeEntryBundle(bad); err == nil {
			t.Errorf("EncodeEntryBundle(%d entries) = nil error, want error", len(bad))
		}
	}
	for name, bad := range map[string][]byte{
		"empty":       {},
		"short len":   {0},
		"short entry": {0, 2, 'a'},
		"trailing":    {0, 1, 'a', 0},
		"257 entries": bytes.Repeat([]byte{0, 0}, 257),
	} {
		if _, err := DecodeEntryBundle(bad); err == nil {
			t.Errorf("DecodeEntryBundle(%s) = nil error, want error", name)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/entries/x001/x234/067.p/17", "tile/63/999.p/255", "tile/0/x000/001", "tile/8/0/000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tile, err := ParseTilePath(path)
		if err != nil {
			return
		}
		if got := FormatTilePath(tile); got != path {
			t.Fatalf("FormatTilePath(ParseTilePath(%q)) = %q: Format output different from input", path, got)
		}
	})
}

func FuzzDecodeEntryBundle(f *testing.F) {
	f.Add([]byte{0, 1, 'a'})
	f.Add([]byte{0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0, 5, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := DecodeEntryBundle(data)
		if err != nil {
			return
		}
		again, err := EncodeEntryBundle(entries)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("EncodeEntryBundle(DecodeEntryBundle(%x)) = %x, %v: output different from input", data, again, err)
		}
	})
}
