package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"domicile"
)

// TestReloadCells: the embedded runtime keeps its cells until a restart;
// a cell process and the router take a cell added elsewhere (a
// migration's target) and refuse a cell removed.
func TestReloadCells(t *testing.T) {
	dep := func(ids ...string) *domicile.Deployment {
		d := &domicile.Deployment{}
		for _, id := range ids {
			d.Cells = append(d.Cells, domicile.CellConfig{ID: id})
		}
		return d
	}
	cur := dep("cn-gz1", "eu-fra1")
	for _, tc := range []struct {
		name   string
		next   *domicile.Deployment
		spread bool
		ok     bool
	}{
		{"same cells, embedded", dep("cn-gz1", "eu-fra1"), false, true},
		{"same cells, spread", dep("cn-gz1", "eu-fra1"), true, true},
		{"added, embedded", dep("cn-gz1", "eu-fra1", "cn-gz2"), false, false},
		{"added, spread", dep("cn-gz1", "eu-fra1", "cn-gz2"), true, true},
		{"removed, spread", dep("cn-gz1"), true, false},
		{"replaced, spread", dep("cn-gz1", "cn-gz2"), true, false},
		{"removed, embedded", dep("cn-gz1"), false, false},
	} {
		err := reloadCells(cur, tc.next, tc.spread)
		if (err == nil) != tc.ok {
			t.Errorf("%s: reloadCells = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestTopologyAddCell is the documented flow for a migration's target
// cell between cell processes: the operator starts the new cell's
// process (cn-gz2) from the next deployment file and sends SIGHUP to the
// router and the other cells, which take it without a restart; the
// router then places a new CN subject in it, and the CN subject
// registered before still reads from cn-gz1.
func TestTopologyAddCell(t *testing.T) {
	tp := startTopology(t)
	r := tp.router
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "before", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appCN.PutRecord(ctx, "before", "message", "m1", map[string]string{"body": "你好"}, ""); err != nil {
		t.Fatal(err)
	}
	dep := readFile(t, tp.depFile)
	next := strings.Replace(dep, "cells:\n", "cells:\n  - id: cn-gz2\n    jurisdiction: CN\n    operator: \"Shenzhen Demo Data Co., Ltd.\"\n    location: \"Shenzhen, Guangdong, China\"\n    url: http://"+freePort(t)+"\n", 1)
	next = strings.Replace(next, "  CN: [cn-gz1]\n", "  CN: [cn-gz2, cn-gz1]\n", 1)
	if next == dep || !strings.Contains(next, "CN: [cn-gz2, cn-gz1]") {
		t.Fatal("the topology example changed; update the test")
	}
	if err := os.WriteFile(tp.depFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	tp.dirs["cn-gz2"] = filepath.Join(filepath.Dir(tp.depFile), "cn-gz2")
	tp.startCell("cn-gz2")
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"], tp.cells["us-east1"]} {
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"], tp.cells["us-east1"]} {
		waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(s.out.String(), "deployment reloaded") })
	}
	sub, err := appCN.CreateSubject(ctx, "after", "CN", "")
	if err != nil || sub.Cell != "cn-gz2" {
		t.Fatalf("a CN subject registered after the reload: %+v %v, want it in cn-gz2", sub, err)
	}
	if _, err := appCN.PutRecord(ctx, "after", "message", "m1", map[string]string{"body": "早上好"}, ""); err != nil {
		t.Fatalf("a write to the added cell through the router: %v", err)
	}
	if rec, err := appCN.GetRecord(ctx, "before", "message", "m1"); err != nil || !strings.Contains(string(rec.Data), "你好") {
		t.Fatalf("the subject in cn-gz1 after the reload: %+v %v", rec, err)
	}
}
