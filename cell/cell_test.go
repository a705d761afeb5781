package cell_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/leaf"
	"domicile/sqlite"
)

func newCell(t *testing.T) (*cell.Cell, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dep := deploy.Default()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "cn-gz1"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody"))
	if err != nil {
		t.Fatal(err)
	}
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", "kek.json"), ID: "cn-gz1/kek"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); ks.Close() })
	return cell.New(cell.Config{Cell: *dep.Cell("cn-gz1"), Deployment: dep, Store: st, KEK: kek, KeyStore: ks}), st
}

func key(id string) cell.SubjectKey {
	var k cell.SubjectKey
	k.ID = id
	copy(k.Ref[:], id)
	return k
}

func TestAuthorize(t *testing.T) {
	alice, bob := key("alice"), key("bob")
	app := domicile.Actor{Role: domicile.RoleApp, Purpose: "service"}
	self := domicile.Actor{Role: domicile.RoleSubject, Subject: alice.Ref.String()}
	op := domicile.Actor{Role: domicile.RoleOperator, Reason: domicile.ReasonSupport, Reference: "T-1"}
	auth := domicile.Actor{Role: domicile.RoleAuthority, Reason: domicile.ReasonLawfulDomestic, Reference: "C-1"}
	tests := []struct {
		name  string
		a     domicile.Actor
		s     cell.SubjectKey
		act   domicile.Action
		allow bool
	}{
		{"app reads", app, alice, domicile.ActRead, true},
		{"app writes", app, alice, domicile.ActWrite, true},
		{"subject reads itself", self, alice, domicile.ActRead, true},
		{"subject writes itself", self, alice, domicile.ActWrite, true},
		{"subject reads another", self, bob, domicile.ActRead, false},
		{"operator reads with a reason", op, alice, domicile.ActRead, true},
		{"operator writes", op, alice, domicile.ActWrite, false},
		{"operator without a reference", domicile.Actor{Role: domicile.RoleOperator, Reason: domicile.ReasonSupport}, alice, domicile.ActRead, false},
		{"authority reads with a reason", auth, alice, domicile.ActRead, true},
		{"authority deletes", auth, alice, domicile.ActDelete, false},
		{"admin reads", domicile.Actor{Role: domicile.RoleAdmin}, alice, domicile.ActRead, false},
		{"auditor reads", domicile.Actor{Role: domicile.RoleAuditor}, alice, domicile.ActRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cell.Authorize(tt.a, tt.s, tt.act)
			if (err == nil) != tt.allow {
				t.Fatalf("Authorize = %v, want allowed=%v", err, tt.allow)
			}
			if err != nil && domicile.ErrorCode(err) != domicile.EForbidden {
				t.Fatalf("refusal code %q, want forbidden", domicile.ErrorCode(err))
			}
		})
	}
}

// TestCellChecksResidencyItself: whatever a router claims, a cell refuses
// a subject the policy does not place in it, logs the refusal, and stores
// nothing of the subject.
func TestCellChecksResidencyItself(t *testing.T) {
	ctx := context.Background()
	c, st := newCell(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "US", Purpose: "service"}
	_, err := c.CreateSubject(ctx, app, key("us-person"), "US")
	if domicile.ErrorCode(err) != domicile.EResidency {
		t.Fatalf("CreateSubject(US) in cn-gz1 = %v, want residency-forbidden", err)
	}
	if _, err := st.Subject(ctx, key("us-person").Ref); err == nil {
		t.Fatal("the refused subject was stored")
	}
	evs, err := st.Events(ctx, 0, 100)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events after the refusal: %d, %v", len(evs), err)
	}
	var e domicile.Event
	json.Unmarshal(evs[0].Committed, &e)
	if e.Outcome != domicile.Denied || e.Detail != domicile.EResidency {
		t.Fatalf("logged %+v, want a denied residency event", e)
	}
}

// TestAccessesAreLoggedAndCommitted: every access leaves a leaf that
// commits to its event, with the subject's reference and not its id.
func TestAccessesAreLoggedAndCommitted(t *testing.T) {
	ctx := context.Background()
	c, st := newCell(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	k := key("li")
	if _, err := c.CreateSubject(ctx, app, k, "CN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, app, k, "message", "m1", []byte(`{"body":"x"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, app, k, "message", "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, domicile.Actor{Role: domicile.RoleAdmin}, k, "message", "m1"); err == nil {
		t.Fatal("admin read subject data")
	}
	evs, err := st.SubjectEvents(ctx, k.Ref, -1, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"write subject allowed", "write record/message/m1 allowed", "read record/message/m1 allowed", "read record/message/m1 denied"}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		var e domicile.Event
		if err := json.Unmarshal(ev.Committed, &e); err != nil {
			t.Fatal(err)
		}
		if got := string(e.Action) + " " + e.Resource + " " + string(e.Outcome); got != want[i] {
			t.Errorf("event %d = %q, want %q", i, got, want[i])
		}
		if e.Subject != k.Ref.String() {
			t.Errorf("event %d names subject %q", i, e.Subject)
		}
		l, err := leaf.Parse(ev.Leaf)
		if err != nil || !l.Verify(ev.Salt, ev.Committed) || l.Action != string(e.Action) || l.Outcome != string(e.Outcome) {
			t.Errorf("event %d: leaf %q does not commit to it (%v)", i, ev.Leaf, err)
		}
	}
}

// TestReadsSeeEveryWrite: with records cached, concurrent writes, a
// delete and a re-write are each seen by the next read, exactly as stored.
func TestReadsSeeEveryWrite(t *testing.T) {
	ctx := context.Background()
	c, st := newCell(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	k := key("w")
	if _, err := c.CreateSubject(ctx, app, k, "CN"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				body := fmt.Sprintf(`{"body":"%d-%d"}`, g, i)
				for {
					_, err := c.PutRecord(ctx, app, k, "message", "m", []byte(body), domicile.AnyVersion)
					if domicile.ErrorCode(err) == domicile.EConflict {
						continue // lost the race more often than the cell retries
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
				if _, err := c.GetRecord(ctx, app, k, "message", "m"); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	got, err := c.GetRecord(ctx, app, k, "message", "m")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := st.Record(ctx, k.Ref, "message", "m")
	if got.Version != 200 || stored.Version != 200 {
		t.Fatalf("after 200 writes: read version %d, stored %d", got.Version, stored.Version)
	}
	if err := c.DeleteRecord(ctx, app, k, "message", "m", domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, app, k, "message", "m"); domicile.ErrorCode(err) != domicile.ENotFound {
		t.Fatalf("read after delete: %v", err)
	}
	if r, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"x"}`), domicile.ExistingVersion); domicile.ErrorCode(err) != domicile.EPrecondition {
		t.Fatalf("If-Match: * after delete: %+v, %v; want a failed precondition (there is no current version)", r, err)
	}
	// If-None-Match: * holds for a deleted record (RFC 9110 section
	// 13.1.2: there is no current representation), and the write takes
	// the version after the tombstone: versions never repeat.
	r, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"again"}`), domicile.NoVersion)
	if err != nil || r.Version != 202 {
		t.Fatalf("If-None-Match: * after delete: %+v, %v, want version 202", r, err)
	}
	if r, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"x"}`), domicile.NoVersion); domicile.ErrorCode(err) != domicile.EPrecondition {
		t.Fatalf("If-None-Match: * on a live record: %+v, %v", r, err)
	}
	if r, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"x"}`), domicile.UnmatchedVersion); domicile.ErrorCode(err) != domicile.EPrecondition {
		t.Fatalf("an unmatched If-Match: %+v, %v", r, err)
	}
	if r, err = c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"again"}`), domicile.ExistingVersion); err != nil || r.Version != 203 {
		t.Fatalf("If-Match: * on a live record: %+v, %v, want version 203", r, err)
	}
	if got, err := c.GetRecord(ctx, app, k, "message", "m"); err != nil || string(got.Data) != `{"body":"again"}` {
		t.Fatalf("read after re-write: %s, %v", got.Data, err)
	}
	if _, err := c.EraseSubject(ctx, app, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, app, k, "message", "m"); err == nil {
		t.Fatal("record readable after erasure")
	}
}

// faultyStore is a real store whose commits fail, once set, with the
// error a failed fsync gives.
type faultyStore struct {
	*sqlite.Store
	fail atomic.Bool
}

var errFsync = &os.PathError{Op: "fsync", Path: "cell.db-wal", Err: syscall.EIO}

func (f *faultyStore) Commit(ctx context.Context, b *domicile.Batch) error {
	if f.fail.Load() {
		return fmt.Errorf("sqlite: commit: %w", errFsync)
	}
	return f.Store.Commit(ctx, b)
}

// TestFailClosedLogsItsCause: when the access log cannot be written, a
// read returns nothing and a write changes nothing (503), and the server
// log has the refusal with its cause, the failed fsync.
func TestFailClosedLogsItsCause(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dep := deploy.Default()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "cn-gz1"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody"))
	if err != nil {
		t.Fatal(err)
	}
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", "kek.json"), ID: "cn-gz1/kek"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); ks.Close() })
	var logBuf bytes.Buffer
	fs := &faultyStore{Store: st}
	c := cell.New(cell.Config{Cell: *dep.Cell("cn-gz1"), Deployment: dep, Store: fs, KEK: kek, KeyStore: ks,
		Logger: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	k := key("alice")
	if _, err := c.CreateSubject(ctx, app, k, "CN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"before"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	if r, err := c.GetRecord(ctx, app, k, "message", "m"); domicile.ErrorCode(err) != domicile.EUnavailable || r != nil {
		t.Fatalf("a read with the log failing = %+v, %v; want nothing, 503", r, err)
	}
	if _, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"after"}`), domicile.AnyVersion); domicile.ErrorCode(err) != domicile.EUnavailable {
		t.Fatalf("a write with the log failing = %v, want 503", err)
	}
	if _, err := c.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"after"}`), domicile.UnmatchedVersion); domicile.ErrorCode(err) != domicile.EUnavailable {
		t.Fatalf("a refused write with the log failing = %v, want 503 (its refusal cannot be logged)", err)
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines for three fail-closed refusals:\n%s", len(lines), logBuf.String())
	}
	for _, l := range lines {
		var e struct{ Level, Msg, Cell, Err string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Level != "ERROR" || !strings.Contains(e.Msg, "fail closed") || e.Cell != "cn-gz1" || !strings.Contains(e.Err, "fsync cell.db-wal: input/output error") {
			t.Errorf("fail-closed log line %s; want the cell and the fsync's cause", l)
		}
	}
	fs.fail.Store(false)
	if r, err := c.GetRecord(ctx, app, k, "message", "m"); err != nil || !strings.Contains(string(r.Data), "before") {
		t.Fatalf("after the failures the record is %+v, %v; want it unchanged", r, err)
	}
}
