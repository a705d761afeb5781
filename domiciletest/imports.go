package domiciletest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// testImports checks the migration's operations: a record and an object
// are written at the version they had in their source cell, refused
// (the whole batch with them) when they exist, and a later write goes on
// from the imported version.
func testImports(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("moved in")
	rec := record(ref, "message", "m1", 7)
	obj := object(t, s, ref, "photo.jpg", 4)
	size := logSize(t, s)
	in := NewEntry(ref)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(ref), &domicile.ImportRecord{Record: rec}, &domicile.ImportObject{Object: obj}},
		Events: []*domicile.LogEntry{in}})
	if in.Index != size {
		t.Errorf("the import's event index = %d, want %d", in.Index, size)
	}
	got, err := s.Record(ctx, ref, "message", "m1")
	if err != nil {
		t.Fatalf("Record after ImportRecord: %v", err)
	}
	if d := cmp.Diff(rec, *got, cmpOpts...); d != "" {
		t.Errorf("imported record (-want +got):\n%s", d)
	}
	gotObj, err := s.Object(ctx, ref, "photo.jpg")
	if err != nil {
		t.Fatalf("Object after ImportObject: %v", err)
	}
	if d := cmp.Diff(obj, *gotObj); d != "" {
		t.Errorf("imported object (-want +got):\n%s", d)
	}

	// An existing record or object refuses the import, and with it the
	// batch: the other import and the events are not applied.
	size = logSize(t, s)
	other := record(ref, "message", "m2", 3)
	for _, op := range []domicile.Op{&domicile.ImportRecord{Record: record(ref, "message", "m1", 9)}, &domicile.ImportObject{Object: object(t, s, ref, "photo.jpg", 9)}} {
		err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.ImportRecord{Record: other}, op}, Events: []*domicile.LogEntry{NewEntry(ref)}})
		if !errors.Is(err, domicile.ErrVersionMismatch) {
			t.Errorf("Commit(%T over an existing one) = %v, want ErrVersionMismatch", op, err)
		}
	}
	if _, err := s.Record(ctx, ref, "message", "m2"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("the good import of a refused batch was applied: %v", err)
	}
	if n := logSize(t, s); n != size {
		t.Errorf("LogSize after refused imports = %d, want %d", n, size)
	}
	for _, op := range []domicile.Op{&domicile.ImportRecord{Record: record(ref, "message", "m3", 0)}, &domicile.ImportObject{Object: object(t, s, ref, "zero.jpg", 0)}} {
		if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{op}}); !errors.Is(err, domicile.ErrVersionMismatch) {
			t.Errorf("Commit(%T at version 0) = %v, want ErrVersionMismatch", op, err)
		}
	}

	// Writes go on from the imported versions.
	next := record(ref, "message", "m1", 8)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: next, Expect: 7}}})
	nextObj := object(t, s, ref, "photo.jpg", 5)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: nextObj, Expect: 4}}})
	if got, err := s.Record(ctx, ref, "message", "m1"); err != nil || got.Version != 8 {
		t.Errorf("Record after an update of the imported one = %+v, %v; want version 8", got, err)
	}
	if got, err := s.Object(ctx, ref, "photo.jpg"); err != nil || got.Version != 5 {
		t.Errorf("Object after an update of the imported one = %+v, %v; want version 5", got, err)
	}
}
