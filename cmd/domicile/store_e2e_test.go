package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile/deploy"
	"domicile/httpapi"
	"domicile/report"
)

// TestCrashMixedLoad kills the server with SIGKILL during a mixed load of
// record writes and reads, on each embedded store, and after a restart
// finds every acknowledged write (the record at its version or later, and
// its write event in the subject's trail) and, for every read whose data
// was returned, its read event: per record, the trail holds at least as
// many allowed write and read events as the clients were answered.
func TestCrashMixedLoad(t *testing.T) {
	for _, kind := range []string{"pebble", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			data := t.TempDir()
			dep := filepath.Join(t.TempDir(), "deployment.yaml")
			if err := os.WriteFile(dep, benchDeploymentYAML(kind), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startServer(t, data, "--deployment", dep)
			ctx := context.Background()
			tok := s.token("app", "CN", "")
			c := s.client(tok, app, "")
			const workers = 8
			for w := range workers {
				if _, err := c.CreateSubject(ctx, fmt.Sprint("mixed-", w), "CN", ""); err != nil {
					t.Fatal(err)
				}
			}
			type key struct{ subject, id string }
			var mu sync.Mutex
			acked := map[key]int64{} // highest version acknowledged
			writes := map[key]int{}  // writes acknowledged
			reads := map[key]int{}   // reads answered with data
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					subject := fmt.Sprint("mixed-", w)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k := key{subject, fmt.Sprint("r", i%10)}
						if i%5 < 3 || i < 10 {
							r, err := c.PutRecord(ctx, subject, "message", k.id, map[string]string{"body": fmt.Sprint(i)}, "")
							if err != nil {
								return // the server died
							}
							mu.Lock()
							writes[k]++
							acked[k] = max(acked[k], r.Version)
							mu.Unlock()
							continue
						}
						if _, err := c.GetRecord(ctx, subject, "message", k.id); err != nil {
							return
						}
						mu.Lock()
						reads[k]++
						mu.Unlock()
					}
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			s.Kill()
			close(stop)
			wg.Wait()
			if len(acked) == 0 || len(reads) == 0 {
				t.Fatalf("before the kill: %d records written, %d read", len(acked), len(reads))
			}

			s2 := startServer(t, data, "--deployment", dep)
			c2 := s2.client(tok, app, "")
			for k, v := range acked {
				r, err := c2.GetRecord(ctx, k.subject, "message", k.id)
				if err != nil {
					t.Fatalf("acknowledged record %v lost: %v", k, err)
				}
				if r.Version < v {
					t.Fatalf("record %v at version %d after restart, acknowledged %d", k, r.Version, v)
				}
			}
			nw, nr := 0, 0
			for w := range workers {
				subject := fmt.Sprint("mixed-", w)
				logged := trailCounts(t, s2, subject)
				for k, n := range writes {
					if k.subject == subject {
						nw += n
						if got := logged["write record/message/"+k.id]; got < n {
							t.Errorf("%v: %d writes acknowledged, %d write events in the trail", k, n, got)
						}
					}
				}
				for k, n := range reads {
					if k.subject == subject {
						nr += n
						if got := logged["read record/message/"+k.id]; got < n {
							t.Errorf("%v: %d reads answered, %d read events in the trail", k, n, got)
						}
					}
				}
			}
			t.Logf("%s: %d writes and %d reads answered before SIGKILL; every one found after restart", kind, nw, nr)
			// Stopped, the cells pass domicile check on their own store kind.
			s2.Stop()
			out, err := runBin(t, nil, "check", "--deployment", dep, "--data", data)
			if err != nil || !strings.Contains(out, "cn-gz1: ok") {
				t.Fatalf("check after the crash and restart: %v\n%s", err, out)
			}
		})
	}
}

// trailCounts reads a subject's whole trail with its own token and counts
// the allowed events by "action resource".
func trailCounts(t *testing.T, s *server, subject string) map[string]int {
	t.Helper()
	tok := s.token("subject", "CN", subject)
	out := map[string]int{}
	last := int64(-1)
	for {
		cur := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last, 10)))
		st, _, body := s.do("GET", "/v1/subjects/"+subject+"/events?limit=1000&cursor="+cur, tok, nil, nil)
		if st != 200 {
			t.Fatalf("trail of %s: %d %s", subject, st, body)
		}
		var p httpapi.EventPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			last = e.LeafIndex
			var ev struct{ Action, Resource, Outcome string }
			if err := json.Unmarshal(e.Event, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Outcome == "allowed" {
				out[ev.Action+" "+ev.Resource]++
			}
		}
		if p.Next == "" {
			return out
		}
	}
}

// TestChangePlanOnPebble makes a change plan over cells on Pebble: the
// service counts a cell's subjects from its open store, and the offline
// plan (notice plan --data) from the stopped one, and both name exactly
// the subjects the change concerns.
func TestChangePlanOnPebble(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "deployment.yaml")
	next := filepath.Join(dir, "next.yaml")
	base := string(benchDeploymentYAML("pebble")) + "declarations:\n  entity: \"Demo Shop Ltd.\"\n  contact: \"privacy@shop.example\"\n"
	if !strings.Contains(base, oldOperator) {
		t.Fatalf("the demo deployment no longer names %q", oldOperator)
	}
	nextYAML := []byte(strings.Replace(base, oldOperator, newOperator, 1))
	os.WriteFile(cur, []byte(base), 0o644)
	os.WriteFile(next, nextYAML, 0o644)
	s := startServer(t, "", "--deployment", cur)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	for id, j := range map[string]string{"cn-a": "CN", "cn-b": "CN", "de-a": "DE", "us-a": "US"} {
		if _, err := c.CreateSubject(ctx, id, j, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutRecord(ctx, "cn-a", "profile", "main", map[string]string{"name": "李伟"}, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{subjectRef(t, s.Data, "cn-a"), subjectRef(t, s.Data, "cn-b")}
	slices.Sort(want)
	pv, err := s.client(s.Admin, "", "").MakePlan(ctx, "next.yaml", nextYAML)
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, n := range pv.Notices {
		planned = append(planned, n.Notice.SubjectRef)
	}
	slices.Sort(planned)
	if !slices.Equal(planned, want) {
		t.Fatalf("the service's plan names %v, want the CN subjects %v", planned, want)
	}
	s.Stop()
	out, err := runBin(t, nil, "notice", "plan", "--from", cur, "--to", next, "--data", s.Data, "--format", "json")
	if err != nil {
		t.Fatalf("notice plan: %v\n%s", err, out)
	}
	var offline report.ImpactReport
	if err := json.Unmarshal([]byte(out), &offline); err != nil {
		t.Fatalf("notice plan output: %v\n%s", err, out)
	}
	if !slices.Equal(offline.SubjectRefs, want) {
		t.Errorf("the offline plan names %v, want %v", offline.SubjectRefs, want)
	}
}

// TestErasureUnlinks is TestAccessPathHoles' "erasure unlinks" on each
// embedded store: after an erasure and a new registration of the same
// id, nothing stored holds the old reference. On Pebble that is every
// file of the data directory (the cell's Pebble database, its manifest
// included, its tiles and blobs, the directory); on SQLite the cell's
// database and the directory's, whose freed pages are overwritten.
func TestErasureUnlinks(t *testing.T) {
	for _, kind := range []string{kindPebble, kindSQLite} {
		t.Run(kind, func(t *testing.T) { testErasureUnlinks(t, kind) })
	}
}

func testErasureUnlinks(t *testing.T, kind string) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(dep, benchDeploymentYAML(kind), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", "--deployment", dep)
	ctx := context.Background()
	home := s.client(s.token("app", "CN", ""), app, "")
	if _, err := home.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := home.PutRecord(ctx, "li", "message", fmt.Sprint("m", i), map[string]string{"body": "明天见"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := home.PutObject(ctx, "li", "photo.txt", "text/plain", strings.NewReader("12345"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := home.GetRecord(ctx, "li", "message", "m3"); err != nil {
		t.Fatal(err)
	}
	before := subjectRef(t, s.Data, "li")
	if _, err := home.EraseSubject(ctx, "li"); err != nil {
		t.Fatal(err)
	}
	if _, err := home.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutRecord(ctx, "li", "message", "m1", map[string]string{"body": "again"}, ""); err != nil {
		t.Fatal(err)
	}
	if after := subjectRef(t, s.Data, "li"); after == before {
		t.Fatal("the re-registered id got its former reference")
	}
	s.Stop()
	old, err := hex.DecodeString(before)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	switch kind {
	case kindPebble:
		if _, err := os.Stat(filepath.Join(s.Data, "cn-gz1", "pebble")); err != nil {
			t.Fatalf("the cell's Pebble database: %v", err)
		}
		filepath.WalkDir(s.Data, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
	case kindSQLite:
		files = []string{filepath.Join(s.Data, "cn-gz1", "cell.db"), filepath.Join(s.Data, "control", "control.db")}
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, old) || bytes.Contains(b, []byte(before)) {
			t.Errorf("%s still holds the erased registration's reference", path[len(s.Data):])
		}
	}
}

// TestDefaultStoreFollowsDisk: a data directory whose cells were made on
// SQLite by a deployment file that named it keeps its data when the file
// no longer names a kind (the embedded demo, whose default is Pebble):
// serve reads and writes the SQLite cells and makes no Pebble store
// beside them, `domicile check` checks them, `notice plan --data` counts
// their subjects. A new data directory gets Pebble. A cell directory that
// holds both, with no kind named, is refused naming both paths, and so is
// a file that names pebble where only the SQLite store is.
func TestDefaultStoreFollowsDisk(t *testing.T) {
	ctx := context.Background()
	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	named := write("sqlite.yaml", benchDeploymentYAML("sqlite"))
	pebbleNamed := write("pebble.yaml", benchDeploymentYAML("pebble"))
	decl := "declarations:\n  entity: \"Demo Shop Ltd.\"\n  contact: \"privacy@shop.example\"\n"
	if !strings.Contains(string(deploy.DefaultYAML()), oldOperator) || strings.Contains(string(deploy.DefaultYAML()), "\n    store:") {
		t.Fatalf("the demo deployment no longer names %q, or now names a store", oldOperator)
	}
	cur := write("current.yaml", append(deploy.DefaultYAML(), decl...))
	next := write("next.yaml", []byte(strings.Replace(string(deploy.DefaultYAML())+decl, oldOperator, newOperator, 1)))

	// An earlier deployment: SQLite named for every cell.
	data := t.TempDir()
	s := startServer(t, data, "--deployment", named)
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "old", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "old", "message", "m1", map[string]string{"body": "written on SQLite"}, ""); err != nil {
		t.Fatal(err)
	}
	if code, _, b := s.do("GET", "/log/cn-gz1/checkpoint", "", nil, nil); code != 200 {
		t.Fatalf("checkpoint: %d %s", code, b)
	}
	s.Stop()
	sqliteCopy := t.TempDir()
	copyDir(t, data, sqliteCopy)

	// The same directory, no kind named: the default follows the disk.
	s2 := startServer(t, data)
	c2 := s2.client(tok, app, "")
	r, err := c2.GetRecord(ctx, "old", "message", "m1")
	if err != nil || !strings.Contains(string(r.Data), "written on SQLite") {
		t.Fatalf("the record written on SQLite, after the default changed: %v", err)
	}
	if _, err := c2.PutRecord(ctx, "old", "message", "m2", map[string]string{"body": "written after"}, ""); err != nil {
		t.Fatal(err)
	}
	// The offline plan reads the SQLite cells while they serve.
	out, err := runBin(t, nil, "notice", "plan", "--from", cur, "--to", next, "--data", data, "--format", "json")
	if err != nil {
		t.Fatalf("notice plan: %v\n%s", err, out)
	}
	var plan report.ImpactReport
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("notice plan output: %v\n%s", err, out)
	}
	if want := []string{subjectRef(t, data, "old")}; !slices.Equal(plan.SubjectRefs, want) {
		t.Errorf("the offline plan over the SQLite cells names %v, want %v", plan.SubjectRefs, want)
	}
	s2.Stop()
	// Read once the process has exited: its stderr is copied on its own.
	if log := s2.Log(); !strings.Contains(log, "no kind named; the directory holds a SQLite store") {
		t.Errorf("the server log does not say which store the default chose:\n%s", log)
	}
	for _, cell := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		if _, err := os.Stat(filepath.Join(data, cell, "cell.db")); err != nil {
			t.Errorf("%s's SQLite store: %v", cell, err)
		}
		if _, err := os.Stat(filepath.Join(data, cell, "pebble")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a Pebble store was made beside the SQLite one (%v)", cell, err)
		}
	}
	if out, err = runBin(t, nil, "check", "--data", data); err != nil || strings.Count(out, ": ok: ") != 3 {
		t.Fatalf("check of the SQLite cells with no kind named: %v\n%s", err, out)
	}

	// A new directory, no kind named: Pebble.
	fresh := t.TempDir()
	s3 := startServer(t, fresh)
	c3 := s3.client(s3.token("app", "CN", ""), app, "")
	if _, err := c3.CreateSubject(ctx, "new", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c3.PutRecord(ctx, "new", "message", "m1", map[string]string{"body": "written on Pebble"}, ""); err != nil {
		t.Fatal(err)
	}
	s3.Stop()
	if log := s3.Log(); !strings.Contains(log, "pebble (no kind named: the default)") {
		t.Errorf("the server log does not say which store the default chose:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(fresh, "cn-gz1", "pebble")); err != nil {
		t.Errorf("a new cell with no kind named: %v, want its Pebble store", err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "cn-gz1", "cell.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a new cell with no kind named has a cell.db (%v)", err)
	}

	// Both stores in one cell's directory, no kind named: refused.
	both := t.TempDir()
	copyDir(t, sqliteCopy, both)
	copyDir(t, filepath.Join(fresh, "cn-gz1", "pebble"), filepath.Join(both, "cn-gz1", "pebble"))
	out, err = runBin(t, nil, "check", "--data", both)
	if err == nil || !strings.Contains(out, "cn-gz1: refused: ") || !strings.Contains(out, filepath.Join(both, "cn-gz1", "cell.db")) ||
		!strings.Contains(out, filepath.Join(both, "cn-gz1", "pebble")) || !strings.Contains(out, "eu-fra1: ok") {
		t.Fatalf("check of a cell holding both stores: %v\n%s", err, out)
	}
	s4 := startServer(t, both)
	if log := s4.Log(); !strings.Contains(log, "cell refuses to serve") || !strings.Contains(log, filepath.Join(both, "cn-gz1", "cell.db")) {
		t.Fatalf("server log does not name the refusal and the stores:\n%s", log)
	}
	code, _, b := s4.do("GET", "/v1/subjects/old/records/message/m1", tok, map[string]string{"Domicile-Purpose": app}, nil)
	if p := mustProblem(t, b); code != 503 || !strings.Contains(p.Detail, "cn-gz1") || !strings.Contains(p.Detail, "store") {
		t.Fatalf("a read in the cell holding both stores: %d %s; want 503 naming the cell and its store", code, b)
	}
	if _, err := s4.client(s4.token("app", "DE", ""), app, "").CreateSubject(ctx, "de", "DE", ""); err != nil {
		t.Fatalf("eu-fra1 while cn-gz1 is refused: %v", err)
	}
	s4.Stop()

	// Pebble named where the cell's data is in SQLite: refused, not a
	// new empty store.
	out, err = runBin(t, nil, "check", "--deployment", pebbleNamed, "--data", sqliteCopy)
	if err == nil || !strings.Contains(out, "cn-gz1: refused: ") || !strings.Contains(out, "names store kind pebble") ||
		!strings.Contains(out, filepath.Join(sqliteCopy, "cn-gz1", "cell.db")) {
		t.Fatalf("check with pebble named over SQLite cells: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(sqliteCopy, "cn-gz1", "pebble")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("check made a Pebble store over the SQLite cell (%v)", err)
	}
}
