package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"domicile/checkpoint"
	"domicile/deploy"
)

// witnessProc is a running `domicile witness serve` process.
type witnessProc struct {
	cmd *exec.Cmd
	URL string
	Key string // its verifier key, as it printed it
	out *syncBuffer
}

// startWitnessProc starts a stand-alone witness and waits until it listens.
func startWitnessProc(t *testing.T, args ...string) *witnessProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"witness", "serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &witnessProc{cmd: cmd, out: &syncBuffer{}}
	cmd.Stderr = w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc, keyc := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "domicile witness: key "); ok {
				keyc <- k
			}
			if u, ok := strings.CutPrefix(sc.Text(), "domicile witness: listening on "); ok {
				urlc <- u
			}
		}
	}()
	select {
	case w.URL = <-urlc:
		w.Key = <-keyc
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("witness did not start; stderr:\n%s", w.out.String())
	}
	t.Cleanup(w.Stop)
	return w
}

// Stop ends the witness gracefully.
func (w *witnessProc) Stop() {
	if w.cmd.ProcessState != nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	w.cmd.Wait()
}

// servedCheckpoint returns a cell's served checkpoint, parsed, or false.
func servedCheckpoint(s *server, cell string) ([]byte, checkpoint.Checkpoint, bool) {
	st, _, b := s.do("GET", "/log/"+cell+"/checkpoint", "", nil, nil)
	if st != http.StatusOK {
		return nil, checkpoint.Checkpoint{}, false
	}
	body, err := checkpoint.Body(b)
	if err != nil {
		return nil, checkpoint.Checkpoint{}, false
	}
	cp, err := checkpoint.Parse(body)
	return b, cp, err == nil
}

// TestStandaloneWitnesses: two stand-alone witness processes, run by
// third parties with their own keys, cosign the cells' checkpoints; a
// serve whose deployment lists them (both required) serves checkpoints
// carrying both, so `domicile verify --witnesses 2` passes, with a
// subject's trail. A witness keeps its state across a restart and still
// catches a fork. When one witness comes back with another key, the cell
// refuses its answers, serves its next checkpoint without it once
// witness_wait is over, and verify --witnesses 2 fails, naming the
// witness whose cosignature is missing; one of two still passes.
func TestStandaloneWitnesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var keys [2]string
	for i := range keys {
		out, err := runBin(t, nil, "witness", "key", "--key", filepath.Join(dir, fmt.Sprintf("w%d.key", i+1)), "--name", fmt.Sprintf("w%d.test", i+1))
		if err != nil {
			t.Fatalf("witness key: %v\n%s", err, out)
		}
		keys[i] = strings.TrimSpace(out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "w1.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	addrs := [2]string{freePort(t), freePort(t)}
	dep := string(deploy.DefaultYAML()) + "witness_wait: 1s\nwitnesses:\n"
	for i := range addrs {
		dep += fmt.Sprintf("  - name: w%d\n    url: http://%s/\n    key: %s\n    required: true\n", i+1, addrs[i], keys[i])
	}
	depFile := filepath.Join(dir, "deployment.yaml")
	if err := os.WriteFile(depFile, []byte(dep), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", "--deployment", depFile)
	info := cellsInfo(t, s)
	var logs string
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		logs += info[c].VerifierKey + "\n"
	}
	logsFile := filepath.Join(dir, "logs.txt")
	if err := os.WriteFile(logsFile, []byte("# the cells of the demo deployment\n"+logs), 0o600); err != nil {
		t.Fatal(err)
	}
	witnessArgs := func(i int, key string) []string {
		return []string{"--key", filepath.Join(dir, key), "--data", filepath.Join(dir, fmt.Sprintf("w%d", i+1)), "--logs", logsFile, "--addr", addrs[i]}
	}
	w1 := startWitnessProc(t, witnessArgs(0, "w1.key")...)
	w2 := startWitnessProc(t, witnessArgs(1, "w2.key")...)
	if w1.Key != keys[0] || w2.Key != keys[1] {
		t.Fatalf("witnesses serve with keys %q, %q; want %q, %q", w1.Key, w2.Key, keys[0], keys[1])
	}

	c := s.client(s.token("app", "CN", ""), app, "")
	if _, err := c.CreateSubject(ctx, "wen", "CN", ""); err != nil {
		t.Fatal(err)
	}
	subTok := s.token("subject", "CN", "wen")
	if _, err := s.client(subTok, "", "").PutRecord(ctx, "wen", "message", "m1", map[string]string{"body": "one"}, ""); err != nil {
		t.Fatal(err)
	}
	page, trail := events(t, s, subTok, "wen")
	var want int64
	for _, e := range page.Events {
		want = max(want, e.LeafIndex+1)
	}
	var served []byte
	waitFor(t, 30*time.Second, "a checkpoint covering the trail, cosigned by both witnesses", func() bool {
		b, cp, ok := servedCheckpoint(s, "cn-gz1")
		served = b
		return ok && cp.Size >= want && bytes.Contains(b, []byte("\n— w1.test ")) && bytes.Contains(b, []byte("\n— w2.test "))
	})
	// The privacy page demands the required witnesses' cosignatures too.
	if st, _, page := s.do("GET", "/privacy/", "", nil, nil); st != 200 || !bytes.Contains(page, []byte(keys[0])) || !bytes.Contains(page, []byte(keys[1])) {
		t.Errorf("privacy page: %d; want both witnesses' keys pinned", st)
	}
	state := filepath.Join(dir, "verify.state")
	both := []string{"--witness-key", keys[0], "--witness-key", keys[1], "--witnesses", "2"}
	out, err := verify(t, s, info["cn-gz1"], state, append(both, "--events", trail)...)
	if err != nil || !strings.Contains(out, "2 of the 2 listed witnesses cosigned; 2 required") || !strings.Contains(out, "events: each commits to its event") {
		t.Fatalf("verify --witnesses 2: %v\n%s", err, out)
	}

	// w1 restarts with its key and state: it still remembers what it
	// cosigned, so a second history of the same size, signed with the
	// cell's log key, is caught as a fork.
	body, _ := checkpoint.Body(served)
	cp, _ := checkpoint.Parse(body)
	w1.Stop()
	w1 = startWitnessProc(t, witnessArgs(0, "w1.key")...)
	keyText, err := os.ReadFile(filepath.Join(s.Data, "custody", "cn-gz1", "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.NewSigner(strings.SplitN(string(keyText), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := cp
	rand.Read(forged.Hash[:])
	forgedSigned, err := checkpoint.Sign(forged, signer)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(w1.URL+"/add-checkpoint", "text/plain", strings.NewReader(fmt.Sprintf("old %d\n\n%s", cp.Size, forgedSigned)))
	if err != nil {
		t.Fatal(err)
	}
	var fork bytes.Buffer
	fork.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(fork.String(), "log fork") || !strings.Contains(fork.String(), string(body)) {
		t.Fatalf("forged checkpoint after the witness restarted: %d\n%s\nwant 409 with both checkpoints", resp.StatusCode, fork.String())
	}
	// One process per state directory.
	if out, err := runBin(t, nil, append([]string{"witness", "serve", "--addr", "127.0.0.1:0"}, witnessArgs(0, "w1.key")[:6]...)...); err == nil || !strings.Contains(out, "another process") {
		t.Fatalf("a second witness on w1's data: %v\n%s", err, out)
	}

	// w2 comes back with a new key, under its name and with its state.
	w2.Stop()
	w2 = startWitnessProc(t, append(witnessArgs(1, "w2-new.key"), "--name", "w2.test")...)
	if w2.Key == keys[1] || !strings.HasPrefix(w2.Key, "w2.test+") {
		t.Fatalf("w2 restarted with key %q; want a new key named w2.test", w2.Key)
	}
	if _, err := s.client(subTok, "", "").PutRecord(ctx, "wen", "message", "m2", map[string]string{"body": "two"}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the next checkpoint served, with w1's cosignature alone", func() bool {
		b, next, ok := servedCheckpoint(s, "cn-gz1")
		return ok && next.Size > cp.Size && bytes.Contains(b, []byte("\n— w1.test "))
	})
	out, err = verify(t, s, info["cn-gz1"], state, both...)
	oldID := strings.Split(keys[1], "+")[1]
	if err == nil || !strings.Contains(out, "CHECKPOINT LACKS REQUIRED WITNESS COSIGNATURES") || !strings.Contains(out, "w2.test+"+oldID+": no cosignature") || strings.Contains(out, "w1.test+") {
		t.Fatalf("verify --witnesses 2 with w2's key replaced: %v\n%s\nwant a failure naming w2.test+%s alone", err, out, oldID)
	}
	out, err = verify(t, s, info["cn-gz1"], state, "--witness-key", keys[0], "--witness-key", keys[1], "--witnesses", "1")
	if err != nil || !strings.Contains(out, "1 of the 2 listed witnesses cosigned; 1 required") {
		t.Fatalf("verify --witnesses 1 with w2's key replaced: %v\n%s", err, out)
	}
	if log := s.out.String(); !strings.Contains(log, "no valid cosignature by its key w2.test+"+oldID) {
		t.Errorf("the server did not report w2's answers without its key:\n%s", log)
	}
}

// TestWitnessCLI: the witness commands' usage errors name the flag.
func TestWitnessCLI(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs.txt")
	_, vkey, _ := checkpoint.GenerateKey(rand.Reader, "domicile/demo/cn-gz1")
	os.WriteFile(logs, []byte(vkey+"\n"), 0o600)
	open := filepath.Join(dir, "open.key")
	if out, err := runBin(t, nil, "witness", "key", "--key", open, "--name", "w.test"); err != nil {
		t.Fatal(err, out)
	}
	os.Chmod(open, 0o644)
	badLogs := filepath.Join(dir, "bad.txt")
	os.WriteFile(badLogs, []byte(vkey+"\nnot a key\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"witness"}, 2, "usage:"},
		{"serve without flags", []string{"witness", "serve"}, 2, "missing --key, --data, --logs"},
		{"key without --key", []string{"witness", "key"}, 2, "--key is required"},
		{"key readable by others", []string{"witness", "key", "--key", open}, 1, "readable by others"},
		{"another name", []string{"witness", "key", "--key", filepath.Join(dir, "w.key"), "--name", "a.test"}, 0, "a.test+"},
		{"name differs from the key's", []string{"witness", "key", "--key", filepath.Join(dir, "w.key"), "--name", "b.test"}, 1, `--name "b.test": the key in`},
		{"bad log list", []string{"witness", "serve", "--key", filepath.Join(dir, "w.key"), "--data", dir, "--logs", badLogs, "--addr", "127.0.0.1:0"}, 1, "line 2: not a log verifier key"},
		{"missing log list", []string{"witness", "serve", "--key", filepath.Join(dir, "w.key"), "--data", dir, "--logs", filepath.Join(dir, "none"), "--addr", "127.0.0.1:0"}, 1, "--logs"},
		{"verify quorum above the keys", []string{"verify", "--log", "http://127.0.0.1:1/log/x/", "--key", vkey, "--witnesses", "1"}, 2, "--witnesses 1: give at least that many --witness-key keys"},
		{"verify a log key as witness key", []string{"verify", "--log", "http://127.0.0.1:1/log/x/", "--key", vkey, "--witness-key", vkey}, 1, "--witness-key (the 1st): not a witness's cosignature verifier key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runBin(t, nil, tt.args...)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("domicile %s = exit %d\n%s\nwant exit %d and %q", strings.Join(tt.args, " "), code, out, tt.code, tt.want)
			}
		})
	}
}
