package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/httpapi"
	"domicile/notice"
)

// TestTopologyNoticesMatchEmbedded: a change plan made through the router
// of cell processes, which asks each cell for its subjects, equals the
// plan the embedded runtime makes of the same data and the same next
// deployment (changes, affected groups, notices, impact reports, ledger).
// Its notices are sent by the cells of their subjects through the router,
// each delivery is in the subject's own trail, and an acknowledgement
// through the router is logged in the subject's cell. With a cell down,
// planning and sending are 503 naming it, and nothing is sent until every
// cell of the plan is back; sending again then delivers each notice once.
func TestTopologyNoticesMatchEmbedded(t *testing.T) {
	dir := t.TempDir()
	b := readFile(t, filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	for _, p := range []string{"8701", "8702", "8703"} {
		b = strings.ReplaceAll(b, "127.0.0.1:"+p, freePort(t))
	}
	depFile := filepath.Join(dir, "deployment.yaml")
	if err := os.WriteFile(depFile, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	// The next deployment: cn-gz1 gets a new operator, eu-fra1 a new
	// location, and a standard contract is declared for CN data of two
	// sensitive categories.
	mech := "mechanisms:\n  - id: sc-acme\n    kind: standard_contract\n    destinations: [US]\n    recipients: [\"Acme Support Inc.\"]\n" +
		"    purposes: [support]\n    categories: [specific-identity, whereabouts]\n    reference: SC-2026-001\n"
	next := strings.Replace(strings.Replace(b, oldOperator, newOperator, 1), "Frankfurt am Main, Germany", "Berlin, Germany", 1) + mech
	// A second next deployment, for the cell-down checks.
	next2 := strings.Replace(b, "Ashburn, Virginia, United States", "Columbus, Ohio, United States", 1)
	next2 = strings.Replace(next2, "Demo Cloud Europe GmbH", "Demo Cloud Europe SE", 1)

	embedded := filepath.Join(dir, "embedded")
	s := startServer(t, embedded, "--deployment", depFile)
	w := newFigureWorldAt(t, 11, s.URL, s.Admin, time.Now)
	w.run(60)
	ctx := context.Background()
	want, err := s.client(s.Admin, "", "").MakePlan(ctx, "next.yaml", []byte(next))
	if err != nil {
		t.Fatalf("the embedded plan: %v", err)
	}
	if len(want.Notices) == 0 || len(want.Changes) != 3 {
		t.Fatalf("the embedded plan: %d notices for changes %+v; want notices for three changes", len(want.Notices), want.Changes)
	}
	cellsWithNotices := map[string]int{}
	for _, n := range want.Notices {
		cellsWithNotices[n.Cell]++
	}
	if cellsWithNotices["cn-gz1"] == 0 || cellsWithNotices["eu-fra1"] == 0 {
		t.Fatalf("the embedded plan's notices by cell: %v; want notices in cn-gz1 and eu-fra1", cellsWithNotices)
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
	admin := r.client(r.Admin, "", "")
	got, err := admin.MakePlan(ctx, "next.yaml", []byte(next))
	if err != nil {
		t.Fatalf("the plan through the router: %v", err)
	}
	planJSON := func(pv *httpapi.PlanView) string {
		p := *pv.Plan
		p.Created = time.Time{}
		b, err := json.MarshalIndent(p, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		// The plan's time is in its reports and notices too.
		return strings.ReplaceAll(string(b), pv.Created.UTC().Format(time.RFC3339Nano), "NOW")
	}
	if a, b := planJSON(want), planJSON(got); a != b {
		t.Errorf("the router's plan differs from the embedded runtime's:\nembedded: %s\nrouter: %s", a, b)
	}

	// An auditor may not plan through the router (each cell refuses to
	// list its subjects to it, as one process does).
	auditor := r.client(r.token("auditor", "DE", ""), "", "")
	if _, err := auditor.MakePlan(ctx, "next.yaml", []byte(next)); !isStatus(err, 403) {
		t.Errorf("an auditor's plan through the router: %v, want 403", err)
	}

	// Sending: each cell delivers its subjects' notices.
	rc := &receiver{t: t, got: map[string]notice.Payload{}, secret: func() []byte {
		b, _ := os.ReadFile(filepath.Join(tp.dirs["router"], "control", "webhook.secret"))
		return bytes.TrimSpace(b)
	}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	if err := admin.SendPlan(ctx, got.ID, hook.URL); err != nil {
		t.Fatal(err)
	}
	delivered := func(id string) func() bool {
		return func() bool {
			p, err := admin.Plan(ctx, id)
			if err != nil {
				return false
			}
			for _, st := range p.States {
				if st.Delivered == nil {
					return false
				}
			}
			return len(p.States) > 0
		}
	}
	waitFor(t, 60*time.Second, "every notice delivered", delivered(got.ID))
	rc.mu.Lock()
	if rc.bad != 0 || len(rc.got) != len(got.Notices) {
		t.Errorf("webhook: %d bad signatures, %d notices delivered; want none bad and %d", rc.bad, len(rc.got), len(got.Notices))
	}
	for id, p := range rc.got {
		for _, n := range got.Notices {
			if n.Notice.ID == id && n.Cell != p.Cell {
				t.Errorf("notice %s delivered as of cell %s, planned in %s", id, p.Cell, n.Cell)
			}
		}
	}
	rc.mu.Unlock()

	// Each delivery is in its subject's trail, in its own cell; the
	// subject acknowledges through the router, and that is logged there.
	byRef := map[string]notice.Planned{}
	for _, n := range got.Notices {
		byRef[n.Notice.SubjectRef] = n
	}
	checked := map[string]bool{}
	for _, sm := range w.subjects {
		if sm.erased || checked[cellOf[sm.j]] {
			continue
		}
		n, ok := byRef[subjectRef(t, tp.dirs["router"], sm.id)]
		if !ok {
			continue
		}
		checked[n.Cell] = true
		subj := r.client(r.token("subject", string(sm.j), sm.id), "", "")
		if _, err := subj.AckNotice(ctx, n.Notice.ID); err != nil {
			t.Fatalf("%s acknowledges its notice through the router: %v", sm.id, err)
		}
		st, err := subj.Statement(ctx, sm.id, "en")
		if err != nil {
			t.Fatal(err)
		}
		if st.Home.Cell != n.Cell {
			t.Errorf("%s: home %s, notice planned in %s", sm.id, st.Home.Cell, n.Cell)
		}
		if !hasEvent(st.Accesses, domicile.ActNotice, "notice/"+n.Notice.ID, "delivered") || !hasEvent(st.Accesses, domicile.ActNotice, "notice/"+n.Notice.ID, "acknowledged") {
			t.Errorf("%s: its trail in %s lacks the notice's delivery or acknowledgement", sm.id, n.Cell)
		}
	}
	if !checked["cn-gz1"] || !checked["eu-fra1"] {
		t.Errorf("trails checked in %v; want cn-gz1 and eu-fra1", checked)
	}

	// A cell down: no plan, and nothing sent.
	tp.cells["eu-fra1"].Kill()
	if _, err := admin.MakePlan(ctx, "next2.yaml", []byte(next2)); !isStatus(err, 503) || !strings.Contains(err.Error(), "eu-fra1") {
		t.Errorf("a plan with eu-fra1 down: %v, want 503 naming eu-fra1", err)
	}
	tp.startCell("eu-fra1")
	p2, err := admin.MakePlan(ctx, "next2.yaml", []byte(next2))
	if err != nil {
		t.Fatal(err)
	}
	cells2 := map[string]bool{}
	for _, n := range p2.Notices {
		cells2[n.Cell] = true
	}
	if !cells2["eu-fra1"] || !cells2["us-east1"] {
		t.Fatalf("plan 2 has notices in %v; want eu-fra1 and us-east1", cells2)
	}
	tp.cells["us-east1"].Kill()
	rc.mu.Lock()
	before := len(rc.keys)
	rc.mu.Unlock()
	if err := admin.SendPlan(ctx, p2.ID, hook.URL); !isStatus(err, 503) || !strings.Contains(err.Error(), "us-east1") {
		t.Errorf("sending with us-east1 down: %v, want 503 naming us-east1", err)
	}
	// No cell was asked to send (eu-fra1, first of the plan's cells and
	// up, was asked only whether it could).
	rc.mu.Lock()
	if len(rc.keys) != before {
		t.Errorf("the webhook got %d posts after a refused send; want none", len(rc.keys)-before)
	}
	rc.mu.Unlock()
	pv, err := admin.Plan(ctx, p2.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range pv.States {
		if st.Attempts != 0 || st.Delivered != nil {
			t.Errorf("notice %s of a refused send: %d attempts", st.Notice.ID, st.Attempts)
		}
	}
	tp.startCell("us-east1")
	if err := admin.SendPlan(ctx, p2.ID, hook.URL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "plan 2 delivered", delivered(p2.ID))
	rc.mu.Lock()
	if len(rc.keys)-before != len(p2.Notices) {
		t.Errorf("plan 2: the webhook got %d posts for %d notices; want each once", len(rc.keys)-before, len(p2.Notices))
	}
	rc.mu.Unlock()
	// A send straight to one cell process is refused when the plan has
	// notices of other cells: they are delivered by their own cells.
	direct := tp.cells["cn-gz1"].client(r.Admin, "", "")
	if err := direct.SendPlan(ctx, got.ID, hook.URL); !isStatus(err, 421) {
		t.Errorf("sending a plan of three cells at one cell process: %v, want 421", err)
	}
}
