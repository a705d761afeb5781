package domiciletest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// MigrationControl is a control store that keeps migrations beside its
// directory, as the runner needs it.
type MigrationControl interface {
	domicile.ControlStore
	domicile.MigrationStore
}

// TestMigrationStore runs the conformance suite of
// domicile.MigrationStore. open must return a new, empty store; the suite
// closes it.
func TestMigrationStore(t *testing.T, open func(t *testing.T) MigrationControl) {
	tests := []struct {
		name string
		run  func(t *testing.T, c MigrationControl)
	}{
		{"Migrations", testMigrations},
		{"Subjects", testMigrationSubjects},
		{"SwitchHome", testSwitchHome},
		{"SwitchHomeRace", testSwitchHomeRace},
		{"HomesIn", testHomesIn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			mustClose(t, c)
			tc.run(t, c)
		})
	}
}

// moving is subject name's row in plan, planned from cn-gz1 to cn-gz2.
func moving(plan, name string) domicile.MigrationSubject {
	return domicile.MigrationSubject{Plan: plan, Key: Ref("key " + name), Ref: Ref("reg " + name), From: "cn-gz1", To: "cn-gz2",
		Jurisdiction: "CN", State: domicile.MovePlanned, OutIndex: -1, InIndex: -1, Updated: t0}
}

func testMigrations(t *testing.T, c MigrationControl) {
	ctx := context.Background()
	if _, err := c.Migration(ctx, "m-0000000000000001"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Migration(unknown) = %v, want ErrNotFound", err)
	}
	if ms, err := c.Migrations(ctx); err != nil || len(ms) != 0 {
		t.Errorf("Migrations of an empty store = %v, %v; want none", ms, err)
	}
	a := domicile.Migration{ID: "m-000000000000000a", Plan: []byte(`{"id":"a"}`), State: "planned", Created: t0.Add(time.Hour)}
	b := domicile.Migration{ID: "m-000000000000000b", Plan: []byte(`{"id":"b"}`), State: "planned", Created: t0}
	for _, m := range []domicile.Migration{a, b} {
		if err := c.PutMigration(ctx, m, []domicile.MigrationSubject{moving(m.ID, "alice")}); err != nil {
			t.Fatalf("PutMigration(%s): %v", m.ID, err)
		}
	}
	again := a
	again.Plan = []byte(`{"id":"other"}`)
	if err := c.PutMigration(ctx, again, []domicile.MigrationSubject{moving(a.ID, "bob")}); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("PutMigration of a stored id = %v, want ErrVersionMismatch", err)
	}
	if ss, err := c.MigrationSubjects(ctx, a.ID, domicile.SubjectRef{}, 10); err != nil || len(ss) != 1 {
		t.Errorf("a refused PutMigration stored its subjects: %d subjects, %v", len(ss), err)
	}
	got, err := c.Migration(ctx, a.ID)
	if err != nil {
		t.Fatalf("Migration: %v", err)
	}
	if d := cmp.Diff(a, *got, cmpOpts...); d != "" {
		t.Errorf("Migration (-want +got):\n%s", d)
	}
	ms, err := c.Migrations(ctx)
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	if len(ms) != 2 || ms[0].ID != b.ID || ms[1].ID != a.ID {
		t.Errorf("Migrations = %v, want b then a (oldest first)", ms)
	}

	a.State, a.Started, a.Finished = "done", t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	a.Options, a.Report = []byte(`{"retention":0}`), []byte("signed report\n")
	a.Plan = []byte(`{"id":"not replaced"}`)
	if err := c.UpdateMigration(ctx, a); err != nil {
		t.Fatalf("UpdateMigration: %v", err)
	}
	got, err = c.Migration(ctx, a.ID)
	if err != nil {
		t.Fatalf("Migration: %v", err)
	}
	want := a
	want.Plan = []byte(`{"id":"a"}`)
	if d := cmp.Diff(want, *got, cmpOpts...); d != "" {
		t.Errorf("Migration after UpdateMigration (-want +got; the plan stays):\n%s", d)
	}
	if err := c.UpdateMigration(ctx, domicile.Migration{ID: "m-00000000000000ff", State: "running"}); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("UpdateMigration(unknown) = %v, want ErrNotFound", err)
	}
}

func testMigrationSubjects(t *testing.T, c MigrationControl) {
	ctx := context.Background()
	const plan = "m-0000000000000001"
	var subjects []domicile.MigrationSubject
	for i := range 25 {
		subjects = append(subjects, moving(plan, fmt.Sprint("subject ", i)))
	}
	if err := c.PutMigration(ctx, domicile.Migration{ID: plan, Plan: []byte("{}"), State: "planned", Created: t0}, subjects); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	if err := c.PutMigration(ctx, domicile.Migration{ID: "m-0000000000000002", Plan: []byte("{}"), State: "planned", Created: t0},
		[]domicile.MigrationSubject{moving("m-0000000000000002", "subject 0")}); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	list := func() []domicile.MigrationSubject {
		t.Helper()
		var all []domicile.MigrationSubject
		var after domicile.SubjectRef
		for page := 0; ; page++ {
			ss, err := c.MigrationSubjects(ctx, plan, after, 10)
			if err != nil {
				t.Fatalf("MigrationSubjects: %v", err)
			}
			if len(ss) > 10 {
				t.Fatalf("MigrationSubjects returned %d, over its limit of 10", len(ss))
			}
			all = append(all, ss...)
			if len(ss) < 10 {
				return all
			}
			after = ss[len(ss)-1].Key
			if page > 5 {
				t.Fatal("MigrationSubjects does not end")
			}
		}
	}
	all := list()
	if len(all) != len(subjects) {
		t.Fatalf("MigrationSubjects listed %d subjects, want %d", len(all), len(subjects))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Key.String() >= all[i].Key.String() {
			t.Fatalf("MigrationSubjects not by key: %s then %s", all[i-1].Key, all[i].Key)
		}
	}
	byKey := map[domicile.SubjectRef]domicile.MigrationSubject{}
	for _, s := range subjects {
		byKey[s.Key] = s
	}
	for _, s := range all {
		if d := cmp.Diff(byKey[s.Key], s, cmpOpts...); d != "" {
			t.Errorf("stored subject (-want +got):\n%s", d)
		}
	}

	s := all[3]
	s.State, s.SourceDigest, s.TargetDigest, s.OutIndex, s.InIndex = domicile.MoveCopied, "d-src", "d-dst", 17, 4
	s.Records, s.Objects, s.Bytes, s.Transfer, s.Updated = 3, 2, 1<<33, "t-1", t0.Add(time.Minute)
	if err := c.PutMigrationSubject(ctx, s); err != nil {
		t.Fatalf("PutMigrationSubject: %v", err)
	}
	all = list()
	if len(all) != len(subjects) {
		t.Fatalf("after PutMigrationSubject of a stored subject: %d subjects, want %d (replaced, not added)", len(all), len(subjects))
	}
	if d := cmp.Diff(s, all[3], cmpOpts...); d != "" {
		t.Errorf("subject after PutMigrationSubject (-want +got):\n%s", d)
	}
	if ss, err := c.MigrationSubjects(ctx, "m-0000000000000002", domicile.SubjectRef{}, 10); err != nil || len(ss) != 1 || ss[0].State != domicile.MovePlanned {
		t.Errorf("another plan's subjects = %+v, %v; want its one planned subject", ss, err)
	}
}

func testSwitchHome(t *testing.T, c MigrationControl) {
	ctx := context.Background()
	const plan = "m-0000000000000001"
	s := moving(plan, "alice")
	if err := c.PutHome(ctx, s.Key, domicile.Home{Cell: s.From, Ref: s.Ref}); err != nil {
		t.Fatalf("PutHome: %v", err)
	}
	if err := c.PutMigration(ctx, domicile.Migration{ID: plan, Plan: []byte("{}"), State: "running", Created: t0}, []domicile.MigrationSubject{s}); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	switched := s
	switched.State, switched.Switched, switched.Updated, switched.SourceDigest, switched.TargetDigest = domicile.MoveSwitched, t0.Add(time.Hour), t0.Add(time.Hour), "d", "d"
	for _, tc := range []struct {
		name string
		edit func(*domicile.MigrationSubject)
	}{
		{"from another cell", func(x *domicile.MigrationSubject) { x.From = "us-east1" }},
		{"of another registration", func(x *domicile.MigrationSubject) { x.Ref = Ref("reg alice, again") }},
		{"of a key not in the directory", func(x *domicile.MigrationSubject) { x.Key = Ref("nobody") }},
	} {
		x := switched
		tc.edit(&x)
		if err := c.SwitchHome(ctx, x); !errors.Is(err, domicile.ErrVersionMismatch) {
			t.Errorf("SwitchHome %s = %v, want ErrVersionMismatch", tc.name, err)
		}
	}
	if h, err := c.Home(ctx, s.Key); err != nil || h != (domicile.Home{Cell: s.From, Ref: s.Ref}) {
		t.Errorf("Home after refused switches = %+v, %v; want unchanged", h, err)
	}
	if ss, err := c.MigrationSubjects(ctx, plan, domicile.SubjectRef{}, 10); err != nil || len(ss) != 1 || ss[0].State != domicile.MovePlanned {
		t.Errorf("subjects after refused switches = %+v, %v; want alice still planned", ss, err)
	}
	if err := c.SwitchHome(ctx, switched); err != nil {
		t.Fatalf("SwitchHome: %v", err)
	}
	if h, err := c.Home(ctx, s.Key); err != nil || h != (domicile.Home{Cell: s.To, Ref: s.Ref}) {
		t.Errorf("Home after SwitchHome = %+v, %v; want %s with the same reference", h, err, s.To)
	}
	ss, err := c.MigrationSubjects(ctx, plan, domicile.SubjectRef{}, 10)
	if err != nil || len(ss) != 1 {
		t.Fatalf("MigrationSubjects = %v, %v", ss, err)
	}
	if d := cmp.Diff(switched, ss[0], cmpOpts...); d != "" {
		t.Errorf("subject after SwitchHome (-want +got):\n%s", d)
	}
	if err := c.SwitchHome(ctx, switched); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("SwitchHome again = %v, want ErrVersionMismatch (the entry names the target now)", err)
	}
}

// testSwitchHomeRace switches one subject from many goroutines at once,
// each to its own cell: exactly one switch wins, and the directory names
// its cell.
func testSwitchHomeRace(t *testing.T, c MigrationControl) {
	ctx := context.Background()
	const plan = "m-0000000000000001"
	s := moving(plan, "raced")
	if err := c.PutHome(ctx, s.Key, domicile.Home{Cell: s.From, Ref: s.Ref}); err != nil {
		t.Fatalf("PutHome: %v", err)
	}
	if err := c.PutMigration(ctx, domicile.Migration{ID: plan, Plan: []byte("{}"), State: "running", Created: t0}, []domicile.MigrationSubject{s}); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	const n = 12
	var wg sync.WaitGroup
	won := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := s
			x.To, x.State, x.Switched = fmt.Sprint("cell-", i), domicile.MoveSwitched, t0
			switch err := c.SwitchHome(ctx, x); {
			case err == nil:
				won <- x.To
			case !errors.Is(err, domicile.ErrVersionMismatch):
				t.Errorf("SwitchHome: %v", err)
			}
		}()
	}
	wg.Wait()
	close(won)
	var winners []string
	for w := range won {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("%d switches won (%v), want exactly 1", len(winners), winners)
	}
	if h, err := c.Home(ctx, s.Key); err != nil || h.Cell != winners[0] {
		t.Errorf("Home = %+v, %v; want the winner %s", h, err, winners[0])
	}
}

func testHomesIn(t *testing.T, c MigrationControl) {
	ctx := context.Background()
	want := map[string][]domicile.HomeEntry{}
	for i := range 23 {
		cell := []string{"cn-gz1", "eu-fra1"}[i%2]
		e := domicile.HomeEntry{Key: Ref(fmt.Sprint("key ", i)), Home: domicile.Home{Cell: cell, Ref: Ref(fmt.Sprint("reg ", i))}}
		if err := c.PutHome(ctx, e.Key, e.Home); err != nil {
			t.Fatalf("PutHome: %v", err)
		}
		want[cell] = append(want[cell], e)
	}
	homes := func(cell string) []domicile.HomeEntry {
		t.Helper()
		var all []domicile.HomeEntry
		var after domicile.SubjectRef
		for {
			hs, err := c.HomesIn(ctx, cell, after, 5)
			if err != nil {
				t.Fatalf("HomesIn(%s): %v", cell, err)
			}
			if len(hs) > 5 {
				t.Fatalf("HomesIn returned %d, over its limit of 5", len(hs))
			}
			all = append(all, hs...)
			if len(hs) < 5 {
				return all
			}
			after = hs[len(hs)-1].Key
		}
	}
	for cell, entries := range want {
		got := homes(cell)
		if len(got) != len(entries) {
			t.Fatalf("HomesIn(%s) listed %d, want %d", cell, len(got), len(entries))
		}
		byKey := map[domicile.SubjectRef]domicile.HomeEntry{}
		for _, e := range entries {
			byKey[e.Key] = e
		}
		for i, e := range got {
			if byKey[e.Key] != e {
				t.Errorf("HomesIn(%s) entry %+v, want %+v", cell, e, byKey[e.Key])
			}
			if i > 0 && got[i-1].Key.String() >= e.Key.String() {
				t.Errorf("HomesIn(%s) not by key", cell)
			}
		}
	}
	if hs, err := c.HomesIn(ctx, "us-east1", domicile.SubjectRef{}, 5); err != nil || len(hs) != 0 {
		t.Errorf("HomesIn(a cell with none) = %v, %v", hs, err)
	}
	// A switch moves the entry from one cell's list to the other's.
	e := want["cn-gz1"][0]
	s := domicile.MigrationSubject{Plan: "m-0000000000000001", Key: e.Key, Ref: e.Home.Ref, From: "cn-gz1", To: "eu-fra1", Jurisdiction: "CN",
		State: domicile.MoveSwitched, OutIndex: -1, InIndex: -1, Switched: t0, Updated: t0}
	if err := c.SwitchHome(ctx, s); err != nil {
		t.Fatalf("SwitchHome: %v", err)
	}
	if n := len(homes("cn-gz1")); n != len(want["cn-gz1"])-1 {
		t.Errorf("HomesIn(cn-gz1) after a switch away = %d, want %d", n, len(want["cn-gz1"])-1)
	}
	if n := len(homes("eu-fra1")); n != len(want["eu-fra1"])+1 {
		t.Errorf("HomesIn(eu-fra1) after a switch in = %d, want %d", n, len(want["eu-fra1"])+1)
	}
}
