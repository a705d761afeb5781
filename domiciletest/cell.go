package domiciletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/mod/sumdb/tlog"

	"domicile"
)

// TestCellStore runs the conformance suite of domicile.CellStore. open
// must return a new, empty store; the suite closes it.
func TestCellStore(t *testing.T, open func(t *testing.T) domicile.CellStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s domicile.CellStore)
	}{
		{"Subjects", testSubjects},
		{"RecordVersions", testRecordVersions},
		{"RecordTombstone", testRecordTombstone},
		{"RecordsPagination", testRecordsPagination},
		{"Blobs", testBlobs},
		{"Objects", testObjects},
		{"ObjectsPagination", testObjectsPagination},
		{"EraseSubject", testEraseSubject},
		{"EventIndexes", testEventIndexes},
		{"ConcurrentBatches", testConcurrentBatches},
		{"MerkleHashes", testMerkleHashes},
		{"EventPaging", testEventPaging},
		{"Checkpoints", testCheckpoints},
		{"Meta", testMeta},
		{"Requests", testRequests},
		{"EraseKeepsReceipt", testEraseKeepsReceipt},
		{"Imports", testImports},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			mustClose(t, s)
			tc.run(t, s)
		})
	}
}

// TestCellStoreClose checks that closing a cell store while batches are
// being committed from many goroutines ends well: Close returns, and so
// does every Commit (with nil for a batch that became durable, or an
// error). It is apart from [TestCellStore] so that a backend can run it on
// its own while a known defect is being fixed.
func TestCellStoreClose(t *testing.T, open func(t *testing.T) domicile.CellStore) {
	for round := range 5 {
		t.Run(fmt.Sprint("Round", round), func(t *testing.T) {
			t.Parallel()
			testCloseWithConcurrentCommits(t, open)
		})
	}
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

func putSubject(ref domicile.SubjectRef) *domicile.PutSubject {
	return &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN", Created: t0, KeyGen: 1}}
}

func record(ref domicile.SubjectRef, kind, id string, version int64) domicile.StoredRecord {
	return domicile.StoredRecord{
		Ref: ref, Kind: kind, ID: id, Version: version,
		Body:    fmt.Appendf(nil, "sealed %s/%s v%d \x00\xff", kind, id, version),
		Fields:  []string{"name", "email"},
		Updated: t0.Add(time.Duration(version) * time.Second),
	}
}

func logSize(t *testing.T, s domicile.CellStore) int64 {
	t.Helper()
	n, err := s.LogSize(context.Background())
	if err != nil {
		t.Fatalf("LogSize: %v", err)
	}
	return n
}

func testSubjects(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	want := domicile.StoredSubject{Ref: Ref("alice"), Jurisdiction: "CN", Created: t0, KeyGen: 7}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: want}}, Events: []*domicile.LogEntry{NewEntry(want.Ref)}})
	got, err := s.Subject(ctx, want.Ref)
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	if d := cmp.Diff(want, *got); d != "" {
		t.Errorf("Subject mismatch (-want +got):\n%s", d)
	}

	dup := want
	dup.Jurisdiction, dup.KeyGen = "DE", 9
	err = s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: dup}}, Events: []*domicile.LogEntry{NewEntry(want.Ref)}})
	if !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("Commit(duplicate subject) = %v, want ErrVersionMismatch", err)
	}
	got, err = s.Subject(ctx, want.Ref)
	if err != nil || got.Jurisdiction != "CN" || got.KeyGen != 7 {
		t.Errorf("after a failed duplicate, Subject = %+v, %v; want it unchanged", got, err)
	}
	if n := logSize(t, s); n != 1 {
		t.Errorf("LogSize after a failed batch = %d, want 1", n)
	}
	if _, err := s.Subject(ctx, Ref("nobody")); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Subject(missing) error = %v, want ErrNotFound", err)
	}
}

func testRecordVersions(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("alice")
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(ref)}})
	steps := []struct {
		name            string
		expect, version int64
		want            error
	}{
		{"create with NoVersion", domicile.NoVersion, 1, nil},
		{"create again with NoVersion fails", domicile.NoVersion, 1, domicile.ErrVersionMismatch},
		{"NoVersion with version 2 fails", domicile.NoVersion, 2, domicile.ErrVersionMismatch},
		{"update expecting the current version", 1, 2, nil},
		{"update expecting a stale version fails", 1, 2, domicile.ErrVersionMismatch},
		{"update skipping a version fails", 2, 4, domicile.ErrVersionMismatch},
		{"update repeating the version fails", 2, 2, domicile.ErrVersionMismatch},
		{"update with AnyVersion", domicile.AnyVersion, 3, nil},
		{"AnyVersion with a wrong next version fails", domicile.AnyVersion, 3, domicile.ErrVersionMismatch},
		{"expecting a future version fails", 9, 10, domicile.ErrVersionMismatch},
		{"update expecting the current version again", 3, 4, nil},
	}
	var cur *domicile.StoredRecord
	size := logSize(t, s)
	for _, st := range steps {
		r := record(ref, "message", "m1", st.version)
		r.Body = append(r.Body, st.name...)
		e := NewEntry(ref)
		err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: r, Expect: st.expect}}, Events: []*domicile.LogEntry{e}})
		if !errors.Is(err, st.want) || (err != nil && st.want == nil) {
			t.Fatalf("%s: Commit(PutRecord{Version: %d, Expect: %d}) = %v, want %v", st.name, st.version, st.expect, err, st.want)
		}
		if err == nil {
			cur = &r
			if e.Index != size {
				t.Errorf("%s: event index = %d, want %d", st.name, e.Index, size)
			}
			size++
		}
		got, err := s.Record(ctx, ref, "message", "m1")
		if cur == nil {
			if !errors.Is(err, domicile.ErrNotFound) {
				t.Fatalf("%s: Record = %v, %v; want ErrNotFound", st.name, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Record: %v", st.name, err)
		}
		if d := cmp.Diff(*cur, *got, cmpOpts...); d != "" {
			t.Errorf("%s: Record mismatch (-want +got):\n%s", st.name, d)
		}
		if n := logSize(t, s); n != size {
			t.Errorf("%s: LogSize = %d, want %d", st.name, n, size)
		}
	}

	// A batch is all or nothing: a good write before a failing one in the
	// same batch is rolled back with it.
	good := record(ref, "message", "m2", 1)
	bad := record(ref, "message", "m1", 5)
	err := s.Commit(ctx, &domicile.Batch{
		Ops:    []domicile.Op{&domicile.PutRecord{Record: good, Expect: domicile.NoVersion}, &domicile.PutRecord{Record: bad, Expect: 3}},
		Events: []*domicile.LogEntry{NewEntry(ref), NewEntry(ref)},
	})
	if !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Fatalf("Commit(good op + failing op) = %v, want ErrVersionMismatch", err)
	}
	if got, err := s.Record(ctx, ref, "message", "m2"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("the good op of a failed batch was applied: Record = %+v, %v", got, err)
	}
	if n := logSize(t, s); n != size {
		t.Errorf("LogSize after a failed batch = %d, want %d", n, size)
	}

	// Several versions of one record in one batch chain.
	v5, v6 := record(ref, "message", "m1", 5), record(ref, "message", "m1", 6)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: v5, Expect: 4}, &domicile.PutRecord{Record: v6, Expect: 5}}})
	if got, err := s.Record(ctx, ref, "message", "m1"); err != nil || got.Version != 6 || !bytes.Equal(got.Body, v6.Body) {
		t.Errorf("after a batch writing versions 5 and 6, Record = %+v, %v; want version 6", got, err)
	}
}

func testRecordTombstone(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("bob")
	v1, v2 := record(ref, "profile", "p", 1), record(ref, "profile", "p", 2)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(ref), &domicile.PutRecord{Record: v1}}})
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: v2, Expect: 1}}})

	del := func(kind, id string, expect int64) error {
		return s.Commit(ctx, &domicile.Batch{
			Ops:    []domicile.Op{&domicile.DeleteRecord{Ref: ref, Kind: kind, ID: id, Expect: expect, Updated: t0.Add(time.Hour)}},
			Events: []*domicile.LogEntry{NewEntry(ref)},
		})
	}
	if err := del("profile", "p", 1); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("DeleteRecord expecting a stale version = %v, want ErrVersionMismatch", err)
	}
	if got, err := s.Record(ctx, ref, "profile", "p"); err != nil || got.Version != 2 || got.Body == nil {
		t.Fatalf("after a failed delete, Record = %+v, %v; want version 2 with a body", got, err)
	}
	if err := del("profile", "p", 2); err != nil {
		t.Fatalf("DeleteRecord expecting the current version: %v", err)
	}
	got, err := s.Record(ctx, ref, "profile", "p")
	if err != nil {
		t.Fatalf("Record of a deleted record: %v (want its tombstone)", err)
	}
	if got.Version != 3 || got.Body != nil || !got.Updated.Equal(t0.Add(time.Hour)) {
		t.Errorf("tombstone = {Version: %d, Body: %q, Updated: %v}, want {3, nil, %v}", got.Version, got.Body, got.Updated, t0.Add(time.Hour))
	}
	if err := del("profile", "p", domicile.AnyVersion); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("DeleteRecord of a tombstone = %v, want ErrNotFound", err)
	}
	if err := del("profile", "nothing", domicile.AnyVersion); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("DeleteRecord of a missing record = %v, want ErrNotFound", err)
	}
	if n := logSize(t, s); n != 1 {
		t.Errorf("LogSize = %d, want 1 (only the successful delete's event)", n)
	}
	if recs, err := s.Records(ctx, ref, "", "", "", 10); err != nil || len(recs) != 0 {
		t.Errorf("Records with only a tombstone = %d records, %v; want none", len(recs), err)
	}

	// Versions never go back: the tombstone's version is the one to expect.
	again := record(ref, "profile", "p", 1)
	if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: again, Expect: domicile.NoVersion}}}); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("PutRecord version 1 over a tombstone at 3 = %v, want ErrVersionMismatch", err)
	}
	v4 := record(ref, "profile", "p", 4)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: v4, Expect: 3}}})
	got, err = s.Record(ctx, ref, "profile", "p")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(v4, *got, cmpOpts...); d != "" {
		t.Errorf("record rewritten over its tombstone (-want +got):\n%s", d)
	}
}

func testRecordsPagination(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	a, b := Ref("alice"), Ref("bob")
	// Ids chosen so that byte order differs from most collations.
	ids := map[string][]string{
		"email":   {"Z", "a", "a b", "a-1", "a_1", "b", "\u00e4", "\u4e2d"},
		"message": {"m1", "m10", "m2"},
		"profile": {"p"},
		"Upper":   {"x"},
	}
	ops := []domicile.Op{putSubject(a), putSubject(b)}
	var want []domicile.StoredRecord
	for kind, list := range ids {
		for _, id := range list {
			r := record(a, kind, id, 1)
			ops = append(ops, &domicile.PutRecord{Record: r})
			if id != "b" {
				want = append(want, r)
			}
		}
	}
	ops = append(ops, &domicile.PutRecord{Record: record(b, "email", "a", 1)})
	MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})
	// A tombstone is not listed.
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteRecord{Ref: a, Kind: "email", ID: "b", Expect: 1, Updated: t0}}})
	sort.Slice(want, func(i, j int) bool {
		if want[i].Kind != want[j].Kind {
			return want[i].Kind < want[j].Kind
		}
		return want[i].ID < want[j].ID
	})

	list := func(kind string, limit int) []domicile.StoredRecord {
		t.Helper()
		var out []domicile.StoredRecord
		ak, aid := "", ""
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("Records(kind %q, limit %d) does not end", kind, limit)
			}
			page, err := s.Records(ctx, a, kind, ak, aid, limit)
			if err != nil {
				t.Fatalf("Records(kind %q, after (%q, %q), limit %d): %v", kind, ak, aid, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("Records(limit %d) returned %d", limit, len(page))
			}
			out = append(out, page...)
			if len(page) < limit {
				return out
			}
			ak, aid = page[len(page)-1].Kind, page[len(page)-1].ID
		}
	}
	for _, limit := range []int{1, 2, 3, 100} {
		if d := cmp.Diff(want, list("", limit), cmpOpts...); d != "" {
			t.Errorf("Records of every kind in pages of %d (-want +got):\n%s", limit, d)
		}
		var emails []domicile.StoredRecord
		for _, r := range want {
			if r.Kind == "email" {
				emails = append(emails, r)
			}
		}
		if d := cmp.Diff(emails, list("email", limit), cmpOpts...); d != "" {
			t.Errorf("Records of kind email in pages of %d (-want +got):\n%s", limit, d)
		}
	}
	// A cursor between kinds continues with the next kind.
	page, err := s.Records(ctx, a, "", "email", "\uffff", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Kind != "message" || page[0].ID != "m1" || page[1].ID != "m10" {
		t.Errorf("Records after (email, U+FFFF) = %v, want message/m1, message/m10", keysOf(page))
	}
	if page, err := s.Records(ctx, Ref("nobody"), "", "", "", 10); err != nil || len(page) != 0 {
		t.Errorf("Records of an unknown subject = %v, %v; want none", keysOf(page), err)
	}
	if page, err := s.Records(ctx, b, "", "", "", 10); err != nil || len(page) != 1 || page[0].Ref != b {
		t.Errorf("Records of bob = %v, %v; want only bob's email/a", keysOf(page), err)
	}
}

func keysOf(rs []domicile.StoredRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Kind+"/"+r.ID)
	}
	return out
}

func writeBlob(t *testing.T, bs domicile.BlobStore, content []byte) string {
	t.Helper()
	w, err := bs.Create(context.Background())
	if err != nil {
		t.Fatalf("Blobs().Create: %v", err)
	}
	for p := content; len(p) > 0; {
		n := min(len(p), 1000)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("BlobWriter.Write: %v", err)
		}
		p = p[n:]
	}
	key, err := w.Commit()
	if err != nil {
		t.Fatalf("BlobWriter.Commit: %v", err)
	}
	if key == "" {
		t.Fatal("BlobWriter.Commit returned an empty key")
	}
	return key
}

func content(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func testBlobs(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	bs := s.Blobs()
	data := content(100_000, 1)
	key := writeBlob(t, bs, data)
	if other := writeBlob(t, bs, nil); other == key {
		t.Errorf("two blobs have the same key %q", key)
	}
	r, err := bs.Open(ctx, key)
	if err != nil {
		t.Fatalf("Blobs().Open: %v", err)
	}
	if r.Size() != int64(len(data)) {
		t.Errorf("Size() = %d, want %d", r.Size(), len(data))
	}
	for _, c := range []struct{ off, n int }{{0, 10}, {99_990, 10}, {4096, 8192}, {50_000, 1}} {
		buf := make([]byte, c.n)
		if n, err := r.ReadAt(buf, int64(c.off)); n != c.n || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v", c.n, c.off, n, err)
		} else if !bytes.Equal(buf, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d bytes at %d) returned other bytes", c.n, c.off)
		}
	}
	buf := make([]byte, 20)
	if n, err := r.ReadAt(buf, 99_990); n != 10 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 10, io.EOF", n, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("BlobReader.Close: %v", err)
	}

	w, err := bs.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:100]); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("BlobWriter.Abort: %v", err)
	}

	if err := bs.Remove(ctx, key); err != nil {
		t.Fatalf("Blobs().Remove: %v", err)
	}
	if _, err := bs.Open(ctx, key); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Open of a removed blob = %v, want ErrNotFound", err)
	}
	if err := bs.Remove(ctx, key); err != nil {
		t.Errorf("Remove of a removed blob = %v, want nil", err)
	}
}

func object(t *testing.T, s domicile.CellStore, ref domicile.SubjectRef, name string, version int64) domicile.StoredObject {
	data := content(3000+int(version), byte(version))
	return domicile.StoredObject{
		Ref: ref, Name: name, Version: version, ContentType: "image/jpeg", Size: int64(len(data)),
		SHA256: fmt.Sprintf("%064x", version), Blob: writeBlob(t, s.Blobs(), data), KeyGen: 2,
		Updated: t0.Add(time.Duration(version) * time.Minute),
	}
}

func testObjects(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("carol")
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(ref)}})
	steps := []struct {
		name            string
		expect, version int64
		want            error
	}{
		{"create with NoVersion", domicile.NoVersion, 1, nil},
		{"create again fails", domicile.NoVersion, 1, domicile.ErrVersionMismatch},
		{"update expecting the current version", 1, 2, nil},
		{"update expecting a stale version fails", 1, 2, domicile.ErrVersionMismatch},
		{"update skipping a version fails", 2, 4, domicile.ErrVersionMismatch},
		{"update with AnyVersion", domicile.AnyVersion, 3, nil},
		{"AnyVersion with a wrong next version fails", domicile.AnyVersion, 5, domicile.ErrVersionMismatch},
	}
	var cur *domicile.StoredObject
	for _, st := range steps {
		o := object(t, s, ref, "photo.jpg", st.version)
		err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: o, Expect: st.expect}}, Events: []*domicile.LogEntry{NewEntry(ref)}})
		if !errors.Is(err, st.want) || (err != nil && st.want == nil) {
			t.Fatalf("%s: Commit(PutObject{Version: %d, Expect: %d}) = %v, want %v", st.name, st.version, st.expect, err, st.want)
		}
		if err == nil {
			cur = &o
		}
		got, err := s.Object(ctx, ref, "photo.jpg")
		if err != nil {
			t.Fatalf("%s: Object: %v", st.name, err)
		}
		if d := cmp.Diff(*cur, *got); d != "" {
			t.Errorf("%s: Object mismatch (-want +got):\n%s", st.name, d)
		}
	}
	if n := logSize(t, s); n != 3 {
		t.Errorf("LogSize = %d, want 3", n)
	}

	delObj := func(name string, expect int64) error {
		return s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteObject{Ref: ref, Name: name, Expect: expect}}})
	}
	if err := delObj("photo.jpg", 2); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("DeleteObject expecting a stale version = %v, want ErrVersionMismatch", err)
	}
	if err := delObj("photo.jpg", 3); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	got, err := s.Object(ctx, ref, "photo.jpg")
	if err != nil {
		t.Fatalf("Object of a deleted object: %v (want its tombstone)", err)
	}
	if got.Version != 4 || got.Blob != "" {
		t.Errorf("tombstone = {Version: %d, Blob: %q}, want {4, \"\"}", got.Version, got.Blob)
	}
	if err := delObj("photo.jpg", domicile.AnyVersion); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("DeleteObject of a tombstone = %v, want ErrNotFound", err)
	}
	if err := delObj("none.jpg", domicile.AnyVersion); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("DeleteObject of a missing object = %v, want ErrNotFound", err)
	}
	if _, err := s.Object(ctx, ref, "none.jpg"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Object(missing) = %v, want ErrNotFound", err)
	}
	if objs, err := s.Objects(ctx, ref, "", 10); err != nil || len(objs) != 0 {
		t.Errorf("Objects with only a tombstone = %d, %v; want none", len(objs), err)
	}
	if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: object(t, s, ref, "photo.jpg", 1)}}}); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("PutObject version 1 over a tombstone at 4 = %v, want ErrVersionMismatch", err)
	}
	v5 := object(t, s, ref, "photo.jpg", 5)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: v5, Expect: 4}}})
	got, err = s.Object(ctx, ref, "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(v5, *got); d != "" {
		t.Errorf("object rewritten over its tombstone (-want +got):\n%s", d)
	}
	r, err := s.Blobs().Open(ctx, got.Blob)
	if err != nil {
		t.Fatalf("Open the object's blob: %v", err)
	}
	defer r.Close()
	if r.Size() != v5.Size {
		t.Errorf("blob size = %d, want %d", r.Size(), v5.Size)
	}
}

func testObjectsPagination(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	a, b := Ref("alice"), Ref("bob")
	names := []string{"B.png", "a.png", "a b.png", "a-1.png", "a_1.png", "deleted.png", "\u00e4.png", "\u4e2d.png"}
	ops := []domicile.Op{putSubject(a), putSubject(b), &domicile.PutObject{Object: object(t, s, b, "a.png", 1)}}
	var want []domicile.StoredObject
	for _, n := range names {
		o := object(t, s, a, n, 1)
		ops = append(ops, &domicile.PutObject{Object: o})
		if n != "deleted.png" {
			want = append(want, o)
		}
	}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteObject{Ref: a, Name: "deleted.png", Expect: 1}}})
	sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
	for _, limit := range []int{1, 3, 100} {
		var got []domicile.StoredObject
		after := ""
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("Objects(limit %d) does not end", limit)
			}
			page, err := s.Objects(ctx, a, after, limit)
			if err != nil {
				t.Fatalf("Objects(after %q, limit %d): %v", after, limit, err)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].Name
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Objects in pages of %d (-want +got):\n%s", limit, d)
		}
	}
}

func testEraseSubject(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	a, b := Ref("alice"), Ref("bob")
	ops := []domicile.Op{putSubject(a), putSubject(b)}
	for _, ref := range []domicile.SubjectRef{a, b} {
		ops = append(ops,
			&domicile.PutRecord{Record: record(ref, "message", "m1", 1)},
			&domicile.PutRecord{Record: record(ref, "profile", "p", 1)},
			&domicile.PutObject{Object: object(t, s, ref, "photo.jpg", 1)})
	}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: ops, Events: []*domicile.LogEntry{NewEntry(a), NewEntry(b), NewEntry(domicile.SubjectRef{})}})
	MustCommit(t, ctx, s, &domicile.Batch{
		Ops:    []domicile.Op{&domicile.DeleteRecord{Ref: a, Kind: "profile", ID: "p", Expect: 1, Updated: t0}},
		Events: []*domicile.LogEntry{NewEntry(a), NewEntry(b), NewEntry(a)},
	})
	before := CheckLog(t, ctx, s)
	n := int64(len(before))
	rootBefore, err := tlog.TreeHash(n, HashReader(ctx, s))
	if err != nil {
		t.Fatal(err)
	}
	bEventsBefore, err := s.SubjectEvents(ctx, b, -1, 100)
	if err != nil {
		t.Fatal(err)
	}

	erase := NewEntry(domicile.SubjectRef{})
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: a}}, Events: []*domicile.LogEntry{erase}})
	if erase.Index != n {
		t.Errorf("erase event index = %d, want %d", erase.Index, n)
	}

	if _, err := s.Subject(ctx, a); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Subject(erased) = %v, want ErrNotFound", err)
	}
	for _, id := range [][2]string{{"message", "m1"}, {"profile", "p"}} {
		if r, err := s.Record(ctx, a, id[0], id[1]); !errors.Is(err, domicile.ErrNotFound) {
			t.Errorf("Record(erased, %s/%s) = %+v, %v; want ErrNotFound", id[0], id[1], r, err)
		}
	}
	if _, err := s.Object(ctx, a, "photo.jpg"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Object(erased) = %v, want ErrNotFound", err)
	}
	if recs, err := s.Records(ctx, a, "", "", "", 10); err != nil || len(recs) != 0 {
		t.Errorf("Records(erased) = %v, %v; want none", keysOf(recs), err)
	}
	if objs, err := s.Objects(ctx, a, "", 10); err != nil || len(objs) != 0 {
		t.Errorf("Objects(erased) = %d, %v; want none", len(objs), err)
	}
	// Erasure unlinks: the subject's events lose their salt, their text
	// and their reference, so nothing stored links their leaves to anyone.
	if evs, err := s.SubjectEvents(ctx, a, -1, 100); err != nil || len(evs) != 0 {
		t.Fatalf("SubjectEvents(erased) = %d events, %v; want none (the reference is cleared)", len(evs), err)
	}
	all, err := s.Events(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	unlinked := 0
	for _, e := range all {
		if !bytes.Equal(e.Leaf, before[e.Index]) {
			t.Errorf("event %d lost its leaf", e.Index)
		}
		if e.Ref == a {
			t.Errorf("event %d keeps the erased subject's reference", e.Index)
		}
		if e.Ref.IsZero() && e.Salt == nil && e.Committed == nil {
			unlinked++
		}
	}
	if unlinked != 3 {
		t.Errorf("%d events unlinked by erasure, want the subject's 3", unlinked)
	}
	after := CheckLog(t, ctx, s)
	if d := cmp.Diff(append(slices.Clone(before), erase.Leaf), after); d != "" {
		t.Errorf("leaves changed by erasure (-want +got):\n%s", d)
	}
	if root, err := tlog.TreeHash(n, HashReader(ctx, s)); err != nil || root != rootBefore {
		t.Errorf("tree hash at %d after erasure = %x, %v; want %x", n, root, err, rootBefore)
	}

	// The other subject is untouched.
	if _, err := s.Subject(ctx, b); err != nil {
		t.Errorf("Subject(bob): %v", err)
	}
	if recs, err := s.Records(ctx, b, "", "", "", 10); err != nil || len(recs) != 2 {
		t.Errorf("Records(bob) = %v, %v; want 2", keysOf(recs), err)
	}
	if objs, err := s.Objects(ctx, b, "", 10); err != nil || len(objs) != 1 {
		t.Errorf("Objects(bob) = %d, %v; want 1", len(objs), err)
	}
	bEvents, err := s.SubjectEvents(ctx, b, -1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(bEventsBefore, bEvents); d != "" {
		t.Errorf("bob's events changed by alice's erasure (-want +got):\n%s", d)
	}
	// An erased subject may come back as a new subject.
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(a), &domicile.PutRecord{Record: record(a, "message", "m1", 1)}}})
}

func testEventIndexes(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("dave")
	commit := func(ops []domicile.Op, n int) ([]*domicile.LogEntry, error) {
		es := make([]*domicile.LogEntry, n)
		for i := range es {
			es[i] = NewEntry(ref)
		}
		return es, s.Commit(ctx, &domicile.Batch{Ops: ops, Events: es})
	}
	want := int64(0)
	steps := []struct {
		name   string
		ops    []domicile.Op
		events int
		fail   bool
	}{
		{"three events", nil, 3, false},
		{"a failing batch takes no index", []domicile.Op{&domicile.PutRecord{Record: record(ref, "k", "x", 2), Expect: 1}}, 2, true},
		{"two events", []domicile.Op{putSubject(ref)}, 2, false},
		{"no events", []domicile.Op{&domicile.PutRecord{Record: record(ref, "k", "x", 1)}}, 0, false},
		{"another failing batch", []domicile.Op{putSubject(ref)}, 5, true},
		{"one event", nil, 1, false},
		{"many events", nil, 40, false},
	}
	for _, st := range steps {
		es, err := commit(st.ops, st.events)
		if st.fail {
			if err == nil {
				t.Fatalf("%s: Commit succeeded, want an error", st.name)
			}
		} else if err != nil {
			t.Fatalf("%s: Commit: %v", st.name, err)
		} else {
			for i, e := range es {
				if e.Index != want+int64(i) {
					t.Errorf("%s: event %d has index %d, want %d", st.name, i, e.Index, want+int64(i))
				}
			}
			want += int64(len(es))
		}
		if n := logSize(t, s); n != want {
			t.Errorf("%s: LogSize = %d, want %d", st.name, n, want)
		}
	}
	CheckLog(t, ctx, s)
	if _, err := s.Leaves(ctx, 0, want+1); err == nil {
		t.Errorf("Leaves(0, %d) past a log of %d succeeded, want an error", want+1, want)
	}
}

// testConcurrentBatches commits from many goroutines at once, some batches
// failing, while readers check that the log they see is whole.
func testConcurrentBatches(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	const writers, perWriter = 24, 12
	type result struct {
		g, k   int
		events []*domicile.LogEntry
		fail   bool
		err    error
	}
	refs := make([]domicile.SubjectRef, writers)
	ops := make([]domicile.Op, writers)
	for g := range refs {
		refs[g] = Ref(fmt.Sprint("writer ", g))
		ops[g] = putSubject(refs[g])
	}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})

	results := make(chan result, writers*perWriter)
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				n, err := s.LogSize(ctx)
				if err != nil {
					t.Errorf("LogSize during commits: %v", err)
					return
				}
				if n == 0 {
					continue
				}
				if _, err := tlog.TreeHash(n, HashReader(ctx, s)); err != nil {
					t.Errorf("TreeHash(%d) during commits: %v", n, err)
					return
				}
				if _, err := s.Leaves(ctx, 0, n); err != nil {
					t.Errorf("Leaves(0, %d) during commits: %v", n, err)
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWriter {
				ref := refs[g]
				r := result{g: g, k: k, fail: (g+k)%5 == 0}
				b := &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: record(ref, "msg", fmt.Sprint(k), 1)}}}
				if r.fail {
					// A good write first, then one whose expectation fails.
					b.Ops = append(b.Ops, &domicile.PutRecord{Record: record(ref, "msg", "never", 3), Expect: 2})
				}
				for range 1 + (g+k)%3 {
					b.Events = append(b.Events, NewEntry(ref))
				}
				r.events = b.Events
				r.err = s.Commit(ctx, b)
				results <- r
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(results)

	seen := map[int64]bool{}
	var ok int64
	for r := range results {
		got, err := s.Record(ctx, refs[r.g], "msg", fmt.Sprint(r.k))
		if r.fail {
			if !errors.Is(r.err, domicile.ErrVersionMismatch) {
				t.Errorf("writer %d batch %d: Commit = %v, want ErrVersionMismatch", r.g, r.k, r.err)
			}
			if !errors.Is(err, domicile.ErrNotFound) {
				t.Errorf("writer %d batch %d failed but its first write is there: %+v, %v", r.g, r.k, got, err)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("writer %d batch %d: Commit = %v, want nil", r.g, r.k, r.err)
			continue
		}
		if err != nil {
			t.Errorf("writer %d batch %d committed but Record = %v", r.g, r.k, err)
		}
		for i, e := range r.events {
			if e.Index != r.events[0].Index+int64(i) {
				t.Errorf("writer %d batch %d: event indexes %d then %d are not consecutive", r.g, r.k, r.events[0].Index, e.Index)
			}
			if seen[e.Index] {
				t.Errorf("index %d assigned twice", e.Index)
			}
			seen[e.Index] = true
			ok++
			evs, err := s.Events(ctx, e.Index, e.Index+1)
			if err != nil || len(evs) != 1 || !bytes.Equal(evs[0].Leaf, e.Leaf) || evs[0].Ref != refs[r.g] {
				t.Errorf("event at index %d is not writer %d's: %v, %v", e.Index, r.g, evs, err)
			}
		}
	}
	if n := logSize(t, s); n != ok {
		t.Errorf("LogSize = %d, want %d (the events of successful batches)", n, ok)
	}
	for i := range ok {
		if !seen[i] {
			t.Errorf("index %d assigned to no event", i)
		}
	}
	CheckLog(t, ctx, s)
}

func testMerkleHashes(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	var leaves [][]byte
	// Batches of 1, 2, 3, ... leaves: every tree size up to 300 is a
	// commit boundary or inside one.
	for k := 1; len(leaves) < 300; k++ {
		b := &domicile.Batch{}
		for range k {
			e := NewEntry(Ref("erin"))
			b.Events = append(b.Events, e)
			leaves = append(leaves, e.Leaf)
		}
		MustCommit(t, ctx, s, b)
		n := int64(len(leaves))
		th, err := tlog.TreeHash(n, HashReader(ctx, s))
		if err != nil {
			t.Fatalf("TreeHash(%d): %v", n, err)
		}
		if want := ReferenceRoot(leaves); th != tlog.Hash(want) {
			t.Fatalf("TreeHash(%d) = %x, want %x", n, th, want)
		}
	}
	n := int64(len(leaves))
	if got := logSize(t, s); got != n {
		t.Fatalf("LogSize = %d, want %d", got, n)
	}
	got, err := s.Leaves(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(leaves, got); d != "" {
		t.Fatalf("Leaves mismatch (-want +got):\n%s", d)
	}
	if got, err := s.Leaves(ctx, 100, 103); err != nil || len(got) != 3 || !bytes.Equal(got[0], leaves[100]) {
		t.Errorf("Leaves(100, 103) = %d leaves, %v", len(got), err)
	}
	// Every smaller tree is computable from the stored hashes, with
	// inclusion proofs that verify against the independent root.
	hr := HashReader(ctx, s)
	for size := int64(1); size <= n; size += 1 + size/8 {
		root := tlog.Hash(ReferenceRoot(leaves[:size]))
		th, err := tlog.TreeHash(size, hr)
		if err != nil || th != root {
			t.Fatalf("TreeHash(%d) = %x, %v; want %x", size, th, err, root)
		}
		for _, i := range []int64{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(size, i, hr)
			if err != nil {
				t.Fatalf("ProveRecord(%d, %d): %v", size, i, err)
			}
			if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(leaves[i])); err != nil {
				t.Errorf("inclusion proof of %d in %d does not verify: %v", i, size, err)
			}
		}
		if size > 1 {
			old := size / 2
			p, err := tlog.ProveTree(size, old, hr)
			if err != nil {
				t.Fatalf("ProveTree(%d, %d): %v", size, old, err)
			}
			if err := tlog.CheckTree(p, size, root, old, tlog.Hash(ReferenceRoot(leaves[:old]))); err != nil {
				t.Errorf("consistency proof %d→%d does not verify: %v", old, size, err)
			}
		}
	}
	if _, err := s.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, n)}); err == nil {
		t.Errorf("ReadHashes of leaf %d's hash in a log of %d succeeded, want an error", n, n)
	}
	// Repeated and unordered indexes come back in the order asked.
	idx := []int64{tlog.StoredHashIndex(0, 5), tlog.StoredHashIndex(0, 1), tlog.StoredHashIndex(0, 5)}
	hs, err := s.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if tlog.Hash(hs[0]) != tlog.RecordHash(leaves[5]) || tlog.Hash(hs[1]) != tlog.RecordHash(leaves[1]) || hs[2] != hs[0] {
		t.Errorf("ReadHashes(%v) returned hashes out of order", idx)
	}
	if hs, err := s.ReadHashes(ctx, nil); err != nil || len(hs) != 0 {
		t.Errorf("ReadHashes(nil) = %d hashes, %v", len(hs), err)
	}
	CheckLog(t, ctx, s)
}

func testEventPaging(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	a, b, none := Ref("alice"), Ref("bob"), domicile.SubjectRef{}
	var all []*domicile.LogEntry
	for i := range 12 {
		ref := []domicile.SubjectRef{a, b, none}[i%3]
		e := NewEntry(ref)
		all = append(all, e)
		MustCommit(t, ctx, s, &domicile.Batch{Events: []*domicile.LogEntry{e}})
	}
	stored := func(es []*domicile.LogEntry) []domicile.StoredEvent {
		var out []domicile.StoredEvent
		for _, e := range es {
			out = append(out, domicile.StoredEvent{Index: e.Index, Ref: e.Ref, Time: e.Time, Leaf: e.Leaf, Committed: e.Committed, Salt: e.Salt})
		}
		return out
	}
	var aliceWant []*domicile.LogEntry
	for _, e := range all {
		if e.Ref == a {
			aliceWant = append(aliceWant, e)
		}
	}
	for _, limit := range []int{1, 3, 100} {
		var got []domicile.StoredEvent
		after := int64(-1)
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("SubjectEvents(limit %d) does not end", limit)
			}
			page, err := s.SubjectEvents(ctx, a, after, limit)
			if err != nil {
				t.Fatalf("SubjectEvents(after %d): %v", after, err)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].Index
		}
		if d := cmp.Diff(stored(aliceWant), got); d != "" {
			t.Errorf("SubjectEvents in pages of %d (-want +got):\n%s", limit, d)
		}
	}
	got, err := s.Events(ctx, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(stored(all[2:7]), got); d != "" {
		t.Errorf("Events(2, 7) (-want +got):\n%s", d)
	}
	if got, err := s.Events(ctx, 5, 5); err != nil || len(got) != 0 {
		t.Errorf("Events(5, 5) = %d events, %v; want none", len(got), err)
	}
	if got, err := s.SubjectEvents(ctx, Ref("nobody"), -1, 10); err != nil || len(got) != 0 {
		t.Errorf("SubjectEvents(unknown) = %d events, %v; want none", len(got), err)
	}
}

func testCheckpoints(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	size, note, err := s.LatestCheckpoint(ctx)
	if err != nil || size != -1 || note != nil {
		t.Errorf("LatestCheckpoint of a new store = %d, %q, %v; want -1, nil, nil", size, note, err)
	}
	notes := map[int64][]byte{}
	for _, n := range []int64{3, 10, 7, 0} {
		notes[n] = fmt.Appendf(nil, "example.com/cell\n%d\nROOT\n\n— sig \x00\xff\n", n)
		if err := s.PutCheckpoint(ctx, n, notes[n]); err != nil {
			t.Fatalf("PutCheckpoint(%d): %v", n, err)
		}
		if err := s.PutCheckpoint(ctx, n, notes[n]); err != nil {
			t.Errorf("PutCheckpoint(%d) again = %v, want nil", n, err)
		}
	}
	size, note, err = s.LatestCheckpoint(ctx)
	if err != nil || size != 10 || !bytes.Equal(note, notes[10]) {
		t.Errorf("LatestCheckpoint = %d, %q, %v; want 10, %q", size, note, err, notes[10])
	}
}

func testMeta(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	if v, err := s.Meta(ctx, "log-key"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Meta(missing) = %q, %v; want ErrNotFound", v, err)
	}
	for _, v := range [][]byte{[]byte("first"), {0, 1, 0xff, 0}, []byte("third")} {
		if err := s.PutMeta(ctx, "log-key", v); err != nil {
			t.Fatalf("PutMeta: %v", err)
		}
		if got, err := s.Meta(ctx, "log-key"); err != nil || !bytes.Equal(got, v) {
			t.Errorf("Meta after PutMeta(%q) = %q, %v", v, got, err)
		}
	}
	if err := s.PutMeta(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Meta(ctx, "log-key"); err != nil || string(got) != "third" {
		t.Errorf("Meta(log-key) after another key's PutMeta = %q, %v", got, err)
	}
}

// testCanceledContext checks that a batch given a canceled context is
// either committed and reported so, or not applied at all.
func testCanceledContext(t *testing.T, s domicile.CellStore) {
	ref := Ref("frank")
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e := NewEntry(ref)
		id := fmt.Sprint(i)
		err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: record(ref, "k", id, 1)}}, Events: []*domicile.LogEntry{e}})
		_, rerr := s.Record(context.Background(), ref, "k", id)
		switch {
		case err == nil && rerr != nil:
			t.Fatalf("Commit reported success but Record = %v", rerr)
		case err != nil && !errors.Is(rerr, domicile.ErrNotFound):
			t.Fatalf("Commit = %v but the record is there (%v)", err, rerr)
		case err != nil && !errors.Is(err, context.Canceled):
			t.Fatalf("Commit with a canceled context = %v, want nil or context.Canceled", err)
		}
	}
	CheckLog(t, context.Background(), s)
}

// testCloseWithConcurrentCommits closes a store while batches are being
// committed: every Commit returns, and Close does not hang.
func testCloseWithConcurrentCommits(t *testing.T, open func(t *testing.T) domicile.CellStore) {
	s := open(t)
	c := mustClose(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				ref := Ref(fmt.Sprint("closer ", g))
				err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: record(ref, "k", fmt.Sprint(k), 1)}}, Events: []*domicile.LogEntry{NewEntry(ref)}})
				if k == 0 {
					started <- struct{}{}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	timeout := time.After(10 * time.Second)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-timeout:
		t.Fatal("Close did not return within 10s while batches were being committed")
	}
	select {
	case <-waited:
	case <-timeout:
		t.Fatal("Commit did not return within 10s of Close")
	}
}
