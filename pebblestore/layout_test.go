package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/go-cmp/cmp"

	"domicile"
	"domicile/domiciletest"
)

// layout1 is what TestUpgradeLayout1 writes in the key layout of stores
// made before slots, and expects to find after the upgrade.
type layout1 struct {
	subjects []domicile.StoredSubject
	records  []domicile.StoredRecord
	objects  []domicile.StoredObject
	requests []domicile.StoredRequest
	events   []domicile.StoredEvent
}

// writeLayout1 writes l into a new Pebble database in dir as a store of
// layout 1 kept it: each subject's rows keyed by its reference, no layout
// version and no name key.
func writeLayout1(t *testing.T, dir string, l *layout1) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dir, "pebble"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	key := func(table byte, ref domicile.SubjectRef) []byte { return append([]byte{table}, ref[:]...) }
	b := db.NewBatch()
	for _, s := range l.subjects {
		var e enc
		e.str(string(s.Jurisdiction))
		e.time(s.Created)
		e.int(int64(s.KeyGen))
		b.Set(key('s', s.Ref), e.b, nil)
	}
	for i := range l.records {
		r := &l.records[i]
		b.Set(appendStr(appendStr(key('r', r.Ref), r.Kind), r.ID), encRecord(r), nil)
	}
	for i := range l.objects {
		o := &l.objects[i]
		b.Set(appendStr(key('o', o.Ref), o.Name), encObject(o), nil)
	}
	for i := range l.requests {
		r := &l.requests[i]
		b.Set(appendStr(key('q', r.Ref), r.ID), encRequest(r), nil)
	}
	for _, e := range l.events {
		b.Set(eventKey(e.Index), encEvent(e.Ref, e.Time, e.Leaf, e.Committed, e.Salt), nil)
		if !e.Ref.IsZero() {
			b.Set(binary.BigEndian.AppendUint64(key('x', e.Ref), uint64(e.Index)), nil, nil)
		}
	}
	b.Set(metaKey("log-key"), []byte("kept"), nil)
	b.Set(receiptKey("rcp_1"), encReceipt(&domicile.StoredReceipt{ID: "rcp_1", Time: time.Unix(5, 0).UTC(), LogIndex: 3, Body: []byte("{}")}), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// Part of it in tables, part in the log only.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(checkpointKey(int64(len(l.events))), []byte("note"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeLayout1 opens a store written in the key layout before
// slots, with an upgrade interrupted twice on the way, and finds every
// subject, record, object, request and subject event where it was; the
// old tables are empty afterwards, and erasing upgraded subjects leaves
// their references in no file, the manifest included.
func TestUpgradeLayout1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	alice, bob, carol := domiciletest.Ref("alice"), domiciletest.Ref("bob"), domiciletest.Ref("carol")
	l := &layout1{
		subjects: []domicile.StoredSubject{
			{Ref: alice, Jurisdiction: "CN", Created: at, KeyGen: 2},
			{Ref: bob, Jurisdiction: "EU", Created: at.Add(time.Hour)},
		},
	}
	for i := range 12 {
		l.records = append(l.records, domicile.StoredRecord{Ref: alice, Kind: []string{"message", "profile"}[i%2], ID: fmt.Sprintf("id\x00%02d", i), Version: int64(1 + i%3), Body: []byte(fmt.Sprint("sealed ", i)), Fields: []string{"body", "to"}, Updated: at})
	}
	l.records = append(l.records,
		domicile.StoredRecord{Ref: alice, Kind: "profile", ID: "deleted", Version: 4, Updated: at}, // a tombstone
		domicile.StoredRecord{Ref: bob, Kind: "profile", ID: "main", Version: 1, Body: []byte("bob's"), Fields: []string{"name"}, Updated: at},
	)
	l.objects = []domicile.StoredObject{
		{Ref: alice, Name: "photo.jpg", Version: 2, ContentType: "image/jpeg", Size: 5, SHA256: "ab", Blob: "blob1", KeyGen: 2, Updated: at},
		{Ref: alice, Name: "old.txt", Version: 3, ContentType: "text/plain", KeyGen: 1, Updated: at}, // deleted
		{Ref: bob, Name: "cv.pdf", Version: 1, ContentType: "application/pdf", Size: 9, SHA256: "cd", Blob: "blob2", Updated: at},
	}
	l.requests = []domicile.StoredRequest{
		{Ref: alice, ID: "rq_1", Kind: "access", State: "received", Received: at, Deadline: at.Add(720 * time.Hour), Version: 1, Body: []byte("{}"), Updated: at},
		{Ref: bob, ID: "rq_2", Kind: "erasure", State: "done", Received: at, Deadline: at.Add(240 * time.Hour), Version: 3, Body: []byte("{}"), Updated: at},
	}
	for i := range 9 {
		ref := []domicile.SubjectRef{alice, bob, carol, {}}[i%4] // carol: events only
		e := domiciletest.NewEntry(ref)
		l.events = append(l.events, domicile.StoredEvent{Index: int64(i), Ref: ref, Time: e.Time, Leaf: e.Leaf, Committed: e.Committed, Salt: e.Salt})
	}
	writeLayout1(t, dir, l)

	// Two interruptions, as a crash would make them, after two batches of
	// a few keys each.
	defer func(keys int) { upgradeBatchKeys, upgradeHook = keys, nil }(upgradeBatchKeys)
	upgradeBatchKeys = 3
	stop := errors.New("interrupted")
	for range 2 {
		upgradeHook = func(batches int) error {
			if batches == 2 {
				return stop
			}
			return nil
		}
		if s, err := Open(ctx, dir); !errors.Is(err, stop) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("Open with the upgrade interrupted = %v, want %v", err, stop)
		}
	}
	upgradeHook = nil
	s := mustOpen(t, dir)
	check := func(s *Store) {
		t.Helper()
		for _, want := range l.subjects {
			got, err := s.Subject(ctx, want.Ref)
			if err != nil || !cmp.Equal(*got, want) {
				t.Errorf("Subject(%x) = %+v, %v; want %+v", want.Ref[:4], got, err, want)
			}
		}
		for _, want := range l.records {
			got, err := s.Record(ctx, want.Ref, want.Kind, want.ID)
			if err != nil || !cmp.Equal(*got, want) {
				t.Errorf("Record(%s/%q) = %+v, %v; want %+v", want.Kind, want.ID, got, err, want)
			}
		}
		if got, err := s.Records(ctx, alice, "message", "", "", 100); err != nil || len(got) != 6 {
			t.Errorf("Records(alice, message) = %d, %v; want 6", len(got), err)
		}
		if got, err := s.Records(ctx, alice, "", "message", "id\x0004", 100); err != nil || len(got) != 9 || got[0].ID != "id\x0006" {
			t.Errorf("Records(alice) after message/id 04 = %d, %v; want 9 from id 06", len(got), err)
		}
		for _, want := range l.objects {
			got, err := s.Object(ctx, want.Ref, want.Name)
			if err != nil || !cmp.Equal(*got, want) {
				t.Errorf("Object(%q) = %+v, %v; want %+v", want.Name, got, err, want)
			}
		}
		if got, err := s.Objects(ctx, alice, "", 10); err != nil || len(got) != 1 || got[0].Name != "photo.jpg" {
			t.Errorf("Objects(alice) = %+v, %v; want photo.jpg", got, err)
		}
		for _, want := range l.requests {
			got, err := s.Request(ctx, want.Ref, want.ID)
			if err != nil || !cmp.Equal(*got, want) {
				t.Errorf("Request(%q) = %+v, %v; want %+v", want.ID, got, err, want)
			}
			if got, err := s.Requests(ctx, want.Ref, "", 10); err != nil || len(got) != 1 || got[0].ID != want.ID {
				t.Errorf("Requests of %q = %+v, %v", want.ID, got, err)
			}
		}
		if got, err := s.PendingRequests(ctx, []string{"done"}, 10); err != nil || len(got) != 1 || got[0].ID != "rq_1" {
			t.Errorf("PendingRequests = %+v, %v; want rq_1", got, err)
		}
		for _, ref := range []domicile.SubjectRef{alice, bob, carol} {
			var want []domicile.StoredEvent
			for _, e := range l.events {
				if e.Ref == ref {
					want = append(want, e)
				}
			}
			got, err := s.SubjectEvents(ctx, ref, -1, 100)
			if err != nil || !cmp.Equal(got, want) {
				t.Errorf("SubjectEvents(%x) = %+v, %v; want %+v", ref[:4], got, err, want)
			}
		}
		if got, err := s.Events(ctx, 0, 100); err != nil || !cmp.Equal(got, l.events) {
			t.Errorf("Events = %+v, %v; want %+v", got, err, l.events)
		}
		domiciletest.CheckLog(t, ctx, s)
		if c, err := s.Census(ctx); err != nil || c.Subjects != 2 || c.Records != 13 || c.Objects != 2 {
			t.Errorf("Census = %+v, %v; want 2 subjects, 13 records, 2 objects", c, err)
		}
		if h, err := s.SubjectHoldings(ctx, domicile.SubjectRef{}, 10); err != nil || len(h) != 2 {
			t.Errorf("SubjectHoldings = %+v, %v; want 2", h, err)
		}
		if v, err := s.Meta(ctx, "log-key"); err != nil || string(v) != "kept" {
			t.Errorf("Meta = %q, %v", v, err)
		}
		if n, note, err := s.LatestCheckpoint(ctx); err != nil || n != int64(len(l.events)) || string(note) != "note" {
			t.Errorf("LatestCheckpoint = %d, %q, %v", n, note, err)
		}
		if r, err := s.Receipt(ctx, "rcp_1"); err != nil || r.LogIndex != 3 {
			t.Errorf("Receipt = %+v, %v", r, err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing left in the old tables; reopening does not upgrade again.
	db, err := pebble.Open(filepath.Join(dir, "pebble"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range legacyTables {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tb.old}, UpperBound: []byte{tb.old + 1}})
		if err != nil {
			t.Fatal(err)
		}
		if it.First() {
			t.Errorf("table %q of layout 1 still holds %q", tb.old, it.Key())
		}
		it.Close()
	}
	db.Close()
	upgradeHook = func(int) error { t.Error("a store of the current layout was upgraded again"); return nil }
	s = mustOpen(t, dir)
	upgradeHook = nil
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Erasing upgraded subjects in the process that upgraded them (the
	// manifest of layout 1 named their references as table bounds).
	dir = t.TempDir()
	writeLayout1(t, dir, l)
	refs := [][]byte{alice[:], bob[:], carol[:]}
	if !anyFileHolds(t, dir, "MANIFEST", refs) {
		t.Fatal("the manifest of layout 1 names no reference: the test does not arrange what it checks")
	}
	s = mustOpen(t, dir)
	var ops []domicile.Op
	for _, ref := range []domicile.SubjectRef{alice, bob, carol} {
		ops = append(ops, &domicile.EraseSubject{Ref: ref})
	}
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: ops, Events: []*domicile.LogEntry{domiciletest.NewEntry(domicile.SubjectRef{})}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if anyFileHolds(t, dir, "", refs) {
		t.Error("a file of the store still holds an erased reference")
	}
	if anyFileHolds(t, dir, "", [][]byte{[]byte("sealed 3"), []byte("bob's")}) {
		t.Error("a file of the store still holds an erased subject's records")
	}
	s = mustOpen(t, dir)
	defer s.Close()
	domiciletest.CheckLog(t, ctx, s)
	if got, err := s.Records(ctx, alice, "", "", "", 100); err != nil || len(got) != 0 {
		t.Errorf("Records(erased) = %d, %v", len(got), err)
	}
}

// anyFileHolds reports whether a file under dir whose name starts with
// prefix holds one of bs, and logs which.
func anyFileHolds(t *testing.T, dir, prefix string, bs [][]byte) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), prefix) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range bs {
			if bytes.Contains(b, x) {
				t.Logf("%s holds %q", path[len(dir):], x)
				found = true
			}
		}
		return nil
	})
	return found
}

// TestNewerLayoutRefused opens a store whose layout version is beyond
// this build's: Open refuses it, naming both versions.
func TestNewerLayoutRefused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if err := s.db.Set(settingKey("layout"), binary.AppendUvarint(nil, layoutVersion+1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("version %d; this build reads version %d", layoutVersion+1, layoutVersion)) {
		t.Fatalf("Open of a newer layout = %v", err)
	}
}
