package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"domicile"
	"domicile/domiciletest"
	"domicile/postgres"
)

const dsnEnv = "DOMICILE_TEST_POSTGRES"

// testDSN returns the DSN of the test server, or skips the test.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		tb.Skip("set DOMICILE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable to run the PostgreSQL tests (bash .ci/run does)")
	}
	return dsn
}

// poolDSN returns the test server's DSN with a small pool, so that the
// suites' parallel subtests stay well under the server's max_connections
// on machines with many cores.
func poolDSN(tb testing.TB) string {
	tb.Helper()
	dsn := testDSN(tb)
	if strings.Contains(dsn, "pool_max_conns") {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&pool_max_conns=3"
	}
	return dsn + "?pool_max_conns=3"
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(tb testing.TB) string {
	tb.Helper()
	dsn := testDSN(tb)
	var b [6]byte
	rand.Read(b[:])
	schema := "domicile_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func mustOpen(tb testing.TB, schema, blobDir string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), poolDSN(tb), schema, blobDir)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestCellStoreConformance(t *testing.T) {
	domiciletest.TestCellStore(t, func(t *testing.T) domicile.CellStore {
		return mustOpen(t, newSchema(t), t.TempDir())
	})
}

func TestCellStoreClose(t *testing.T) {
	domiciletest.TestCellStoreClose(t, func(t *testing.T) domicile.CellStore {
		return mustOpen(t, newSchema(t), t.TempDir())
	})
}

func TestKeyStoreConformance(t *testing.T) {
	domiciletest.TestKeyStore(t, func(t *testing.T) domicile.KeyStore {
		k, err := postgres.OpenKeyStore(context.Background(), poolDSN(t), newSchema(t))
		if err != nil {
			t.Fatalf("OpenKeyStore: %v", err)
		}
		return k
	})
}

func TestControlStoreConformance(t *testing.T) {
	domiciletest.TestControlStore(t, func(t *testing.T) domicile.ControlStore {
		c, err := postgres.OpenControl(context.Background(), poolDSN(t), newSchema(t))
		if err != nil {
			t.Fatalf("OpenControl: %v", err)
		}
		return c
	})
}

func TestMigrationStoreConformance(t *testing.T) {
	domiciletest.TestMigrationStore(t, func(t *testing.T) domiciletest.MigrationControl {
		c, err := postgres.OpenControl(context.Background(), poolDSN(t), newSchema(t))
		if err != nil {
			t.Fatalf("OpenControl: %v", err)
		}
		return c
	})
}

func TestOpenRejectsBadSchemaName(t *testing.T) {
	dsn := testDSN(t)
	for _, name := range []string{"", "Upper", "a-b", "a;drop", `"x"`, strings.Repeat("a", 64)} {
		if s, err := postgres.Open(context.Background(), dsn, name, t.TempDir()); err == nil {
			s.Close()
			t.Errorf("Open(schema %q) succeeded, want an error", name)
		}
	}
}

// TestAppendsAcrossReopens appends concurrently, in batches of several
// events, closing and reopening the store between rounds, so that the
// writer's partial tiles are rebuilt from the database each time and
// tiles complete across group and reopen boundaries: the log must verify
// all the same.
func TestAppendsAcrossReopens(t *testing.T) {
	ctx := context.Background()
	schema, dir := newSchema(t), t.TempDir()
	var leaves int
	for round := range 3 {
		s, err := postgres.Open(ctx, poolDSN(t), schema, dir)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 12 {
					b := &domicile.Batch{}
					for range 1 + (g+k+round)%5 {
						b.Events = append(b.Events, domiciletest.NewEntry(domiciletest.Ref("reopen")))
					}
					if err := s.Commit(ctx, b); err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		leaves = len(domiciletest.CheckLog(t, ctx, s))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if leaves < 500 {
		t.Errorf("log of %d leaves, want several hundred", leaves)
	}
}

// TestCommitAfterClose checks that a Commit after Close fails at once.
func TestCommitAfterClose(t *testing.T) {
	s := mustOpen(t, newSchema(t), t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := s.Commit(context.Background(), &domicile.Batch{}); err == nil {
			t.Fatal("Commit after Close succeeded, want an error")
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestWriterReconnects kills the writer's server connection: the group
// in flight fails, and the next batches commit on a new connection with
// the log still whole.
func TestWriterReconnects(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := mustOpen(t, schema, t.TempDir())
	defer s.Close()
	ref := domiciletest.Ref("reconnect")
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}})
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var killed int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		postgres.WriterApplicationName(schema)).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d writer sessions, want 1", killed)
	}
	var failed int
	for i := range 5 {
		e := domiciletest.NewEntry(ref)
		err := s.Commit(ctx, &domicile.Batch{Events: []*domicile.LogEntry{e}})
		if err != nil {
			failed++
			if i > 1 {
				t.Fatalf("Commit %d after the connection was killed: %v", i, err)
			}
		}
	}
	domiciletest.CheckLog(t, ctx, s)
	t.Logf("%d sessions terminated, %d commits failed before the writer reconnected", killed, failed)
}

const (
	crashSchemaEnv = "DOMICILE_POSTGRES_CRASH_CHILD_SCHEMA"
	crashDirEnv    = "DOMICILE_POSTGRES_CRASH_CHILD_DIR"
)

// TestCrashChild is the child process of TestCrashDurability; it is
// skipped in a normal run.
func TestCrashChild(t *testing.T) {
	schema := os.Getenv(crashSchemaEnv)
	if schema == "" {
		t.Skip("the child process of TestCrashDurability (it sets " + crashSchemaEnv + ")")
	}
	s := mustOpen(t, schema, os.Getenv(crashDirEnv))
	err := domiciletest.CrashWriter(context.Background(), s, os.Stdout)
	t.Fatalf("CrashWriter returned before it was killed: %v", err)
}

// TestCrashDurability kills (SIGKILL) a process that is group-committing
// batches, then reopens its store: every acknowledged batch must be there
// and the log must verify. The server keeps running: this tests the
// client's acknowledgements and recovery, not the server's fsync.
func TestCrashDurability(t *testing.T) {
	schema, dir := newSchema(t), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashSchemaEnv+"="+schema, crashDirEnv+"="+dir)
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
		if acks == 400 {
			cmd.Process.Kill()
		}
	}
	deadline.Stop()
	err = cmd.Wait()
	if acks < 400 {
		t.Fatalf("child acknowledged %d batches before it ended (%v); stderr:\n%s", acks, err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child ended with %v, want killed", err)
	}
	s := mustOpen(t, schema, dir)
	defer s.Close()
	domiciletest.CheckCrashRecovery(t, context.Background(), s, output.Bytes())
}

func BenchmarkCommit1KParallel(b *testing.B) {
	s := mustOpen(b, newSchema(b), b.TempDir())
	defer s.Close()
	domiciletest.BenchCommit1KParallel(b, s)
}

// TestStatementErrorFailsAlone commits, among concurrent batches, batches
// that the server refuses (a NUL byte in a TEXT column): each of those
// fails alone, and the others commit with a whole log.
func TestStatementErrorFailsAlone(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, newSchema(t), t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := domiciletest.Ref(fmt.Sprint("refused ", g))
			for k := range 10 {
				bad := (g+k)%4 == 0
				j := domicile.Jurisdiction("CN")
				if bad {
					j = "C\x00N"
				}
				sub := &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: domiciletest.Ref(fmt.Sprint(g, "/", k)), Jurisdiction: j, Created: time.Now()}}
				err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{sub}, Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}})
				switch {
				case bad && err == nil:
					t.Errorf("batch %d/%d with a NUL byte committed", g, k)
				case bad && errors.Is(err, domicile.ErrVersionMismatch):
					t.Errorf("batch %d/%d with a NUL byte: %v, want the server's error", g, k, err)
				case !bad && err != nil:
					t.Errorf("batch %d/%d: %v", g, k, err)
				}
				_, serr := s.Subject(ctx, sub.Subject.Ref)
				if bad != errors.Is(serr, domicile.ErrNotFound) {
					t.Errorf("batch %d/%d (refused: %v): Subject = %v", g, k, bad, serr)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(domiciletest.CheckLog(t, ctx, s)); n != 120 {
		t.Errorf("log of %d entries, want 120", n)
	}
}
