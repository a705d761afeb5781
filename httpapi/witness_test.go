package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"domicile/checkpoint"
	"domicile/merkle"
	"domicile/witness"
)

// witnessLog is a real log in memory: a Merkle tree and its signing key.
type witnessLog struct {
	t      *testing.T
	origin string
	hashes merkle.MemoryHashes
	signer note.Signer
	vkey   string
}

func newWitnessLog(t *testing.T, origin string) *witnessLog {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &witnessLog{t: t, origin: origin, signer: s, vkey: vkey}
}

func (l *witnessLog) grow(n int) {
	for range n {
		if _, err := l.hashes.Append(fmt.Appendf(nil, "entry %d", l.hashes.Size())); err != nil {
			l.t.Fatal(err)
		}
	}
}

func (l *witnessLog) checkpoint() []byte {
	l.t.Helper()
	root, err := merkle.TreeHash(l.hashes.Size(), l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	msg, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: l.origin, Size: l.hashes.Size(), Hash: root}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return msg
}

func (l *witnessLog) proof(from int64) [][]byte {
	l.t.Helper()
	p, err := merkle.ProveConsistency(from, l.hashes.Size(), l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	return merkle.HashesToBytes(p)
}

// startWitness serves a real witness for logs over HTTP, as `domicile
// witness serve` does, and returns its URL and verifier.
func startWitness(t *testing.T, logs ...string) (string, *checkpoint.CosignatureVerifier) {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateCosignerKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.NewCosigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Cosigner: c, Logs: logs, State: witness.NewFileState(filepath.Join(t.TempDir(), "witness.state"))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewWitnessHandler(w, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	v, err := checkpoint.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, v
}

// TestWitnessOverHTTP drives a stand-alone witness through WitnessClient
// with every answer of C2SP tlog-witness add-checkpoint.
func TestWitnessOverHTTP(t *testing.T) {
	ctx := context.Background()
	l := newWitnessLog(t, "log.example/cn-gz1")
	url, wv := startWitness(t, l.vkey)
	c, err := NewWitnessClient(url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier(l.vkey)
	cosigned := func(signed, answer []byte) {
		t.Helper()
		msg, err := checkpoint.AddCosignatures(signed, answer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Open(msg, lv, wv); err != nil {
			t.Fatalf("the witness's answer is not its cosignature: %v", err)
		}
	}
	l.grow(5)
	five := l.checkpoint()
	answer, err := c.AddCheckpoint(ctx, 0, nil, five)
	if err != nil {
		t.Fatalf("AddCheckpoint(first) = %v", err)
	}
	cosigned(five, answer)
	l.grow(300)
	big := l.checkpoint()
	// A log that lost track of the witness's size learns it from 409.
	_, err = c.AddCheckpoint(ctx, 0, nil, big)
	var ce *witness.ConflictError
	if !errors.As(err, &ce) || ce.Size != 5 {
		t.Fatalf("AddCheckpoint(old 0 after 5) = %v, want *witness.ConflictError{Size: 5}", err)
	}
	answer, err = c.AddCheckpoint(ctx, 5, l.proof(5), big)
	if err != nil {
		t.Fatalf("AddCheckpoint(old 5, proof) = %v", err)
	}
	cosigned(big, answer)

	refused := func(name string, err error, status int, body string) {
		t.Helper()
		var re *WitnessRefusedError
		if !errors.As(err, &re) || re.Status != status || !strings.Contains(re.Body, body) {
			t.Errorf("%s: %v, want a *WitnessRefusedError with status %d and %q in the body", name, err, status, body)
		}
	}
	l.grow(1)
	next := l.checkpoint()
	_, err = c.AddCheckpoint(ctx, 305, l.proof(304), next)
	refused("bad proof", err, http.StatusUnprocessableEntity, "consistency proof does not verify")
	_, err = c.AddCheckpoint(ctx, 307, nil, next)
	refused("old beyond the checkpoint", err, http.StatusBadRequest, `"field":"old"`)

	other := newWitnessLog(t, "log.example/cn-gz1") // same origin, another key
	other.hashes = l.hashes
	_, err = c.AddCheckpoint(ctx, 305, l.proof(305), other.checkpoint())
	refused("another key", err, http.StatusForbidden, "signature")
	unknown := newWitnessLog(t, "log.example/elsewhere")
	unknown.grow(1)
	_, err = c.AddCheckpoint(ctx, 0, nil, unknown.checkpoint())
	refused("unknown log", err, http.StatusNotFound, "log.example/elsewhere")

	// A fork at the cosigned size: 409 with both signed checkpoints.
	// The log's key signs another tree of the same size.
	fork := newWitnessLog(t, "log.example/cn-gz1")
	fork.signer = l.signer
	for i := range 305 {
		fork.hashes.Append(fmt.Appendf(nil, "forked %d", i))
	}
	forked := fork.checkpoint()
	_, err = c.AddCheckpoint(ctx, 305, nil, forked)
	refused("fork", err, http.StatusConflict, "log fork")
	if !strings.Contains(err.Error(), string(big[:bytes.Index(big, []byte("\n\n"))])) {
		t.Errorf("fork refusal does not carry the cosigned checkpoint: %v", err)
	}
	// The honest log goes on.
	answer, err = c.AddCheckpoint(ctx, 305, l.proof(305), next)
	if err != nil {
		t.Fatalf("AddCheckpoint(honest, after refusals) = %v", err)
	}
	cosigned(next, answer)
}

func TestWitnessHandlerRefusesGarbage(t *testing.T) {
	l := newWitnessLog(t, "log.example/cn-gz1")
	url, _ := startWitness(t, l.vkey)
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"no blank line", "POST", "/add-checkpoint", "old 0\n", 400, "checkpoint"},
		{"leading zero", "POST", "/add-checkpoint", "old 01\n\nx\n", 400, "old"},
		{"bad hash", "POST", "/add-checkpoint", "old 1\nAAAA\n\nx\n", 400, "proof"},
		{"not a note", "POST", "/add-checkpoint", "old 0\n\nx\n", 400, "checkpoint"},
		{"too large", "POST", "/add-checkpoint", "old 0\n\n" + strings.Repeat("x", maxAddCheckpoint), 413, ""},
		{"other route", "GET", "/checkpoint", "", 404, ""},
		{"wrong method", "GET", "/add-checkpoint", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || (tt.field != "" && !strings.Contains(string(b), `"field":"`+tt.field+`"`)) {
				t.Errorf("%s %s %q = %d %s, want %d naming field %q", tt.method, tt.path, tt.body, resp.StatusCode, b, tt.status, tt.field)
			}
		})
	}
}

func TestNewWitnessClientURL(t *testing.T) {
	for _, u := range []string{"https://w.example", "http://127.0.0.1:8710/", "https://w.example/witness/cn-gz1"} {
		if _, err := NewWitnessClient(u, nil); err != nil {
			t.Errorf("NewWitnessClient(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "w.example", "ftp://w.example", "https://user:pw@w.example", "https://w.example/?a=1", "https://w.example/#x", "https:///x"} {
		if _, err := NewWitnessClient(u, nil); err == nil {
			t.Errorf("NewWitnessClient(%q) = nil error", u)
		}
	}
	c, _ := NewWitnessClient("https://w.example/witness/cn-gz1/", nil)
	if c.URL() != "https://w.example/witness/cn-gz1/add-checkpoint" {
		t.Errorf("URL() = %q", c.URL())
	}
}

func TestParseWitnessAnswers(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"— w AAAA\n", true},
		{"— w AAAA\n— v BBBB\n", true},
		{"— w AAAA", false},
		{"", false},
		{"\n", false},
		{"— w\n", false},
		{"- w AAAA\n", false},
		{"— w AA AA\n", false},
		{"— w AAAA\r\n", false},
	} {
		if err := parseCosignatureLines([]byte(tt.in)); (err == nil) != tt.ok {
			t.Errorf("parseCosignatureLines(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
	}
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0\n", 0, true},
		{"20852163\n", 20852163, true},
		{"5", 0, false},
		{"05\n", 0, false},
		{"-1\n", 0, false},
		{"+1\n", 0, false},
		{"1\n\n", 0, false},
		{"99999999999999999999\n", 0, false},
	} {
		n, err := parseWitnessSize([]byte(tt.in))
		if (err == nil) != tt.ok || n != tt.want {
			t.Errorf("parseWitnessSize(%q) = %d, %v; want %d, ok %v", tt.in, n, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseCosignatureLines(f *testing.F) {
	f.Add([]byte("— w AAAA\n"))
	f.Add([]byte("— w AAAA\n— v B\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if parseCosignatureLines(b) != nil {
			return
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if len(lines) == 0 || len(lines) > maxCosignatureLines {
			t.Fatalf("accepted %d lines", len(lines))
		}
		for _, l := range lines {
			if !bytes.HasPrefix(l, []byte("— ")) || !bytes.HasSuffix(l, []byte("\n")) || bytes.Count(l, []byte(" ")) != 2 {
				t.Fatalf("accepted line %q", l)
			}
		}
	})
}

func FuzzParseWitnessSize(f *testing.F) {
	f.Add([]byte("0\n"))
	f.Add([]byte("123\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseWitnessSize(b)
		if err != nil {
			return
		}
		if got := fmt.Sprintf("%d\n", n); got != string(b) {
			t.Fatalf("parseWitnessSize(%q) = %d, which formats as %q", b, n, got)
		}
	})
}
