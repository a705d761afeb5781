package pebblestore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"domicile"
	"domicile/domiciletest"
	"domicile/internal/hashtile"
)

func mustOpen(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestCellStoreConformance(t *testing.T) {
	domiciletest.TestCellStore(t, func(t *testing.T) domicile.CellStore { return mustOpen(t, t.TempDir()) })
}

// TestCloseWithConcurrentCommits runs domiciletest.TestCellStoreClose.
func TestCloseWithConcurrentCommits(t *testing.T) {
	domiciletest.TestCellStoreClose(t, func(t *testing.T) domicile.CellStore { return mustOpen(t, t.TempDir()) })
}

// TestReopen checks that a closed store reopens with its log whole and
// continues it.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var want [][]byte
	for round := range 4 {
		s := mustOpen(t, dir)
		got := domiciletest.CheckLog(t, ctx, s)
		if len(got) != len(want) {
			t.Fatalf("round %d: reopened log has %d leaves, want %d", round, len(got), len(want))
		}
		for k := range 2 + round*70 {
			b := &domicile.Batch{}
			for range 1 + k%4 {
				e := domiciletest.NewEntry(domiciletest.Ref("reopen"))
				b.Events = append(b.Events, e)
				want = append(want, e.Leaf)
			}
			domiciletest.MustCommit(t, ctx, s, b)
		}
		if err := s.PutMeta(ctx, "round", []byte{byte(round)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	s := mustOpen(t, dir)
	defer s.Close()
	if got := domiciletest.CheckLog(t, ctx, s); len(got) != len(want) {
		t.Fatalf("log has %d leaves, want %d", len(got), len(want))
	}
	if v, err := s.Meta(ctx, "round"); err != nil || !bytes.Equal(v, []byte{3}) {
		t.Errorf("Meta(round) = %v, %v; want [3]", v, err)
	}
}

// TestLogIntegrity runs the integrity suite: tiles are tampered with in
// their files, events in the Pebble database.
func TestLogIntegrity(t *testing.T) {
	domiciletest.TestLogIntegrity(t, func(t *testing.T) (func() domiciletest.IntegrityStore, domiciletest.Tamper) {
		dir := t.TempDir()
		open := func() domiciletest.IntegrityStore { return mustOpen(t, dir) }
		edit := func(t *testing.T, fn func(db *pebble.DB) error) {
			t.Helper()
			db, err := pebble.Open(filepath.Join(dir, "pebble"), &pebble.Options{Logger: quietLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := fn(db); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return open, domiciletest.Tamper{
			FlipHash: func(t *testing.T, id int64) { flipTileHash(t, dir, id) },
			SetEvent: func(t *testing.T, idx int64, column string, value []byte) {
				edit(t, func(db *pebble.DB) error {
					v, c, err := db.Get(eventKey(idx))
					if err != nil {
						return err
					}
					ev, err := decEvent(idx, v)
					c.Close()
					if err != nil {
						return err
					}
					switch column {
					case "leaf":
						ev.Leaf = value
					case "committed":
						ev.Committed = value
					default:
						return fmt.Errorf("no column %q", column)
					}
					return db.Set(eventKey(idx), encEvent(ev.Ref, ev.Time, ev.Leaf, ev.Committed, ev.Salt), pebble.Sync)
				})
			},
			DeleteEventsFrom: func(t *testing.T, idx int64) {
				edit(t, func(db *pebble.DB) error {
					return db.DeleteRange(eventKey(idx), []byte{tEvent + 1}, pebble.Sync)
				})
			},
		}
	})
}

// flipTileHash flips one byte of stored hash id in its tile file.
func flipTileHash(t *testing.T, dir string, id int64) {
	t.Helper()
	k, pos := hashtile.Locate(id)
	f, err := os.OpenFile(filepath.Join(dir, "hashes", "level"+strconv.Itoa(k.Level)+".tiles"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := k.N*hashtile.TileBytes + int64(pos)*32 + 7
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("hash %d is not in a stored tile: %v", id, err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// crashDirEnv names the store directory of the child process that
// TestCrashDurability kills.
const crashDirEnv = "DOMICILE_PEBBLE_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestCrashDurability; it is
// skipped in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashDurability (it sets " + crashDirEnv + ")")
	}
	s := mustOpen(t, dir)
	err := domiciletest.CrashWriter(context.Background(), s, os.Stdout)
	t.Fatalf("CrashWriter returned before it was killed: %v", err)
}

// TestCrashDurability kills (SIGKILL) a process that is committing batches
// from several goroutines, then reopens its store: every batch the process
// acknowledged must be there, whole, at the indexes it was given, and the
// log must verify.
func TestCrashDurability(t *testing.T) {
	for run := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var output bytes.Buffer
		acks := 0
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(&output, sc.Text())
			if strings.HasPrefix(sc.Text(), "ack ") {
				acks++
			}
			if acks == 300+700*run {
				cmd.Process.Kill()
			}
		}
		deadline.Stop()
		err = cmd.Wait()
		if acks < 300 {
			t.Fatalf("run %d: child acknowledged %d batches before it ended (%v); stderr:\n%s\nstdout:\n%s", run, acks, err, stderr.String(), output.String())
		}
		s := mustOpen(t, dir)
		domiciletest.CheckCrashRecovery(t, context.Background(), s, output.Bytes())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkCommit1KParallel(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	defer s.Close()
	domiciletest.BenchCommit1KParallel(b, s)
	// How much of the time the one serial part of a commit was held.
	b.ReportMetric(float64(s.critical.Load())/float64(b.Elapsed()), "critical-section-busy")
}

// TestConcurrentExpectations races writers on one record, each reading
// the current version and writing the next one expecting it: every
// version is written exactly once, the versions acknowledged are exactly
// 1..n, and the log holds one event per acknowledged write, in order.
func TestConcurrentExpectations(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	ref := domiciletest.Ref("contended")
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}}}})
	const writers, tries = 16, 40
	won := make(chan int64, writers*tries)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				var cur int64
				if r, err := s.Record(ctx, ref, "k", "x"); err == nil {
					cur = r.Version
				}
				err := s.Commit(ctx, &domicile.Batch{
					Ops:    []domicile.Op{&domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: "x", Version: cur + 1, Body: []byte{1}}, Expect: cur}},
					Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)},
				})
				switch {
				case err == nil:
					won <- cur + 1
				case !errors.Is(err, domicile.ErrVersionMismatch):
					t.Errorf("Commit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(won)
	seen := map[int64]bool{}
	for v := range won {
		if seen[v] {
			t.Fatalf("version %d acknowledged twice", v)
		}
		seen[v] = true
	}
	r, err := s.Record(ctx, ref, "k", "x")
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(seen)) != r.Version {
		t.Fatalf("%d writes acknowledged, record at version %d", len(seen), r.Version)
	}
	for v := int64(1); v <= r.Version; v++ {
		if !seen[v] {
			t.Fatalf("version %d missing", v)
		}
	}
	if n := len(domiciletest.CheckLog(t, ctx, s)); n != len(seen) {
		t.Fatalf("log of %d events for %d acknowledged writes", n, len(seen))
	}
}

// TestCellSubjects lists subjects with their live records' fields per
// kind, leaving out deleted records and erased subjects.
func TestCellSubjects(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	a, b, c := domiciletest.Ref("a"), domiciletest.Ref("b"), domiciletest.Ref("c")
	rec := func(ref domicile.SubjectRef, kind, id string, fields ...string) domicile.Op {
		return &domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: kind, ID: id, Version: 1, Body: []byte{1}, Fields: fields}, Expect: domicile.NoVersion}
	}
	var ops []domicile.Op
	for _, r := range []domicile.SubjectRef{a, b, c} {
		ops = append(ops, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: r, Jurisdiction: "CN"}})
	}
	ops = append(ops, rec(a, "profile", "main", "name", "phone"), rec(a, "message", "m1", "body"), rec(a, "profile", "alt", "name", "email"), rec(b, "message", "gone", "body"))
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: ops})
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.DeleteRecord{Ref: b, Kind: "message", ID: "gone", Expect: 1}}})
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: c}}})
	got, err := s.CellSubjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]string{
		a.String(): {"profile": {"email", "name", "phone"}, "message": {"body"}},
		b.String(): {},
	}
	if len(got) != len(want) {
		t.Fatalf("CellSubjects = %v, want %d subjects", got, len(want))
	}
	for _, si := range got {
		w, ok := want[si.Ref]
		if !ok || si.Jurisdiction != "CN" || len(si.Fields) != len(w) {
			t.Fatalf("subject %s: %v", si.Ref, si)
		}
		for kind, fs := range w {
			g := slices.Clone(si.Fields[kind])
			slices.Sort(g)
			if !slices.Equal(g, fs) {
				t.Errorf("subject %s kind %s: fields %v, want %v", si.Ref, kind, g, fs)
			}
		}
	}
}

// TestErasureLeavesNoReference erases a subject and then searches every
// file of the store, Pebble's tables, write-ahead logs and manifest
// included, for its reference, its records' sealed bytes and anything
// that links its slot to it: an LSM keeps deleted values until a
// compaction drops them, and Pebble would recycle old logs with their
// records, so the store compacts what an erasure deleted and removes
// obsolete files. The manifest keeps the key bounds of dropped tables
// until it rolls over; the test arranges for the erased subject's slot to
// be such a bound, and checks, for every table Pebble wrote, that no
// bound holds the reference and that no table is bounded by both the
// subject's slot and its name.
func TestErasureLeavesNoReference(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	var bounds [][2][]byte // of every table written
	add := func(ts ...pebble.TableInfo) {
		mu.Lock()
		defer mu.Unlock()
		for _, ti := range ts {
			bounds = append(bounds, [2][]byte{slices.Clone(ti.Smallest.UserKey), slices.Clone(ti.Largest.UserKey)})
		}
	}
	tableListener = &pebble.EventListener{
		FlushEnd:      func(i pebble.FlushInfo) { add(i.Output...) },
		CompactionEnd: func(i pebble.CompactionInfo) { add(i.Output.Tables...) },
	}
	defer func() { tableListener = nil }()
	s := mustOpen(t, dir)
	// The erased subject's slot sorts before the other's, so that its
	// keys are the smallest of the tables its rows are flushed to, which
	// the manifest records. (Both slots are bytes that occur nowhere by
	// chance.)
	goneSlot := slot([]byte("\x00\x01gone-slot-xyzw"))
	keptSlot := slot([]byte("\x7f\x01kept-slot-xyzw"))
	s.rand = io.MultiReader(bytes.NewReader(goneSlot[:]), bytes.NewReader(keptSlot[:]), rand.Reader)
	kept := domiciletest.Ref("kept")
	gone := domiciletest.Ref("gone")
	goneName := s.nameOf(gone)
	marker := []byte("SEALED-BODY-OF-THE-ERASED-SUBJECT")
	for _, ref := range []domicile.SubjectRef{gone, kept} {
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}})
	}
	if sl, ok, err := s.slotOf(gone); err != nil || !ok || sl != goneSlot {
		t.Fatalf("slot of the subject to erase: %x, %v, %v", sl, ok, err)
	}
	// The names (which sort before the slots' keys) in a table of their
	// own, so that the next tables start with the erased subject's rows.
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		for _, ref := range []domicile.SubjectRef{gone, kept} {
			body := []byte("other")
			if ref == gone {
				body = marker
			}
			domiciletest.MustCommit(t, ctx, s, &domicile.Batch{
				Ops:    []domicile.Op{&domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: fmt.Sprint(i), Version: 1, Body: body}, Expect: domicile.NoVersion}},
				Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)},
			})
		}
		if i == 150 {
			// Some of it in tables, some still in the memtable and its log.
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: gone}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(domicile.SubjectRef{})}})
	// Writes after the erasure, through a flush and a compaction, as a
	// serving store goes on.
	for i := range 50 {
		domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: domicile.StoredRecord{Ref: kept, Kind: "after", ID: fmt.Sprint(i), Version: 1, Body: []byte("later")}, Expect: domicile.NoVersion}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(kept)}})
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	refHex := []byte(gone.String())
	boundSlot := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := path[len(dir):]
		if bytes.Contains(b, marker) {
			t.Errorf("%s still holds the erased subject's data", name)
		}
		if bytes.Contains(b, gone[:]) || bytes.Contains(b, refHex) {
			t.Errorf("%s still holds the erased subject's reference", name)
		}
		if !strings.HasPrefix(filepath.Base(path), "MANIFEST") {
			if bytes.Contains(b, goneSlot[:]) {
				t.Errorf("%s still holds a key of the erased subject's slot", name)
			}
			if bytes.Contains(b, goneName[1:]) {
				t.Errorf("%s still holds the erased subject's name", name)
			}
			return nil
		}
		if bytes.Contains(b, goneSlot[:]) {
			boundSlot = true
		}
		return nil
	})
	if !boundSlot {
		t.Fatal("no manifest holds the erased subject's slot as a table's bound: the test did not arrange what it checks")
	}
	// The manifest's bounds: those of every table written since the store
	// was opened (it has not rolled over since).
	mu.Lock()
	written := slices.Clone(bounds)
	mu.Unlock()
	for _, b := range written {
		lo, hi := b[0], b[1]
		if bytes.Contains(lo, gone[:]) || bytes.Contains(hi, gone[:]) {
			t.Errorf("a table is bounded by the erased reference: %q .. %q", lo, hi)
		}
		if (bytes.Contains(lo, goneSlot[:]) || bytes.Contains(hi, goneSlot[:])) && (bytes.Equal(lo, goneName) || bytes.Equal(hi, goneName)) {
			t.Errorf("a table is bounded by the erased subject's slot and its name: %q .. %q", lo, hi)
		}
	}
	s = mustOpen(t, dir)
	defer s.Close()
	domiciletest.CheckLog(t, ctx, s)
	if r, err := s.Records(ctx, kept, "k", "", "", 1000); err != nil || len(r) != 300 {
		t.Fatalf("the other subject's records: %d, %v", len(r), err)
	}
	if _, err := s.Subject(ctx, gone); !errors.Is(err, domicile.ErrNotFound) {
		t.Fatalf("Subject(erased) = %v, want ErrNotFound", err)
	}
}

func TestCensusConformance(t *testing.T) {
	domiciletest.TestCensus(t, func(t *testing.T) domicile.CellStore { return mustOpen(t, t.TempDir()) })
}

func TestSubjectHoldingsConformance(t *testing.T) {
	domiciletest.TestSubjectHoldings(t, func(t *testing.T) domicile.CellStore { return mustOpen(t, t.TempDir()) })
}

func TestBackup(t *testing.T) {
	domiciletest.TestBackup(t, func(t *testing.T, dir string) domicile.CellStore { return mustOpen(t, dir) })
}
