package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/httpapi"
)

// TestBackupRestore takes an online backup of cn-gz1 (the Pebble default)
// with `domicile backup` while the service runs, writes after it, stops
// the service, puts the backup in place of the cell's store and starts
// again: what was written before the backup reads back (records and an
// object's contents), what was written after it does not exist, and the
// cell's log checks at start. Only an admin token takes a backup; an
// unknown cell is 404.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	s := startServer(t, data)
	c := s.client(s.token("app", "CN", ""), app, "")
	if _, err := c.CreateSubject(ctx, "li.wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m1", "m2"} {
		if _, err := c.PutRecord(ctx, "li.wei", "message", id, map[string]string{"body": "before " + id}, ""); err != nil {
			t.Fatal(err)
		}
	}
	photo := bytes.Repeat([]byte("photo-"), 20_000)
	if _, err := c.PutObject(ctx, "li.wei", "photo.jpg", "image/jpeg", bytes.NewReader(photo), int64(len(photo))); err != nil {
		t.Fatal(err)
	}

	code, out, errb := runCLI(t, "", "backup", "--cell", "cn-gz1", "--json", "--server", s.URL, "--token", s.Admin)
	if code != 0 {
		t.Fatalf("domicile backup: %d %s %s", code, out, errb)
	}
	var b httpapi.Backup
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("backup answer %q: %v", out, err)
	}
	if b.Cell != "cn-gz1" || filepath.Dir(b.Dir) != filepath.Join(data, "backups", "cn-gz1") || b.Files == 0 || b.Bytes < int64(len(photo)) || b.LogSize == 0 {
		t.Fatalf("backup = %+v", b)
	}
	waitFor(t, 5*time.Second, "the backup in the server's log", func() bool { return strings.Contains(s.Log(), `msg="backup taken" cell=cn-gz1`) })
	if _, err := c.PutRecord(ctx, "li.wei", "message", "m3", map[string]string{"body": "after"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, token string
		hdr               map[string]string
		status            int
	}{
		{"an app token", "/v1/cells/cn-gz1/backup", s.token("app", "CN", ""), map[string]string{"Domicile-Purpose": app}, http.StatusForbidden},
		{"an unknown cell", "/v1/cells/xx-nowhere/backup", s.Admin, nil, http.StatusNotFound},
	} {
		if st, _, body := s.do(http.MethodPost, tc.path, tc.token, tc.hdr, nil); st != tc.status {
			t.Errorf("backup by %s: %d %s, want %d", tc.name, st, body, tc.status)
		}
	}
	s.Stop()

	// The restore of doc/deploy.md: the cell's store replaced by the
	// backup, with the process stopped.
	cellDir := filepath.Join(data, "cn-gz1")
	for _, d := range []string{"pebble", "blobs", "hashes"} {
		if err := os.RemoveAll(filepath.Join(cellDir, d)); err != nil {
			t.Fatal(err)
		}
	}
	copyDir(t, b.Dir, cellDir)

	s = startServer(t, data)
	c = s.client(s.token("app", "CN", ""), app, "")
	for _, id := range []string{"m1", "m2"} {
		r, err := c.GetRecord(ctx, "li.wei", "message", id)
		if err != nil || !strings.Contains(string(r.Data), "before "+id) {
			t.Errorf("record %s after the restore: %+v %v", id, r, err)
		}
	}
	if _, err := c.GetRecord(ctx, "li.wei", "message", "m3"); !isStatus(err, http.StatusNotFound) {
		t.Errorf("the record written after the backup, after the restore: %v, want not found", err)
	}
	resp, err := c.GetObject(ctx, "li.wei", "photo.jpg", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, photo) {
		t.Errorf("the object after the restore: %d bytes (%v), want %d", len(got), err, len(photo))
	}
	if !strings.Contains(s.Log(), `msg="cell log integrity checked" cell=cn-gz1`) {
		t.Errorf("cn-gz1's log was not checked at start:\n%s", s.Log())
	}
}
