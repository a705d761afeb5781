package main

import (
	"bufio"
	"bytes"
	"context"
	"domicile/client"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"domicile/httpapi"
)

// binary is the domicile binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "domicile-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "domicile")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		// Without the race detector where it is unsupported.
		out, err = exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "build domicile: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running domicile serve process.
type server struct {
	t     *testing.T
	cmd   *exec.Cmd
	URL   string
	Data  string
	Admin string
	out   *procLog // stderr
	// HTTP is the client requests use; nil is http.DefaultClient (an
	// HTTPS server's test sets one trusting its CA).
	HTTP *http.Client
	// stdout is the process's standard output (startProcess only).
	stdout *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// procLog is a server process's standard error, written by the process
// straight into a file (no copying goroutine): what the process wrote
// before it printed its "listening" line, which it prints after flushing
// its log, is there when the line is read.
type procLog struct{ path string }

// newProcLog returns a procLog in a new file of t's temporary directory
// and the file, for exec.Cmd.Stderr; the caller closes it once the
// process started.
func newProcLog(t *testing.T) (*procLog, *os.File) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr-*.log")
	if err != nil {
		t.Fatal(err)
	}
	return &procLog{path: f.Name()}, f
}

// String returns what the process wrote so far.
func (l *procLog) String() string {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return "(stderr unreadable: " + err.Error() + ")"
	}
	return string(b)
}

// startServer starts the binary on a free port with data dir data (a new
// temporary one if empty) and waits until it listens.
func startServer(t *testing.T, data string, extra ...string) *server {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, extra...)
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errBuf, errFile := newProcLog(t)
	cmd.Stderr = errFile
	err = cmd.Start()
	errFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, Data: data, out: errBuf}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "domicile: listening on "); ok {
				urlc <- u
			}
		}
	}()
	select {
	case s.URL = <-urlc:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start; stderr:\n%s", errBuf.String())
	}
	t.Cleanup(s.Stop)
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	s.Admin = strings.TrimSpace(string(b))
	return s
}

// Stop ends the server gracefully.
func (s *server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// Kill ends the server with SIGKILL.
func (s *server) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

// client returns a client with token and headers.
func (s *server) client(token, purpose, justification string) *httpapi.Client {
	return &httpapi.Client{Client: client.Client{BaseURL: s.URL, Token: token, Purpose: purpose, Justification: justification, HTTP: s.HTTP}}
}

// Log returns what the server wrote to its standard error: its log.
func (s *server) Log() string { return s.out.String() }

// token creates a token and returns its secret. It lives 90 days,
// whatever its role, so that a test that moves its clock weeks on does
// not outlive it (the default lifetimes are TestTokenLifecycle's).
func (s *server) token(role, jurisdiction, subject string) string {
	s.t.Helper()
	r, err := s.client(s.Admin, "", "").CreateToken(context.Background(), client.TokenRequest{Role: role, Jurisdiction: jurisdiction, Subject: subject, TTL: "2160h"})
	if err != nil {
		s.t.Fatalf("create %s token: %v", role, err)
	}
	return r.Token
}

// do sends a raw request and returns status, headers and body.
func (s *server) do(method, path, token string, hdr map[string]string, body io.Reader) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func mustProblem(t *testing.T, b []byte) client.Problem {
	t.Helper()
	var p client.Problem
	if err := json.Unmarshal(b, &p); err != nil || p.Status == 0 {
		t.Fatalf("not a problem document: %s", b)
	}
	return p
}
