package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestErasureUnlinksOnPebble is TestAccessPathHoles' "erasure unlinks" on
// cells whose store is Pebble: after an erasure and a new registration of
// the same id, no file of the data directory (the cell's Pebble database,
// its manifest included, its tiles and blobs, the directory) holds the old
// reference.
func TestErasureUnlinksOnPebble(t *testing.T) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(dep, benchDeploymentYAML("pebble"), 0o600); err != nil {
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
	if _, err := os.Stat(filepath.Join(s.Data, "cn-gz1", "pebble")); err != nil {
		t.Fatalf("the cell's Pebble database: %v", err)
	}
	filepath.WalkDir(s.Data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, old) || bytes.Contains(b, []byte(before)) {
			t.Errorf("%s still holds the erased registration's reference", path[len(s.Data):])
		}
		return nil
	})
}
