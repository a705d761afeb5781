package domiciletest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// TestCensus runs the conformance suite of domicile.Censuser on a cell
// store. open must return a new, empty store that is a Censuser; the
// suite closes it. The census counts subjects, live records (the bytes
// of their sealed bodies, not of tombstones) and objects (their sizes),
// forgets what an erasure removed, and the pending requests are those
// in no final state, by deadline, with no subject reference or body.
func TestCensus(t *testing.T, open func(t *testing.T) domicile.CellStore) {
	ctx := context.Background()
	s := open(t)
	mustClose(t, s)
	cs, ok := s.(domicile.Censuser)
	if !ok {
		t.Fatalf("%T is not a domicile.Censuser", s)
	}
	census := func() domicile.Census {
		t.Helper()
		c, err := cs.Census(ctx)
		if err != nil {
			t.Fatalf("Census: %v", err)
		}
		return c
	}
	if d := cmp.Diff(domicile.Census{}, census()); d != "" {
		t.Errorf("Census of an empty store (-want +got):\n%s", d)
	}

	alice, bob := Ref("census-alice"), Ref("census-bob")
	ra, rb := record(alice, "profile", "p", 1), record(bob, "message", "m", 1)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(alice), putSubject(bob),
		&domicile.PutRecord{Record: ra, Expect: domicile.NoVersion}, &domicile.PutRecord{Record: rb, Expect: domicile.NoVersion}},
		Events: []*domicile.LogEntry{NewEntry(alice)}})
	o := object(t, s, bob, "photo.jpg", 1)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: o, Expect: domicile.NoVersion}}, Events: []*domicile.LogEntry{NewEntry(bob)}})
	want := domicile.Census{Subjects: 2, Records: 2, RecordBytes: int64(len(ra.Body) + len(rb.Body)), Objects: 1, ObjectBytes: o.Size}
	if d := cmp.Diff(want, census()); d != "" {
		t.Errorf("Census (-want +got):\n%s", d)
	}
	if want.Bytes() != want.RecordBytes+want.ObjectBytes {
		t.Errorf("Bytes() = %d", want.Bytes())
	}

	// A deleted record leaves a tombstone, which holds no data.
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteRecord{Ref: alice, Kind: "profile", ID: "p", Expect: 1, Updated: t0.Add(time.Hour)}},
		Events: []*domicile.LogEntry{NewEntry(alice)}})
	want.Records, want.RecordBytes = 1, int64(len(rb.Body))
	if d := cmp.Diff(want, census()); d != "" {
		t.Errorf("Census after a record's deletion (-want +got):\n%s", d)
	}
	// So does a deleted object (its row stays, without a blob).
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteObject{Ref: bob, Name: "photo.jpg", Expect: 1}},
		Events: []*domicile.LogEntry{NewEntry(bob)}})
	want.Objects, want.ObjectBytes = 0, 0
	if d := cmp.Diff(want, census()); d != "" {
		t.Errorf("Census after an object's deletion (-want +got):\n%s", d)
	}

	// Pending requests: by deadline, final states left out.
	put := func(ref domicile.SubjectRef, id, state string, deadline time.Duration) {
		t.Helper()
		r := request(ref, id, state, 1)
		r.Deadline = t0.Add(deadline)
		MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRequest{Request: r, Expect: domicile.NoVersion}}, Events: []*domicile.LogEntry{NewEntry(ref)}})
	}
	put(alice, "rq_a", "received", 30*24*time.Hour)
	put(bob, "rq_b", "in-progress", 10*24*time.Hour)
	put(bob, "rq_c", "completed", 5*24*time.Hour)
	put(alice, "rq_d", "refused", 1*24*time.Hour)
	put(bob, "rq_e", "received", 30*24*time.Hour)
	final := []string{"completed", "refused"}
	got, err := cs.PendingRequests(ctx, final, 10)
	if err != nil {
		t.Fatalf("PendingRequests: %v", err)
	}
	wantReqs := []domicile.PendingRequest{
		{ID: "rq_b", Kind: "copy", State: "in-progress", Received: t0, Deadline: t0.Add(10 * 24 * time.Hour)},
		{ID: "rq_a", Kind: "copy", State: "received", Received: t0, Deadline: t0.Add(30 * 24 * time.Hour)},
		{ID: "rq_e", Kind: "copy", State: "received", Received: t0, Deadline: t0.Add(30 * 24 * time.Hour)},
	}
	if d := cmp.Diff(wantReqs, got); d != "" {
		t.Errorf("PendingRequests (-want +got):\n%s", d)
	}
	if got, err := cs.PendingRequests(ctx, final, 1); err != nil || len(got) != 1 || got[0].ID != "rq_b" {
		t.Errorf("PendingRequests(limit 1) = %+v, %v; want rq_b alone", got, err)
	}
	if got, err := cs.PendingRequests(ctx, nil, 10); err != nil || len(got) != 5 || got[0].ID != "rq_d" {
		t.Errorf("PendingRequests(no final state) = %+v, %v; want all 5, rq_d first", got, err)
	}

	// An erasure removes the subject, its data and its requests.
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: bob}}, Events: []*domicile.LogEntry{NewEntry(bob)}})
	if d := cmp.Diff(domicile.Census{Subjects: 1}, census()); d != "" {
		t.Errorf("Census after bob's erasure (-want +got):\n%s", d)
	}
	if got, err := cs.PendingRequests(ctx, final, 10); err != nil || len(got) != 1 || got[0].ID != "rq_a" {
		t.Errorf("PendingRequests after bob's erasure = %+v, %v; want rq_a alone", got, err)
	}
}
