package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/report"
)

// TestTopologyTransparencyMatchesEmbedded: the transparency report
// through the router of cell processes, combined from each cell's part,
// equals the embedded runtime's report of the same data and period,
// figure for figure (every cell's, the totals, the authority register's,
// the ledger's and its digest), at the same checkpoints. The data is the
// figures property test's random activity; the deployment is then split
// into cell processes by moving directories (doc/deploy.md). A cell down
// makes the report 503 naming it, not a partial report; a token that may
// not read the report is refused by the router as by the embedded
// runtime.
func TestTopologyTransparencyMatchesEmbedded(t *testing.T) {
	dir := t.TempDir()
	b := readFile(t, filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	for _, p := range []string{"8701", "8702", "8703"} {
		b = strings.ReplaceAll(b, "127.0.0.1:"+p, freePort(t))
	}
	depFile := filepath.Join(dir, "deployment.yaml")
	if err := os.WriteFile(depFile, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	embedded := filepath.Join(dir, "embedded")
	s := startServer(t, embedded, "--deployment", depFile)
	newFigureWorldAt(t, 7, s.URL, s.Admin, time.Now).run(60)

	now := time.Now().UTC()
	period := "/v1/transparency?format=json&from=" + url.QueryEscape(now.AddDate(0, 0, -1).Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339))
	get := func(srv *server, tok string) (int, *report.Transparency, string) {
		t.Helper()
		st, _, body := srv.do("GET", period, tok, nil, nil)
		if st != 200 {
			return st, nil, string(body)
		}
		var tr report.Transparency
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatalf("transparency report: %v\n%s", err, body)
		}
		return st, &tr, ""
	}
	sizes := func(tr *report.Transparency) string {
		var out []string
		for _, c := range tr.Cells {
			out = append(out, c.Cell+"="+c.Log.RootHash)
		}
		return strings.Join(out, " ")
	}
	// The embedded report, once every cell's checkpoint covers its whole
	// log: the same report twice, a second apart.
	var want *report.Transparency
	waitFor(t, 30*time.Second, "the embedded checkpoints to settle", func() bool {
		_, a, msg := get(s, s.Admin)
		if a == nil {
			t.Fatalf("embedded transparency report: %s", msg)
		}
		time.Sleep(time.Second)
		_, b, _ := get(s, s.Admin)
		if b != nil && sizes(a) == sizes(b) {
			want = b
			return true
		}
		return false
	})
	if want.Totals.Events == 0 || len(want.Cells) != 3 {
		t.Fatalf("the embedded report counts nothing: %+v", want)
	}
	auditor := s.token("auditor", "DE", "")
	appTok := s.token("app", "CN", "")
	appStatus, _, _ := get(s, appTok)
	if appStatus < 400 || appStatus >= 500 {
		t.Fatalf("an app token's report from the embedded runtime: %d, want a refusal", appStatus)
	}
	s.Stop()

	tp := &topo{t: t, depFile: depFile, cells: map[string]*server{}, dirs: map[string]string{"router": filepath.Join(dir, "router")}}
	move := func(from, to string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"admin.token", "directory.key", "control"} {
		move(filepath.Join(embedded, f), filepath.Join(tp.dirs["router"], f))
	}
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		tp.dirs[c] = filepath.Join(dir, c)
		move(filepath.Join(embedded, c), filepath.Join(tp.dirs[c], c))
		move(filepath.Join(embedded, "custody", c), filepath.Join(tp.dirs[c], "custody", c))
	}
	tp.router = startProcess(t, "serve", "--router", "--deployment", depFile, "--data", tp.dirs["router"], "--addr", "127.0.0.1:0")
	tp.router.Admin = s.Admin
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		tp.startCell(c)
	}
	r := tp.router
	var got *report.Transparency
	waitFor(t, 30*time.Second, "the router's report", func() bool {
		_, got, _ = get(r, auditor)
		return got != nil
	})
	if sizes(got) != sizes(want) {
		t.Fatalf("the cells' checkpoints after the split (%s) are not the embedded ones (%s)", sizes(got), sizes(want))
	}
	// The checkpoints' cosignatures differ (the embedded cells cosigned
	// each other in one process); everything counted must not.
	for _, tr := range []*report.Transparency{want, got} {
		tr.Generated = time.Time{}
		for i := range tr.Cells {
			tr.Cells[i].Log.Checkpoint = ""
		}
	}
	wb, _ := json.MarshalIndent(want, "", " ")
	gb, _ := json.MarshalIndent(got, "", " ")
	if string(wb) != string(gb) {
		t.Errorf("the router's transparency report differs from the embedded runtime's:\nembedded: %s\nrouter: %s", wb, gb)
	}

	if st, _, _ := get(r, appTok); st != appStatus {
		t.Errorf("an app token's report through the router: %d, want %d as from the embedded runtime", st, appStatus)
	}
	tp.cells["eu-fra1"].Kill()
	st, _, msg := get(r, r.Admin)
	if st != 503 || !strings.Contains(msg, "eu-fra1") {
		t.Errorf("the report with eu-fra1 down: %d %s, want 503 naming eu-fra1", st, msg)
	}
}
