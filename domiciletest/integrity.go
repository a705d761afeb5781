package domiciletest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/checkpoint"
	"domicile/leaf"
	"domicile/merkle"
	"domicile/tlog"
)

// IntegrityStore is a cell store that tlog.Check can check and repair.
type IntegrityStore interface {
	domicile.CellStore
	tlog.CheckStore
}

// Tamper damages a store while it is closed, as an attacker with access
// to its files (or a failing disk) would.
type Tamper struct {
	// FlipHash changes the stored Merkle hash id (tlog.StoredHashIndex
	// order). The suite only asks for hashes the store keeps on disk:
	// those of complete tiles of 256 leaves.
	FlipHash func(t *testing.T, id int64)
	// SetEvent sets column ("leaf" or "committed") of event idx.
	SetEvent func(t *testing.T, idx int64, column string, value []byte)
	// DeleteEventsFrom deletes the events from idx on.
	DeleteEventsFrom func(t *testing.T, idx int64)
}

// integrityLog is the log the suite writes: 600 events, a signed
// checkpoint of the first 550.
const (
	integrityEvents     = 600
	integrityCheckpoint = 550
)

// TestLogIntegrity checks tlog.Check against a store: a sound log passes;
// stored hashes that disagree with the events are rebuilt; events that
// disagree with the signed checkpoint, or with their leaves, refuse the
// log with the evidence. newStore returns a function that (re)opens one
// fresh store, and the ways to tamper with it while it is closed.
func TestLogIntegrity(t *testing.T, newStore func(t *testing.T) (open func() IntegrityStore, tamper Tamper)) {
	ctx := context.Background()
	skey, vkey, err := checkpoint.GenerateKey(rand.NewChaCha8([32]byte{1}), "example.com/integrity")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(skey)
	verifier, _ := checkpoint.NewVerifier(vkey)

	// build writes the log into a fresh store and returns its reopener,
	// the tamperer, the stored checkpoint and the expected hashes.
	build := func(t *testing.T) (func() IntegrityStore, Tamper, []byte, merkle.MemoryHashes) {
		open, tamper := newStore(t)
		s := open()
		var mem merkle.MemoryHashes
		b := &domicile.Batch{}
		for i := range integrityEvents {
			e := LeafEntry(i)
			b.Events = append(b.Events, e)
			if _, err := mem.Append(e.Leaf); err != nil {
				t.Fatal(err)
			}
			if len(b.Events) == 100 {
				MustCommit(t, ctx, s, b)
				b = &domicile.Batch{}
			}
		}
		root, err := merkle.TreeHash(integrityCheckpoint, mem)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: signer.Name(), Size: integrityCheckpoint, Hash: root}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutCheckpoint(ctx, integrityCheckpoint, signed); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return open, tamper, signed, mem
	}
	reopen := func(t *testing.T, open func() IntegrityStore) IntegrityStore {
		s := open()
		t.Cleanup(func() { s.Close() })
		return s
	}
	// sound checks that every stored hash is the one computed in memory.
	sound := func(t *testing.T, s IntegrityStore, mem merkle.MemoryHashes) {
		t.Helper()
		ids := make([]int64, merkle.StoredHashIndex(0, mem.Size()))
		for i := range ids {
			ids[i] = int64(i)
		}
		got, err := s.ReadHashes(ctx, ids)
		if err != nil {
			t.Fatalf("ReadHashes: %v", err)
		}
		want, _ := mem.ReadHashes(ids)
		for i := range ids {
			if got[i] != [32]byte(want[i]) {
				t.Fatalf("stored hash %d differs from the one computed from the leaves", i)
			}
		}
	}

	t.Run("Sound", func(t *testing.T) {
		open, _, _, mem := build(t)
		s := reopen(t, open)
		res, err := tlog.Check(ctx, s, verifier)
		if err != nil {
			t.Fatalf("Check of a sound log: %v", err)
		}
		root, _ := merkle.TreeHash(integrityCheckpoint, mem)
		if res.Rebuilt || res.Size != integrityEvents || res.Checkpoint != integrityCheckpoint || res.Root != root {
			t.Errorf("Check = %+v; want size %d, checkpoint %d, not rebuilt", res, integrityEvents, integrityCheckpoint)
		}
	})

	t.Run("NewLog", func(t *testing.T) {
		open, _ := newStore(t)
		s := reopen(t, open)
		res, err := tlog.Check(ctx, s, nil)
		if err != nil || res.Size != 0 || res.Checkpoint != -1 || res.Rebuilt {
			t.Fatalf("Check of an empty log = %+v, %v", res, err)
		}
	})

	for _, tc := range []struct {
		name string
		id   int64
	}{
		{"LeafHash", merkle.StoredHashIndex(0, 5)},
		{"TileTop", merkle.StoredHashIndex(7, 1)},
		{"SecondTile", merkle.StoredHashIndex(3, 40)},
	} {
		t.Run("FlippedHash/"+tc.name, func(t *testing.T) {
			open, tamper, _, mem := build(t)
			tamper.FlipHash(t, tc.id)
			s := reopen(t, open)
			res, err := tlog.Check(ctx, s, verifier)
			if err != nil {
				t.Fatalf("Check after a flipped hash: %v", err)
			}
			if !res.Rebuilt || res.BadHashes == 0 || res.FirstBad == "" {
				t.Errorf("Check = %+v; want the stored hashes rebuilt", res)
			}
			sound(t, s, mem)
			res, err = tlog.Check(ctx, s, verifier)
			if err != nil || res.Rebuilt {
				t.Errorf("Check after the rebuild = %+v, %v; want sound", res, err)
			}
			// The rebuilt store keeps appending correctly.
			e := LeafEntry(integrityEvents)
			MustCommit(t, ctx, s, &domicile.Batch{Events: []*domicile.LogEntry{e}})
			mem.Append(e.Leaf)
			sound(t, s, mem)
		})
	}

	refused := func(t *testing.T, s IntegrityStore, v note.Verifier) *tlog.IntegrityError {
		t.Helper()
		res, err := tlog.Check(ctx, s, v)
		var ie *tlog.IntegrityError
		if !errors.As(err, &ie) {
			t.Fatalf("Check = %+v, %v; want an *IntegrityError", res, err)
		}
		return ie
	}

	t.Run("EditedLeaf", func(t *testing.T) {
		open, tamper, signed, mem := build(t)
		e := LeafEntry(1000)
		tamper.SetEvent(t, 10, "leaf", e.Leaf)
		s := reopen(t, open)
		ie := refused(t, s, verifier)
		root, _ := merkle.TreeHash(integrityCheckpoint, mem)
		if string(ie.Checkpoint) != string(signed) || ie.Size != integrityCheckpoint || ie.Signed != root || !ie.HaveRecomputed || ie.Recomputed == root {
			t.Errorf("evidence = %+v; want the signed checkpoint, its root and a different recomputed root", ie)
		}
	})

	t.Run("EditedCommittedEvent", func(t *testing.T) {
		open, tamper, _, _ := build(t)
		tamper.SetEvent(t, 20, "committed", []byte(`{"edited":true}`))
		s := reopen(t, open)
		if ie := refused(t, s, verifier); ie.Event != 20 {
			t.Errorf("Event = %d, want 20 (%v)", ie.Event, ie)
		}
	})

	t.Run("EditedEventAfterCheckpoint", func(t *testing.T) {
		open, tamper, _, _ := build(t)
		tamper.SetEvent(t, 580, "committed", []byte(`{"edited":true}`))
		s := reopen(t, open)
		if ie := refused(t, s, verifier); ie.Event != 580 {
			t.Errorf("Event = %d, want 580 (%v)", ie.Event, ie)
		}
	})

	t.Run("Truncated", func(t *testing.T) {
		open, tamper, _, _ := build(t)
		tamper.DeleteEventsFrom(t, 500)
		s := reopen(t, open)
		refused(t, s, verifier)
	})

	t.Run("WrongKey", func(t *testing.T) {
		open, _, _, _ := build(t)
		_, other, err := checkpoint.GenerateKey(rand.NewChaCha8([32]byte{2}), "example.com/integrity")
		if err != nil {
			t.Fatal(err)
		}
		ov, _ := checkpoint.NewVerifier(other)
		s := reopen(t, open)
		refused(t, s, ov)
		refused(t, s, nil)
	})
}

// LeafEntry returns a log entry whose leaf commits to its event, as a
// cell's are.
func LeafEntry(i int) *domicile.LogEntry {
	var salt [leaf.SaltSize]byte
	salt[0], salt[1] = byte(i), byte(i>>8)
	committed := fmt.Appendf(nil, `{"n":%d}`, i)
	tm := t0.Add(time.Duration(i) * time.Second)
	l := leaf.Leaf{Time: tm.Truncate(time.Minute), Action: "read", Role: "app", Outcome: "allowed", Commitment: leaf.Commit(salt[:], committed)}
	return &domicile.LogEntry{Ref: Ref("integrity"), Time: tm, Leaf: leaf.Format(l), Committed: committed, Salt: salt[:]}
}
