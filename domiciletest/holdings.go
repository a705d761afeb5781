package domiciletest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// TestSubjectHoldings runs the conformance suite of
// domicile.SubjectLister on a cell store. open must return a new, empty
// store that is a SubjectLister; the suite closes it. Subjects come in
// reference order, paged by the last reference; each lists the fields
// of its live records per kind, once each (a deleted record's fields are
// gone); a subject without records is listed with none; an erased
// subject is not listed.
func TestSubjectHoldings(t *testing.T, open func(t *testing.T) domicile.CellStore) {
	ctx := context.Background()
	s := open(t)
	mustClose(t, s)
	sl, ok := s.(domicile.SubjectLister)
	if !ok {
		t.Fatalf("%T is not a domicile.SubjectLister", s)
	}
	list := func(after domicile.SubjectRef, limit int) []domicile.SubjectHoldings {
		t.Helper()
		got, err := sl.SubjectHoldings(ctx, after, limit)
		if err != nil {
			t.Fatalf("SubjectHoldings: %v", err)
		}
		return got
	}
	if got := list(domicile.SubjectRef{}, 10); len(got) != 0 {
		t.Errorf("SubjectHoldings of an empty store = %+v, want none", got)
	}
	var refs []domicile.SubjectRef
	for _, n := range []string{"h-alice", "h-bob", "h-carol", "h-dave"} {
		refs = append(refs, Ref(n))
	}
	slices.SortFunc(refs, func(a, b domicile.SubjectRef) int { return bytes.Compare(a[:], b[:]) })
	a, b, c, d := refs[0], refs[1], refs[2], refs[3]
	rec := func(ref domicile.SubjectRef, kind, id string, fields ...string) *domicile.PutRecord {
		r := record(ref, kind, id, 1)
		r.Fields = fields
		return &domicile.PutRecord{Record: r, Expect: domicile.NoVersion}
	}
	ops := []domicile.Op{putSubject(a), putSubject(b), putSubject(c), putSubject(d),
		rec(a, "profile", "p1", "name", "email"), rec(a, "profile", "p2", "email", "id_number"), rec(a, "message", "m", "body"),
		rec(b, "profile", "p", "name"), rec(d, "profile", "p", "health")}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: ops, Events: []*domicile.LogEntry{NewEntry(a)}})
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteRecord{Ref: b, Kind: "profile", ID: "p", Expect: 1, Updated: t0.Add(time.Hour)}},
		Events: []*domicile.LogEntry{NewEntry(b)}})
	want := []domicile.SubjectHoldings{
		{Ref: a, Jurisdiction: "CN", Fields: map[string][]string{"message": {"body"}, "profile": {"name", "email", "id_number"}}},
		{Ref: b, Jurisdiction: "CN", Fields: map[string][]string{}},
		{Ref: c, Jurisdiction: "CN", Fields: map[string][]string{}},
		{Ref: d, Jurisdiction: "CN", Fields: map[string][]string{"profile": {"health"}}},
	}
	if diff := cmp.Diff(want, list(domicile.SubjectRef{}, 10)); diff != "" {
		t.Errorf("SubjectHoldings (-want +got):\n%s", diff)
	}
	// Paged two at a time: the same subjects, each once.
	var paged []domicile.SubjectHoldings
	after := domicile.SubjectRef{}
	for range 4 {
		page := list(after, 2)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("SubjectHoldings(limit 2) returned %d", len(page))
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Ref
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("SubjectHoldings paged by 2 (-want +got):\n%s", diff)
	}
	MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: a}}, Events: []*domicile.LogEntry{NewEntry(a)}})
	if diff := cmp.Diff(want[1:], list(domicile.SubjectRef{}, 10)); diff != "" {
		t.Errorf("SubjectHoldings after an erasure (-want +got):\n%s", diff)
	}
}
