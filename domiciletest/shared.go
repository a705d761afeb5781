package domiciletest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
	"domicile/authority"
	"domicile/notice"
	"domicile/report"
	"domicile/transfer"
)

// The suites of the stores that the processes of a deployment share
// besides the control store: [TestTransferStore], [TestNoticeStore] and
// [TestAuthorityStore]. Their stores have no Close in their interfaces:
// the open function closes what it opens with t.Cleanup.

// sref is a subject reference made from a name.
func sref(name string) domicile.SubjectRef { return sha256.Sum256([]byte("subject " + name)) }

// at is a time of the suites, in UTC with nanoseconds, as stores keep it.
func at(day, ns int) time.Time { return time.Date(2026, 3, day, 9, 30, 0, ns, time.UTC) }

// TestTransferStore runs the conformance suite of [transfer.Store]: the
// ledger's distinct counts and records, the mechanisms and the consents;
// and, when the store implements [transfer.EntityLocker], its lock.
func TestTransferStore(t *testing.T, open func(t *testing.T) transfer.Store) {
	t.Run("Counts", func(t *testing.T) { t.Parallel(); testLedgerCounts(t, open(t)) })
	t.Run("ConcurrentRecords", func(t *testing.T) { t.Parallel(); testLedgerConcurrent(t, open(t)) })
	t.Run("Records", func(t *testing.T) { t.Parallel(); testLedgerRecords(t, open(t)) })
	t.Run("Warned", func(t *testing.T) { t.Parallel(); testLedgerWarned(t, open(t)) })
	t.Run("Mechanisms", func(t *testing.T) { t.Parallel(); testMechanisms(t, open(t)) })
	t.Run("Consents", func(t *testing.T) { t.Parallel(); testConsents(t, open(t)) })
	t.Run("EntityLock", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		l, ok := st.(transfer.EntityLocker)
		if !ok {
			t.Skip("the store is not shared between processes (no transfer.EntityLocker)")
		}
		testEntityLock(t, l)
	})
}

func key(class domicile.CountClass, dim, value string) domicile.CountKey {
	return domicile.CountKey{Entity: "Acme", Year: 2026, Source: "CN", Class: class, Dim: dim, Value: value}
}

func testLedgerCounts(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	total, spi := key(domicile.ClassPI, domicile.DimTotal, ""), key(domicile.ClassSPI, domicile.DimTotal, "")
	n, err := l.Counts(ctx, []domicile.CountKey{total, spi})
	if err != nil || !cmp.Equal(n, []int64{0, 0}) {
		t.Fatalf("Counts of an empty ledger = %v, %v; want [0 0]", n, err)
	}
	if m, err := l.Members(ctx, total, []domicile.SubjectRef{sref("a")}); err != nil || m[0] {
		t.Fatalf("Members of a count never raised = %v, %v", m, err)
	}
	// One transfer of a, b (b twice in the add), c; b and c are sensitive.
	r1 := &domicile.TransferRecord{ID: "t1", Time: at(2, 0), Entity: "Acme", Year: 2026, Source: "CN", Destination: "US", Counted: true, People: 3}
	added, err := l.Record(ctx, r1, []domicile.CountAdd{
		{Key: total, Refs: []domicile.SubjectRef{sref("a"), sref("b"), sref("b"), sref("c")}},
		{Key: spi, Refs: []domicile.SubjectRef{sref("b"), sref("c")}},
		{Key: key(domicile.ClassPI, "destination", "US"), Refs: []domicile.SubjectRef{sref("a")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(added, []int64{3, 2, 1}) {
		t.Errorf("Record added %v, want [3 2 1] (a repeated reference counts once)", added)
	}
	if r1.NewPI != 3 || r1.NewSPI != 2 {
		t.Errorf("Record set NewPI, NewSPI = %d, %d; want 3, 2", r1.NewPI, r1.NewSPI)
	}
	// A second transfer of b and d: only d is new.
	r2 := &domicile.TransferRecord{ID: "t2", Time: at(3, 0), Entity: "Acme", Year: 2026, Source: "CN", Destination: "US", Counted: true, People: 2}
	added, err = l.Record(ctx, r2, []domicile.CountAdd{{Key: total, Refs: []domicile.SubjectRef{sref("b"), sref("d")}}})
	if err != nil || !cmp.Equal(added, []int64{1}) {
		t.Fatalf("second Record added %v, %v; want [1]", added, err)
	}
	if r2.NewPI != 1 {
		t.Errorf("second Record NewPI = %d, want 1", r2.NewPI)
	}
	n, err = l.Counts(ctx, []domicile.CountKey{total, spi, key(domicile.ClassPI, "destination", "US"), key(domicile.ClassPI, "destination", "GB")})
	if err != nil || !cmp.Equal(n, []int64{4, 2, 1, 0}) {
		t.Errorf("Counts = %v, %v; want [4 2 1 0]", n, err)
	}
	m, err := l.Members(ctx, total, []domicile.SubjectRef{sref("d"), sref("e"), sref("a"), sref("d")})
	if err != nil || !cmp.Equal(m, []bool{true, false, true, true}) {
		t.Errorf("Members = %v, %v; want [true false true true]", m, err)
	}
	// A record of an id stored before is refused, and its adds with it.
	dup := &domicile.TransferRecord{ID: "t1", Time: at(4, 0), Entity: "Acme", Year: 2026, Source: "CN"}
	if _, err := l.Record(ctx, dup, []domicile.CountAdd{{Key: total, Refs: []domicile.SubjectRef{sref("z")}}}); err == nil {
		t.Error("Record of a transfer id stored before succeeded")
	}
	if n, _ := l.Counts(ctx, []domicile.CountKey{total}); n[0] != 4 {
		t.Errorf("a refused Record raised the count to %d: its adds must roll back", n[0])
	}
	// Breakdown: this entity's year only, in byte order.
	other := key(domicile.ClassPI, domicile.DimTotal, "")
	other.Year = 2025
	if _, err := l.Record(ctx, &domicile.TransferRecord{ID: "t0", Time: at(1, 0), Entity: "Acme", Year: 2025, Source: "CN"},
		[]domicile.CountAdd{{Key: other, Refs: []domicile.SubjectRef{sref("a")}},
			{Key: key(domicile.ClassPI, "recipient", "acme"), Refs: []domicile.SubjectRef{sref("a")}},
			{Key: key(domicile.ClassPI, "recipient", "Zeta"), Refs: []domicile.SubjectRef{sref("a")}}}); err != nil {
		t.Fatal(err)
	}
	bd, err := l.Breakdown(ctx, "Acme", 2026)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range bd {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s=%d", c.Source, c.Class, c.Dim, c.Value, c.N))
	}
	want := []string{"CN/pi//=4", "CN/pi/destination/US=1", "CN/pi/recipient/Zeta=1", "CN/pi/recipient/acme=1", "CN/spi//=2"}
	if !cmp.Equal(got, want) {
		t.Errorf("Breakdown(Acme, 2026):\n%s", cmp.Diff(want, got))
	}
	if bd, err := l.Breakdown(ctx, "Other", 2026); err != nil || len(bd) != 0 {
		t.Errorf("Breakdown of an entity without counts = %v, %v", bd, err)
	}
}

// testLedgerConcurrent: many Records at once over overlapping people
// lose no count and count nobody twice.
func testLedgerConcurrent(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	total := key(domicile.ClassPI, domicile.DimTotal, "")
	const workers, people = 8, 40
	var wg sync.WaitGroup
	added := make([]int64, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var refs []domicile.SubjectRef
			for p := w; p < w+people/2; p++ {
				refs = append(refs, sref(fmt.Sprint(p%people)))
			}
			r := &domicile.TransferRecord{ID: fmt.Sprintf("w%d", w), Time: at(5, w), Entity: "Acme", Year: 2026, Source: "CN", Counted: true}
			a, err := l.Record(ctx, r, []domicile.CountAdd{{Key: total, Refs: refs}})
			if err == nil {
				added[w] = a[0]
			}
			errs[w] = err
		}()
	}
	wg.Wait()
	var sum int64
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
		sum += added[w]
	}
	n, err := l.Counts(ctx, []domicile.CountKey{total})
	if err != nil {
		t.Fatal(err)
	}
	distinct := int64(min(people, workers-1+people/2))
	if n[0] != distinct || sum != distinct {
		t.Errorf("count = %d, sum of what Record returned = %d; want both %d distinct people", n[0], sum, distinct)
	}
}

func testLedgerRecords(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	// More than one page of records, some at one instant, stored out of
	// time order (the latest day first, as an import of earlier
	// transfers does); records at one instant keep the order stored.
	const n = 1003
	for day := (n - 1) / 100; day >= 0; day-- {
		for i := day * 100; i < min(day*100+100, n); i++ {
			r := &domicile.TransferRecord{ID: fmt.Sprintf("r%04d", i), Time: at(1+i/100, i%100/2), Entity: "Acme", Year: 2026, Source: "CN",
				Destination: "US", Recipient: "Acme Support Inc.", Channel: domicile.ChannelExport}
			if _, err := l.Record(ctx, r, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	if err := l.Records(ctx, time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), func(r *domicile.TransferRecord) error {
		got = append(got, r.ID)
		if r.Recipient != "Acme Support Inc." || r.Channel != domicile.ChannelExport {
			return fmt.Errorf("record %s read back as %+v", r.ID, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("Records over all time read %d records, want %d", len(got), n)
	}
	for i, id := range got {
		if want := fmt.Sprintf("r%04d", i); id != want {
			t.Fatalf("Records: record %d is %s, want %s (time order)", i, id, want)
		}
	}
	// [from, until): from included, until excluded.
	got = nil
	if err := l.Records(ctx, at(2, 0), at(3, 0), func(r *domicile.TransferRecord) error {
		got = append(got, r.ID)
		if !r.Time.Equal(at(2, int(r.Time.Nanosecond()))) {
			return fmt.Errorf("record %s at %v, outside the range", r.ID, r.Time)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0] != "r0100" || got[99] != "r0199" {
		t.Errorf("Records of day 2 = %d records (%v…), want r0100..r0199", len(got), got[:min(3, len(got))])
	}
	stop := errors.New("stop")
	calls := 0
	if err := l.Records(ctx, time.Time{}, at(30, 0), func(*domicile.TransferRecord) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Records with fn failing = %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testLedgerWarned(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	for i, c := range []struct {
		year, percent int
		want          bool
	}{{2026, 80, true}, {2026, 80, false}, {2026, 90, true}, {2027, 80, true}, {2026, 90, false}} {
		got, err := l.Warned(ctx, "Acme", c.year, "spi", 10_000, c.percent)
		if err != nil || got != c.want {
			t.Errorf("Warned #%d (%d, %d%%) = %v, %v; want %v", i, c.year, c.percent, got, err, c.want)
		}
	}
}

func testMechanisms(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	if ms, err := l.Mechanisms(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("Mechanisms of an empty store = %q, %v", ms, err)
	}
	for _, m := range [][2]string{{"sc-b", `{"v":1}`}, {"Sc-z", `{"v":2}`}, {"sc-a", `{"v":3}`}, {"sc-b", `{"v":4}`}} {
		if err := l.PutMechanism(ctx, m[0], []byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := l.Mechanisms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, string(m))
	}
	if want := []string{`{"v":2}`, `{"v":3}`, `{"v":4}`}; !cmp.Equal(got, want) {
		t.Errorf("Mechanisms = %v, want %v (id byte order, a put replacing the one of its id)", got, want)
	}
}

func testConsents(t *testing.T, l transfer.Store) {
	ctx := context.Background()
	a, b := sref("a"), sref("b")
	put := func(c domicile.Consent) {
		t.Helper()
		if err := l.PutConsent(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	put(domicile.Consent{Subject: a, Kind: domicile.ConsentCrossBorder, TextVersion: "v1", Granted: true, Time: at(1, 1)})
	put(domicile.Consent{Subject: a, Kind: domicile.ConsentSensitive, TextVersion: "s1", Granted: true, Time: at(1, 2)})
	put(domicile.Consent{Subject: a, Kind: domicile.ConsentCrossBorder, TextVersion: "v2", Granted: false, Time: at(2, 3)})
	put(domicile.Consent{Subject: b, Kind: domicile.ConsentSensitive, TextVersion: "s1", Granted: true, Time: at(3, 4)})
	got, err := l.Consent(ctx, domicile.ConsentCrossBorder, []domicile.SubjectRef{a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	want := &domicile.Consent{Subject: a, Kind: domicile.ConsentCrossBorder, TextVersion: "v2", Granted: false, Time: at(2, 3)}
	if len(got) != 3 || !cmp.Equal(got[0], want) || got[1] != nil || !cmp.Equal(got[2], want) {
		t.Errorf("Consent(cross-border, a, b, a) = %v; want [%v nil %v] (the latest state; nil for none)", got, want, want)
	}
	got, err = l.Consent(ctx, domicile.ConsentSensitive, []domicile.SubjectRef{b})
	if err != nil || len(got) != 1 || got[0] == nil || !got[0].Granted || !got[0].Time.Equal(at(3, 4)) {
		t.Errorf("Consent(sensitive, b) = %v, %v", got, err)
	}
	// Many subjects at once, past any batch of the store.
	refs := make([]domicile.SubjectRef, 2500)
	for i := range refs {
		refs[i] = sref(fmt.Sprint("many-", i))
	}
	refs[2400] = b
	got, err = l.Consent(ctx, domicile.ConsentSensitive, refs)
	if err != nil || len(got) != len(refs) || got[2400] == nil || got[0] != nil {
		t.Errorf("Consent of 2500 subjects: %d answers, %v; want b's consent at 2400", len(got), err)
	}
}

// testEntityLock: the lock excludes a second holder, which waits until
// its context ends; it is free again once released.
func testEntityLock(t *testing.T, l transfer.EntityLocker) {
	ctx := context.Background()
	unlock, err := l.LockEntity(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if u, err := l.LockEntity(short, "Acme"); err == nil {
		u()
		t.Fatal("a second LockEntity of a held entity succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, domicile.ErrStoreUnavailable) {
		t.Errorf("a second LockEntity that timed out: %v, want the context's deadline", err)
	}
	cancel()
	got := make(chan error, 1)
	go func() {
		u, err := l.LockEntity(ctx, "Acme")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Errorf("LockEntity after the holder released it: %v", err)
	}
	for range 3 { // a released lock leaves nothing held behind
		u, err := l.LockEntity(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		u()
	}
}

// TestNoticeStore runs the conformance suite of [notice.Store]: plans,
// their notices' delivery and acknowledgement, and the applied changes.
func TestNoticeStore(t *testing.T, open func(t *testing.T) notice.Store) {
	t.Run("Plans", func(t *testing.T) { t.Parallel(); testNoticePlans(t, open(t)) })
	t.Run("Applied", func(t *testing.T) { t.Parallel(); testNoticeApplied(t, open(t)) })
}

func planned(cell, plan, id, ref string, created time.Time) notice.Planned {
	return notice.Planned{Cell: cell, Notice: report.SubjectNotice{ID: id, Plan: plan, SubjectRef: ref, Created: created,
		Texts: map[string]report.NoticeText{}}}
}

func testNoticePlans(t *testing.T, s notice.Store) {
	ctx := context.Background()
	if _, err := s.Plan(ctx, "p1"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Plan of a missing plan: %v, want ErrNotFound", err)
	}
	if _, err := s.Notice(ctx, "n1"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Notice of a missing notice: %v, want ErrNotFound", err)
	}
	p := &notice.Plan{ID: "p1", Created: at(1, 5), Counted: true, Notices: []notice.Planned{
		planned("cn-1", "p1", "n2", "ref-a", at(1, 7)), planned("eu-1", "p1", "n1", "ref-b", at(1, 6))}}
	if err := s.PutPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.Plan(ctx, "p1")
	if err != nil || got.ID != "p1" || !got.Created.Equal(at(1, 5)) || len(got.Notices) != 2 || !got.Counted {
		t.Fatalf("Plan(p1) = %+v, %v", got, err)
	}
	ns, err := s.Notices(ctx, "p1")
	if err != nil || len(ns) != 2 || ns[0].Notice.ID != "n1" || ns[1].Notice.ID != "n2" || ns[0].Cell != "eu-1" {
		t.Fatalf("Notices(p1) = %+v, %v; want n1 (eu-1), n2 in id order", ns, err)
	}
	if ns[0].Attempts != 0 || ns[0].Delivered != nil || ns[0].Acknowledged != nil {
		t.Errorf("a new notice has state %+v, want none", ns[0])
	}
	// A failed attempt, then two successes: the first success's time stays.
	if err := s.RecordAttempt(ctx, "n1", at(2, 0), "connection refused", false); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, "n1", at(2, 1), "", true); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, "n1", at(2, 2), "", true); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, "n9", at(2, 2), "", true); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("RecordAttempt of a missing notice: %v, want ErrNotFound", err)
	}
	if err := s.RecordAttempt(ctx, "n2", at(2, 3), "timeout", false); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements: the first one stays.
	if err := s.Acknowledge(ctx, "n1", at(3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, "n1", at(3, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, "n9", at(3, 2)); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Acknowledge of a missing notice: %v, want ErrNotFound", err)
	}
	st, err := s.Notice(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts != 3 || st.LastError != "" || st.Delivered == nil || !st.Delivered.Equal(at(2, 1)) || st.Acknowledged == nil || !st.Acknowledged.Equal(at(3, 1)) {
		t.Errorf("Notice(n1) = attempts %d, last error %q, delivered %v, acknowledged %v; want 3, none, the first success, the first acknowledgement",
			st.Attempts, st.LastError, st.Delivered, st.Acknowledged)
	}
	if st.Notice.SubjectRef != "ref-b" || !st.Notice.Created.Equal(at(1, 6)) {
		t.Errorf("Notice(n1) reads back as %+v", st.Notice)
	}
	// Storing the plan again keeps the notices' delivery state, and adds
	// the new ones.
	p.Notices = append(p.Notices, planned("cn-1", "p1", "n3", "ref-a", at(1, 4)))
	if err := s.PutPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Notice(ctx, "n1"); err != nil || st.Attempts != 3 || st.Delivered == nil {
		t.Errorf("after storing the plan again, Notice(n1) = %+v, %v: its delivery state was lost", st, err)
	}
	if st, err := s.Notice(ctx, "n2"); err != nil || st.Attempts != 1 || st.LastError != "timeout" || st.Delivered != nil {
		t.Errorf("Notice(n2) = %+v, %v; want one failed attempt", st, err)
	}
	// A subject's notices, oldest first, across plans.
	if err := s.PutPlan(ctx, &notice.Plan{ID: "p2", Created: at(4, 0), Notices: []notice.Planned{planned("cn-1", "p2", "m1", "ref-a", at(4, 1))}}); err != nil {
		t.Fatal(err)
	}
	sn, err := s.SubjectNotices(ctx, "ref-a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range sn {
		ids = append(ids, st.Notice.ID)
	}
	if want := []string{"n3", "n2", "m1"}; !cmp.Equal(ids, want) {
		t.Errorf("SubjectNotices(ref-a) = %v, want %v (oldest first)", ids, want)
	}
	if sn, err := s.SubjectNotices(ctx, "ref-z"); err != nil || len(sn) != 0 {
		t.Errorf("SubjectNotices of a subject without notices = %v, %v", sn, err)
	}
}

func testNoticeApplied(t *testing.T, s notice.Store) {
	ctx := context.Background()
	if a, err := s.Applied(ctx); err != nil || len(a) != 0 {
		t.Fatalf("Applied of an empty store = %v, %v", a, err)
	}
	first := []report.ChangeLine{{Time: at(5, 0), Cell: "cn-1", Field: "operator", Before: "A", After: "B"},
		{Time: at(5, 0), Cell: "eu-1", Field: "region", Before: "x", After: "y"}}
	second := []report.ChangeLine{{Time: at(4, 0), Cell: "cn-1", Field: "recipients", Before: "", After: "Acme"}}
	if err := s.PutApplied(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.PutApplied(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err := s.Applied(ctx)
	if want := append(first, second...); err != nil || !cmp.Equal(got, want) {
		t.Errorf("Applied = %v, %v; want in the order recorded:\n%s", got, err, cmp.Diff(want, got))
	}
}

// TestAuthorityStore runs the conformance suite of [authority.Store].
func TestAuthorityStore(t *testing.T, open func(t *testing.T) authority.Store) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, "r1"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Get of a missing request: %v, want ErrNotFound", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Errorf("List of an empty store = %v, %v", l, err)
	}
	req := func(id string, received time.Time, status string) *authority.Request {
		return &authority.Request{ID: id, Authority: "Authority of " + id, Jurisdiction: "CN", Kind: "production", Cell: "cn-1",
			Subjects: []string{"ref-a"}, Received: received, Status: status, Rules: []string{}, Obligations: []string{}}
	}
	for _, r := range []*authority.Request{req("r2", at(2, 0), "received"), req("r1", at(3, 0), "received"), req("r0", at(2, 0), "received")} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Replacing keeps the request's place.
	if err := s.Put(ctx, req("r2", at(2, 0), "disclosed")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "r2")
	if err != nil || got.Status != "disclosed" || !got.Received.Equal(at(2, 0)) || got.Authority != "Authority of r2" {
		t.Errorf("Get(r2) = %+v, %v; want the replaced request", got, err)
	}
	l, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range l {
		ids = append(ids, r.ID+"/"+r.Status)
	}
	if want := []string{"r0/received", "r2/disclosed", "r1/received"}; !cmp.Equal(ids, want) {
		t.Errorf("List = %v, want %v (oldest first, then id)", ids, want)
	}
}
