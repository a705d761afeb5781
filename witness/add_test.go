package witness

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"domicile/checkpoint"
	"domicile/merkle"
)

// TestAddCheckpoint walks the C2SP tlog-witness add-checkpoint checks in
// the specification's order, against a real log and a durable state.
func TestAddCheckpoint(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, 1)
	w := newTestWitness(t, NewFileState(filepath.Join(t.TempDir(), "s.json")), l.vkey)
	add := func(old int64, proof [][]byte, signed []byte) error {
		line, err := w.AddCheckpoint(ctx, old, proof, signed)
		if err != nil {
			return err
		}
		cosigned, err := checkpoint.AddCosignatures(signed, line)
		if err != nil {
			t.Fatal(err)
		}
		lv, _ := checkpoint.NewVerifier(l.vkey)
		if _, err := checkpoint.Open(cosigned, lv, w.verifier); err != nil {
			t.Fatalf("cosignature does not verify: %v", err)
		}
		return nil
	}
	conflict := func(err error, size int64) bool {
		var ce *ConflictError
		return errors.As(err, &ce) && ce.Size == size
	}

	// First sight: old must be 0, and a proof from 0 is empty.
	l.grow(4)
	four := l.checkpoint()
	if err := add(3, nil, four); !conflict(err, 0) {
		t.Fatalf("AddCheckpoint(old 3, first sight) = %v, want *ConflictError{Size: 0}", err)
	}
	if err := add(0, [][]byte{make([]byte, 32)}, four); !errors.As(err, new(*ProofError)) {
		t.Fatalf("AddCheckpoint(old 0 with a proof) = %v, want *ProofError", err)
	}
	if err := add(0, nil, four); err != nil {
		t.Fatalf("AddCheckpoint(old 0, first sight) = %v, want a cosignature", err)
	}
	l.grow(6)
	ten := l.checkpoint()
	tests := []struct {
		name  string
		old   int64
		proof [][]byte
		check func(error) bool
		want  string
	}{
		{"old beyond the checkpoint", 11, nil, func(err error) bool { return errors.Is(err, ErrOldSize) }, "ErrOldSize"},
		{"old negative", -1, nil, func(err error) bool { return errors.Is(err, ErrOldSize) }, "ErrOldSize"},
		{"old is not the witness's size", 0, nil, func(err error) bool { return conflict(err, 4) }, "*ConflictError{Size: 4}"},
		{"old is another size", 7, l.proof(7), func(err error) bool { return conflict(err, 4) }, "*ConflictError{Size: 4}"},
		{"proof does not verify", 4, l.proof(5), func(err error) bool { return errors.As(err, new(*ProofError)) }, "*ProofError"},
		{"no proof", 4, nil, func(err error) bool { return errors.As(err, new(*ProofError)) }, "*ProofError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := add(tt.old, tt.proof, ten); !tt.check(err) {
				t.Errorf("AddCheckpoint(old %d, size 10) = %v, want %s", tt.old, err, tt.want)
			}
		})
	}
	// None of the refusals moved the state.
	if size, _, _ := w.LastSize(ctx, origin); size != 4 {
		t.Fatalf("LastSize after refusals = %d, want 4", size)
	}
	if err := add(4, l.proof(4), ten); err != nil {
		t.Fatalf("AddCheckpoint(old 4, size 10, good proof) = %v", err)
	}
	// The same checkpoint again: old is its size, the proof empty.
	if err := add(10, nil, ten); err != nil {
		t.Fatalf("AddCheckpoint(same checkpoint) = %v", err)
	}
	if err := add(10, l.proof(4), ten); !errors.As(err, new(*ProofError)) {
		t.Fatalf("AddCheckpoint(same size, non-empty proof) = %v, want *ProofError", err)
	}
	// Another root at the cosigned size: a fork, with both checkpoints.
	f := newTestLog(t, 1)
	f.hashes = append(merkle.MemoryHashes(nil), l.hashes[:merkle.StoredHashCount(4)]...)
	f = f.fork()
	f.grow(6)
	forked := f.checkpoint()
	var fe *ForkError
	if err := add(10, nil, forked); !errors.As(err, &fe) || !bytes.Equal(fe.Old, ten) || !bytes.Equal(fe.New, forked) {
		t.Fatalf("AddCheckpoint(forked size 10) = %v, want *ForkError with both checkpoints", err)
	}
	// A smaller tree than the one cosigned: the old size cannot match.
	if err := add(4, nil, four); !conflict(err, 10) {
		t.Fatalf("AddCheckpoint(old 4, size 4 after 10) = %v, want *ConflictError{Size: 10}", err)
	}
}

func TestAddCheckpointSizeZero(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, 1)
	w := newTestWitness(t, NewFileState(filepath.Join(t.TempDir(), "s.json")), l.vkey)
	bad, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: origin, Size: 0, Hash: merkle.LeafHash(nil)}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(ctx, 0, nil, bad); !errors.As(err, new(*ProofError)) {
		t.Errorf("AddCheckpoint(size 0 with a root that is not the empty tree's) = %v, want *ProofError", err)
	}
	if _, err := w.AddCheckpoint(ctx, 0, nil, l.checkpoint()); err != nil {
		t.Fatalf("AddCheckpoint(empty tree) = %v", err)
	}
	l.grow(3)
	if _, err := w.AddCheckpoint(ctx, 0, nil, l.checkpoint()); err != nil {
		t.Errorf("AddCheckpoint(old 0 after the empty tree) = %v", err)
	}
}

func TestAddCheckpointRefusesUnsigned(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, 1)
	w := newTestWitness(t, NewFileState(filepath.Join(t.TempDir(), "s.json")), l.vkey)
	l.grow(2)
	other := newTestLog(t, 2) // the same origin, another key
	other.hashes = l.hashes
	tests := []struct {
		name   string
		signed []byte
		want   func(error) bool
	}{
		{"another key", other.checkpoint(), func(err error) bool { return errors.As(err, new(*checkpoint.SignatureError)) }},
		{"not a note", []byte("old 0\n"), func(err error) bool { return errors.Is(err, ErrMalformed) }},
		{"too large", append(l.checkpoint(), bytes.Repeat([]byte("x"), checkpoint.MaxSignedSize)...), func(err error) bool { return errors.Is(err, ErrMalformed) }},
		{"unknown log", []byte(strings.Replace(string(l.checkpoint()), origin, "log.example/other", 1)), func(err error) bool { return errors.Is(err, ErrUnknownLog) }},
	}
	for _, tt := range tests {
		if _, err := w.AddCheckpoint(ctx, 0, nil, tt.signed); !tt.want(err) {
			t.Errorf("AddCheckpoint(%s) = %v", tt.name, err)
		}
	}
	if _, ok, _ := w.LastSize(ctx, origin); ok {
		t.Error("a refused checkpoint became the witness's state")
	}
}

func TestParseLogList(t *testing.T) {
	a := newTestLog(t, 1).vkey // log.example/cn-gz1
	_, b, err := checkpoint.GenerateKey(testRand(5), "log.example/eu-fra1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"keys and comments", "# logs\n" + a + "\n\n  " + b + "  \n", []string{a, b}, ""},
		{"no final newline", a, []string{a}, ""},
		{"empty", "# nothing\n\n", nil, "names no log"},
		{"not a key", a + "\nnot-a-key\n", nil, "line 2: not a log verifier key"},
		{"the same log twice", a + "\n" + b + "\n" + a + "\n", nil, "line 3: log \"log.example/cn-gz1\" is already listed on line 1"},
		{"a cosigner key", "w+12345678+" + strings.Repeat("A", 44) + "\n", nil, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLogList([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseLogList(%q) = %v, want error containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("ParseLogList(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := ParseLogList(bytes.Repeat([]byte("#"), MaxLogListBytes+1)); err == nil {
		t.Error("ParseLogList(over the limit) = nil error")
	}
}

func FuzzParseLogList(f *testing.F) {
	_, vkey, _ := checkpoint.GenerateKey(testRand(1), origin)
	f.Add([]byte(vkey + "\n"))
	f.Add([]byte("# c\n" + vkey + "\n" + vkey + "\n"))
	f.Add([]byte("a+00000000+AA==\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseLogList(b)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > MaxLogs {
			t.Fatalf("ParseLogList accepted %d keys", len(keys))
		}
		seen := map[string]bool{}
		for _, k := range keys {
			v, err := checkpoint.NewVerifier(k)
			if err != nil {
				t.Fatalf("ParseLogList accepted %q, not a verifier key: %v", k, err)
			}
			if seen[v.Name()] {
				t.Fatalf("ParseLogList accepted log %q twice", v.Name())
			}
			seen[v.Name()] = true
		}
		// The witness takes every accepted list.
		if _, err := New(Config{Cosigner: mustFuzzCosigner(t), Logs: keys, State: NewFileState(filepath.Join(t.TempDir(), "s"))}); err != nil {
			t.Fatalf("New(accepted log list) = %v", err)
		}
	})
}

func mustFuzzCosigner(t *testing.T) *checkpoint.Cosigner {
	skey, _, err := checkpoint.GenerateCosignerKey(testRand(9), "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.NewCosigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
