package web

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"domicile/checkpoint"
	"domicile/internal/browsertest"
	"domicile/leaf"
	"domicile/merkle"
)

// testLog is a log built in Go with the packages the server uses (the
// independent reference for verify.js): its leaves, stored hashes, and
// the event and salt behind each leaf.
type testLog struct {
	hashes    merkle.MemoryHashes
	leaves    []string
	committed []string
	salts     [][]byte
}

func newTestLog(t *testing.T, n int) *testLog {
	l := &testLog{}
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i := range n {
		when := t0.Add(time.Duration(i) * 17 * time.Second)
		// Every tenth event is an operator's read with a justification,
		// every seventh a read from abroad: their leaves carry tags (v2).
		role, basis, detail, tags := "app", "service:service", "", []string(nil)
		if i%7 == 3 {
			detail, tags = "remote read from US under exempt counted as transfer trf_0123456789abcdef", []string{"remote"}
		}
		if i%10 == 4 {
			role, basis, tags = "operator", "support", append(tags, "support")
			slices.Sort(tags)
		}
		committed := fmt.Sprintf(`{"time":%q,"cell":"cn-gz1","subject":"ref-%d","role":%q,"action":"read","resource":"record/message/m%d","basis":%q,"outcome":"allowed","detail":%q}`,
			when.Format(time.RFC3339Nano), i%3, role, i, basis, detail)
		salt, err := leaf.NewSalt(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e := leaf.Format(leaf.Leaf{Time: when, Action: "read", Role: role, Outcome: "allowed", Tags: tags, Commitment: leaf.Commit(salt, []byte(committed))})
		if _, err := l.hashes.Append(e); err != nil {
			t.Fatal(err)
		}
		l.leaves = append(l.leaves, string(e))
		l.committed = append(l.committed, committed)
		l.salts = append(l.salts, salt)
	}
	return l
}

// serveTiles serves the log's tiles under /log/t/ (any tile of the whole
// log; the browser asks only for those of the size it checks), the
// checkpoint note set by the test under /log/t/checkpoint, and the
// privacy page's files, so that verify.js loads from the same origin.
func serveTiles(t *testing.T, l *testLog, note *[]byte, tamper func(path string, b []byte)) *httptest.Server {
	p, err := NewPrivacy(PrivacyConfig{Logs: testPins})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/privacy/", p)
	mux.HandleFunc("/log/t/checkpoint", func(w http.ResponseWriter, r *http.Request) { w.Write(*note) })
	mux.HandleFunc("/log/t/tile/", func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/log/t/")
		tile, err := merkle.ParseTilePath(path)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		b, err := merkle.ReadTileData(tile, l.hashes)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if tamper != nil {
			tamper(path, b)
		}
		w.Write(b)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// eval runs an async JavaScript body with verify.js imported as v, and
// decodes its JSON result into out.
func eval(t *testing.T, b *browsertest.Browser, body string, out any) {
	t.Helper()
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`(async () => { const v = await import('/privacy/verify.js'); `+body+` })()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, b.Console())
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

func leafHashBytes(entry string) []byte {
	h := merkle.LeafHash([]byte(entry))
	return h[:]
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestVerifyJS checks verify.js in Debian's Chromium against the Go
// packages the server and `domicile verify` use: tile paths against
// merkle.Tile.Path, inclusion proofs built from tiles against
// merkle.ProveInclusion for trees of every shape up to 700 leaves
// (partial tiles, full tiles, the level-1 tile), checkpoints and
// cosignatures made by package checkpoint, and each way a check must
// fail.
func TestVerifyJS(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute, 800, 600)
	l := newTestLog(t, 700)
	var note []byte
	var tampered string
	srv := serveTiles(t, l, &note, func(path string, b []byte) {
		if path == tampered {
			b[40] ^= 1
		}
	})
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(srv.URL+"/privacy/")); err != nil {
		t.Fatal(err)
	}

	t.Run("tile paths", func(t *testing.T) {
		tiles := []merkle.Tile{{L: 0, N: 0, W: 256}, {L: 0, N: 1, W: 5}, {L: 1, N: 999, W: 256}, {L: 2, N: 1000, W: 1}, {L: 0, N: 1234067, W: 256}, {L: 3, N: 1234067, W: 17}}
		var got []string
		eval(t, b, `return `+js(tiles)+`.map(x => v.tilePath(x.L, x.N, x.W));`, &got)
		for i, tile := range tiles {
			if got[i] != tile.Path() {
				t.Errorf("tilePath(%d, %d, %d) = %q, want %q", tile.L, tile.N, tile.W, got[i], tile.Path())
			}
		}
	})

	t.Run("inclusion proofs from tiles", func(t *testing.T) {
		type tc struct {
			Size, Index int64
			Leaf, Root  string
			Proof       []string
		}
		var cases []tc
		for _, size := range []int64{1, 2, 3, 5, 8, 255, 256, 257, 300, 511, 512, 513, 700} {
			root, err := merkle.TreeHash(size, l.hashes)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int64{0, size / 2, size - 1, min(255, size-1), min(256, size-1)} {
				proof, err := merkle.ProveInclusion(i, size, l.hashes)
				if err != nil {
					t.Fatal(err)
				}
				c := tc{Size: size, Index: i, Leaf: base64.StdEncoding.EncodeToString(leafHashBytes(l.leaves[i])), Root: base64.StdEncoding.EncodeToString(root[:]), Proof: []string{}}
				for _, h := range proof {
					c.Proof = append(c.Proof, base64.StdEncoding.EncodeToString(h[:]))
				}
				cases = append(cases, c)
			}
		}
		var got []struct {
			Proof                                  []string
			Verifies, WrongIndex, WrongRoot, Short bool
			TileLeaf                               string
		}
		eval(t, b, `const out = [];
			for (const c of `+js(cases)+`) {
				const r = new v.TileReader('/log/t/', c.Size);
				const proof = await r.inclusionProof(c.Index);
				const leaf = v.b64decode(c.Leaf), root = v.b64decode(c.Root);
				const other = c.Index + 1 < c.Size ? c.Index + 1 : c.Index - 1;
				const bad = root.slice(); bad[0] ^= 1;
				out.push({
					Proof: proof.map(v.b64encode),
					Verifies: await v.verifyInclusion(proof, c.Index, c.Size, leaf, root),
					WrongIndex: c.Size > 1 && await v.verifyInclusion(proof, other, c.Size, leaf, root),
					WrongRoot: await v.verifyInclusion(proof, c.Index, c.Size, leaf, bad),
					Short: proof.length > 0 && await v.verifyInclusion(proof.slice(1), c.Index, c.Size, leaf, root),
					TileLeaf: v.b64encode(await r.leafHash(c.Index)),
				});
			}
			return out;`, &got)
		for i, c := range cases {
			g := got[i]
			if strings.Join(g.Proof, ",") != strings.Join(c.Proof, ",") {
				t.Errorf("size %d index %d: proof from tiles %v, want %v", c.Size, c.Index, g.Proof, c.Proof)
			}
			if !g.Verifies || g.WrongIndex || g.WrongRoot || g.Short {
				t.Errorf("size %d index %d: verifies %v, with another index %v, another root %v, a short proof %v", c.Size, c.Index, g.Verifies, g.WrongIndex, g.WrongRoot, g.Short)
			}
			if g.TileLeaf != c.Leaf {
				t.Errorf("size %d index %d: the tile holds %s, want the leaf hash %s", c.Size, c.Index, g.TileLeaf, c.Leaf)
			}
		}
	})

	// A checkpoint of the whole log, signed by the log and cosigned by two
	// witnesses, as the server's log and witnesses make them.
	const size = 700
	root, err := merkle.TreeHash(size, l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, "test/t")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "test/t", Size: size, Hash: root}, signer)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := checkpoint.Body(signed)
	var witnessKeys []string
	var lines [][]byte
	for _, name := range []string{"witness/a", "witness/b"} {
		wskey, wvkey, err := checkpoint.GenerateCosignerKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		cos, err := checkpoint.NewCosigner(wskey, func() time.Time { return time.Unix(1767225600, 0) })
		if err != nil {
			t.Fatal(err)
		}
		line, err := checkpoint.Cosign(body, cos)
		if err != nil {
			t.Fatal(err)
		}
		witnessKeys = append(witnessKeys, wvkey)
		lines = append(lines, line)
	}
	_, otherKey, _ := checkpoint.GenerateKey(rand.Reader, "test/t")
	cosigned, err := checkpoint.AddCosignatures(signed, lines...)
	if err != nil {
		t.Fatal(err)
	}
	onlyA, _ := checkpoint.AddCosignatures(signed, lines[0])

	t.Run("checkpoints", func(t *testing.T) {
		flipped := bytes.Clone(cosigned)
		i := bytes.Index(flipped, []byte("\n— test/t ")) + len("\n— test/t ") + 20
		flipped[i] = map[bool]byte{true: 'A', false: 'B'}[flipped[i] != 'A']
		badWitness := bytes.Replace(cosigned, lines[1][len(lines[1])-10:len(lines[1])-1], []byte("AAAAAAAAA"), 1)
		tests := []struct {
			name      string
			note      []byte
			key       string
			witnesses []string
			fails     bool
			cosigned  []string
			missing   []string
		}{
			{"cosigned", cosigned, vkey, witnessKeys, false, []string{"witness/a", "witness/b"}, nil},
			{"one witness missing", onlyA, vkey, witnessKeys, false, []string{"witness/a"}, []string{"witness/b"}},
			{"a bad cosignature is no cosignature", badWitness, vkey, witnessKeys, false, []string{"witness/a"}, []string{"witness/b"}},
			{"no witness pinned", cosigned, vkey, nil, false, nil, nil},
			{"another log key", cosigned, otherKey, witnessKeys, true, nil, nil},
			{"flipped signature", flipped, vkey, witnessKeys, true, nil, nil},
			{"no signatures", body, vkey, nil, true, nil, nil},
			{"text changed", bytes.Replace(cosigned, []byte("\n700\n"), []byte("\n701\n"), 1), vkey, nil, true, nil, nil},
		}
		for _, tt := range tests {
			var got struct {
				Err      string
				Size     int64
				Root     string
				Cosigned []string
				Missing  []string
			}
			eval(t, b, `try {
				const cp = await v.openCheckpoint(`+js(string(tt.note))+`, `+js(tt.key)+`, `+js(tt.witnesses)+` || []);
				return {Size: cp.size, Root: cp.rootBase64, Cosigned: cp.cosigned.map(w => w.name), Missing: cp.missing.map(w => w.name)};
			} catch (e) { return {Err: String(e.message || e)}; }`, &got)
			if tt.fails {
				if got.Err == "" {
					t.Errorf("%s: opened, want a failure", tt.name)
				}
				continue
			}
			if got.Err != "" || got.Size != size || got.Root != base64.StdEncoding.EncodeToString(root[:]) ||
				strings.Join(got.Cosigned, ",") != strings.Join(tt.cosigned, ",") || strings.Join(got.Missing, ",") != strings.Join(tt.missing, ",") {
				t.Errorf("%s: %+v; want size %d, cosigned by %v, missing %v", tt.name, got, size, tt.cosigned, tt.missing)
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		note = cosigned
		type item struct {
			LeafIndex int64  `json:"leaf_index"`
			Salt      []byte `json:"salt"`
			Committed string `json:"committed"`
			Leaf      string `json:"leaf"`
		}
		mk := func(i int) item { return item{int64(i), l.salts[i], l.committed[i], l.leaves[i]} }
		good := mk(300)
		wrongSalt := mk(300)
		wrongSalt.Salt = l.salts[301]
		edited := mk(300)
		edited.Committed = strings.Replace(edited.Committed, "m300", "m999", 1)
		otherLeaf := mk(300)
		otherLeaf.Leaf = l.leaves[301]
		otherLeaf.Salt, otherLeaf.Committed = l.salts[301], l.committed[301]
		// A leaf that commits to the event but states another minute.
		badTime := mk(300)
		badTime.Leaf = string(leaf.Format(leaf.Leaf{Time: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Action: "read", Role: "app", Outcome: "allowed",
			Commitment: leaf.Commit(l.salts[300], []byte(l.committed[300]))}))
		// A leaf that commits to an operator's read but leaves its
		// justification out, and one that claims a read from abroad.
		noTag := mk(304)
		noTag.Leaf = string(leaf.Format(leaf.Leaf{Time: time.Date(2026, 3, 1, 9, 26, 0, 0, time.UTC), Action: "read", Role: "operator", Outcome: "allowed",
			Commitment: leaf.Commit(l.salts[304], []byte(l.committed[304]))}))
		extraTag := mk(300)
		extraTag.Leaf = string(leaf.Format(leaf.Leaf{Time: time.Date(2026, 3, 1, 9, 25, 0, 0, time.UTC), Action: "read", Role: "app", Outcome: "allowed", Tags: []string{"remote"},
			Commitment: leaf.Commit(l.salts[300], []byte(l.committed[300]))}))
		tests := []struct {
			name    string
			it      item
			subject string
			tamper  string
			want    string // "" for verified, or the failure's catalog key
		}{
			{"verified", good, "ref-0", "", ""},
			{"an operator's read, tagged", mk(304), "ref-1", "", ""},
			{"a read from abroad, tagged", mk(311), "ref-2", "", ""},
			{"a leaf without the event's tag", noTag, "", "", "privacy.fail.leaf-fields"},
			{"a leaf with a tag the event does not have", extraTag, "", "", "privacy.fail.leaf-fields"},
			{"a v2 leaf without tags", item{5, l.salts[5], l.committed[5], strings.Replace(l.leaves[5], "domicile/v1", "domicile/v2", 1)}, "", "", "privacy.fail.leaf-format"},
			{"first leaf", mk(0), "ref-0", "", ""},
			{"last leaf", mk(699), "ref-0", "", ""},
			{"another salt", wrongSalt, "", "", "privacy.fail.commitment"},
			{"event edited", edited, "", "", "privacy.fail.commitment"},
			{"someone else's event", good, "ref-1", "", "privacy.fail.subject"},
			{"a leaf at the wrong index", otherLeaf, "", "", "privacy.fail.tile"},
			{"beyond the checkpoint", item{700, l.salts[0], l.committed[0], l.leaves[0]}, "", "", "privacy.fail.unsigned"},
			{"erased", item{LeafIndex: 5, Leaf: l.leaves[5]}, "", "", "privacy.fail.erased"},
			{"malformed leaf", item{5, l.salts[5], l.committed[5], l.leaves[5] + " "}, "", "", "privacy.fail.leaf-format"},
			{"the leaf's time differs from the event's", badTime, "", "", "privacy.fail.leaf-fields"},
			{"leaf tile tampered", mk(257), "", "tile/0/001", "privacy.fail.tile"},
			{"sibling tile tampered", good, "", "tile/0/001", "privacy.fail.root"},
			{"level-1 tile tampered", mk(600), "", "tile/1/000.p/2", "privacy.fail.root"},
			{"level-0 tile of another subtree tampered", mk(600), "", "tile/0/000", ""},
		}
		for _, tt := range tests {
			tampered = tt.tamper
			var got struct {
				OK  bool
				Key string
			}
			eval(t, b, `const cp = await v.openCheckpoint(await (await fetch('/log/t/checkpoint')).text(), `+js(vkey)+`, `+js(witnessKeys)+`);
				const r = await v.checkEvent(`+js(tt.it)+`, cp, new v.TileReader('/log/t/', cp.size), `+js(tt.subject)+`);
				return {OK: r.ok, Key: r.key || ''};`, &got)
			if tt.want == "" && !got.OK || tt.want != "" && (got.OK || got.Key != tt.want) {
				t.Errorf("%s: ok %v, %q; want %q", tt.name, got.OK, got.Key, tt.want)
			}
		}
		tampered = ""
	})
}
