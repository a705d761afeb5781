package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/domiciletest"
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
