package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"domicile"
	"domicile/domiciletest"
	"domicile/postgres"
)

const migrateChildEnv = "DOMICILE_POSTGRES_MIGRATE_CHILD_SCHEMA"

// TestMigrateChild is the child process of TestMigrationsConcurrent: it
// waits until its standard input closes, then opens a cell store, a key
// store and a control store in one schema. It is skipped in a normal run.
func TestMigrateChild(t *testing.T) {
	schema := os.Getenv(migrateChildEnv)
	if schema == "" {
		t.Skip("the child process of TestMigrationsConcurrent (it sets " + migrateChildEnv + ")")
	}
	io.Copy(io.Discard, os.Stdin) // the start signal: every child is ready
	ctx := context.Background()
	cfg := postgres.Config{DSN: poolDSN(t), Schema: schema}
	s, err := postgres.OpenConfig(ctx, cfg, t.TempDir())
	if err != nil {
		t.Fatalf("open the cell store: %v", err)
	}
	defer s.Close()
	k, err := postgres.OpenKeyStoreConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open the key store: %v", err)
	}
	defer k.Close()
	c, err := postgres.OpenControlConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open the control store: %v", err)
	}
	defer c.Close()
	fmt.Println("opened")
}

// TestMigrationsConcurrent starts four processes at once on a new
// schema: each must open its stores, and every migration must be
// recorded exactly once. The migrations are not idempotent (CREATE TABLE
// without IF NOT EXISTS, ALTER TABLE ADD COLUMN), so a migration applied
// twice, or a schema created twice, would fail a process.
func TestMigrationsConcurrent(t *testing.T) {
	testDSN(t)
	for round := range 3 {
		schema := newSchema(t)
		var cmds []*exec.Cmd
		var stdins []io.WriteCloser
		outs := make([]strings.Builder, 4)
		for i := range 4 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), migrateChildEnv+"="+schema)
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, stdins = append(cmds, cmd), append(stdins, in)
		}
		time.Sleep(300 * time.Millisecond) // let the children start up; not a correctness wait
		for _, in := range stdins {
			in.Close()
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil || !strings.Contains(outs[i].String(), "opened") {
				t.Fatalf("round %d, process %d: %v\n%s", round, i, err, outs[i].String())
			}
		}
		checkMigrations(t, schema, map[string]int{"cell": postgres.Migrations("cell"), "keys": postgres.Migrations("keys"), "control": postgres.Migrations("control")})
	}
}

// checkMigrations checks that schema_migrations of schema records
// versions 1 to want[set] of each set, once each, and nothing else.
func checkMigrations(t *testing.T, schema string, want map[string]int) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT store, version, count(*) FROM `+schema+`.schema_migrations GROUP BY store, version ORDER BY store, version`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var set string
		var v, n int64
		if err := rows.Scan(&set, &v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 || v != int64(got[set]+1) {
			t.Errorf("schema_migrations: %s version %d recorded %d times (after %d)", set, v, n, got[set])
		}
		got[set]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for set, n := range want {
		if got[set] != n {
			t.Errorf("schema_migrations: %d versions of %s, want %d", got[set], set, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("schema_migrations: sets %v, want %v", got, want)
	}
}

// TestMigrationUpgrade leaves a schema at version 1 of each set, as an
// older binary would, with data in it; opening the stores applies the
// later migrations once, and the data is still there.
func TestMigrationUpgrade(t *testing.T) {
	ctx := context.Background()
	dsn := poolDSN(t)
	schema := newSchema(t)
	for _, set := range []string{"cell", "keys", "control"} {
		if applied, err := postgres.MigrateTo(ctx, testDSN(t), schema, set, 1); err != nil || len(applied) != 1 {
			t.Fatalf("MigrateTo(%s, 1) = %v, %v", set, applied, err)
		}
	}
	checkMigrations(t, schema, map[string]int{"cell": 1, "keys": 1, "control": 1})
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	ref := domiciletest.Ref("upgraded")
	if _, err := c.Exec(ctx, `INSERT INTO `+schema+`.subjects(ref, jurisdiction, created, key_gen) VALUES($1, 'CN', 1, 0)`, ref[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO `+schema+`.tokens(id, hash, role, jurisdiction, subject, created) VALUES('tok_old', '\x01', 'app', 'CN', '', 1)`); err != nil {
		t.Fatal(err)
	}
	// Version 1 of the cell set has no rights requests yet.
	if _, err := c.Exec(ctx, `SELECT 1 FROM `+schema+`.requests`); err == nil {
		t.Fatal("the requests table exists at cell version 1; the test no longer tests an upgrade")
	}

	cfg := postgres.Config{DSN: dsn, Schema: schema}
	s, err := postgres.OpenConfig(ctx, cfg, t.TempDir())
	if err != nil {
		t.Fatalf("open at version 1: %v", err)
	}
	defer s.Close()
	if sub, err := s.Subject(ctx, ref); err != nil || sub.Jurisdiction != "CN" {
		t.Fatalf("the subject written at version 1: %+v, %v", sub, err)
	}
	if rs, err := s.Requests(ctx, ref, "", 10); err != nil || len(rs) != 0 {
		t.Fatalf("Requests after the upgrade: %v, %v", rs, err)
	}
	ctl, err := postgres.OpenControlConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open the control store at version 1: %v", err)
	}
	defer ctl.Close()
	if tok, err := ctl.Token(ctx, "tok_old"); err != nil || tok.Note != "" || !tok.Revoked.IsZero() {
		t.Fatalf("the token written at version 1: %+v, %v", tok, err)
	}
	k, err := postgres.OpenKeyStoreConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	checkMigrations(t, schema, map[string]int{"cell": postgres.Migrations("cell"), "keys": postgres.Migrations("keys"), "control": postgres.Migrations("control")})
	// Opening again applies nothing.
	s2, err := postgres.OpenConfig(ctx, cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	checkMigrations(t, schema, map[string]int{"cell": postgres.Migrations("cell"), "keys": postgres.Migrations("keys"), "control": postgres.Migrations("control")})
}

// TestMigrationFromNewerBinary: a schema migrated past what this binary
// knows is refused, naming both versions.
func TestMigrationFromNewerBinary(t *testing.T) {
	ctx := context.Background()
	dsn := poolDSN(t)
	schema := newSchema(t)
	s, err := postgres.Open(ctx, dsn, schema, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `INSERT INTO `+schema+`.schema_migrations(store, version, name, applied) VALUES('cell', 99, 'future', 1)`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn, schema, t.TempDir())
	var ve *postgres.SchemaVersionError
	if !errors.As(err, &ve) || ve.Have != 99 || ve.Know != int64(postgres.Migrations("cell")) {
		t.Fatalf("Open of a schema at version 99 = %v, want a SchemaVersionError", err)
	}
}

// TestConfigRefused: settings out of range are refused, naming the
// field, before any connection.
func TestConfigRefused(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		cfg  postgres.Config
		want string
	}{
		{postgres.Config{DSN: "postgres://127.0.0.1:1/x", Schema: "a", MaxConns: -1}, "MaxConns"},
		{postgres.Config{DSN: "postgres://127.0.0.1:1/x", Schema: "a", StatementTimeout: time.Microsecond}, "StatementTimeout"},
		{postgres.Config{DSN: "postgres://127.0.0.1:1/x", Schema: "a", ConnectTimeout: -time.Second}, "ConnectTimeout"},
		{postgres.Config{DSN: "postgres://127.0.0.1:1/x", Schema: "A"}, "schema name"},
	} {
		if _, err := postgres.OpenConfig(ctx, tt.cfg, t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenConfig(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}

// TestUnreachableServer: a store whose server cannot be reached fails
// with domicile.ErrStoreUnavailable within the connect timeout.
func TestUnreachableServer(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	_, err := postgres.OpenConfig(ctx, postgres.Config{DSN: "postgres://postgres@127.0.0.1:1/x?sslmode=disable", Schema: "a", ConnectTimeout: 2 * time.Second}, filepath.Join(t.TempDir(), "blobs"))
	if !errors.Is(err, domicile.ErrStoreUnavailable) {
		t.Fatalf("OpenConfig on a closed port = %v, want ErrStoreUnavailable", err)
	}
	t.Logf("refused after %v: %v", time.Since(t0), err)
}

// TestMigrationToTiles leaves a cell schema at version 2, whose log kept
// a row per Merkle hash, with 700 events in it: opening it builds the
// tiles from the events, and the log verifies and grows as before.
func TestMigrationToTiles(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	if _, err := postgres.MigrateTo(ctx, testDSN(t), schema, "cell", 2); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	const n = 700
	for i := range n {
		e := domiciletest.LeafEntry(i)
		if _, err := c.Exec(ctx, `INSERT INTO `+schema+`.events(idx, ref, time, leaf, committed, salt) VALUES($1,$2,$3,$4,$5,$6)`,
			int64(i), e.Ref[:], e.Time.UnixNano(), e.Leaf, e.Committed, e.Salt); err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(ctx, poolDSN(t), schema, t.TempDir())
	if err != nil {
		t.Fatalf("open at version 2: %v", err)
	}
	defer s.Close()
	if rep, err := s.CheckDatabase(ctx); err != nil || rep != "" {
		t.Fatalf("CheckDatabase after the upgrade = %q, %v", rep, err)
	}
	domiciletest.MustCommit(t, ctx, s, &domicile.Batch{Events: []*domicile.LogEntry{domiciletest.LeafEntry(n)}})
	if got := len(domiciletest.CheckLog(t, ctx, s)); got != n+1 {
		t.Fatalf("log of %d leaves after the upgrade, want %d", got, n+1)
	}
}
