package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"domicile"
	"domicile/domiciletest"
)

// storedSlot reads ref's slot from the database, not the cache.
func storedSlot(t *testing.T, s *Store, ref domicile.SubjectRef) (slot, bool) {
	t.Helper()
	v, err := s.get(s.nameOf(ref))
	if errors.Is(err, domicile.ErrNotFound) {
		return slot{}, false
	}
	if err != nil || len(v) != slotLen {
		t.Fatalf("slot of %x: %x, %v", ref[:4], v, err)
	}
	return slot(v), true
}

// TestFirstWritesOfOneSubject races the first writes of one subject:
// registrations, of which exactly one succeeds, and writes of records and
// events that name a subject the store has not seen yet, which all land
// under one slot.
func TestFirstWritesOfOneSubject(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	const writers = 16
	for round, register := range []bool{true, false} {
		ref := domiciletest.Ref(fmt.Sprint("first-", round))
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ops []domicile.Op
				if register {
					ops = append(ops, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}})
				}
				ops = append(ops, &domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: fmt.Sprint(w), Version: 1, Body: []byte{1}}, Expect: domicile.NoVersion})
				errs <- s.Commit(ctx, &domicile.Batch{Ops: ops, Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}})
			}()
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case !register || !errors.Is(err, domicile.ErrVersionMismatch):
				t.Fatalf("register=%v: Commit = %v", register, err)
			}
		}
		want := writers
		if register {
			want = 1
		}
		if won != want {
			t.Fatalf("register=%v: %d first writes succeeded, want %d", register, won, want)
		}
		if recs, err := s.Records(ctx, ref, "", "", "", 100); err != nil || len(recs) != want {
			t.Errorf("register=%v: Records = %d, %v; want %d", register, len(recs), err, want)
		}
		if evs, err := s.SubjectEvents(ctx, ref, -1, 100); err != nil || len(evs) != want {
			t.Errorf("register=%v: SubjectEvents = %d, %v; want %d", register, len(evs), err, want)
		}
		// The cache and the database agree.
		sl, ok := storedSlot(t, s, ref)
		if c, cached := s.slots.get(ref); !ok || (cached && c != sl) {
			t.Errorf("register=%v: slot %x stored (%v), %x cached (%v)", register, sl, ok, c, cached)
		}
	}
}

// TestErasureDropsSlot registers, writes and erases one subject over and
// over while readers of the subject race to fill the cache: every
// registration gets a new slot, nothing of an erased registration is
// read after its erasure, and the cache ends with the stored slot.
func TestErasureDropsSlot(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	ref := domiciletest.Ref("again")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Subject(ctx, ref); err != nil && !errors.Is(err, domicile.ErrNotFound) {
					t.Errorf("Subject: %v", err)
					return
				}
				if _, err := s.Record(ctx, ref, "k", "x"); err != nil && !errors.Is(err, domicile.ErrNotFound) {
					t.Errorf("Record: %v", err)
					return
				}
				if _, err := s.SubjectEvents(ctx, ref, -1, 10); err != nil {
					t.Errorf("SubjectEvents: %v", err)
					return
				}
			}
		}()
	}
	seen := map[slot]bool{}
	for gen := range 25 {
		body := []byte(fmt.Sprint("generation ", gen))
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{
			Ops: []domicile.Op{
				&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}},
				&domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: "x", Version: 1, Body: body}, Expect: domicile.NoVersion},
			},
			Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)},
		})
		sl, ok := storedSlot(t, s, ref)
		if !ok || seen[sl] {
			t.Fatalf("generation %d: slot %x (stored %v) was drawn before", gen, sl, ok)
		}
		seen[sl] = true
		if r, err := s.Record(ctx, ref, "k", "x"); err != nil || !bytes.Equal(r.Body, body) {
			t.Fatalf("generation %d: Record = %+v, %v", gen, r, err)
		}
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: ref}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(domicile.SubjectRef{})}})
		if r, err := s.Record(ctx, ref, "k", "x"); !errors.Is(err, domicile.ErrNotFound) {
			t.Fatalf("generation %d: Record after the erasure = %+v, %v", gen, r, err)
		}
		if evs, err := s.SubjectEvents(ctx, ref, -1, 10); err != nil || len(evs) != 0 {
			t.Fatalf("generation %d: SubjectEvents after the erasure = %d, %v", gen, len(evs), err)
		}
		if _, ok := storedSlot(t, s, ref); ok {
			t.Fatalf("generation %d: the erased subject still has a slot", gen)
		}
	}
	close(stop)
	wg.Wait()
	if sl, ok := s.slots.get(ref); ok {
		t.Errorf("the erased subject's slot %x is still cached", sl)
	}
}

// TestSlotCacheBounded reads and writes more subjects than the cache
// holds: every row is found, and the cache stays within its bound.
func TestSlotCacheBounded(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	const bound, subjects = 2 * stripes, 2000
	s.slots = newSlotCache(bound)
	refs := make([]domicile.SubjectRef, subjects)
	for i := range refs {
		refs[i] = domiciletest.Ref(fmt.Sprint("many-", i))
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{
			&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: refs[i], Jurisdiction: "CN"}},
			&domicile.PutRecord{Record: domicile.StoredRecord{Ref: refs[i], Kind: "k", ID: "x", Version: 1, Body: []byte(fmt.Sprint(i))}, Expect: domicile.NoVersion},
		}})
	}
	for _, i := range rand.Perm(subjects) {
		if r, err := s.Record(ctx, refs[i], "k", "x"); err != nil || string(r.Body) != fmt.Sprint(i) {
			t.Fatalf("Record of subject %d = %+v, %v", i, r, err)
		}
		if i%3 == 0 {
			domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{
				&domicile.PutRecord{Record: domicile.StoredRecord{Ref: refs[i], Kind: "k", ID: "x", Version: 2, Body: []byte("v2")}, Expect: 1},
			}})
		}
	}
	if n := s.slots.len(); n > bound || n == 0 {
		t.Errorf("%d slots cached, bound %d", n, bound)
	}
	if c, err := s.Census(ctx); err != nil || c.Subjects != subjects || c.Records != subjects {
		t.Errorf("Census = %+v, %v", c, err)
	}
}

// TestSubjectHoldingsPages pages through many subjects, which the store
// keeps in the order of their slots, by small pages and by pages of one
// (read directly when the next subject is the successor of the cursor),
// and finds them all in the order of their references.
func TestSubjectHoldingsPages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	var refs []domicile.SubjectRef
	var ops []domicile.Op
	for i := range 300 {
		ref := domiciletest.Ref(fmt.Sprint("holder-", i))
		refs = append(refs, ref)
		ops = append(ops, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}},
			&domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: "x", Version: 1, Body: []byte{1}, Fields: []string{fmt.Sprint("f", i)}}, Expect: domicile.NoVersion})
	}
	// One that only has events: no subject row, so not listed.
	ops = append(ops, &domicile.PutRecord{Record: domicile.StoredRecord{Ref: domiciletest.Ref("no row"), Kind: "k", ID: "x", Version: 1, Body: []byte{1}}, Expect: domicile.NoVersion})
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})
	slices.SortFunc(refs, func(a, b domicile.SubjectRef) int { return bytes.Compare(a[:], b[:]) })
	for _, size := range []int{7, 1} {
		var got []domicile.SubjectRef
		var after domicile.SubjectRef
		for {
			page, err := s.SubjectHoldings(ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range page {
				if len(h.Fields["k"]) != 1 {
					t.Fatalf("holdings of %x: %v", h.Ref[:4], h.Fields)
				}
				got = append(got, h.Ref)
			}
			if len(page) < size {
				break
			}
			after = page[len(page)-1].Ref
		}
		if !slices.Equal(got, refs) {
			t.Fatalf("pages of %d: %d subjects, want the %d in order", size, len(got), len(refs))
		}
	}
	// A page of one from just before a subject: that subject, directly.
	pred := refs[42]
	for i := len(pred) - 1; i >= 0; i-- {
		if pred[i] > 0 {
			pred[i]--
			break
		}
		pred[i] = 0xff
	}
	if page, err := s.SubjectHoldings(ctx, pred, 1); err != nil || len(page) != 1 || page[0].Ref != refs[42] {
		t.Fatalf("SubjectHoldings(just before subject 42, 1) = %+v, %v", page, err)
	}
	all, err := s.CellSubjects(ctx)
	if err != nil || len(all) != len(refs) || all[0].Ref != refs[0].String() || all[len(all)-1].Ref != refs[len(refs)-1].String() {
		t.Fatalf("CellSubjects = %d subjects, %v", len(all), err)
	}
}

// TestSubjectHoldingsSnapshot: the pages of one listing come from one
// sorted snapshot, taken when the listing starts (not once per page); a
// subject erased between pages is skipped and the page is still full; the
// erasure drops the snapshot, so no list in memory keeps the reference.
func TestSubjectHoldingsSnapshot(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	var refs []domicile.SubjectRef
	var ops []domicile.Op
	for i := range 50 {
		ref := domiciletest.Ref(fmt.Sprint("snap-", i))
		refs = append(refs, ref)
		ops = append(ops, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}})
	}
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})
	slices.SortFunc(refs, func(a, b domicile.SubjectRef) int { return bytes.Compare(a[:], b[:]) })

	first, err := s.SubjectHoldings(ctx, domicile.SubjectRef{}, 10)
	if err != nil || len(first) != 10 {
		t.Fatalf("first page: %d, %v", len(first), err)
	}
	taken := s.snapAt
	second, err := s.SubjectHoldings(ctx, first[9].Ref, 10)
	if err != nil || len(second) != 10 || second[0].Ref != refs[10] {
		t.Fatalf("second page: %d, %v", len(second), err)
	}
	if !s.snapAt.Equal(taken) {
		t.Fatal("the second page scanned the subjects again")
	}
	// Erase the subject the third page would start with.
	gone := refs[20]
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: gone}}})
	if s.snap != nil {
		t.Fatal("the snapshot outlived an erasure")
	}
	third, err := s.SubjectHoldings(ctx, second[9].Ref, 10)
	if err != nil || len(third) != 10 || third[0].Ref != refs[21] || third[9].Ref != refs[30] {
		t.Fatalf("third page after an erasure: %d, %v", len(third), err)
	}
	for _, h := range third {
		if h.Ref == gone {
			t.Fatal("an erased subject is listed")
		}
	}
	again, err := s.SubjectHoldings(ctx, domicile.SubjectRef{}, 1000)
	if err != nil || len(again) != 49 {
		t.Fatalf("a new listing: %d, %v", len(again), err)
	}
}
