package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"domicile"
	"domicile/domiciletest"
	"domicile/merkle"
	"domicile/sqlite"
)

func mustOpen(tb testing.TB, dir string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// TestCloseWithConcurrentCommits runs domiciletest.TestCellStoreClose.
func TestCloseWithConcurrentCommits(t *testing.T) {
	domiciletest.TestCellStoreClose(t, func(t *testing.T) domicile.CellStore { return mustOpen(t, t.TempDir()) })
}

// TestReopen checks that a closed store reopens with its log whole and
// continues it: the first appends after Open find the hashes they need in
// the database, not in the writer's cache.
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
		for k := range 2 + round*7 {
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

// crashDirEnv names the store directory of the child process that
// TestCrashDurability kills.
const crashDirEnv = "DOMICILE_SQLITE_CRASH_CHILD_DIR"

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

// TestCrashDurability kills (SIGKILL) a process that is group-committing
// batches from several goroutines, then reopens its store: every batch
// the process acknowledged must be there, whole, and the log must verify.
// A killed process loses nothing the kernel already holds, so this tests
// acknowledgement order and recovery, not the fsync itself.
func TestCrashDurability(t *testing.T) {
	for run := range 2 {
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
			if acks == 300+200*run {
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
}

// TestHashTilesReopenAndRebuild grows a log past the first tile of level 1
// (65,536 leaves), reopening the store at sizes on both sides of tile
// boundaries, then loses every stored tile (as a database written before
// tiles existed would lack them) and reopens: each time, every stored hash
// must equal tlog's, computed in memory from the leaves.
func TestHashTilesReopenAndRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 66,000 events")
	}
	ctx := context.Background()
	dir := t.TempDir()
	mem := merkle.MemoryHashes{}
	checkAll := func(s *sqlite.Store) {
		t.Helper()
		n, _ := s.LogSize(ctx)
		if n != mem.Size() {
			t.Fatalf("log size %d, want %d", n, mem.Size())
		}
		ids := make([]int64, tlog.StoredHashIndex(0, n))
		for i := range ids {
			ids[i] = int64(i)
		}
		got, err := s.ReadHashes(ctx, ids)
		if err != nil {
			t.Fatalf("ReadHashes at %d: %v", n, err)
		}
		want, _ := mem.ReadHashes(ids)
		for i := range ids {
			if got[i] != [32]byte(want[i]) {
				t.Fatalf("size %d: stored hash %d differs from tlog's", n, i)
			}
		}
		if _, err := s.ReadHashes(ctx, []int64{int64(len(ids))}); err == nil {
			t.Fatalf("size %d: ReadHashes beyond the log succeeded", n)
		}
	}
	s := mustOpen(t, dir)
	for _, stop := range []int64{255, 256, 700, 65_535, 65_536, 66_000} {
		for mem.Size() < stop {
			b := &domicile.Batch{}
			for range min(int64(500), stop-mem.Size()) {
				e := domiciletest.NewEntry(domiciletest.Ref("tiles"))
				b.Events = append(b.Events, e)
				if _, err := mem.Append(e.Leaf); err != nil {
					t.Fatal(err)
				}
			}
			domiciletest.MustCommit(t, ctx, s, b)
		}
		checkAll(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, dir)
		checkAll(s)
	}
	s.Close()

	// A database written before tiles existed: a table of hash rows and
	// no tile files.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "cell.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE hashes(id INTEGER PRIMARY KEY, hash BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.RemoveAll(filepath.Join(dir, "hashes")); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	defer s.Close()
	checkAll(s)
	domiciletest.CheckLog(t, ctx, s)
	db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "cell.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name='hashes'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("old hash rows still there (%d tables, %v)", tables, err)
	}
}

func TestBackup(t *testing.T) {
	domiciletest.TestBackup(t, func(t *testing.T, dir string) domicile.CellStore { return mustOpen(t, dir) })
}
