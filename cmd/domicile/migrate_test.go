package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"domicile/client"
	"domicile/httpapi"
	"domicile/migrate"
	"domicile/sqlite"
)

const (
	migrateBefore = "../../examples/migrate/before.yaml"
	migrateAfter  = "../../examples/migrate/after.yaml"
)

// migrationFixture is a server of the demo with CN subjects holding
// records and objects, and a webhook that takes notices.
type migrationFixture struct {
	t       *testing.T
	s       *server
	app     *httpapi.Client
	ids     []string
	webhook *httptest.Server
	// want is what each subject's records and objects should read back:
	// "id/kind/rid" -> JSON body, "id/object/name" -> SHA-256.
	mu   sync.Mutex
	want map[string]string
}

func newMigrationFixture(t *testing.T, subjects int) *migrationFixture {
	t.Helper()
	return newMigrationFixtureOn(t, subjects, migrateBefore)
}

// migrationFixtureOf is an empty fixture on the service at s (a server or
// a router): a CN app's client and a webhook that takes notices.
func migrationFixtureOf(t *testing.T, s *server) *migrationFixture {
	t.Helper()
	f := &migrationFixture{t: t, s: s, want: map[string]string{}}
	f.app = s.client(s.token("app", "CN", ""), "service", "")
	f.webhook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(f.webhook.Close)
	return f
}

// newMigrationFixtureOn is newMigrationFixture serving deployment file
// before.
func newMigrationFixtureOn(t *testing.T, subjects int, before string) *migrationFixture {
	t.Helper()
	s := startServer(t, "", "--deployment", before)
	f := migrationFixtureOf(t, s)
	ctx := context.Background()
	for i := range subjects {
		id := fmt.Sprintf("user-%02d", i)
		if _, err := f.app.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
		for j := range 3 {
			f.putRecord(ctx, id, "message", fmt.Sprintf("m%d", j), 0)
		}
		f.putObject(ctx, id, "photo.jpg", 70_000+i)
	}
	// One EU subject, who does not move.
	eu := s.client(s.token("app", "DE", ""), "service", "")
	if _, err := eu.CreateSubject(ctx, "eu-user", "DE", ""); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *migrationFixture) putRecord(ctx context.Context, id, kind, rid string, n int) error {
	body := map[string]string{"from": id, "body": fmt.Sprintf("message %s %d 你好", rid, n)}
	_, err := f.app.PutRecord(ctx, id, kind, rid, body, "")
	if err == nil {
		b, _ := json.Marshal(body)
		f.mu.Lock()
		f.want[id+"/"+kind+"/"+rid] = string(b)
		f.mu.Unlock()
	}
	return err
}

func (f *migrationFixture) putObject(ctx context.Context, id, name string, size int) {
	b := bytes.Repeat([]byte(id+name), size/len(id+name)+1)[:size]
	if _, err := f.app.PutObject(ctx, id, name, "image/jpeg", bytes.NewReader(b), int64(len(b))); err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	f.want[id+"/object/"+name] = hex.EncodeToString(sum[:])
}

// check reads every record and object back and compares.
func (f *migrationFixture) check(ctx context.Context) {
	f.t.Helper()
	for k, want := range f.want {
		parts := strings.SplitN(k, "/", 3)
		if parts[1] == "object" {
			resp, err := f.app.GetObject(ctx, parts[0], parts[2], "")
			if err != nil {
				f.t.Fatalf("read %s: %v", k, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || hex.EncodeToString(h.Sum(nil)) != want {
				f.t.Errorf("object %s reads back different (%v)", k, err)
			}
			continue
		}
		rec, err := f.app.GetRecord(ctx, parts[0], parts[1], parts[2])
		if err != nil {
			f.t.Fatalf("read %s: %v", k, err)
		}
		var got, exp map[string]string
		json.Unmarshal(rec.Data, &got)
		json.Unmarshal([]byte(want), &exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			f.t.Errorf("record %s = %s, want %s", k, rec.Data, want)
		}
	}
}

// plan makes the migration plan to next and delivers its notices.
func (f *migrationFixture) plan(next string) *migrate.Plan {
	f.t.Helper()
	code, out, errb := runCLI(f.t, "", "migrate", "plan", "--to", next, "--server", f.s.URL, "--token", f.s.Admin, "--json")
	if code != 0 {
		f.t.Fatalf("migrate plan: %d %s", code, errb)
	}
	var p migrate.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		f.t.Fatalf("migrate plan --json: %v\n%s", err, out)
	}
	return &p
}

func (f *migrationFixture) sendNotices(p *migrate.Plan) {
	f.t.Helper()
	code, _, errb := runCLI(f.t, "", "notice", "send", "--plan", p.NoticePlan, "--webhook", f.webhook.URL, "--wait", "60s", "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		f.t.Fatalf("notice send: %d %s", code, errb)
	}
}

// restart serves the same data with deployment file dep.
func (f *migrationFixture) restart(dep string, kill bool) {
	f.t.Helper()
	if kill {
		f.s.Kill()
	} else {
		f.s.Stop()
	}
	app := f.app.Token
	f.s = startServer(f.t, f.s.Data, "--deployment", dep)
	f.app = f.s.client(app, "service", "")
}

func (f *migrationFixture) status(id string) *migrate.Status {
	f.t.Helper()
	var st migrate.Status
	if _, err := f.s.client(f.s.Admin, "", "").Call(context.Background(), http.MethodGet, "/v1/migrations/"+id, nil, &st); err != nil {
		f.t.Fatalf("status: %v", err)
	}
	return &st
}

// TestMigrateEndToEnd moves the demo's CN subjects from cn-gz1 to cn-gz2,
// with notices sent first, while a load loop writes and reads them
// without an error; then everything reads back identical, the keys are
// gone from cn-gz1's custody and migrate verify accepts the report.
func TestMigrateEndToEnd(t *testing.T) {
	ctx := context.Background()
	f := newMigrationFixture(t, 8)
	p := f.plan(migrateAfter)
	if p.Subjects != 8 || len(p.Moves) != 1 || p.Moves[0].From != "cn-gz1" || p.Moves[0].To != "cn-gz2" || p.Moves[0].CrossBorder || p.Records != 24 || p.Objects != 8 {
		t.Fatalf("plan = %+v", p)
	}
	// Before the notices are out, the run is refused.
	f.restart(migrateAfter, false)
	code, _, errb := runCLI(t, "", "migrate", "run", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code == 0 || !strings.Contains(errb, "not delivered") {
		t.Fatalf("run before the notices: %d %s", code, errb)
	}
	f.sendNotices(p)

	// The load: writes and reads of the moving subjects throughout.
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ops, failures atomic.Int64
	var firstErr atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; lctx.Err() == nil; n++ {
				id := f.ids[(n+w)%len(f.ids)]
				rid := fmt.Sprintf("live%d", w)
				err := f.putRecord(ctx, id, "message", rid, n)
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
	// And domicile bench, the real binary, writing and reading its own
	// subjects through the same server in one-second rounds until the
	// move is over: no round may see an error.
	var benchRounds, benchOps atomic.Int64
	var benchErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		dir := t.TempDir()
		for i := 0; lctx.Err() == nil || i == 0; i++ {
			file := filepath.Join(dir, fmt.Sprintf("bench%d.json", i))
			if _, err := runBinary(t, "bench", "--server", f.s.URL, "--token", f.app.Token, "--mix", "80/20", "--workers", "4",
				"--subjects", "5", "--duration", "1s", "--warmup", "0s", "--json", file); err != nil {
				benchErr.CompareAndSwap(nil, err.Error())
				return
			}
			var rep struct {
				Runs []struct {
					Ops    int64            `json:"ops"`
					Errors map[string]int64 `json:"errors"`
				} `json:"runs"`
			}
			raw, err := os.ReadFile(file)
			if err == nil {
				err = json.Unmarshal(raw, &rep)
			}
			if err != nil {
				benchErr.CompareAndSwap(nil, err.Error())
				return
			}
			for _, r := range rep.Runs {
				benchOps.Add(r.Ops)
				if len(r.Errors) > 0 {
					benchErr.CompareAndSwap(nil, fmt.Sprintf("bench round %d: errors %v", i, r.Errors))
				}
			}
			benchRounds.Add(1)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", f.s.URL, "--token", f.s.Admin)
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if e := benchErr.Load(); e != nil {
		t.Errorf("domicile bench during the move: %v", e)
	} else if benchOps.Load() == 0 {
		t.Errorf("domicile bench made no request during the move")
	}
	t.Logf("domicile bench during the move: %d one-second rounds, %d requests, no error", benchRounds.Load(), benchOps.Load())
	if code != 0 {
		t.Fatalf("migrate run: %d %s %s\nserver log:\n%s", code, out, errb, f.s.Log())
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d load operations failed during the move; first: %v", failures.Load(), ops.Load(), firstErr.Load())
	}
	t.Logf("load during the move: %d operations, %d failed", ops.Load(), failures.Load())
	for _, id := range f.ids {
		sub, err := f.app.GetSubject(ctx, id)
		if err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("subject %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)

	// The statement shows the move, the operators and the notice.
	st, err := f.app.StatementDocument(ctx, f.ids[0], client.DocOptions{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"migrate-in", "cn-gz1 (Guangzhou Demo Cloud", "to-operator=Shenzhen Demo Data", "notice=n-"} {
		if !bytes.Contains(st, []byte(want)) {
			t.Errorf("the statement does not show %q", want)
		}
	}

	// Status, the report and its verification.
	code, out, _ = runCLI(t, "", "migrate", "status", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 || !strings.Contains(out, "done") || !strings.Contains(out, "8/8 subjects") {
		t.Errorf("migrate status: %d %s", code, out)
	}
	code, rep, errb := runCLI(t, "", "migrate", "report", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatalf("migrate report: %d %s", code, errb)
	}
	file := filepath.Join(t.TempDir(), "report.txt")
	os.WriteFile(file, []byte(rep), 0o644)
	code, out, errb = runCLI(t, "", "migrate", "verify", file, "--server", f.s.URL)
	if code != 0 || !strings.Contains(out, "OK: the report matches") {
		t.Fatalf("migrate verify: %d\n%s\n%s", code, out, errb)
	}
	// A report changed after signing is refused.
	code, _, _ = runCLI(t, "", "migrate", "verify", writeTemp(t, strings.Replace(rep, `"subjects":8`, `"subjects":7`, 1)), "--server", f.s.URL)
	if code == 0 {
		t.Error("migrate verify accepted an altered report")
	}
	_, body := metricsText(t, f.s)
	if !strings.Contains(body, `domicile_migration_subjects{plan="`+p.ID+`",state="shredded"} 8`) {
		t.Errorf("/metrics does not count the shredded subjects")
	}

	// The subjects' keys are gone from cn-gz1's custody.
	f.s.Stop()
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(f.s.Data, "custody", "cn-gz1"))
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
			t.Errorf("cn-gz1 custody still holds %d keys under KEK version %d", n, v)
		}
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte(s), 0o644)
	return p
}

func metricsText(t *testing.T, s *server) (int, string) {
	code, _, b := s.do(http.MethodGet, "/metrics", "", nil, nil)
	return code, string(b)
}

// TestMigrateKilled kills the server with SIGKILL at random points of a
// move, many times, and restarts it: the move always completes, with
// equal digests (the report verifies), every subject in cn-gz2 once and
// none left in cn-gz1.
func TestMigrateKilled(t *testing.T) {
	ctx := context.Background()
	f := newMigrationFixture(t, 12)
	p := f.plan(migrateAfter)
	f.sendNotices(p)
	f.restart(migrateAfter, false)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	code, _, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--rate", "20/s", "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatalf("migrate run: %s", errb)
	}
	kills := 0
	for ; kills < 8; kills++ {
		time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond)
		if f.status(p.ID).State == migrate.StateDone {
			break
		}
		f.restart(migrateAfter, true)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for f.status(p.ID).State != migrate.StateDone {
		if time.Now().After(deadline) {
			t.Fatalf("the migration did not finish after %d kills: %+v\n%s", kills, f.status(p.ID), f.s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d kills", kills)
	st := f.status(p.ID)
	if st.States["shredded"] != 12 || st.Subjects != 12 {
		t.Errorf("states after the kills: %v", st.States)
	}
	for _, id := range f.ids {
		sub, err := f.app.GetSubject(ctx, id)
		if err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("subject %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)
	code, rep, _ := runCLI(t, "", "migrate", "report", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatal("no report")
	}
	code, out, errb := runCLI(t, "", "migrate", "verify", writeTemp(t, rep), "--server", f.s.URL)
	if code != 0 {
		t.Fatalf("migrate verify after %d kills: %s %s", kills, out, errb)
	}
	var r struct {
		Cells []migrate.CellReport `json:"cells"`
	}
	json.Unmarshal([]byte(rep[:strings.Index(rep, "\n")]), &r)
	for _, c := range r.Cells {
		if c.Subjects != 12 {
			t.Errorf("report: %s %s lists %d subjects, want 12 (none lost, none doubled)", c.Role, c.Cell, c.Subjects)
		}
	}
}

// TestMigrateRefusals: notices not yet due (with the date), a target the
// policy in force does not permit, and a cross-border move without a
// mechanism the gate approves.
func TestMigrateRefusals(t *testing.T) {
	dir := t.TempDir()
	after, _ := os.ReadFile(migrateAfter)
	lead := filepath.Join(dir, "lead.yaml")
	os.WriteFile(lead, bytes.Replace(after, []byte("notice_lead: 0s"), []byte("notice_lead: 720h"), 1), 0o644)
	notPermitted := filepath.Join(dir, "not-permitted.yaml")
	os.WriteFile(notPermitted, bytes.Replace(after, []byte("CN: [cn-gz2, cn-gz1]"), []byte("CN: [cn-gz1]"), 1), 0o644)
	toUS := filepath.Join(dir, "to-us.yaml")
	os.WriteFile(toUS, bytes.Replace(after, []byte("CN: [cn-gz2, cn-gz1]"), []byte("CN: [us-east1, cn-gz1]"), 1), 0o644)

	f := newMigrationFixture(t, 2)
	p := f.plan(lead)
	f.sendNotices(p)
	f.restart(lead, false)
	code, _, errb := runCLI(t, "", "migrate", "run", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code == 0 || !strings.Contains(errb, "may start at "+time.Now().UTC().Add(720*time.Hour).Format("2006-01-02")) {
		t.Errorf("a run before the lead time: %d %s", code, errb)
	}
	f.restart(notPermitted, false)
	code, _, errb = runCLI(t, "", "migrate", "run", p.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code == 0 || !strings.Contains(errb, "does not permit data of CN subjects in cell cn-gz2") {
		t.Errorf("a run to a cell the policy does not permit: %d %s", code, errb)
	}

	// CN -> US: the plan says it crosses a border; without a mechanism
	// the gate refuses it and nothing moves.
	f.restart(migrateBefore, false)
	pu := f.plan(toUS)
	if !pu.CrossBorder() || pu.Moves[0].To != "us-east1" {
		t.Fatalf("plan to US: %+v", pu)
	}
	f.sendNotices(pu)
	f.restart(toUS, false)
	code, _, errb = runCLI(t, "", "migrate", "run", pu.ID, "--wait", "--server", f.s.URL, "--token", f.s.Admin)
	if code == 0 || !strings.Contains(errb, "transfer gate refused") {
		t.Errorf("a cross-border run without a mechanism: %d %s", code, errb)
	}
	t.Logf("refused: %s", errb)
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(context.Background(), id); err != nil || sub.Cell != "cn-gz1" {
			t.Errorf("after the refusal, %s: %+v %v, want home cn-gz1", id, sub, err)
		}
	}
	admin := f.s.client(f.s.Admin, "", "")
	if pi, _ := ledgerCounts(t, admin); pi != 0 {
		t.Errorf("a refused move counted %d people in the ledger", pi)
	}

	// With the separate consent the law asks for, the gate approves the
	// move under the mechanism the law offers (the small-volume exemption
	// of the CBDF provisions), and the ledger counts each person once.
	ctx := context.Background()
	for _, id := range f.ids {
		if _, err := f.app.SetConsent(ctx, id, "cross-border", "v1", true); err != nil {
			t.Fatal(err)
		}
	}
	// A stopped run is started again by run.
	code, out, errb := runCLI(t, "", "migrate", "run", pu.ID, "--retention", "0s", "--wait", "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 {
		t.Fatalf("the cross-border run with consents: %d %s %s", code, out, errb)
	}
	if pi, _ := ledgerCounts(t, admin); pi != int64(len(f.ids)) {
		t.Errorf("after the cross-border move the ledger counts %d people, want %d", pi, len(f.ids))
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "us-east1" {
			t.Errorf("after the move, %s: %+v %v, want home us-east1", id, sub, err)
		}
	}
	code, rep, _ := runCLI(t, "", "migrate", "report", pu.ID, "--server", f.s.URL, "--token", f.s.Admin)
	if code != 0 || !strings.Contains(rep, `"transfers":["trf_`) {
		t.Errorf("the report does not list the ledger's transfers: %s", rep)
	}
}

// TestMigrateThroughput measures a move (doc/performance.md): subjects/s
// and MB/s of sealed data, and the load's operations per second before
// and during the move. It builds a binary without the race detector and
// runs only when DOMICILE_MIGRATE_BENCH is set (to the number of
// subjects); DOMICILE_MIGRATE_RATE, if set, is the run's --rate.
func TestMigrateThroughput(t *testing.T) {
	n := 0
	fmt.Sscan(os.Getenv("DOMICILE_MIGRATE_BENCH"), &n)
	if n <= 0 {
		t.Skip("set DOMICILE_MIGRATE_BENCH=200 to measure a move of 200 subjects")
	}
	plain := filepath.Join(t.TempDir(), "domicile")
	if out, err := exec.Command("go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	defer func(b string) { binary = b }(binary)
	binary = plain
	ctx := context.Background()
	f := newMigrationFixture(t, n)
	p := f.plan(migrateAfter)
	f.sendNotices(p)
	f.restart(migrateAfter, false)
	load := func(d time.Duration) (ops int64) {
		lctx, stop := context.WithTimeout(ctx, d)
		defer stop()
		var wg sync.WaitGroup
		var count atomic.Int64
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; lctx.Err() == nil; i++ {
					id := f.ids[(i*7+w)%len(f.ids)]
					if f.putRecord(ctx, id, "message", fmt.Sprintf("load%d", w), i) == nil {
						count.Add(1)
					}
					if _, err := f.app.GetRecord(ctx, id, "message", "m0"); err == nil {
						count.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return count.Load()
	}
	before := load(5 * time.Second)
	start := time.Now()
	args := []string{"migrate", "run", p.ID, "--retention", "0s", "--server", f.s.URL, "--token", f.s.Admin}
	if r := os.Getenv("DOMICILE_MIGRATE_RATE"); r != "" {
		args = append(args, "--rate", r)
	}
	code, _, errb := runCLI(t, "", args...)
	if code != 0 {
		t.Fatal(errb)
	}
	var during int64
	var loadTime time.Duration
	for f.status(p.ID).State != migrate.StateDone {
		t0 := time.Now()
		during += load(time.Second)
		loadTime += time.Since(t0)
	}
	el := time.Since(start)
	st := f.status(p.ID)
	t.Logf("moved %d subjects (%d records, %d objects, %s sealed) in %s: %.1f subjects/s, %.2f MB/s",
		st.Subjects, p.Records, p.Objects, migrate.Bytes(st.Bytes), el.Round(10*time.Millisecond), float64(st.Subjects)/el.Seconds(), float64(st.Bytes)/1e6/el.Seconds())
	t.Logf("load (4 workers, a write and a read each turn): %.0f ops/s before the move, %.0f ops/s during it",
		float64(before)/5, float64(during)/loadTime.Seconds())
}
