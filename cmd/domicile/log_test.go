package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	byteorder "encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	_ "modernc.org/sqlite"

	"domicile/checkpoint"
	"domicile/httpapi"
	"domicile/merkle"
)

// cellsInfo returns /v1/cells' log descriptions by cell.
func cellsInfo(t *testing.T, s *server) map[string]httpapi.LogInfo {
	t.Helper()
	_, _, b := s.do("GET", "/v1/cells", "", nil, nil)
	var out struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]httpapi.LogInfo{}
	for _, c := range out.Cells {
		if c.Log == nil || c.Log.VerifierKey == "" || c.Log.WitnessKey == "" {
			t.Fatalf("cell %s lists no log key or witness key: %s", c.ID, b)
		}
		m[c.ID] = *c.Log
	}
	return m
}

// events fetches a subject's trail (all pages, each of whose proofs is
// checked against that page's checkpoint) and writes it to a file for
// domicile verify.
func events(t *testing.T, s *server, token, id string) (httpapi.EventPage, string) {
	t.Helper()
	var all httpapi.EventPage
	cursor := ""
	for {
		_, _, b := s.do("GET", "/v1/subjects/"+id+"/events?limit=2&cursor="+cursor, token, nil, nil)
		var p httpapi.EventPage
		if err := json.Unmarshal(b, &p); err != nil || p.Checkpoint == "" {
			t.Fatalf("events: %s", b)
		}
		checkProofs(t, p)
		all.Events = append(all.Events, p.Events...)
		all.Checkpoint, all.Size, all.VerifierKey = p.Checkpoint, p.Size, p.VerifierKey
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	f := filepath.Join(t.TempDir(), id+"-events.json")
	b, _ := json.Marshal(all)
	os.WriteFile(f, b, 0o600)
	return all, f
}

// checkProofs verifies each event's inclusion proof against the page's
// checkpoint, independently of domicile verify.
func checkProofs(t *testing.T, p httpapi.EventPage) {
	t.Helper()
	body, err := checkpoint.Body([]byte(p.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		if e.LeafIndex >= cp.Size {
			t.Errorf("event %d is not under the page's checkpoint of size %d", e.LeafIndex, cp.Size)
			continue
		}
		var proof []merkle.Hash
		for _, p := range e.Proof {
			b, _ := base64.StdEncoding.DecodeString(p)
			var h merkle.Hash
			copy(h[:], b)
			proof = append(proof, h)
		}
		if err := merkle.VerifyInclusion(proof, e.LeafIndex, cp.Size, merkle.LeafHash([]byte(e.Leaf)), cp.Hash); err != nil {
			t.Errorf("event %d: %v", e.LeafIndex, err)
		}
	}
}

func verify(t *testing.T, s *server, info httpapi.LogInfo, state string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"verify", "--log", s.URL + info.URL, "--key", info.VerifierKey, "--state", state}, extra...)
	return runBin(t, nil, args...)
}

// TestLogEndToEnd: a subject writes, reads and deletes records; an
// operator reads one with a justification; the subject's trail shows all
// of it, with proofs that domicile verify accepts, under a checkpoint the
// other cells have cosigned.
func TestLogEndToEnd(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	if _, err := c.CreateSubject(ctx, "mei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	subTok := s.token("subject", "CN", "mei")
	me := s.client(subTok, "", "")
	if _, err := me.PutRecord(ctx, "mei", "message", "m1", map[string]string{"body": "one"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := me.PutRecord(ctx, "mei", "message", "m2", map[string]string{"body": "two"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := me.GetRecord(ctx, "mei", "message", "m1"); err != nil {
		t.Fatal(err)
	}
	if err := me.DeleteRecord(ctx, "mei", "message", "m2", ""); err != nil {
		t.Fatal(err)
	}
	op := s.client(s.token("operator", "CN", ""), "", "support TICKET-42")
	if _, err := op.GetRecord(ctx, "mei", "message", "m1"); err != nil {
		t.Fatal(err)
	}
	// Another subject's token is refused, and that refusal is logged too.
	if _, err := c.CreateSubject(ctx, "someone-else", "CN", ""); err != nil {
		t.Fatal(err)
	}
	other := s.client(s.token("subject", "CN", "someone-else"), "", "")
	if _, err := other.GetRecord(ctx, "mei", "message", "m1"); !isStatus(err, 403) {
		t.Fatalf("other subject: %v", err)
	}

	page, file := events(t, s, subTok, "mei")
	want := []string{
		`"role":"app","jurisdiction":"CN"`, // registration
		`"action":"write","resource":"record/message/m1"`,
		`"action":"write","resource":"record/message/m2"`,
		`"action":"read","resource":"record/message/m1","basis":"subject-request"`,
		`"action":"delete","resource":"record/message/m2"`,
		`"role":"operator"`,
		`"basis":"support","reference":"TICKET-42","outcome":"allowed"`,
		`"outcome":"denied"`,
	}
	var all string
	for _, e := range page.Events {
		all += e.Committed + "\n"
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("trail lacks %s\n%s", w, all)
		}
	}
	if strings.Contains(all, "mei") {
		t.Error("the trail holds the raw subject id")
	}
	body, err := checkpoint.Body([]byte(page.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.Parse(body)
	if err != nil {
		t.Fatal(err)
	}

	info := cellsInfo(t, s)
	// Wait until the witnesses (the other two cells) have cosigned a
	// checkpoint covering the trail.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, b := s.do("GET", "/log/cn-gz1/checkpoint", "", nil, nil)
		if bytes.Count(b, []byte("— witness/")) == 2 {
			cpb, _ := checkpoint.Body(b)
			c2, _ := checkpoint.Parse(cpb)
			if c2.Size >= cp.Size {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint covering the trail:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	state := filepath.Join(t.TempDir(), "state")
	out, err := verify(t, s, info["cn-gz1"], state, "--events", file, "--entries",
		"--witness", info["eu-fra1"].WitnessKey, "--witness", info["us-east1"].WitnessKey)
	if err != nil {
		t.Fatalf("domicile verify: %v\n%s", err, out)
	}
	// An auditor asks for a consistency proof between two sizes.
	aud := s.token("auditor", "DE", "")
	status, _, b := s.do("GET", fmt.Sprintf("/v1/cells/cn-gz1/consistency?from=1&to=%d", cp.Size), aud, nil, nil)
	if status != 200 || !bytes.Contains(b, []byte(`"proof"`)) {
		t.Fatalf("consistency proof: %d %s", status, b)
	}
	if status, _, _ := s.do("GET", "/v1/cells/cn-gz1/consistency?from=1&to=2", subTok, nil, nil); status != 403 {
		t.Fatalf("consistency proof for a subject token: %d, want 403", status)
	}
}

// TestTamperDetected edits a stored event, a stored hash, and truncates
// the log, each in a copy of a cell's data; domicile verify, which saw the
// genuine log before, catches each and shows the evidence.
func TestTamperDetected(t *testing.T) {
	for _, kind := range []string{kindPebble, kindSQLite} {
		t.Run(kind, func(t *testing.T) { testTamperDetected(t, kind) })
	}
}

func testTamperDetected(t *testing.T, kind string) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(dep, benchDeploymentYAML(kind), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s := startServer(t, data, "--deployment", dep)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	c.CreateSubject(ctx, "tam", "CN", "")
	for i := 0; i < 300; i++ {
		if _, err := c.PutRecord(ctx, "tam", "message", fmt.Sprint(i%7), map[string]string{"body": "x"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	subTok := s.token("subject", "CN", "tam")
	_, file := events(t, s, subTok, "tam")
	info := cellsInfo(t, s)["cn-gz1"]
	state := filepath.Join(t.TempDir(), "state")
	if out, err := verify(t, s, info, state, "--events", file, "--entries"); err != nil {
		t.Fatalf("genuine log: %v\n%s", err, out)
	}
	s.Stop()

	// An edited event or stored tile no longer reaches verify: the server
	// checks its log on open, refusing the cell or rebuilding the tiles
	// (TestIntegrityOnOpen). That verify catches a server that serves
	// them anyway is logclient's TestTamperDetected. A log truncated
	// together with its checkpoints passes the server's check, and verify
	// catches it against the state it kept.
	cases := []struct {
		name string
		// sqlite and pebble tamper with the stopped cell's store of
		// that kind.
		sqlite func(t *testing.T, db *sql.DB)
		pebble func(t *testing.T, db *pebble.DB)
		want   string
	}{
		{"truncated log", func(t *testing.T, db *sql.DB) {
			// The store drops the Merkle tiles beyond the log on open and
			// the server signs the smaller tree.
			mustExec(t, db, `DELETE FROM events WHERE idx >= 100`)
			mustExec(t, db, `DELETE FROM checkpoints`)
		}, func(t *testing.T, db *pebble.DB) {
			// The same in the Pebble store's key layout
			// (pebblestore/keys.go): events are 'e' and the index,
			// checkpoints 'c' and the size.
			if err := db.DeleteRange(byteorder.BigEndian.AppendUint64([]byte{'e'}, 100), []byte{'e' + 1}, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteRange([]byte{'c'}, []byte{'c' + 1}, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "consisten"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := t.TempDir()
			copyDir(t, data, cp)
			if kind == kindPebble {
				db, err := openPebbleToTamper(t, filepath.Join(cp, "cn-gz1", "pebble"))
				if err != nil {
					t.Fatal(err)
				}
				tc.pebble(t, db)
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				db, err := sql.Open("sqlite", "file:"+filepath.Join(cp, "cn-gz1", "cell.db"))
				if err != nil {
					t.Fatal(err)
				}
				tc.sqlite(t, db)
				db.Close()
			}
			st := filepath.Join(t.TempDir(), "state")
			b, _ := os.ReadFile(state)
			os.WriteFile(st, b, 0o600)
			s2 := startServer(t, cp, "--deployment", dep)
			out, err := verify(t, s2, info, st, "--events", file, "--entries")
			if err == nil {
				t.Fatalf("verify passed a tampered log:\n%s", out)
			}
			if !strings.Contains(strings.ToLower(out), tc.want) || !strings.Contains(out, "domicile/demo/cn-gz1\n") {
				t.Fatalf("verify's evidence lacks %q or a checkpoint:\n%s", tc.want, out)
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestWitnessCatchesFork: the operator of cn-gz1, with root on its
// machine and so its log key, signs a second checkpoint of a size the
// witness in eu-fra1 (another process's view: this server) has cosigned,
// with a different root. The witness refuses it and reports both, also
// after a restart.
func TestWitnessCatchesFork(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	c.CreateSubject(ctx, "fork", "CN", "")
	c.PutRecord(ctx, "fork", "message", "m", map[string]string{"body": "x"}, "")
	// Wait for eu-fra1's witness to cosign cn-gz1's latest checkpoint.
	var genuine []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, b := s.do("GET", "/log/cn-gz1/checkpoint", "", nil, nil)
		// Two events: the registration and the write.
		if bytes.Contains(b, []byte("— witness/eu-fra1")) && bytes.HasPrefix(b, []byte("domicile/demo/cn-gz1\n2\n")) {
			genuine = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no cosignature from eu-fra1")
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := checkpoint.Body(genuine)
	cp, _ := checkpoint.Parse(body)
	keyText, err := os.ReadFile(filepath.Join(data, "custody", "cn-gz1", "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.NewSigner(strings.SplitN(string(keyText), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	forked := cp
	rand.Read(forked.Hash[:])
	forkedSigned, err := checkpoint.Sign(forked, signer)
	if err != nil {
		t.Fatal(err)
	}
	offer := func(s *server) (int, string) {
		req := fmt.Sprintf("old %d\n\n%s", cp.Size, forkedSigned)
		st, _, b := s.do(http.MethodPost, "/witness/eu-fra1/add-checkpoint", "", nil, strings.NewReader(req))
		return st, string(b)
	}
	status, out := offer(s)
	if status != 409 || !strings.Contains(out, "fork") || !strings.Contains(out, string(body)) || !strings.Contains(out, base64.StdEncoding.EncodeToString(forked.Hash[:])) {
		t.Fatalf("forked checkpoint: %d\n%s\nwant 409 with both checkpoints", status, out)
	}
	s.Stop()
	s2 := startServer(t, data)
	if status, out := offer(s2); status != 409 || !strings.Contains(out, "fork") {
		t.Fatalf("after restart: %d %s", status, out)
	}
	// The genuine checkpoint is still accepted.
	req := fmt.Sprintf("old %d\n\n%s", cp.Size, signedOnly(genuine))
	if st, _, b := s2.do(http.MethodPost, "/witness/eu-fra1/add-checkpoint", "", nil, strings.NewReader(req)); st != 200 {
		t.Fatalf("genuine checkpoint refused: %d %s", st, b)
	}
}

// signedOnly strips cosignature lines, leaving the log's own signature.
func signedOnly(b []byte) []byte {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(l, "— witness/") {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, ""))
}
