package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile/deploy"
	"domicile/httpapi"
)

func runBin(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestKeyRotationRewrapResumable rotates a cell's KEK while serving,
// re-wraps every data key with `domicile keys rewrap`, kills the re-wrap
// with SIGKILL midway, resumes it, retires the old version, and reads
// everything back after a restart (so every key is unwrapped from custody).
func TestKeyRotationRewrapResumable(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	const n = 1500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				id := fmt.Sprintf("s%04d", i)
				if _, err := c.CreateSubject(ctx, id, "CN", ""); err != nil {
					errs <- err
					return
				}
				if i%100 == 0 {
					if _, err := c.PutRecord(ctx, id, "profile", "p", map[string]string{"name": id}, ""); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	env := []string{"DOMICILE_SERVER=" + s.URL}
	out, err := runBin(t, env, "keys", "rotate", "--cell", "cn-gz1", "--data", data)
	if err != nil || !strings.Contains(out, `"current_version": 2`) {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	// New subjects are wrapped under the new version at once.
	if _, err := c.CreateSubject(ctx, "after-rotation", "CN", ""); err != nil {
		t.Fatal(err)
	}

	// Start a re-wrap and kill it after its first progress update.
	cmd := exec.Command(binary, "keys", "rewrap", "--cell", "cn-gz1", "--data", data)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	seen, _ := r.ReadString('%')
	cmd.Process.Kill()
	cmd.Wait()
	if !strings.Contains(seen, "rewrap cn-gz1 [") {
		t.Fatalf("no progress bar before the kill: %q", seen)
	}
	out, _ = runBin(t, env, "keys", "status", "--cell", "cn-gz1", "--data", data)
	var st httpapi.KeyStatus
	json.Unmarshal([]byte(out), &st)
	if st.KeysByVer[1] == 0 || st.KeysByVer[2] < 2 {
		t.Fatalf("the kill did not land mid-run (want keys under both versions): %s", out)
	}
	out, err = runBin(t, nil, "keys", "rewrap", "--cell", "cn-gz1", "--data", data)
	if err != nil || !strings.Contains(out, "no key uses an older version") {
		t.Fatalf("resumed rewrap: %v\n%s", err, out)
	}
	out, err = runBin(t, env, "keys", "retire", "--cell", "cn-gz1", "--data", data)
	if err != nil || !strings.Contains(out, `"retired": [`) {
		t.Fatalf("keys retire: %v\n%s", err, out)
	}
	json.Unmarshal([]byte(out), &st)
	if len(st.Versions) != 1 || st.Versions[0] != 2 || st.KeysByVer[2] != n+1 {
		t.Fatalf("after retire: %s", out)
	}
	// Restart: the cache is empty, every read unwraps from custody.
	s.Stop()
	s2 := startServer(t, data)
	c2 := s2.client(tok, app, "")
	for i := 0; i < n; i += 100 {
		id := fmt.Sprintf("s%04d", i)
		rec, err := c2.GetRecord(ctx, id, "profile", "p")
		if err != nil || !strings.Contains(string(rec.Data), id) {
			t.Fatalf("record of %s after re-wrap: %v", id, err)
		}
	}
}

// TestErasureDefeatsOldCopies copies a deployment's databases (everything
// but the key custody) before an erasure, restores that copy afterwards,
// and shows the erased subject's data no longer opens.
func TestErasureDefeatsOldCopies(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	for _, id := range []string{"gone", "stays"} {
		if _, err := c.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutRecord(ctx, id, "message", "m", map[string]string{"body": "secret of " + id}, ""); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	backup := t.TempDir()
	for _, d := range []string{"control", "cn-gz1"} {
		copyDir(t, filepath.Join(data, d), filepath.Join(backup, d))
	}
	s = startServer(t, data)
	c = s.client(tok, app, "")
	rec, err := c.EraseSubject(ctx, "gone")
	if err != nil || len(rec.KeyFingerprints) != 1 || rec.Cell != "cn-gz1" || rec.Records != 1 {
		t.Fatalf("erase: %+v, %v", rec, err)
	}
	s.Stop()
	// The operator restores the old databases; custody is as it is now.
	for _, d := range []string{"control", "cn-gz1"} {
		os.RemoveAll(filepath.Join(data, d))
		copyDir(t, filepath.Join(backup, d), filepath.Join(data, d))
	}
	s = startServer(t, data)
	c = s.client(tok, app, "")
	if _, err := c.GetRecord(ctx, "gone", "message", "m"); !isStatus(err, 404) {
		t.Fatalf("erased subject's record from the restored copy: %v, want 404 (its key is destroyed)", err)
	}
	if r, err := c.GetRecord(ctx, "stays", "message", "m"); err != nil || !strings.Contains(string(r.Data), "secret of stays") {
		t.Fatalf("other subject after restore: %v", err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestExternalCustodian runs cn-gz1 with its KEK held by `domicile keyd`
// in another process: the custodian rules on every operator and authority
// unwrap (they bypass the cache), both sides record the decision, and when
// the custodian is down reads fail closed with 503 and Retry-After.
func TestExternalCustodian(t *testing.T) {
	kd := t.TempDir()
	if out, err := runBin(t, nil, "keyd", "init", "--dir", kd, "--cell", "cn-gz1"); err != nil {
		t.Fatalf("keyd init: %v\n%s", err, out)
	}
	policy := `clauses:
  - name: no-foreign-lawful-requests
    effect: deny
    reasons: [lawful-request-foreign]
  - name: app-services
    effect: allow
    roles: [app]
    reasons: ["service:*"]
  - name: operator-support-with-ticket
    effect: allow
    roles: [operator]
    reasons: [support]
    reference_required: true
    cells: [cn-gz1]
`
	os.WriteFile(filepath.Join(kd, "policy.yaml"), []byte(policy), 0o600)
	addr := freePort(t)
	startKeyd := func() *exec.Cmd {
		cmd := exec.Command(binary, "keyd", "serve", "--addr", addr, "--policy", filepath.Join(kd, "policy.yaml"),
			"--keyring", filepath.Join(kd, "keyring.json"), "--tls-cert", filepath.Join(kd, "server.crt"), "--tls-key", filepath.Join(kd, "server.key"),
			"--client-ca", filepath.Join(kd, "ca.crt"), "--log", filepath.Join(kd, "decisions.jsonl"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd
	}
	keydCmd := startKeyd()
	defer func() { keydCmd.Process.Kill(); keydCmd.Wait() }()

	dep := strings.Replace(string(deploy.DefaultYAML()), `    location: "Guangzhou, Guangdong, China"`, fmt.Sprintf(`    location: "Guangzhou, Guangdong, China"
    custody:
      kind: keyd
      url: https://%s
      ca_file: %s
      cert_file: %s
      key_file: %s`, strings.Replace(addr, "127.0.0.1", "localhost", 1), filepath.Join(kd, "ca.crt"), filepath.Join(kd, "client-cn-gz1.crt"), filepath.Join(kd, "client-cn-gz1.key")), 1)
	depFile := filepath.Join(t.TempDir(), "deployment.yaml")
	os.WriteFile(depFile, []byte(dep), 0o600)
	data := t.TempDir()
	s := startServer(t, data, "--deployment", depFile)
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "wei", "message", "m", map[string]string{"body": "hi"}, ""); err != nil {
		t.Fatal(err)
	}
	opTok := s.token("operator", "CN", "")
	op := s.client(opTok, "", "support TICKET-7")
	for i := 0; i < 2; i++ {
		if _, err := op.GetRecord(ctx, "wei", "message", "m"); err != nil {
			t.Fatalf("operator with a ticket: %v", err)
		}
	}
	// A foreign lawful request relayed by a token acting from China (so
	// the transfer gate does not stop it first) reaches the custodian,
	// whose policy refuses it.
	auth := s.client(s.token("authority", "CN", ""), "", "lawful-request-foreign CASE-1")
	if _, err := auth.GetRecord(ctx, "wei", "message", "m"); !isStatus(err, 403) {
		t.Fatalf("foreign lawful request: %v, want 403 from the custodian", err)
	}
	logText, _ := os.ReadFile(filepath.Join(kd, "decisions.jsonl"))
	if n := strings.Count(string(logText), `"role":"operator"`); n != 2 {
		t.Errorf("custodian saw %d operator unwraps, want 2 (operators bypass the cache)\n%s", n, logText)
	}
	if !strings.Contains(string(logText), "no-foreign-lawful-requests") {
		t.Errorf("custodian's log lacks the denial")
	}
	if l := s.Log(); !strings.Contains(l, `level=WARN msg="key custody error"`) || !strings.Contains(l, "no-foreign-lawful-requests") {
		t.Errorf("the server log lacks the custodian's refusal, as a warning naming its clause:\n%s", l)
	}
	// The cell's own log has the refusal too: the subject's trail shows it.
	sub := s.client(s.token("subject", "CN", "wei"), "", "")
	req, _ := http.NewRequest("GET", s.URL+"/v1/subjects/wei/events?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+sub.Token)
	var page httpapi.EventPage
	if _, err := sub.Do(req, &page); err != nil {
		t.Fatal(err)
	}
	var denied int
	for _, e := range page.Events {
		if strings.Contains(e.Committed, `"action":"key-unwrap"`) && strings.Contains(e.Committed, `"outcome":"denied"`) && strings.Contains(e.Committed, "custodian-denied:no-foreign-lawful-requests") {
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("subject's trail shows %d denied unwraps, want 1", denied)
	}

	// Custodian down: a fresh process has nothing cached; reads fail closed.
	keydCmd.Process.Kill()
	keydCmd.Wait()
	s.Stop()
	s = startServer(t, data, "--deployment", depFile)
	status, h, body := s.do("GET", "/v1/subjects/wei/records/message/m", tok, map[string]string{"Domicile-Purpose": app}, nil)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("custodian down: %d %s (Retry-After %q), want 503 with Retry-After", status, body, h.Get("Retry-After"))
	}
	if bytes.Contains(body, []byte("hi")) {
		t.Fatal("plaintext in the error")
	}
	// The server log has the custody error with its cause; the user's
	// problem has neither the cause nor the custodian's address.
	if l := s.Log(); !strings.Contains(l, `msg="key custody error"`) || !strings.Contains(l, "cell=cn-gz1") || !strings.Contains(l, "op=unwrap") {
		t.Errorf("the server log lacks the custody error:\n%s", l)
	}
	if bytes.Contains(body, []byte("localhost")) || bytes.Contains(body, []byte("refused")) {
		t.Errorf("the user's problem shows the custodian's failure: %s", body)
	}
	keydCmd = startKeyd()
	if r, err := s.client(tok, app, "").GetRecord(ctx, "wei", "message", "m"); err != nil || !strings.Contains(string(r.Data), "hi") {
		t.Fatalf("after the custodian is back: %v", err)
	}
	_ = io.Discard
}
