package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"domicile/postgres"
)

// migrationOnPostgres writes the example's deployment file src with
// every cell's store and the control store on PostgreSQL (the
// connection strings in cellDSNEnv(cell) and DOMICILE_CONTROL_DSN), and
// returns its path.
func migrationOnPostgres(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cells := regexp.MustCompile(`(?m)^  - id: (\S+)\n`)
	if !cells.Match(b) {
		t.Fatalf("%s declares no cell", src)
	}
	b = cells.ReplaceAllFunc(b, func(line []byte) []byte {
		id := strings.TrimSpace(strings.TrimPrefix(string(line), "  - id:"))
		return []byte(string(line) + "    store: {kind: postgres, dsn_env: " + cellDSNEnv(id) + ", max_conns: 4}\n")
	})
	b = append(b, "control: {kind: postgres, dsn_env: DOMICILE_CONTROL_DSN, max_conns: 4}\n"...)
	out := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigratePostgresEmbedded moves the demo's CN subjects from cn-gz1
// to cn-gz2 in one process whose cells and control store are on
// PostgreSQL: the migration's state is in the control schema, the
// target's store takes the imported records and objects, everything
// reads back identical, the report verifies, and cn-gz1's custody
// schema holds no key any more.
func TestMigratePostgresEmbedded(t *testing.T) {
	admin := pgTestDSN(t)
	dsn := newTestDatabase(t, admin, "migrate")
	for _, c := range []string{"cn-gz1", "cn-gz2", "eu-fra1", "us-east1"} {
		t.Setenv(cellDSNEnv(c), dsn)
	}
	t.Setenv("DOMICILE_CONTROL_DSN", dsn)
	before, after := migrationOnPostgres(t, migrateBefore), migrationOnPostgres(t, migrateAfter)
	ctx := context.Background()
	f := newMigrationFixtureOn(t, 4, before)
	p := f.plan(after)
	if p.Subjects != 4 || len(p.Moves) != 1 || p.Moves[0].From != "cn-gz1" || p.Moves[0].To != "cn-gz2" {
		t.Fatalf("plan = %+v", p)
	}
	f.sendNotices(p)
	f.restart(after, false)
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatalf("migrate run: %d %s %s\nserver log:\n%s", code, out, errb, f.s.Log())
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("subject %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)
	code, rep, errb := runCLI(t, "", "migrate", "report", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatalf("migrate report: %d %s", code, errb)
	}
	code, out, errb = runCLI(t, "", "migrate", "verify", writeTemp(t, rep), "--server", f.s.URL)
	if code != 0 || !strings.Contains(out, "OK: the report matches") {
		t.Fatalf("migrate verify: %d\n%s\n%s", code, out, errb)
	}
	f.s.Stop()
	ks, err := postgres.OpenKeyStore(ctx, dsn, "cell_cn_gz1_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	counts, err := ks.CountByVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, n := range counts {
		if n != 0 {
			t.Errorf("cn-gz1's custody schema still holds %d keys under KEK version %d", n, v)
		}
	}
}
