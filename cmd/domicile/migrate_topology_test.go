package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"domicile"
	"domicile/client"
	"domicile/migrate"
	"domicile/postgres"
)

// migrateTopology starts cn-gz1, eu-fra1, us-east1 and a router on
// PostgreSQL with a PostgreSQL control store, creates n CN subjects with
// records and an object each through the router, plans their move to a
// cn-gz2 added by the next deployment file through the router, sends the
// notices, and then deploys the file: it starts cn-gz2's process and
// sends SIGHUP to the others.
func migrateTopology(t *testing.T, n int) (*topo, *migrationFixture, *migrate.Plan) {
	t.Helper()
	admin := pgTestDSN(t)
	ctx := context.Background()
	cells := []string{"cn-gz1", "eu-fra1", "us-east1", "cn-gz2"}
	dbs := map[string]string{}
	for _, c := range cells {
		dbs[c] = newTestDatabase(t, admin, c)
		t.Setenv(cellDSNEnv(c), dbs[c])
	}
	control := newTestDatabase(t, admin, "control")
	t.Setenv("DOMICILE_TEST_CONTROL_DSN", control)
	tp := startTopologyEdited(t, "control: {kind: postgres, dsn_env: DOMICILE_TEST_CONTROL_DSN}\n", onPostgres(cells[:3]...))
	tp.dbs = dbs
	r := tp.router
	f := migrationFixtureOf(t, r)
	for i := range n {
		id := fmt.Sprintf("user-%02d", i)
		if sub, err := f.app.CreateSubject(ctx, id, "CN", ""); err != nil || sub.Cell != "cn-gz1" {
			t.Fatalf("create %s: %+v %v", id, sub, err)
		}
		f.ids = append(f.ids, id)
		for j := range 3 {
			if err := f.putRecord(ctx, id, "message", fmt.Sprintf("m%d", j), 0); err != nil {
				t.Fatal(err)
			}
		}
		f.putObject(ctx, id, "photo.jpg", 70_000+i)
	}

	// The next deployment: cn-gz2, run by another operator, is the CN
	// subjects' home; the notices may precede the move by nothing.
	dep := readFile(t, tp.depFile)
	next := strings.Replace(dep, "cells:\n", "cells:\n  - id: cn-gz2\n    jurisdiction: CN\n    operator: \"Shenzhen Demo Data Co., Ltd.\"\n    location: \"Shenzhen, Guangdong, China\"\n    url: http://"+freePort(t)+"\n    store: {kind: postgres, dsn_env: "+cellDSNEnv("cn-gz2")+", max_conns: 4}\n", 1)
	next = strings.Replace(next, "  CN: [cn-gz1]\n", "  CN: [cn-gz2, cn-gz1]\n", 1) + "notice_lead: 0s\n"
	if !strings.Contains(next, "CN: [cn-gz2, cn-gz1]") || !strings.Contains(next, "kind: postgres, dsn_env: DOMICILE_TEST_CONTROL_DSN") {
		t.Fatal("the topology example changed; update the test")
	}
	nextFile := filepath.Join(t.TempDir(), "next.yaml")
	if err := os.WriteFile(nextFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}

	// Plan through the router, against the deployment in force.
	p := f.plan(nextFile)
	if p.Subjects != n || len(p.Moves) != 1 || p.Moves[0].From != "cn-gz1" || p.Moves[0].To != "cn-gz2" || p.Moves[0].CrossBorder || p.Records != 3*n || p.Objects != n {
		t.Fatalf("plan = %+v", p)
	}
	f.sendNotices(p)

	// Deploy the next file: start cn-gz2, tell the others.
	if err := os.WriteFile(tp.depFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	tp.dirs["cn-gz2"] = filepath.Join(filepath.Dir(tp.depFile), "cn-gz2")
	tp.startCell("cn-gz2")
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"], tp.cells["us-east1"]} {
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"], tp.cells["us-east1"]} {
		waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(s.out.String(), "deployment reloaded") })
	}
	return tp, f, p
}

// TestMigrateTopologyPostgres moves the CN subjects from cn-gz1 to a
// cn-gz2 added as a process of its own (as TestTopologyAddCell adds it),
// every cell and the control store on PostgreSQL, through the router:
// the router plans (each cell counting its subjects' sizes), the notices
// go out, the run is forwarded to cn-gz1's process, which copies each
// subject to cn-gz2's process over the cell-to-cell routes with its cell
// token, while a load loop writes and reads through the router without
// an error. Afterwards the subjects' home is cn-gz2, every record and
// object reads back identical through the router, cn-gz1's custody holds
// no key of them, migrate verify accepts the report, and a subject's
// statement shows the move.
func TestMigrateTopologyPostgres(t *testing.T) {
	ctx := context.Background()
	const n = 6
	tp, f, p := migrateTopology(t, n)
	r := tp.router

	// The load through the router, throughout the move.
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ops, failures atomic.Int64
	var firstErr atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; lctx.Err() == nil; i++ {
				id := f.ids[(i+w)%len(f.ids)]
				err := f.putRecord(ctx, id, "message", fmt.Sprintf("live%d", w), i)
				if err == nil {
					_, err = f.app.GetRecord(ctx, id, "message", "m0")
				}
				ops.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", r.URL, "--token", r.Admin)
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if code != 0 {
		t.Fatalf("migrate run: %d %s %s\nrouter:\n%s\ncn-gz1:\n%s\ncn-gz2:\n%s", code, out, errb, r.Log(), tp.cells["cn-gz1"].Log(), tp.cells["cn-gz2"].Log())
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d load operations through the router failed during the move; first: %v", failures.Load(), ops.Load(), firstErr.Load())
	}
	t.Logf("load through the router during the move: %d operations, %d failed", ops.Load(), failures.Load())
	for _, id := range f.ids {
		sub, err := f.app.GetSubject(ctx, id)
		if err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("subject %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)

	st, err := f.app.StatementDocument(ctx, f.ids[0], client.DocOptions{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"migrate-in", "cn-gz1 (Guangzhou Demo Cloud", "to-operator=Shenzhen Demo Data", "notice=n-"} {
		if !bytes.Contains(st, []byte(want)) {
			t.Errorf("the statement does not show %q", want)
		}
	}

	code, out, _ = runCLI(t, "", "migrate", "status", p.ID, "--server", r.URL, "--token", r.Admin)
	if code != 0 || !strings.Contains(out, "done") || !strings.Contains(out, fmt.Sprintf("%d/%d subjects", n, n)) {
		t.Errorf("migrate status through the router: %d %s", code, out)
	}
	code, rep, errb := runCLI(t, "", "migrate", "report", p.ID, "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("migrate report: %d %s", code, errb)
	}
	code, out, errb = runCLI(t, "", "migrate", "verify", writeTemp(t, rep), "--server", r.URL)
	if code != 0 || !strings.Contains(out, "OK: the report matches") {
		t.Fatalf("migrate verify: %d\n%s\n%s", code, out, errb)
	}

	// Asked directly, the source's process sends a moved subject to its
	// new home (421), which the router's home cache follows.
	_, err = tp.cells["cn-gz1"].client(f.app.Token, "service", "").GetSubject(ctx, f.ids[0])
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != http.StatusMisdirectedRequest {
		t.Errorf("cn-gz1 asked for a moved subject: %v, want 421", err)
	}
	// The source ran the moves with its own cell token.
	if _, err := os.Stat(filepath.Join(tp.dirs["cn-gz1"], cellTokenFile)); err != nil {
		t.Errorf("cn-gz1's cell token: %v", err)
	}

	// cn-gz1's custody holds no key of the moved subjects; cn-gz2's holds
	// them (each cell's custody is a schema of its own database).
	tp.cells["cn-gz1"].Stop()
	d, err := loadDeployment(tp.depFile)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(c string) int {
		cc := d.Cell(c)
		if cc == nil || cc.Store.Kind != "postgres" {
			t.Fatalf("cell %s is not on PostgreSQL", c)
		}
		ks, err := postgres.OpenKeyStore(ctx, tp.dbs[c], cc.Store.Schema+"_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer ks.Close()
		counts, err := ks.CountByVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range counts {
			n += int(k)
		}
		return n
	}
	if k := keys("cn-gz1"); k != 0 {
		t.Errorf("cn-gz1's custody still holds %d keys", k)
	}
	if k := keys("cn-gz2"); k < n {
		t.Errorf("cn-gz2's custody holds %d keys, want at least one per moved subject (%d)", k, n)
	}
}

// TestMigrateTopologyKilledPostgres is the move between cell processes
// with the source cell's process SIGKILLed at random points of the run
// and started again: the runner in it resumes from the control store,
// and the run ends with every subject in cn-gz2 and none lost or
// doubled, the data reading back identical through the router, and a
// report that migrate verify accepts.
func TestMigrateTopologyKilledPostgres(t *testing.T) {
	ctx := context.Background()
	const n = 8
	tp, f, p := migrateTopology(t, n)
	r := tp.router
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--rate", "8/s", "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("migrate run: %d %s %s", code, out, errb)
	}
	admin := r.client(r.Admin, "", "")
	status := func() *migrate.Status {
		var st migrate.Status
		if _, err := admin.Call(ctx, http.MethodGet, "/v1/migrations/"+p.ID, nil, &st); err != nil {
			t.Fatalf("status through the router: %v", err)
		}
		return &st
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for kills < 3 && status().State != migrate.StateDone {
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		tp.cells["cn-gz1"].Kill()
		kills++
		st := status()
		t.Logf("kill %d of cn-gz1's process: %s, %v", kills, st.State, st.States)
		tp.startCell("cn-gz1")
	}
	waitFor(t, 2*time.Minute, "the run's end", func() bool { return status().State == migrate.StateDone })
	st := status()
	if st.States[domicile.MoveShredded] != n || st.Subjects != n {
		t.Fatalf("after %d kills: %+v, want %d subjects shredded at the source", kills, st.States, n)
	}
	for _, id := range f.ids {
		sub, err := f.app.GetSubject(ctx, id)
		if err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("subject %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)
	code, rep, errb := runCLI(t, "", "migrate", "report", p.ID, "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("migrate report: %d %s", code, errb)
	}
	code, out, errb = runCLI(t, "", "migrate", "verify", writeTemp(t, rep), "--server", r.URL)
	if code != 0 || !strings.Contains(out, "OK: the report matches") || !strings.Contains(out, fmt.Sprintf("counts: %d subjects", n)) {
		t.Fatalf("migrate verify after %d kills: %d\n%s\n%s", kills, code, out, errb)
	}
}

// TestMigrateTopologyCrossBorder is the CN -> US move between cell
// processes (on SQLite): run through the router, the source cell's
// process asks the transfer gate, which refuses it without a mechanism
// (the run stops, nothing moves, the ledger counts no one); with the
// separate consents the law asks for, but us-east1's process down, the
// run retries and the gate is not asked (the ledger still counts no
// one: a transfer is counted only once its target is reached); with
// us-east1 up again, the run moves the subjects there and the shared
// ledger counts each person once.
func TestMigrateTopologyCrossBorder(t *testing.T) {
	ctx := context.Background()
	tp := startTopology(t)
	r := tp.router
	f := migrationFixtureOf(t, r)
	for i := range 2 {
		id := fmt.Sprintf("user-%02d", i)
		if _, err := f.app.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
		if err := f.putRecord(ctx, id, "message", "m0", 0); err != nil {
			t.Fatal(err)
		}
	}
	dep := readFile(t, tp.depFile)
	next := strings.Replace(dep, "  CN: [cn-gz1]\n", "  CN: [us-east1, cn-gz1]\n", 1) + "notice_lead: 0s\n"
	if !strings.Contains(next, "CN: [us-east1, cn-gz1]") {
		t.Fatal("the topology example changed; update the test")
	}
	nextFile := writeTemp(t, next)
	p := f.plan(nextFile)
	if !p.CrossBorder() || len(p.Moves) != 1 || p.Moves[0].To != "us-east1" || p.Subjects != 2 {
		t.Fatalf("plan to US: %+v", p)
	}
	f.sendNotices(p)
	if err := os.WriteFile(tp.depFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"], tp.cells["us-east1"]}
	for _, s := range procs {
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	for _, s := range procs {
		waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(s.out.String(), "deployment reloaded") })
	}

	code, _, errb := runCLI(t, "", "migrate", "run", p.ID, "--wait", "--server", r.URL, "--token", r.Admin)
	if code == 0 || !strings.Contains(errb, "transfer gate refused") {
		t.Fatalf("a cross-border run without a mechanism: %d %s", code, errb)
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "cn-gz1" {
			t.Errorf("after the refusal, %s: %+v %v, want home cn-gz1", id, sub, err)
		}
	}
	admin := r.client(r.Admin, "", "")
	if pi, _ := ledgerCounts(t, admin); pi != 0 {
		t.Errorf("a refused move counted %d people in the ledger", pi)
	}

	for _, id := range f.ids {
		if _, err := f.app.SetConsent(ctx, id, "cross-border", "v1", true); err != nil {
			t.Fatal(err)
		}
	}
	// With the target's process down, the run cannot reach it: the gate
	// is not asked, so the ledger counts no one while the run retries.
	tp.cells["us-east1"].Kill()
	if code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--server", r.URL, "--token", r.Admin); code != 0 {
		t.Fatalf("the cross-border run with its target down: %d %s %s", code, out, errb)
	}
	waitFor(t, 20*time.Second, "cn-gz1 to retry the move to the stopped us-east1", func() bool {
		return strings.Contains(tp.cells["cn-gz1"].Log(), `msg="migration: step failed; retrying"`)
	})
	if pi, _ := ledgerCounts(t, admin); pi != 0 {
		t.Errorf("a move whose target was down counted %d people in the ledger", pi)
	}
	tp.startCell("us-east1")
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("the cross-border run with consents: %d %s %s\ncn-gz1:\n%s", code, out, errb, tp.cells["cn-gz1"].Log())
	}
	if pi, _ := ledgerCounts(t, admin); pi != int64(len(f.ids)) {
		t.Errorf("after the cross-border move the ledger counts %d people, want %d", pi, len(f.ids))
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "us-east1" {
			t.Errorf("after the move, %s: %+v %v, want home us-east1", id, sub, err)
		}
	}
	f.check(ctx)
	code, rep, _ := runCLI(t, "", "migrate", "report", p.ID, "--server", r.URL, "--token", r.Admin)
	if code != 0 || !strings.Contains(rep, `"transfers":["trf_`) {
		t.Errorf("the report does not list the ledger's transfers: %s", rep)
	}
}
