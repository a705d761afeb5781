package main

import (
	"bytes"
	"context"
	"database/sql"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestIntegrityOnOpen tampers with a stopped deployment's files, through
// the real binary:
//   - two flipped bytes in a stored level-0 tile of cn-gz1: `domicile
//     check` reports the tiles rebuilt, and a server started on a copy
//     rebuilds them too, says so in its log, and serves proofs that
//     `domicile verify --entries` accepts;
//   - an edited event in cn-gz1: `domicile check` refuses the cell with
//     the signed checkpoint and the recomputed root and exits 1; a server
//     started on a copy answers cn-gz1's subjects 503 with a problem
//     naming the cell (no Retry-After), and keeps serving eu-fra1's.
func TestIntegrityOnOpen(t *testing.T) {
	for _, kind := range []string{kindPebble, kindSQLite} {
		t.Run(kind, func(t *testing.T) { testIntegrityOnOpen(t, kind) })
	}
}

func testIntegrityOnOpen(t *testing.T, kind string) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(dep, benchDeploymentYAML(kind), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s := startServer(t, data, "--deployment", dep)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	if _, err := c.CreateSubject(ctx, "tam", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSubject(ctx, "eve", "DE", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "eve", "message", "m", map[string]string{"body": "kept"}, ""); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := c.PutRecord(ctx, "tam", "message", fmt.Sprint(i%7), map[string]string{"body": "x"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Sign a checkpoint of every write before stopping.
	// The tampering below is caught against a signed checkpoint that
	// covers the edited event (cn-gz1's sixth): wait for the log to
	// publish one (every 500 ms), however fast the writes went.
	for cell, least := range map[string]int64{"cn-gz1": 6, "eu-fra1": 2} {
		waitFor(t, 20*time.Second, "a checkpoint of "+cell+" covering its writes", func() bool {
			code, _, b := s.do("GET", "/log/"+cell+"/checkpoint", "", nil, nil)
			if code != 200 {
				t.Fatalf("checkpoint of %s: %d %s", cell, code, b)
			}
			lines := strings.Split(string(b), "\n")
			var size int64
			if len(lines) > 1 {
				fmt.Sscan(lines[1], &size)
			}
			return size >= least
		})
	}
	subTok := s.token("subject", "CN", "tam")
	info := cellsInfo(t, s)["cn-gz1"]
	s.Stop()

	check := func(t *testing.T, dir string) (string, int) {
		t.Helper()
		out, err := runBin(t, nil, "check", "--data", dir, "--deployment", dep)
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out, 0
		case errors.As(err, &ee):
			return out, ee.ExitCode()
		}
		t.Fatalf("check: %v", err)
		return "", 0
	}
	if out, code := check(t, data); code != 0 || strings.Count(out, ": ok: ") != 3 {
		t.Fatalf("check of a sound deployment: exit %d\n%s", code, out)
	}

	t.Run("FlippedTileBytes", func(t *testing.T) {
		flip := func(dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "cn-gz1", "hashes", "level0.tiles"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, off := range []int64{3*32 + 1, 200*32 + 17} {
				b := make([]byte, 1)
				if _, err := f.ReadAt(b, off); err != nil {
					t.Fatalf("no stored tile to flip: %v", err)
				}
				b[0] ^= 0x01
				if _, err := f.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
			}
		}
		cp := t.TempDir()
		copyDir(t, data, cp)
		flip(cp)
		out, code := check(t, cp)
		if code != 0 || !strings.Contains(out, "cn-gz1: rebuilt tiles") || !strings.Contains(out, "eu-fra1: ok") {
			t.Fatalf("check after flipped tile bytes: exit %d\n%s", code, out)
		}
		if out, code := check(t, cp); code != 0 || !strings.Contains(out, "cn-gz1: ok") {
			t.Fatalf("check after the rebuild: exit %d\n%s", code, out)
		}

		cp2 := t.TempDir()
		copyDir(t, data, cp2)
		flip(cp2)
		s2 := startServer(t, cp2, "--deployment", dep)
		if log := s2.out.String(); !strings.Contains(log, "rebuilt") || !strings.Contains(log, "cell=cn-gz1") {
			t.Fatalf("server log does not report the rebuild:\n%s", log)
		}
		_, file := events(t, s2, subTok, "tam")
		if out, err := verify(t, s2, info, filepath.Join(t.TempDir(), "state"), "--events", file, "--entries"); err != nil {
			t.Fatalf("verify after the rebuild: %v\n%s", err, out)
		}
	})

	t.Run("EditedEvent", func(t *testing.T) {
		edit := func(dir string) {
			if kind == kindPebble {
				editPebbleEvent(t, filepath.Join(dir, "cn-gz1", "pebble"), 5, []byte("a=write"), []byte("a=erase"))
				return
			}
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "cn-gz1", "cell.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var leaf []byte
			if err := db.QueryRow(`SELECT leaf FROM events WHERE idx=5`).Scan(&leaf); err != nil {
				t.Fatal(err)
			}
			leaf = bytes.Replace(leaf, []byte("a=write"), []byte("a=read"), 1)
			mustExec(t, db, `UPDATE events SET leaf=? WHERE idx=5`, leaf)
		}
		cp := t.TempDir()
		copyDir(t, data, cp)
		edit(cp)
		out, code := check(t, cp)
		if code != 1 || !strings.Contains(out, "cn-gz1: refused: ") || !strings.Contains(out, "disagree with the last signed checkpoint") ||
			!strings.Contains(out, "root recomputed from the stored events") || !strings.Contains(out, "domicile/demo/cn-gz1\n") ||
			!strings.Contains(out, "eu-fra1: ok") || !strings.Contains(out, "us-east1: ok") {
			t.Fatalf("check after an edited event: exit %d\n%s", code, out)
		}

		s2 := startServer(t, cp, "--deployment", dep)
		if log := s2.out.String(); !strings.Contains(log, "cell refuses to serve") || !strings.Contains(log, "cell=cn-gz1") {
			t.Fatalf("server log does not report the refusal:\n%s", log)
		}
		code, hdr, b := s2.do("GET", "/v1/subjects/tam/records/message/1", s2.token("app", "CN", ""), map[string]string{"Domicile-Purpose": app}, nil)
		p := mustProblem(t, b)
		if code != 503 || hdr.Get("Retry-After") != "" || !strings.Contains(p.Detail, "cn-gz1") || !strings.Contains(p.Detail, "integrity") {
			t.Fatalf("read in the refused cell: %d Retry-After=%q %s; want 503 naming the cell and the reason, without Retry-After", code, hdr.Get("Retry-After"), b)
		}
		c2 := s2.client(s2.token("app", "DE", ""), app, "")
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if r, err := c2.GetRecord(ctx, "eve", "message", "m"); err != nil || !strings.Contains(string(r.Data), "kept") {
			t.Fatalf("read in eu-fra1 while cn-gz1 refuses: %v", err)
		}
		if _, err := c2.CreateSubject(ctx, "newcomer", "DE", ""); err != nil {
			t.Fatalf("register in eu-fra1 while cn-gz1 refuses: %v", err)
		}
		if _, err := s2.client(s2.token("app", "CN", ""), app, "").CreateSubject(ctx, "newcn", "CN", ""); !isStatus(err, 503) {
			t.Fatalf("register in the refused cell: %v, want 503", err)
		}
	})
}

// editPebbleEvent replaces old by new (of the same length, so that the
// value's framing holds) in the first place it occurs in the stored value
// of event idx of the stopped Pebble database dir, as someone with the
// files and the store's key layout (pebblestore/keys.go: 'e' and the
// index, big-endian) could.
func editPebbleEvent(t *testing.T, dir string, idx int64, old, new []byte) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("editPebbleEvent: %q and %q differ in length", old, new)
	}
	db, err := openPebbleToTamper(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := byteorder.BigEndian.AppendUint64([]byte{'e'}, uint64(idx))
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("event %d: %v", idx, err)
	}
	edited := bytes.Replace(v, old, new, 1)
	closer.Close()
	if !bytes.Contains(edited, new) || bytes.Equal(edited, v) {
		t.Fatalf("event %d holds no %q to edit", idx, old)
	}
	if err := db.Set(key, edited, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// openPebbleToTamper opens a stopped cell's Pebble database dir to
// tamper with, with Pebble's messages in the test's log.
func openPebbleToTamper(t *testing.T, dir string) (*pebble.DB, error) {
	return pebble.Open(dir, &pebble.Options{Logger: testPebbleLog{t}})
}

// testPebbleLog writes Pebble's messages to a test's log.
type testPebbleLog struct{ t *testing.T }

func (l testPebbleLog) Infof(format string, args ...any)  { l.t.Logf("pebble: "+format, args...) }
func (l testPebbleLog) Errorf(format string, args ...any) { l.t.Logf("pebble: "+format, args...) }
func (l testPebbleLog) Fatalf(format string, args ...any) { l.t.Fatalf("pebble: "+format, args...) }
