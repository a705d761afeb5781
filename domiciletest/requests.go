package domiciletest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

func request(ref domicile.SubjectRef, id, state string, version int64) domicile.StoredRequest {
	return domicile.StoredRequest{
		Ref: ref, ID: id, Kind: "copy", State: state,
		Received: t0, Deadline: t0.Add(30 * 24 * time.Hour), Version: version,
		Body:    fmt.Appendf(nil, "sealed %s v%d \x00\xff", id, version),
		Updated: t0.Add(time.Duration(version) * time.Second),
	}
}

// testRequests: rights requests are versioned like records (a new one
// needs NoVersion, each change the current version), list in id order
// per subject with a cursor, and never show another subject's.
func testRequests(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	alice, bob := Ref("alice"), Ref("bob")
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(alice), putSubject(bob)}})
	put := func(r domicile.StoredRequest, expect int64) error {
		return s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRequest{Request: r, Expect: expect}}, Events: []*domicile.LogEntry{NewEntry(r.Ref)}})
	}
	for _, id := range []string{"rq_2", "rq_1", "rq_3"} {
		if err := put(request(alice, id, "received", 1), domicile.NoVersion); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
	}
	if err := put(request(bob, "rq_1", "received", 1), domicile.NoVersion); err != nil {
		t.Fatalf("put bob's rq_1: %v", err)
	}
	if err := put(request(alice, "rq_1", "received", 1), domicile.NoVersion); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("a second new rq_1 = %v, want ErrVersionMismatch", err)
	}
	if err := put(request(alice, "rq_1", "completed", 3), 2); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("update from a version that is not current = %v, want ErrVersionMismatch", err)
	}
	want := request(alice, "rq_1", "completed", 2)
	want.Deadline = t0.Add(40 * 24 * time.Hour)
	if err := put(want, 1); err != nil {
		t.Fatalf("update rq_1: %v", err)
	}
	got, err := s.Request(ctx, alice, "rq_1")
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if d := cmp.Diff(want, *got); d != "" {
		t.Errorf("Request mismatch (-want +got):\n%s", d)
	}
	if _, err := s.Request(ctx, alice, "rq_9"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Request(missing) = %v, want ErrNotFound", err)
	}
	var ids []string
	for after := ""; ; {
		page, err := s.Requests(ctx, alice, after, 2)
		if err != nil {
			t.Fatalf("Requests: %v", err)
		}
		for _, r := range page {
			if r.Ref != alice {
				t.Errorf("Requests(alice) returned a request of %x", r.Ref[:4])
			}
			ids = append(ids, r.ID)
			after = r.ID
		}
		if len(page) < 2 {
			break
		}
	}
	if d := cmp.Diff([]string{"rq_1", "rq_2", "rq_3"}, ids); d != "" {
		t.Errorf("Requests paging (-want +got):\n%s", d)
	}
	if got, _ := s.Request(ctx, bob, "rq_1"); got == nil || got.State != "received" {
		t.Errorf("bob's rq_1 = %+v, want it untouched by alice's update", got)
	}
}

// testEraseKeepsReceipt: erasing a subject deletes its requests and keeps
// the receipt it carries, in the same commit, with the log index of the
// batch's first event; receipts are found by id alone.
func testEraseKeepsReceipt(t *testing.T, s domicile.CellStore) {
	ctx := context.Background()
	ref := Ref("alice")
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(ref), &domicile.PutRequest{Request: request(ref, "rq_1", "received", 1), Expect: domicile.NoVersion}}})
	rc := &domicile.StoredReceipt{ID: "rcp_1", Time: t0, Body: []byte(`{"cell":"c"}`)}
	before := logSize(t, s)
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: ref, Receipt: rc}}, Events: []*domicile.LogEntry{NewEntry(domicile.SubjectRef{})}})
	if rc.LogIndex != before {
		t.Errorf("receipt LogIndex = %d, want %d (the erase event's)", rc.LogIndex, before)
	}
	if _, err := s.Request(ctx, ref, "rq_1"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Request after erasure = %v, want ErrNotFound", err)
	}
	if rs, err := s.Requests(ctx, ref, "", 10); err != nil || len(rs) != 0 {
		t.Errorf("Requests after erasure = %d, %v; want none", len(rs), err)
	}
	got, err := s.Receipt(ctx, "rcp_1")
	if err != nil {
		t.Fatalf("Receipt: %v", err)
	}
	if d := cmp.Diff(*rc, *got); d != "" {
		t.Errorf("Receipt mismatch (-want +got):\n%s", d)
	}
	if _, err := s.Receipt(ctx, "rcp_2"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Receipt(missing) = %v, want ErrNotFound", err)
	}
	// A receipt id is unique: a second erasure with the same id fails whole.
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{putSubject(Ref("bob"))}})
	if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: Ref("bob"), Receipt: rc}}}); err == nil {
		t.Errorf("an erasure reusing a receipt id committed")
	}
	if _, err := s.Subject(ctx, Ref("bob")); err != nil {
		t.Errorf("the failed erasure changed the store: Subject(bob) = %v", err)
	}
}
