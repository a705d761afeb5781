package logclient

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// specTileReader is a tlog.TileReader written from the tlog-tiles
// specification alone: plain HTTP GETs of tile/<L>/<N>[.p/<W>], with paths
// from x/mod's own encoding minus its height element. It shares no code
// with this package or package merkle.
type specTileReader struct {
	base string
}

func (r specTileReader) Height() int { return 8 }

func (r specTileReader) fetch(path string) ([]byte, error) {
	resp, err := http.Get(r.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func (r specTileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, t := range tiles {
		b, err := r.fetch(strings.Replace(t.Path(), "tile/8/", "tile/", 1))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (r specTileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// specCheckpoint opens the served checkpoint with x/mod's note package and
// parses its three lines by hand.
func specCheckpoint(t *testing.T, r specTileReader, vkey string) tlog.Tree {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := r.fetch("checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open(checkpoint): %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err1 := strconv.ParseInt(lines[1], 10, 64)
	h, err2 := base64.StdEncoding.DecodeString(lines[2])
	if lines[0] != v.Name() || err1 != nil || err2 != nil || len(h) != 32 {
		t.Fatalf("checkpoint text %q: not origin, size, hash", n.Text)
	}
	return tlog.Tree{N: size, Hash: tlog.Hash(h)}
}

// specEntry reads entry i from its entry bundle, decoding the big-endian
// uint16 length prefixes by hand.
func specEntry(t *testing.T, r specTileReader, tree tlog.Tree, i int64) []byte {
	t.Helper()
	n := i / 256
	w := min(tree.N-n*256, 256)
	path := strings.Replace(tlog.Tile{H: 8, L: 0, N: n, W: int(w)}.Path(), "tile/8/0/", "tile/entries/", 1)
	b, err := r.fetch(path)
	if err != nil {
		t.Fatal(err)
	}
	for k := int64(0); ; k++ {
		l := int(binary.BigEndian.Uint16(b))
		if k == i%256 {
			return b[2 : 2+l]
		}
		b = b[2+l:]
	}
}

// TestInteropWithXModTlog verifies the served log with x/mod's independent
// proof checking (CheckRecord, CheckTree), fed only from tiles fetched over
// HTTP.
func TestInteropWithXModTlog(t *testing.T) {
	l := newServedLog(t, 0)
	r := specTileReader{base: l.url()}
	var trees []tlog.Tree
	for _, n := range []int{1, 255, 1, 300, 70, 1000} {
		l.add(n)
		l.publish()
		trees = append(trees, specCheckpoint(t, r, l.vkey))
	}
	for k, tree := range trees {
		thr := tlog.TileHashReader(tree, r)
		for _, i := range []int64{0, 1, tree.N / 3, tree.N / 2, tree.N - 1} {
			if i < 0 || i >= tree.N {
				continue
			}
			t.Run(fmt.Sprintf("record %d of %d", i, tree.N), func(t *testing.T) {
				p, err := tlog.ProveRecord(tree.N, i, thr)
				if err != nil {
					t.Fatalf("tlog.ProveRecord: %v", err)
				}
				entry := specEntry(t, r, tree, i)
				if string(entry) != l.events[i].Leaf {
					t.Fatalf("served entry %d = %q, want %q", i, entry, l.events[i].Leaf)
				}
				if err := tlog.CheckRecord(p, tree.N, tree.Hash, i, tlog.RecordHash(entry)); err != nil {
					t.Errorf("tlog.CheckRecord(%d in %d): %v", i, tree.N, err)
				}
			})
		}
		for _, old := range trees[:k] {
			if old.N == tree.N {
				continue
			}
			t.Run(fmt.Sprintf("tree %d to %d", old.N, tree.N), func(t *testing.T) {
				p, err := tlog.ProveTree(tree.N, old.N, thr)
				if err != nil {
					t.Fatalf("tlog.ProveTree: %v", err)
				}
				if err := tlog.CheckTree(p, tree.N, tree.Hash, old.N, old.Hash); err != nil {
					t.Errorf("tlog.CheckTree(%d to %d): %v", old.N, tree.N, err)
				}
			})
		}
	}
}
