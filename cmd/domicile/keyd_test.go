package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile/kms"
	"domicile/kms/keyd"
)

// keydBuffer is a bytes.Buffer safe for a server goroutine and a test to share.
type keydBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *keydBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *keydBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func keydEnv(stdout, stderr *keydBuffer) *cmdEnv {
	return &cmdEnv{Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
}

func TestKeydInitServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keyd")
	var out, errb keydBuffer
	if code := Main(context.Background(), keydEnv(&out, &errb), []string{"keyd", "init", "--dir", dir, "--cell", "cn-gz1,cn-sh1"}); code != 0 {
		t.Fatalf("keyd init = %d; stderr:\n%s", code, errb.String())
	}
	for name, mode := range map[string]os.FileMode{
		"ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600, "policy.yaml": 0o644,
		"client-cn-gz1.crt": 0o644, "client-cn-gz1.key": 0o600, "client-cn-sh1.key": 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("keyd init did not write %s: %v", name, err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode = %04o, want %04o", name, st.Mode().Perm(), mode)
		}
	}
	if code := Main(context.Background(), keydEnv(&out, &errb), []string{"keyd", "init", "--dir", dir}); code == 0 {
		t.Errorf("second keyd init into the same directory = 0, want refusal to overwrite")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sout, serr keydBuffer
	done := make(chan int, 1)
	logPath := filepath.Join(dir, "decisions.jsonl")
	go func() {
		done <- Main(ctx, keydEnv(&sout, &serr), []string{"keyd", "serve", "--addr", "127.0.0.1:0",
			"--policy", filepath.Join(dir, "policy.yaml"), "--keyring", filepath.Join(dir, "keyring.json"),
			"--tls-cert", filepath.Join(dir, "server.crt"), "--tls-key", filepath.Join(dir, "server.key"),
			"--client-ca", filepath.Join(dir, "ca.crt"), "--log", logPath})
	}()
	addrRE := regexp.MustCompile(`listening on (https://\S+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; {
		if m := addrRE.FindStringSubmatch(serr.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("keyd serve exited with %d; stderr:\n%s", code, serr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyd serve did not start; stderr:\n%s", serr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tlsCfg, err := keyd.ClientTLSConfig(read("client-cn-gz1.crt"), read("client-cn-gz1.key"), read("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	var decisions []kms.Decision
	cl, err := keyd.NewClient(keyd.ClientConfig{URL: url, TLS: tlsCfg, OnDecision: func(d kms.Decision) { decisions = append(decisions, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v, ct, err := cl.Wrap(ctx, []byte("a 32-byte data key for the test!"), []byte("aad"))
	if err != nil {
		t.Fatalf("Wrap through keyd serve = %v", err)
	}
	app := kms.Access{Cell: "cn-gz1", Role: kms.RoleApp, Jurisdiction: "CN", Reason: "service:messaging"}
	if pt, err := cl.Unwrap(ctx, app, v, ct, []byte("aad")); err != nil || string(pt) != "a 32-byte data key for the test!" {
		t.Errorf("app Unwrap = %q, %v", pt, err)
	}
	foreign := kms.Access{Cell: "cn-gz1", Role: kms.RoleAuthority, Jurisdiction: "US", Reason: kms.ReasonLawfulRequestForeign, Reference: "req-7"}
	var de *kms.DeniedError
	if _, err := cl.Unwrap(ctx, foreign, v, ct, []byte("aad")); !errors.As(err, &de) || de.Clause != "no-foreign-lawful-requests" {
		t.Errorf("foreign lawful request Unwrap = %v, want denial by no-foreign-lawful-requests", err)
	}
	if len(decisions) != 2 || !decisions[0].Allowed || decisions[1].Allowed {
		t.Errorf("decisions = %+v, want allow then deny", decisions)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("keyd serve after cancel = %d; stderr:\n%s", code, serr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("keyd serve did not stop after its context was cancelled")
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := keyd.ReadLog(f)
	if err != nil || len(entries) != 2 {
		t.Fatalf("decision log = %+v, %v; want 2 entries", entries, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "keyring.json")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("keyd serve did not create its keyring with mode 0600")
	}
}

func TestKeydUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"keyd"}, 2},
		{"unknown subcommand", []string{"keyd", "frobnicate"}, 2},
		{"serve without flags", []string{"keyd", "serve"}, 2},
		{"init without dir", []string{"keyd", "init"}, 2},
		{"help", []string{"keyd", "help"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb keydBuffer
			if code := Main(context.Background(), keydEnv(&out, &errb), tc.args); code != tc.code {
				t.Errorf("domicile %v = %d, want %d; stderr:\n%s", tc.args, code, tc.code, errb.String())
			}
		})
	}
	t.Run("bad policy names the line", func(t *testing.T) {
		dir := t.TempDir()
		var out, errb keydBuffer
		if code := Main(context.Background(), keydEnv(&out, &errb), []string{"keyd", "init", "--dir", dir}); code != 0 {
			t.Fatalf("keyd init = %d: %s", code, errb.String())
		}
		os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("clauses:\n  - name: a\n    effect: maybe\n"), 0o644)
		code := Main(context.Background(), keydEnv(&out, &errb), []string{"keyd", "serve", "--addr", "127.0.0.1:0",
			"--policy", filepath.Join(dir, "bad.yaml"), "--keyring", filepath.Join(dir, "k.json"),
			"--tls-cert", filepath.Join(dir, "server.crt"), "--tls-key", filepath.Join(dir, "server.key"),
			"--client-ca", filepath.Join(dir, "ca.crt"), "--log", filepath.Join(dir, "d.jsonl")})
		if code != 1 || !strings.Contains(errb.String(), "line 3") || !strings.Contains(errb.String(), "clauses[0].effect") {
			t.Errorf("serve with a bad policy = %d, stderr %q; want 1 and the line and field", code, errb.String())
		}
	})
}
