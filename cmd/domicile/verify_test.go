package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile/checkpoint"
	"domicile/leaf"
	"domicile/logclient"
	"domicile/merkle"
	"domicile/witness"
)

// verifyTestLog is a log built in memory with the log packages, served as
// tlog-tiles over HTTP and cosigned by one real witness.
type verifyTestLog struct {
	t       *testing.T
	signer  note.Signer
	vkey    string
	wkey    string
	witness *witness.Witness

	mu        sync.Mutex
	entries   [][]byte
	events    []logclient.Event
	hashes    merkle.MemoryHashes
	files     map[string][]byte
	published int64
	srv       *httptest.Server
}

func newVerifyTestLog(t *testing.T) *verifyTestLog {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(nil, "log.example/cn-gz1")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := checkpoint.NewSigner(skey)
	wskey, wvkey, err := checkpoint.GenerateCosignerKey(nil, "log.example/eu-fra1")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := checkpoint.NewCosigner(wskey, nil)
	w, err := witness.New(witness.Config{Cosigner: cs, Logs: []string{vkey}, State: witness.NewFileState(filepath.Join(t.TempDir(), "w.json"))})
	if err != nil {
		t.Fatal(err)
	}
	l := &verifyTestLog{t: t, signer: s, vkey: vkey, wkey: wvkey, witness: w, files: map[string][]byte{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		b, ok := l.files[strings.TrimPrefix(r.URL.Path, "/log/cn-gz1/")]
		l.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *verifyTestLog) grow(n int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		i := len(l.entries)
		salt, err := leaf.NewSalt(strings.NewReader(strings.Repeat(fmt.Sprintf("%08d", i), 4)))
		if err != nil {
			l.t.Fatal(err)
		}
		committed := fmt.Sprintf(`{"subject":"s-1","action":"read","n":%d}`, i)
		e := leaf.Format(leaf.Leaf{Time: time.Unix(1767225600, 0), Action: "read", Role: "subject", Outcome: "allowed", Commitment: leaf.Commit(salt, []byte(committed))})
		l.hashes.Append(e)
		l.entries = append(l.entries, e)
		l.events = append(l.events, logclient.Event{LeafIndex: int64(i), Salt: salt, Committed: committed, Leaf: string(e)})
	}
	size := l.hashes.Size()
	for _, t := range merkle.NewTiles(l.published, size) {
		l.files[t.Path()], _ = merkle.ReadTileData(t, l.hashes)
	}
	for _, t := range merkle.NewEntryBundles(l.published, size) {
		l.files[t.Path()], _ = merkle.EncodeEntryBundle(l.entries[t.N*256 : t.N*256+int64(t.W)])
	}
	root, _ := merkle.TreeHash(size, l.hashes)
	msg, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "log.example/cn-gz1", Size: size, Hash: root}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	proof, _ := merkle.ProveConsistency(l.published, size, l.hashes)
	line, err := l.witness.Cosign(context.Background(), msg, merkle.HashesToBytes(proof))
	if err != nil {
		l.t.Fatal(err)
	}
	msg, _ = checkpoint.AddCosignatures(msg, line)
	l.files["checkpoint"] = msg
	l.published = size
	return msg
}

func (l *verifyTestLog) exportFile(t *testing.T, evs []logclient.Event) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"events": evs})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runVerifyMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
	code = Main(context.Background(), env, append([]string{"verify"}, args...))
	return code, out.String(), errb.String()
}

func TestVerifyCommand(t *testing.T) {
	l := newVerifyTestLog(t)
	state := filepath.Join(t.TempDir(), "verify.state")
	early := l.grow(300)
	base := []string{"--log", l.srv.URL + "/log/cn-gz1/", "--key", l.vkey, "--witness", l.wkey, "--state", state}

	code, out, errOut := runVerifyMain(t, append(base, "--events", l.exportFile(t, l.events[:20]))...)
	if code != 0 || !strings.Contains(out, "trusted on first use") || !strings.Contains(out, "20 events") || !strings.Contains(out, "cosigned by log.example/eu-fra1") {
		t.Fatalf("verify (first use) = %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	l.grow(100)
	code, out, errOut = runVerifyMain(t, append(base, "--entries", "--events", l.exportFile(t, l.events[290:]))...)
	if code != 0 || !strings.Contains(out, "consistent with the checkpoint of 300 leaves") || !strings.Contains(out, "all 400 entries") {
		t.Fatalf("verify (grown) = %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	t.Run("usage", func(t *testing.T) {
		if code, _, errOut := runVerifyMain(t, "--key", l.vkey); code != 2 || !strings.Contains(errOut, "--log is required") {
			t.Errorf("verify without --log = %d, %q; want 2 and a usage message", code, errOut)
		}
	})
	t.Run("missing witness", func(t *testing.T) {
		_, other, _ := checkpoint.GenerateCosignerKey(nil, "log.example/us-east1")
		code, _, errOut := runVerifyMain(t, append(base, "--witness", other)...)
		if code != 1 || !strings.Contains(errOut, "no cosignature by required witness log.example/us-east1") {
			t.Errorf("verify with unknown required witness = %d, %q; want 1", code, errOut)
		}
	})
	t.Run("edited event", func(t *testing.T) {
		ev := l.events[5]
		ev.Committed = strings.Replace(ev.Committed, "read", "list", 1)
		code, _, errOut := runVerifyMain(t, append(base, "--events", l.exportFile(t, []logclient.Event{ev}))...)
		if code != 1 || !strings.Contains(errOut, "does not commit to the event") {
			t.Errorf("verify edited event = %d, %q; want 1", code, errOut)
		}
	})
	t.Run("truncated log", func(t *testing.T) {
		l.mu.Lock()
		current := l.files["checkpoint"]
		l.files["checkpoint"] = early
		l.mu.Unlock()
		defer func() { l.mu.Lock(); l.files["checkpoint"] = current; l.mu.Unlock() }()
		code, _, errOut := runVerifyMain(t, base...)
		oldBody, _ := checkpoint.Body(current)
		newBody, _ := checkpoint.Body(early)
		if code != 1 || !strings.Contains(errOut, "LOG INCONSISTENT") || !strings.Contains(errOut, string(oldBody)) || !strings.Contains(errOut, string(newBody)) {
			t.Errorf("verify truncated log = %d, stderr:\n%s\nwant 1 with both checkpoints", code, errOut)
		}
	})
	t.Run("edited stored hash", func(t *testing.T) {
		l.mu.Lock()
		tile := bytes.Clone(l.files["tile/0/000"])
		tile[100] ^= 1
		orig := l.files["tile/0/000"]
		l.files["tile/0/000"] = tile
		l.mu.Unlock()
		defer func() { l.mu.Lock(); l.files["tile/0/000"] = orig; l.mu.Unlock() }()
		code, _, errOut := runVerifyMain(t, append(base, "--events", l.exportFile(t, l.events[:1]))...)
		if code != 1 || !strings.Contains(errOut, "SERVED TREE DOES NOT MATCH") || !strings.Contains(errOut, "tile/0/000 8192") {
			t.Errorf("verify edited hash = %d, stderr:\n%s\nwant 1 with tile evidence", code, errOut)
		}
	})
}

// TestVerifyStateLocation: verify keeps its state in the per-user state
// directory, never in the working directory, says where, and keeps none
// with --state none.
func TestVerifyStateLocation(t *testing.T) {
	l := newVerifyTestLog(t)
	l.grow(10)
	home, xdg, work := t.TempDir(), t.TempDir(), t.TempDir()
	t.Chdir(work)
	run := func(vars map[string]string, extra ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &cmdEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return vars[k] }, Now: time.Now}
		args := append([]string{"verify", "--log", l.srv.URL + "/log/cn-gz1/", "--key", l.vkey}, extra...)
		return Main(context.Background(), env, args), out.String(), errb.String()
	}
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"HOME": home}, filepath.Join(home, ".local", "state", "domicile", "verify.state")},
		{map[string]string{"HOME": home, "XDG_STATE_HOME": xdg}, filepath.Join(xdg, "domicile", "verify.state")},
	} {
		code, out, errOut := run(tc.vars)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Fatalf("verify with %v = %d\n%s%s\nwant it to name %s", tc.vars, code, out, errOut, tc.want)
		}
		if _, err := os.Stat(tc.want); err != nil {
			t.Fatalf("the state file: %v", err)
		}
	}
	if code, out, _ := run(map[string]string{"HOME": home}, "--state", "none"); code != 0 || strings.Contains(out, "trusted on first use") {
		t.Errorf("verify --state none = %d\n%s", code, out)
	}
	if code, _, errOut := run(map[string]string{}); code != 1 || !strings.Contains(errOut, "--state") {
		t.Errorf("verify with no per-user directory = %d, %q; want an error naming --state", code, errOut)
	}
	entries, err := os.ReadDir(work)
	if err != nil || len(entries) != 0 {
		t.Fatalf("verify wrote into the working directory: %v, %v", entries, err)
	}
}
