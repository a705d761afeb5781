package logclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile/checkpoint"
	"domicile/leaf"
	"domicile/merkle"
	"domicile/witness"
)

const (
	testOrigin = "log.example/cn-gz1"
	testPrefix = "/log/cn-gz1/"
)

func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// servedLog is a real log built in memory with this module's packages and
// served over HTTP as tlog-tiles, cosigned by real witnesses.
type servedLog struct {
	t      *testing.T
	rng    *rand.ChaCha8
	signer note.Signer
	vkey   string

	witnesses []*witness.Witness
	wkeys     []string

	mu        sync.Mutex
	entries   [][]byte
	events    []Event
	hashes    merkle.MemoryHashes
	files     map[string][]byte
	published int64
	srv       *httptest.Server
}

func newServedLog(t *testing.T, nWitnesses int) *servedLog {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(testRand(1), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &servedLog{t: t, rng: testRand(2), signer: s, vkey: vkey, files: map[string][]byte{}}
	for i := range nWitnesses {
		wskey, wvkey, err := checkpoint.GenerateCosignerKey(testRand(100+uint64(i)), fmt.Sprintf("witness.example/w%d", i))
		if err != nil {
			t.Fatal(err)
		}
		c, err := checkpoint.NewCosigner(wskey, func() time.Time { return time.Unix(1767225600, 0) })
		if err != nil {
			t.Fatal(err)
		}
		w, err := witness.New(witness.Config{Cosigner: c, Logs: []string{vkey},
			State: witness.NewFileState(filepath.Join(t.TempDir(), "witness.json"))})
		if err != nil {
			t.Fatal(err)
		}
		l.witnesses = append(l.witnesses, w)
		l.wkeys = append(l.wkeys, wvkey)
	}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *servedLog) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, testPrefix)
	l.mu.Lock()
	b, found := l.files[path]
	l.mu.Unlock()
	if !ok || !found || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func (l *servedLog) url() string { return l.srv.URL + testPrefix }

// add appends n events with real leaves, salts and commitments.
func (l *servedLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	actions := leaf.Actions
	for range n {
		i := len(l.entries)
		salt, err := leaf.NewSalt(l.rng)
		if err != nil {
			l.t.Fatal(err)
		}
		committed := fmt.Sprintf(`{"cell":"cn-gz1","subject":"s-%d","action":%q,"n":%d}`, i%7, actions[i%len(actions)], i)
		lf := leaf.Leaf{Time: time.Unix(1767225600+int64(i)*30, 0), Action: actions[i%len(actions)],
			Role: leaf.Roles[i%len(leaf.Roles)], Outcome: leaf.Outcomes[i%2], Commitment: leaf.Commit(salt, []byte(committed))}
		entry := leaf.Format(lf)
		if _, err := l.hashes.Append(entry); err != nil {
			l.t.Fatal(err)
		}
		l.entries = append(l.entries, entry)
		l.events = append(l.events, Event{LeafIndex: int64(i), Salt: salt, Committed: committed, Leaf: string(entry)})
	}
}

// sign returns a checkpoint of the current tree signed by the log only.
func (l *servedLog) sign() []byte {
	size := l.hashes.Size()
	root, err := merkle.TreeHash(size, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	msg, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: testOrigin, Size: size, Hash: root}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return msg
}

// publish writes the new tiles and bundles, signs a checkpoint, has the
// witnesses cosign it and serves it. It returns the served checkpoint.
func (l *servedLog) publish() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.hashes.Size()
	for _, t := range merkle.NewTiles(l.published, size) {
		data, err := merkle.ReadTileData(t, l.hashes)
		if err != nil {
			l.t.Fatal(err)
		}
		l.files[t.Path()] = data
	}
	for _, t := range merkle.NewEntryBundles(l.published, size) {
		start := t.N * merkle.TileWidth
		b, err := merkle.EncodeEntryBundle(l.entries[start : start+int64(t.W)])
		if err != nil {
			l.t.Fatal(err)
		}
		l.files[t.Path()] = b
	}
	msg := l.sign()
	proof, err := merkle.ProveConsistency(l.published, size, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, w := range l.witnesses {
		line, err := w.Cosign(context.Background(), msg, merkle.HashesToBytes(proof))
		if err != nil {
			l.t.Fatalf("witness refused honest checkpoint: %v", err)
		}
		if msg, err = checkpoint.AddCosignatures(msg, line); err != nil {
			l.t.Fatal(err)
		}
	}
	l.files["checkpoint"] = msg
	l.published = size
	return msg
}

func (l *servedLog) set(path string, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files[path] = data
}

func (l *servedLog) get(path string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.files[path])
}

func (l *servedLog) client(t *testing.T, witnesses bool) *Client {
	t.Helper()
	cfg := Config{URL: l.url(), LogKey: l.vkey}
	if witnesses {
		cfg.WitnessKeys = l.wkeys
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sample returns every k'th event, plus the first and last.
func sample(evs []Event, k int) []Event {
	var out []Event
	for i, e := range evs {
		if i%k == 0 || i == len(evs)-1 {
			out = append(out, e)
		}
	}
	return out
}

func TestVerifyHonestLog(t *testing.T) {
	ctx := context.Background()
	l := newServedLog(t, 2)
	state := witness.NewFileState(filepath.Join(t.TempDir(), "verify.state"))
	c := l.client(t, true)

	l.add(300)
	l.publish()
	res, err := c.Verify(ctx, Options{State: state, Events: sample(l.events, 9), Entries: true})
	if err != nil {
		t.Fatalf("Verify(first) error: %v", err)
	}
	if res.Previous != nil || res.Checkpoint.Size != 300 || len(res.Checkpoint.Cosignatures) != 2 {
		t.Errorf("Verify(first) = previous %v, size %d, %d cosignatures; want nil, 300, 2", res.Previous, res.Checkpoint.Size, len(res.Checkpoint.Cosignatures))
	}
	for _, grow := range []int{0, 1, 250, 600} {
		l.add(grow)
		l.publish()
		res, err = c.Verify(ctx, Options{State: state, Events: sample(l.events, 37), Entries: true})
		if err != nil {
			t.Fatalf("Verify(after +%d) error: %v", grow, err)
		}
		if res.Previous == nil || res.Checkpoint.Size != int64(len(l.entries)) || res.Events != len(sample(l.events, 37)) {
			t.Errorf("Verify(after +%d) = size %d, %d events; want %d and all events", grow, res.Checkpoint.Size, res.Events, len(l.entries))
		}
	}
	st, ok, err := state.Load(ctx, testOrigin)
	if err != nil || !ok || st.Size != int64(len(l.entries)) {
		t.Errorf("state after Verify = size %d, %v, %v; want %d", st.Size, ok, err, len(l.entries))
	}
}

func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	l := newServedLog(t, 1)
	l.add(550)
	l.publish()
	ev := l.events[300] // in full bundle tile/entries/001

	t.Run("edited entry", func(t *testing.T) {
		c := l.client(t, true)
		orig := l.get("tile/entries/001")
		defer l.set("tile/entries/001", orig)
		entries, err := merkle.DecodeEntryBundle(orig)
		if err != nil {
			t.Fatal(err)
		}
		edited := append([][]byte(nil), entries...)
		edited[300-256] = bytes.Replace(edited[300-256], []byte("o=allowed"), []byte("o=denied"), 1)
		edited[300-256] = bytes.Replace(edited[300-256], []byte("a=read"), []byte("a=list"), 1)
		b, _ := merkle.EncodeEntryBundle(edited)
		l.set("tile/entries/001", b)

		cp, err := c.FetchCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = c.VerifyEvent(ctx, cp, ev)
		var lm *LeafMismatchError
		if !errors.As(err, &lm) || lm.Index != 300 || !bytes.Equal(lm.Expected, []byte(ev.Leaf)) || bytes.Equal(lm.Served, lm.Expected) {
			t.Errorf("VerifyEvent(edited entry) = %v, want *LeafMismatchError with both leaves", err)
		}
		err = c.CheckEntries(ctx, cp)
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Index != 300 || ee.TileHash != merkle.LeafHash([]byte(ev.Leaf)) {
			t.Errorf("CheckEntries(edited entry) = %v, want *EntryError at 300 with the signed leaf hash", err)
		}
		// A recount of the log's figures stops at the edited leaf.
		var seen int64
		err = c.EachLeaf(ctx, cp, func(i int64, _ leaf.Leaf) error { seen = i + 1; return nil })
		if !errors.As(err, &ee) || ee.Index != 300 || seen != 300 {
			t.Errorf("EachLeaf(edited entry) = %v after %d leaves, want *EntryError at 300", err, seen)
		}
		// An export carrying the edited leaf still commits to the event
		// (the commitment covers the event, not the metadata), and the log
		// serves it, but its hash is not the one in the signed tree.
		forged := ev
		forged.Leaf = string(edited[300-256])
		var ie *InclusionError
		if err := c.VerifyEvent(ctx, cp, forged); !errors.As(err, &ie) || len(ie.Proof) == 0 {
			t.Errorf("VerifyEvent(edited leaf served) = %v, want *InclusionError with the proof", err)
		}
	})

	t.Run("edited stored hash", func(t *testing.T) {
		for _, path := range []string{"tile/0/001", "tile/0/002.p/38", "tile/1/000.p/2"} {
			t.Run(path, func(t *testing.T) {
				c := l.client(t, true)
				orig := l.get(path)
				defer l.set(path, orig)
				edited := bytes.Clone(orig)
				edited[len(edited)/2] ^= 0x40
				l.set(path, edited)
				cp, err := c.FetchCheckpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.ProveInclusion(ctx, cp, 300, []byte(ev.Leaf))
				var te *TreeError
				if !errors.As(err, &te) || !bytes.Equal(te.Checkpoint, cp.Raw) {
					t.Fatalf("ProveInclusion(edited %s) = %v, want *TreeError", path, err)
				}
				found := false
				for _, tile := range te.Tiles {
					found = found || (tile.Path == path && bytes.Equal(tile.Data, edited))
				}
				if !found {
					t.Errorf("TreeError tiles do not include the edited %s", path)
				}
			})
		}
	})

	t.Run("edited commitment input", func(t *testing.T) {
		c := l.client(t, true)
		cp, _ := c.FetchCheckpoint(ctx)
		bad := ev
		bad.Committed = strings.Replace(bad.Committed, `"cell"`, `"cel1"`, 1)
		if err := c.VerifyEvent(ctx, cp, bad); !errors.As(err, new(*CommitmentError)) {
			t.Errorf("VerifyEvent(edited event) = %v, want *CommitmentError", err)
		}
		bad = ev
		bad.LeafIndex = cp.Size + 3
		if err := c.VerifyEvent(ctx, cp, bad); !errors.As(err, new(*InclusionError)) {
			t.Errorf("VerifyEvent(index beyond tree) = %v, want *InclusionError", err)
		}
		bad = ev
		bad.LeafIndex = 301 // a valid leaf, but the log holds another there
		if err := c.VerifyEvent(ctx, cp, bad); !errors.As(err, new(*LeafMismatchError)) {
			t.Errorf("VerifyEvent(wrong index) = %v, want *LeafMismatchError", err)
		}
	})
}

func TestInconsistentLogDetected(t *testing.T) {
	ctx := context.Background()

	setup := func(t *testing.T) (*servedLog, witness.State, []byte) {
		l := newServedLog(t, 1)
		l.add(300)
		early := l.publish()
		l.add(250)
		l.publish()
		state := witness.NewFileState(filepath.Join(t.TempDir(), "verify.state"))
		if _, err := l.client(t, true).Verify(ctx, Options{State: state}); err != nil {
			t.Fatal(err)
		}
		return l, state, early
	}
	wantConsistencyError := func(t *testing.T, err error, oldSize, newSize int64, withProof bool) {
		t.Helper()
		var ce *ConsistencyError
		if !errors.As(err, &ce) {
			t.Fatalf("Verify() = %v, want *ConsistencyError", err)
		}
		oldBody, _ := checkpoint.Body(ce.Old)
		newBody, _ := checkpoint.Body(ce.New)
		o, err1 := checkpoint.Parse(oldBody)
		n, err2 := checkpoint.Parse(newBody)
		if err1 != nil || err2 != nil || o.Size != oldSize || n.Size != newSize {
			t.Errorf("ConsistencyError checkpoints sizes %d, %d; want %d, %d", o.Size, n.Size, oldSize, newSize)
		}
		if withProof != (len(ce.Proof) > 0) {
			t.Errorf("ConsistencyError proof %v, want present=%v", ce.Proof, withProof)
		}
		if !strings.Contains(ce.Error(), string(oldBody)) || !strings.Contains(ce.Error(), string(newBody)) {
			t.Errorf("ConsistencyError text does not show both checkpoints:\n%s", ce.Error())
		}
	}

	t.Run("replayed older checkpoint", func(t *testing.T) {
		l, state, early := setup(t)
		l.set("checkpoint", early) // old, validly signed and cosigned
		_, err := l.client(t, true).Verify(ctx, Options{State: state})
		wantConsistencyError(t, err, 550, 300, false)
	})

	t.Run("truncated log", func(t *testing.T) {
		l, state, _ := setup(t)
		l.mu.Lock()
		l.hashes = l.hashes[:merkle.StoredHashCount(400)]
		l.entries = l.entries[:400]
		l.mu.Unlock()
		l.set("checkpoint", l.sign())
		// Witnesses are not asked: they would refuse (see package witness).
		_, err := l.client(t, false).Verify(ctx, Options{State: state})
		wantConsistencyError(t, err, 550, 400, false)
		// A client requiring the witnesses refuses the checkpoint outright.
		_, err = l.client(t, true).Verify(ctx, Options{State: state})
		if !errors.As(err, new(*checkpoint.MissingCosignatureError)) {
			t.Errorf("Verify(uncosigned checkpoint) = %v, want *checkpoint.MissingCosignatureError", err)
		}
	})

	t.Run("fork at the same size", func(t *testing.T) {
		l, state, _ := setup(t)
		other := newServedLog(t, 0)
		other.signer = l.signer
		other.rng = testRand(77)
		other.add(550)
		l.set("checkpoint", other.sign())
		_, err := l.client(t, false).Verify(ctx, Options{State: state})
		wantConsistencyError(t, err, 550, 550, false)
	})

	t.Run("rewritten history", func(t *testing.T) {
		l, state, _ := setup(t)
		// The operator edits event 11 in its database, recomputes every
		// hash, republishes every tile and signs a larger tree.
		l.mu.Lock()
		edited := bytes.Replace(l.entries[11], []byte("o=denied"), []byte("o=allowed"), 1)
		if bytes.Equal(edited, l.entries[11]) {
			t.Fatal("test bug: entry 11 unchanged")
		}
		l.entries[11] = edited
		var rebuilt merkle.MemoryHashes
		for _, e := range l.entries {
			rebuilt.Append(e)
		}
		l.hashes = rebuilt
		l.published = 0
		l.witnesses = nil
		l.mu.Unlock()
		l.add(20)
		l.publish()
		_, err := l.client(t, false).Verify(ctx, Options{State: state})
		wantConsistencyError(t, err, 550, 570, true)
		// The state still holds the honest checkpoint.
		st, _, _ := state.Load(ctx, testOrigin)
		if st.Size != 550 {
			t.Errorf("state after failed Verify holds size %d, want 550", st.Size)
		}
	})
}

func TestFetchLimitsAndErrors(t *testing.T) {
	ctx := context.Background()
	l := newServedLog(t, 0)
	l.add(3)
	l.publish()
	c := l.client(t, false)

	l.set("checkpoint", bytes.Repeat([]byte("x"), checkpoint.MaxSignedSize+1))
	if _, err := c.FetchCheckpoint(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("FetchCheckpoint(oversized) = %v, want size error", err)
	}
	bad, err := New(Config{URL: l.srv.URL + "/nowhere/", LogKey: l.vkey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.FetchCheckpoint(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("FetchCheckpoint(404) = %v, want status error", err)
	}
	for _, cfg := range []Config{{URL: l.url(), LogKey: "garbage"}, {LogKey: l.vkey}, {URL: l.url(), LogKey: l.vkey, WitnessKeys: []string{l.vkey}}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error, want error", cfg)
		}
	}
	// A tile served with the wrong length is evidence too.
	l.publish()
	cp, err := l.client(t, false).FetchCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.set("tile/0/000.p/3", make([]byte, 40))
	_, err = l.client(t, false).ProveInclusion(ctx, cp, 1, l.entries[1])
	if te := new(TreeError); !errors.As(err, &te) {
		t.Errorf("ProveInclusion(short tile) = %v, want *TreeError", err)
	}
}

// TestPartialTileFallback checks that an old checkpoint still verifies once
// the log has deleted its partial tiles, as tlog-tiles allows.
func TestPartialTileFallback(t *testing.T) {
	ctx := context.Background()
	l := newServedLog(t, 0)
	l.add(300)
	old := l.publish()
	l.add(300)
	l.publish()
	l.mu.Lock()
	delete(l.files, "tile/0/001.p/44")
	delete(l.files, "tile/entries/001.p/44")
	l.mu.Unlock()
	c := l.client(t, false)
	cp, err := c.OpenCheckpoint(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyEvent(ctx, cp, l.events[290]); err != nil {
		t.Errorf("VerifyEvent(old checkpoint, partial tiles deleted) = %v", err)
	}
	if err := c.CheckEntries(ctx, cp); err != nil {
		t.Errorf("CheckEntries(old checkpoint, partial tiles deleted) = %v", err)
	}
	var n int64
	err = c.EachLeaf(ctx, cp, func(i int64, l leaf.Leaf) error {
		if i != n || l.Action == "" {
			return fmt.Errorf("leaf %d (want %d): %+v", i, n, l)
		}
		n++
		return nil
	})
	if err != nil || n != 300 {
		t.Errorf("EachLeaf(old checkpoint) = %v after %d leaves, want 300 leaves", err, n)
	}
}

func TestParseExport(t *testing.T) {
	evs := []Event{{LeafIndex: 7, Salt: []byte{1, 2, 3}, Committed: `{"a":1}`, Leaf: "domicile/v1 t=60 a=read r=app o=allowed c=x"}}
	b, _ := json.Marshal(map[string]any{"events": evs, "next": "abc"})
	if !bytes.Contains(b, []byte(`"salt":"AQID"`)) || !bytes.Contains(b, []byte(`"leaf_index":7`)) {
		t.Fatalf("export JSON %s: want standard base64 salt and leaf_index", b)
	}
	e, err := ParseExport(b)
	if err != nil || len(e.Events) != 1 || e.Events[0].LeafIndex != 7 || !bytes.Equal(e.Events[0].Salt, []byte{1, 2, 3}) {
		t.Errorf("ParseExport() = %+v, %v", e, err)
	}
	if _, err := ParseExport([]byte(`{"events":[{"salt":"%%%"}]}`)); err == nil {
		t.Error("ParseExport(bad base64) = nil error, want error")
	}
}
