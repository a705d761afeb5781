package witness

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile/checkpoint"
	"domicile/merkle"
)

const origin = "log.example/cn-gz1"

func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// testLog is a real in-memory log: a Merkle tree and a signing key.
type testLog struct {
	t      *testing.T
	hashes merkle.MemoryHashes
	signer note.Signer
	vkey   string
	prefix string // distinguishes entries of forked histories
}

func newTestLog(t *testing.T, seed uint64) *testLog {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(testRand(seed), origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, signer: s, vkey: vkey, prefix: "entry"}
}

// fork returns a copy of l whose future entries differ.
func (l *testLog) fork() *testLog {
	c := *l
	c.hashes = append(merkle.MemoryHashes(nil), l.hashes...)
	c.prefix = "forked"
	return &c
}

func (l *testLog) grow(n int) {
	for range n {
		if _, err := l.hashes.Append(fmt.Appendf(nil, "%s %d", l.prefix, l.hashes.Size())); err != nil {
			l.t.Fatal(err)
		}
	}
}

func (l *testLog) checkpoint() []byte {
	l.t.Helper()
	size := l.hashes.Size()
	root, err := merkle.TreeHash(size, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	msg, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: origin, Size: size, Hash: root}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return msg
}

func (l *testLog) proof(from int64) [][]byte {
	l.t.Helper()
	p, err := merkle.ProveConsistency(from, l.hashes.Size(), l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	return merkle.HashesToBytes(p)
}

type testWitness struct {
	*Witness
	verifier *checkpoint.CosignatureVerifier
}

func newTestWitness(t *testing.T, state State, logKeys ...string) testWitness {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateCosignerKey(testRand(99), "witness.example/eu-fra1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.NewCosigner(skey, func() time.Time { return time.Unix(1767225600, 0) })
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Cosigner: c, Logs: logKeys, State: state})
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if w.Verifier() != vkey {
		t.Fatalf("Verifier() = %q, want %q", w.Verifier(), vkey)
	}
	return testWitness{w, v}
}

// mustCosign cosigns and checks that the cosignature verifies on the
// checkpoint, as a log client would.
func (w testWitness) mustCosign(t *testing.T, l *testLog, signed []byte, proof [][]byte) {
	t.Helper()
	line, err := w.Cosign(context.Background(), signed, proof)
	if err != nil {
		t.Fatalf("Cosign(size %d) error: %v", l.hashes.Size(), err)
	}
	cosigned, err := checkpoint.AddCosignatures(signed, line)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier(l.vkey)
	if _, err := checkpoint.Open(cosigned, lv, w.verifier); err != nil {
		t.Fatalf("Open(cosigned checkpoint) error: %v", err)
	}
}

func TestCosignGrowingLog(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, 1)
	w := newTestWitness(t, NewFileState(filepath.Join(t.TempDir(), "state.json")), l.vkey)
	l.grow(3)
	w.mustCosign(t, l, l.checkpoint(), nil) // first sight: trusted on first use
	for _, n := range []int{0, 1, 255, 300} {
		old := l.hashes.Size()
		l.grow(n)
		w.mustCosign(t, l, l.checkpoint(), l.proof(old))
	}
	if size, ok, err := w.LastSize(ctx, origin); err != nil || !ok || size != 559 {
		t.Errorf("LastSize() = %d, %v, %v; want 559", size, ok, err)
	}
	if _, _, err := w.LastSize(ctx, "log.example/other"); !errors.Is(err, ErrUnknownLog) {
		t.Errorf("LastSize(unknown) = %v, want ErrUnknownLog", err)
	}
	st, ok, err := w.state.Load(ctx, origin)
	if err != nil || !ok || st.Size != 559 || !bytes.Equal(st.Checkpoint, l.checkpoint()) {
		t.Errorf("state after cosigning = size %d, ok %v, %v; want size 559 and the last checkpoint", st.Size, ok, err)
	}
}

func TestForkAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "witness-state.json")
	l := newTestLog(t, 1)
	l.grow(5)

	// First run of the witness: cosigns the log's honest checkpoint.
	w1 := newTestWitness(t, NewFileState(path), l.vkey)
	w1.mustCosign(t, l, l.checkpoint(), nil)
	l.grow(3)
	honest := l.checkpoint()
	w1.mustCosign(t, l, honest, l.proof(5))

	// The log forks at size 5 and shows a different size-8 tree.
	f := newTestLog(t, 1)
	f.hashes = append(merkle.MemoryHashes(nil), l.hashes[:merkle.StoredHashCount(5)]...)
	f = f.fork()
	f.grow(3)
	forked := f.checkpoint()
	if bytes.Equal(forked, honest) {
		t.Fatal("test bug: forked checkpoint equals honest one")
	}

	// Second run: a new witness process reading the same state file.
	w2 := newTestWitness(t, NewFileState(path), l.vkey)
	_, err := w2.Cosign(ctx, forked, f.proof(8))
	var fe *ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("Cosign(forked checkpoint after restart) = %v, want *ForkError", err)
	}
	if !bytes.Equal(fe.Old, honest) || !bytes.Equal(fe.New, forked) {
		t.Errorf("ForkError = {Old: %q, New: %q}, want both signed checkpoints", fe.Old, fe.New)
	}
	// Both are signed by the log: the evidence stands on its own.
	lv, _ := checkpoint.NewVerifier(l.vkey)
	a, errA := checkpoint.Open(fe.Old, lv)
	b, errB := checkpoint.Open(fe.New, lv)
	if errA != nil || errB != nil || a.Size != b.Size || a.Hash == b.Hash {
		t.Errorf("ForkError evidence does not show two signed roots at one size: %v, %v", errA, errB)
	}

	// A larger tree grown from the fork fails the consistency proof.
	f.grow(10)
	_, err = w2.Cosign(ctx, f.checkpoint(), f.proof(8))
	var pe *ProofError
	if !errors.As(err, &pe) || !bytes.Equal(pe.Old, honest) {
		t.Errorf("Cosign(grown fork) = %v, want *ProofError from the honest checkpoint", err)
	}
	// The honest log still gets cosigned.
	l.grow(10)
	w2.mustCosign(t, l, l.checkpoint(), l.proof(8))
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, 1)
	other := newTestLog(t, 2) // same origin, another key
	w := newTestWitness(t, NewFileState(filepath.Join(t.TempDir(), "s.json")), l.vkey)
	l.grow(10)
	ten := l.checkpoint()
	w.mustCosign(t, l, ten, nil)
	l.grow(5)
	fifteen := l.checkpoint()
	good := l.proof(10)

	t.Run("rollback", func(t *testing.T) {
		small := newTestLog(t, 1)
		small.hashes = l.hashes[:merkle.StoredHashCount(7)]
		msg := small.checkpoint()
		_, err := w.Cosign(ctx, msg, nil)
		var re *RollbackError
		if !errors.As(err, &re) || !bytes.Equal(re.Old, ten) || !bytes.Equal(re.New, msg) {
			t.Errorf("Cosign(size 7 after 10) = %v, want *RollbackError with both checkpoints", err)
		}
	})
	t.Run("bad proof", func(t *testing.T) {
		for i := range good {
			bad := merkle.HashesToBytes(mustHashes(t, good))
			bad[i][0] ^= 1
			_, err := w.Cosign(ctx, fifteen, bad)
			var pe *ProofError
			if !errors.As(err, &pe) || !bytes.Equal(pe.New, fifteen) || len(pe.Proof) != len(good) {
				t.Errorf("Cosign(proof[%d] corrupted) = %v, want *ProofError with proof", i, err)
			}
		}
		for name, p := range map[string][][]byte{"none": nil, "short hash": {good[0][:31]}, "extra": append(good, good[0])} {
			if _, err := w.Cosign(ctx, fifteen, p); !errors.As(err, new(*ProofError)) {
				t.Errorf("Cosign(proof %s) = %v, want *ProofError", name, err)
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other.hashes = l.hashes
		_, err := w.Cosign(ctx, other.checkpoint(), good)
		var se *checkpoint.SignatureError
		if !errors.As(err, &se) {
			t.Errorf("Cosign(signed by another key) = %v, want *checkpoint.SignatureError", err)
		}
	})
	t.Run("unknown log", func(t *testing.T) {
		skey, _, _ := checkpoint.GenerateKey(testRand(3), "log.example/elsewhere")
		s, _ := checkpoint.NewSigner(skey)
		msg, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: "log.example/elsewhere", Size: 1, Hash: merkle.LeafHash(nil)}, s)
		if _, err := w.Cosign(ctx, msg, nil); !errors.Is(err, ErrUnknownLog) {
			t.Errorf("Cosign(unknown origin) = %v, want ErrUnknownLog", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if _, err := w.Cosign(ctx, []byte("not a note"), nil); err == nil {
			t.Error("Cosign(garbage) = nil error, want error")
		}
	})
	// None of the refusals moved the state: the good proof still works.
	w.mustCosign(t, l, fifteen, good)
	// Same checkpoint again is cosigned again (a fresh cosignature).
	w.mustCosign(t, l, fifteen, nil)
}

func mustHashes(t *testing.T, b [][]byte) []merkle.Hash {
	t.Helper()
	h, err := merkle.HashesFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFileState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	l := newTestLog(t, 1)
	l.grow(4)
	cp := l.checkpoint()
	s := NewFileState(path)
	if _, ok, err := s.Load(ctx, origin); ok || err != nil {
		t.Fatalf("Load(empty) = ok %v, %v; want not found", ok, err)
	}
	if err := s.Store(ctx, origin, LogState{Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	st, ok, err := NewFileState(path).Load(ctx, origin)
	root, _ := merkle.TreeHash(4, l.hashes)
	if err != nil || !ok || st.Size != 4 || st.Hash != root || !bytes.Equal(st.Checkpoint, cp) {
		t.Errorf("Load(after Store, new instance) = %+v, %v, %v; want size 4", st, ok, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after Store, want only the state file", len(entries))
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewFileState(path).Load(ctx, origin); err == nil {
		t.Error("Load(corrupt file) = nil error, want error")
	}
	// A corrupt file makes the witness refuse rather than start afresh.
	w := newTestWitness(t, NewFileState(path), l.vkey)
	if _, err := w.Cosign(ctx, cp, nil); err == nil {
		t.Error("Cosign with corrupt state = nil error, want error (fail closed)")
	}
	if err := NewFileState(filepath.Join(dir, "missing", "s.json")).Store(ctx, origin, LogState{Checkpoint: cp}); err == nil {
		t.Error("Store(into missing directory) = nil error, want error")
	}
}
