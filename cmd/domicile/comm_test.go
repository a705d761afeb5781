package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"domicile/client"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"domicile"
	"domicile/authority"
	"domicile/deploy"
	"domicile/httpapi"
	"domicile/leaf"
	"domicile/logclient"
	"domicile/merkle"
	"domicile/notice"
	"domicile/report"
	"domicile/sqlite"
)

const (
	oldOperator = "Guangzhou Demo Cloud Data Co., Ltd. (广州示例云数据有限公司)"
	newOperator = "Shenzhen New Cloud Operations Co., Ltd. (深圳新云运营有限公司)"
)

// subjectRef returns the reference of a subject's current registration,
// read from the data directory's directory as the service reads it: the
// entry under the keyed hash of the id.
func subjectRef(t *testing.T, data, id string) string {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(data, "directory.key"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	var k domicile.SubjectRef
	copy(k[:], m.Sum(nil))
	ctl, err := sqlite.OpenControl(context.Background(), filepath.Join(data, "control"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	h, err := ctl.Home(context.Background(), k)
	if err != nil {
		t.Fatalf("subject %q in the directory: %v", id, err)
	}
	return h.Ref.String()
}

// receiver is the business's webhook: it verifies each payload's
// signature, fails the first delivery it sees, and records the rest.
type receiver struct {
	t      *testing.T
	secret func() []byte
	mu     sync.Mutex
	failed bool
	keys   []string
	got    map[string]notice.Payload
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := notice.Verify(rc.secret(), r.Header.Get(notice.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	key := r.Header.Get(notice.IdempotencyHeader)
	rc.keys = append(rc.keys, key)
	if !rc.failed {
		rc.failed = true
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var p notice.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.ID != key {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	rc.got[key] = p
	w.WriteHeader(http.StatusNoContent)
}

// TestChangeNoticeEndToEnd: the demo deployment changes so that cn-gz1
// gets a new operator; the plan names exactly the CN subjects, their
// notices reach the business's webhook (one failure, then a retry), the
// service reloads the new deployment on SIGHUP, and each CN subject's
// statement then shows the notice and the new operator.
func TestChangeNoticeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "deployment.yaml")
	next := filepath.Join(dir, "next.yaml")
	base := string(deploy.DefaultYAML()) + "declarations:\n  entity: \"Demo Shop Ltd.\"\n  contact: \"privacy@shop.example\"\n"
	if !strings.Contains(base, oldOperator) {
		t.Fatalf("the demo deployment no longer names %q", oldOperator)
	}
	os.WriteFile(cur, []byte(base), 0o644)
	os.WriteFile(next, []byte(strings.Replace(base, oldOperator, newOperator, 1)), 0o644)

	s := startServer(t, "", "--deployment", cur)
	ctx := context.Background()
	app := s.client(s.token("app", "CN", ""), app, "")
	ids := map[string]string{"cn-a": "CN", "cn-b": "CN", "de-a": "DE", "us-a": "US"}
	for id, j := range ids {
		if _, err := app.CreateSubject(ctx, id, j, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.PutRecord(ctx, "cn-a", "profile", "main", map[string]string{"name": "李伟", "id_number": "110101199001011234"}, ""); err != nil {
		t.Fatal(err)
	}
	wantRefs := []string{subjectRef(t, s.Data, "cn-a"), subjectRef(t, s.Data, "cn-b")}
	slices.Sort(wantRefs)

	// The offline plan, from the files and the data directory. The cells
	// are on Pebble (the default), which admits one process to a store:
	// while the service runs, the tool refuses and says how to plan
	// instead; with it stopped, it reads them.
	offlinePlanRefusedWhileServing(t, cur, next, s.Data)
	s.Stop()
	cmd := exec.Command(binary, "notice", "plan", "--from", cur, "--to", next, "--data", s.Data, "--format", "json", "--lang", "zh-CN")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("notice plan: %v", err)
	}
	s = startServer(t, s.Data, "--deployment", cur)
	var offline report.ImpactReport
	if err := json.Unmarshal(out, &offline); err != nil {
		t.Fatalf("notice plan output: %v\n%s", err, out)
	}
	if !slices.Equal(offline.SubjectRefs, wantRefs) || offline.Lang != "zh-CN" {
		t.Errorf("offline plan names %v (%s), want the CN subjects %v", offline.SubjectRefs, offline.Lang, wantRefs)
	}

	// The service's plan against the deployment in force.
	admin := s.client(s.Admin, "", "")
	nextYAML, _ := os.ReadFile(next)
	pv, err := admin.MakePlan(ctx, "next.yaml", nextYAML)
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, n := range pv.Notices {
		planned = append(planned, n.Notice.SubjectRef)
	}
	slices.Sort(planned)
	if !slices.Equal(planned, wantRefs) || len(pv.Changes) != 1 || pv.Changes[0].Kind != "operator" {
		t.Fatalf("plan: notices for %v, changes %+v; want notices for exactly %v and one operator change", planned, pv.Changes, wantRefs)
	}
	en := pv.Reports["en"]
	if en.Total != 2 || len(en.Actions) == 0 || !hasRule(en.Actions, "CN.PIPL.55") {
		t.Errorf("impact report: %d affected, actions %+v; want 2 and a PIPIA (CN.PIPL.55)", en.Total, en.Actions)
	}

	rc := &receiver{t: t, got: map[string]notice.Payload{}, secret: func() []byte {
		b, _ := os.ReadFile(filepath.Join(s.Data, "control", "webhook.secret"))
		return bytes.TrimSpace(b)
	}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	if err := admin.SendPlan(ctx, pv.ID, hook.URL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every notice delivered", func() bool {
		p, err := admin.Plan(ctx, pv.ID)
		if err != nil {
			return false
		}
		for _, st := range p.States {
			if st.Delivered == nil {
				return false
			}
		}
		return true
	})
	rc.mu.Lock()
	if rc.bad != 0 || len(rc.got) != 2 || len(rc.keys) != 3 || rc.keys[0] != rc.keys[1] {
		t.Errorf("webhook saw keys %v (%d bad signatures), delivered %d; want a failure retried under the same idempotency key, then both", rc.keys, rc.bad, len(rc.got))
	}
	rc.mu.Unlock()

	// The change takes effect on SIGHUP with the new file.
	os.WriteFile(cur, nextYAML, 0o644)
	before := time.Now().UTC()
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 15*time.Second, "the reload", func() bool {
		_, _, b := s.do("GET", "/v1/cells", "", nil, nil)
		return strings.Contains(string(b), "Shenzhen New Cloud")
	})
	for _, id := range []string{"cn-a", "cn-b"} {
		subj := s.client(s.token("subject", "CN", id), "", "")
		st, err := subj.Statement(ctx, id, "en")
		if err != nil {
			t.Fatal(err)
		}
		if st.Home.Operator != newOperator {
			t.Errorf("%s: statement names operator %q, want %q", id, st.Home.Operator, newOperator)
		}
		if len(st.Notices) != 1 || st.Notices[0].Delivered == nil || st.Notices[0].Attempts < 1 || !strings.Contains(st.Notices[0].Body, newOperator) {
			t.Fatalf("%s: statement notices %+v, want the delivered change notice", id, st.Notices)
		}
		if len(st.Changes) != 1 || st.Changes[0].After != newOperator || st.Changes[0].Time.Before(before.Add(-time.Second)) {
			t.Errorf("%s: changes %+v, want the operator change recorded at the reload", id, st.Changes)
		}
		if !hasEvent(st.Accesses, domicile.ActNotice, "notice/"+st.Notices[0].ID, "delivered") {
			t.Errorf("%s: the delivery is not in the subject's logged accesses", id)
		}
		// The subject acknowledges; the statement shows it, in Chinese too.
		if _, err := subj.AckNotice(ctx, st.Notices[0].ID); err != nil {
			t.Fatal(err)
		}
		zh, err := subj.StatementDocument(ctx, id, client.DocOptions{Lang: "zh-CN", Format: "html"})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"您的数据说明", "深圳新云运营有限公司", "确认于 20"} {
			if !strings.Contains(string(zh), want) {
				t.Errorf("%s: the zh-CN statement lacks %q", id, want)
			}
		}
	}
	// Another subject may not read cn-a's statement, nor acknowledge its notice.
	other := s.client(s.token("subject", "CN", "cn-b"), "", "")
	if _, err := other.Statement(ctx, "cn-a", "en"); !isStatus(err, 403) {
		t.Errorf("cn-b reading cn-a's statement: %v, want 403", err)
	}
}

// offlinePlanRefusedWhileServing checks that `notice plan --data` over
// a data directory whose cn-gz1 is on Pebble and served refuses, naming
// the cell's store and the ways to plan.
func offlinePlanRefusedWhileServing(t *testing.T, from, to, data string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(data, "cn-gz1", "pebble")); err != nil {
		t.Fatalf("cn-gz1 is not on Pebble, the default: %v", err)
	}
	out, err := exec.Command(binary, "notice", "plan", "--from", from, "--to", to, "--data", data, "--format", "json").CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(data, "cn-gz1", "pebble")) ||
		!strings.Contains(string(out), "stop it to plan offline") || !strings.Contains(string(out), "POST /v1/notices/plans") {
		t.Fatalf("offline plan over a served Pebble cell: %v\n%s\nwant a refusal naming the store and the ways to plan", err, out)
	}
}

func hasRule(as []report.Action, id string) bool {
	for _, a := range as {
		if a.Rule == id {
			return true
		}
	}
	return false
}

func hasEvent(evs []report.EventProof, act domicile.Action, res, detail string) bool {
	for _, e := range evs {
		if e.Event.Action == act && e.Event.Resource == res && strings.Contains(e.Event.Detail, detail) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMechanismPlanEndToEnd: the next deployment declares a standard
// contract for CN data of two sensitive categories; both the offline plan
// (the files and the data directory) and the service's plan name exactly
// the CN subjects holding one of those categories, and each notice names
// the mechanism, the destination and the subject's own categories.
func TestMechanismPlanEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "deployment.yaml")
	next := filepath.Join(dir, "next.yaml")
	base := string(deploy.DefaultYAML()) + "declarations:\n  entity: \"Demo Shop Ltd.\"\n  contact: \"privacy@shop.example\"\n"
	mech := "mechanisms:\n  - id: sc-acme\n    kind: standard_contract\n    destinations: [US]\n    recipients: [\"Acme Support Inc.\"]\n" +
		"    purposes: [support]\n    categories: [specific-identity, whereabouts]\n    reference: SC-2026-001\n"
	os.WriteFile(cur, []byte(base), 0o644)
	os.WriteFile(next, []byte(base+mech), 0o644)

	s := startServer(t, "", "--deployment", cur)
	ctx := context.Background()
	app := s.client(s.token("app", "CN", ""), app, "")
	for id, j := range map[string]string{"cn-id": "CN", "cn-loc": "CN", "cn-msg": "CN", "cn-none": "CN", "de-id": "DE", "us-id": "US"} {
		if _, err := app.CreateSubject(ctx, id, j, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct {
		id, kind string
		fields   map[string]string
	}{
		{"cn-id", "profile", map[string]string{"name": "李伟", "id_number": "110101199001011234"}},
		{"cn-loc", "location", map[string]string{"lat": "23.13", "lon": "113.26"}},
		{"cn-msg", "message", map[string]string{"body": "你好"}},
		{"de-id", "profile", map[string]string{"id_number": "T22000129"}},
		{"us-id", "profile", map[string]string{"id_number": "123-45-6789"}},
	} {
		if _, err := app.PutRecord(ctx, r.id, r.kind, "main", r.fields, ""); err != nil {
			t.Fatalf("%s: %v", r.id, err)
		}
	}
	wantRefs := []string{subjectRef(t, s.Data, "cn-id"), subjectRef(t, s.Data, "cn-loc")}
	slices.Sort(wantRefs)

	offlinePlanRefusedWhileServing(t, cur, next, s.Data)
	s.Stop()
	out, err := exec.Command(binary, "notice", "plan", "--from", cur, "--to", next, "--data", s.Data, "--format", "json").Output()
	if err != nil {
		t.Fatalf("notice plan: %v", err)
	}
	s = startServer(t, s.Data, "--deployment", cur)
	var offline report.ImpactReport
	if err := json.Unmarshal(out, &offline); err != nil {
		t.Fatalf("notice plan output: %v\n%s", err, out)
	}
	if !slices.Equal(offline.SubjectRefs, wantRefs) || len(offline.Changes) != 1 || offline.Changes[0].Kind != report.ChangeMechanism {
		t.Errorf("offline plan names %v for changes %+v, want %v for one mechanism change", offline.SubjectRefs, offline.Changes, wantRefs)
	}
	if !hasRule(offline.Actions, "CN.SCM.5") || !hasRule(offline.Actions, "CN.PIPL.39.CONSENT") {
		t.Errorf("offline plan actions %+v lack the filing (CN.SCM.5) or separate consent (CN.PIPL.39.CONSENT)", offline.Actions)
	}

	admin := s.client(s.Admin, "", "")
	nextYAML, _ := os.ReadFile(next)
	pv, err := admin.MakePlan(ctx, "next.yaml", nextYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{subjectRef(t, s.Data, "cn-id"): "specific identity", subjectRef(t, s.Data, "cn-loc"): "whereabouts"}
	var planned []string
	for _, n := range pv.Notices {
		planned = append(planned, n.Notice.SubjectRef)
		en, zh := n.Notice.Texts["en"].Body, n.Notice.Texts["zh-CN"].Body
		cat := want[n.Notice.SubjectRef]
		for _, w := range []string{"sc-acme", "Acme Support Inc.", "US", cat} {
			if !strings.Contains(en, w) {
				t.Errorf("notice for %s lacks %q:\n%s", n.Notice.SubjectRef, w, en)
			}
		}
		if !strings.Contains(zh, "个人信息出境标准合同") {
			t.Errorf("Chinese notice for %s lacks the mechanism:\n%s", n.Notice.SubjectRef, zh)
		}
	}
	slices.Sort(planned)
	if !slices.Equal(planned, wantRefs) {
		t.Errorf("service plan notices for %v, want exactly %v", planned, wantRefs)
	}
}

// clock is an injected clock: real time plus an offset tests move.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// inProcess runs `domicile serve` through Main in this process, with an
// injected clock, and returns its URL and admin token.
func inProcess(t *testing.T, now func() time.Time) (url, data, adminTok string) {
	t.Helper()
	data = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	env := &cmdEnv{Stdout: pw, Stderr: io.Discard, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: now}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, env, []string{"serve", "--addr", "127.0.0.1:0", "--data", data}); pw.Close() }()
	urlc := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		var acc string
		for {
			n, err := pr.Read(b)
			acc += string(b[:n])
			if i := strings.Index(acc, "listening on "); i >= 0 && strings.Contains(acc[i:], "\n") {
				urlc <- strings.TrimSpace(strings.SplitN(acc[i+len("listening on "):], "\n", 2)[0])
				io.Copy(io.Discard, pr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case url = <-urlc:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("in-process server did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("in-process server did not stop")
		}
	})
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return url, data, strings.TrimSpace(string(b))
}

// TestAuthorityRequestEndToEnd: a foreign authority's request is
// recorded, referred, then partly disclosed with notice deferred to a
// date; the subject's statement shows nothing of it before that date
// (injected clock) and shows it after, with a commitment that checks
// against the log. Then the transparency report's figures are recomputed
// from the public log, and its checkpoints verify with domicile verify.
func TestAuthorityRequestEndToEnd(t *testing.T) {
	clk := &clock{}
	url, data, adminTok := inProcess(t, clk.Now)
	ctx := context.Background()
	cl := func(tok, purpose, just string) *httpapi.Client {
		return &httpapi.Client{Client: client.Client{BaseURL: url, Token: tok, Purpose: purpose, Justification: just}}
	}
	admin := cl(adminTok, "", "")
	// The test moves its clock a month on: its tokens live 90 days (a
	// subject token would otherwise expire after 24 hours).
	tok := func(role, j, subject string) string {
		r, err := admin.CreateToken(ctx, client.TokenRequest{Role: role, Jurisdiction: j, Subject: subject, TTL: "2160h"})
		if err != nil {
			t.Fatal(err)
		}
		return r.Token
	}
	app := cl(tok("app", "CN", ""), "service", "")
	for _, id := range []string{"li.wei", "gone"} {
		if _, err := app.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
	}
	app.PutRecord(ctx, "li.wei", "profile", "main", map[string]string{"name": "李伟", "email": "li.wei@example.cn"}, "")
	app.PutRecord(ctx, "li.wei", "message", "m1", map[string]string{"body": "明天见"}, "")
	// An operator reads with a support ticket; the app erases another subject.
	op := cl(tok("operator", "CN", ""), "", "support TICKET-7")
	if _, err := op.GetRecord(ctx, "li.wei", "message", "m1"); err != nil {
		t.Fatal(err)
	}
	eraseReq, _ := http.NewRequest("DELETE", url+"/v1/subjects/gone", nil)
	eraseReq.Header.Set("Authorization", "Bearer "+app.Token)
	eraseReq.Header.Set("Domicile-Purpose", "service")
	if resp, err := http.DefaultClient.Do(eraseReq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("erase: %v %v", resp, err)
	}

	req, err := admin.RecordAuthorityRequest(ctx, authority.NewRequest{Authority: "U.S. Department of Justice", Jurisdiction: "US", Kind: "law_enforcement",
		LegalBasis: "CLOUD Act warrant", Reference: "DOJ-2026-0042", Subjects: []string{"li.wei"}})
	if err != nil {
		t.Fatal(err)
	}
	if !req.Foreign || req.Mechanism != "prohibited" || !slices.Contains(req.Rules, "CN.PIPL.41") || !slices.Contains(req.Obligations, "route_via_prc_authority") {
		t.Fatalf("recorded request %+v: want foreign, prohibited, CN.PIPL.41, route_via_prc_authority", req)
	}
	if _, err := admin.ReviewAuthorityRequest(ctx, req.ID, "legal reviewing"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DecideAuthorityRequest(ctx, req.ID, authority.Outcome{Status: "disclosed"}); !isStatus(err, 409) {
		t.Fatalf("disclosing a foreign request without PRC approval: %v, want 409", err)
	}
	if _, err := admin.DecideAuthorityRequest(ctx, req.ID, authority.Outcome{Status: "referred", Note: "sent to the Ministry of Justice"}); err != nil {
		t.Fatal(err)
	}
	deferUntil := clk.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	if _, err := admin.DecideAuthorityRequest(ctx, req.ID, authority.Outcome{Status: "partly-disclosed", PRCApproval: "MOJ-2026-88",
		Kinds: []string{"profile"}, DeferNoticeUntil: &deferUntil}); err != nil {
		t.Fatal(err)
	}
	// The data goes through the PRC competent authority: a token acting
	// from the US is refused, one acting from CN reads the profile only.
	if _, err := cl(tok("authority", "US", ""), "", "lawful-request-foreign DOJ-2026-0042").Disclose(ctx, req.ID); !isStatus(err, 403) {
		t.Fatalf("disclosure to a US token: %v, want 403", err)
	}
	pkg, err := cl(tok("authority", "CN", ""), "", "lawful-request-foreign DOJ-2026-0042").Disclose(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Records) != 1 || pkg.Records[0].Kind != "profile" {
		t.Fatalf("disclosed %+v, want only the profile", pkg.Records)
	}

	subj := cl(tok("subject", "CN", "li.wei"), "", "")
	st, err := subj.Statement(ctx, "li.wei", "en")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Authority) != 0 {
		t.Fatalf("before the deferral ends the statement shows %+v", st.Authority)
	}
	for _, e := range st.Accesses {
		if e.Event.Role == domicile.RoleAuthority || strings.HasPrefix(e.Event.Resource, "authority-notice/") {
			t.Fatalf("before the deferral ends the statement shows event %+v", e.Event)
		}
	}
	if !hasEvent(st.Accesses, domicile.ActRead, "record/message/m1", "") {
		t.Error("the operator's read is not in the statement")
	}
	// The raw trail withholds the same events until the deferral ends.
	trailHasAuthority := func() bool {
		req, _ := http.NewRequest("GET", subj.BaseURL+"/v1/subjects/li.wei/events?limit=1000", nil)
		req.Header.Set("Authorization", "Bearer "+subj.Token)
		var page httpapi.EventPage
		if _, err := subj.Do(req, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if strings.Contains(e.Committed, `"role":"authority"`) {
				return true
			}
		}
		return false
	}
	if trailHasAuthority() {
		t.Fatal("before the deferral ends the subject's trail shows the authority's access")
	}

	clk.Advance(31 * 24 * time.Hour)
	if !trailHasAuthority() {
		t.Fatal("after the deferral the subject's trail lacks the authority's access")
	}
	st, err = subj.Statement(ctx, "li.wei", "zh-CN")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Authority) != 1 {
		t.Fatalf("after the deferral the statement shows %d requests, want 1", len(st.Authority))
	}
	a := st.Authority[0]
	if a.Outcome != "partly-disclosed" || a.Notice == nil || !strings.Contains(a.Notice.Body, "MOJ-2026-88") || a.Opening == nil {
		t.Fatalf("authority line %+v", a)
	}
	if !hasEvent(st.Accesses, domicile.ActRead, "record/profile/main", "") {
		t.Error("the disclosure's read is not in the statement after the deferral")
	}
	checkOpening(t, st, a.Opening)

	// The transparency report, recomputed from the public log.
	tr, err := admin.Transparency(ctx, client.DocOptions{From: "2000-01-01", To: "2200-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.AuthorityTotals["received"] != 1 || tr.AuthorityTotals["partly-disclosed"] != 1 {
		t.Errorf("authority totals %v", tr.AuthorityTotals)
	}
	var ops, auths, erasures int
	for _, c := range tr.Cells {
		lc, err := logclient.New(logclient.Config{URL: url + c.Log.URL, LogKey: c.Log.VerifierKey})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := lc.OpenCheckpoint([]byte(c.Log.Checkpoint))
		if err != nil {
			t.Fatalf("cell %s: the report's checkpoint does not verify: %v", c.Cell, err)
		}
		latest, err := lc.FetchCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := lc.CheckConsistency(ctx, cp, latest); err != nil {
			t.Fatalf("cell %s: the report's checkpoint is not consistent with the log: %v", c.Cell, err)
		}
		var n, o, au, er int
		for i := int64(0); i < c.Log.Size; i++ {
			e, err := lc.Entry(ctx, cp, i)
			if err != nil {
				t.Fatal(err)
			}
			l, err := leaf.Parse(e)
			if err != nil {
				t.Fatal(err)
			}
			n++
			switch {
			case l.Role == "operator":
				o++
			case l.Role == "authority":
				au++
			}
			if l.Action == "erase" && l.Outcome == "allowed" {
				er++
			}
		}
		if f := c.Figures; n != f.Events || o != f.OperatorAccesses || au != f.AuthorityAccesses || er != f.Erasures {
			t.Errorf("cell %s: report says events %d, operator %d, authority %d, erasures %d; the log says %d, %d, %d, %d",
				c.Cell, f.Events, f.OperatorAccesses, f.AuthorityAccesses, f.Erasures, n, o, au, er)
		}
		ops, auths, erasures = ops+o, auths+au, erasures+er
		var out bytes.Buffer
		env := &cmdEnv{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, Now: time.Now}
		if code := Main(ctx, env, []string{"verify", "--log", url + c.Log.URL, "--key", c.Log.VerifierKey, "--state", filepath.Join(t.TempDir(), "state")}); code != 0 {
			t.Errorf("domicile verify of cell %s: exit %d\n%s", c.Cell, code, out.String())
		}
	}
	if ops < 2 || auths < 1 || erasures != 1 || tr.Totals.Erasures != 1 {
		t.Errorf("recounted operator %d, authority %d, erasures %d (report %d)", ops, auths, erasures, tr.Totals.Erasures)
	}
	sum := 0
	for _, b := range tr.Totals.OperatorByJustification {
		sum += b.Allowed + b.Denied
	}
	if sum != ops {
		t.Errorf("operator accesses by justification sum to %d, the log holds %d", sum, ops)
	}
	_ = data
}

// checkOpening checks an authority notice's opening the way a subject
// would: the notice hashes to the commitment under the salt, the log
// event carries that commitment, the event's leaf commits to the event,
// and the leaf is included in the signed checkpoint.
func checkOpening(t *testing.T, st *report.Statement, o *report.Opening) {
	t.Helper()
	sum := leaf.Commit(o.Salt, []byte(o.Committed))
	if hex.EncodeToString(sum[:]) != o.Commitment {
		t.Fatal("the notice does not match its commitment")
	}
	ev := o.Event
	if !strings.Contains(ev.Event.Detail, "commitment="+o.Commitment) || ev.Event.Action != domicile.ActNotice {
		t.Fatalf("log event %+v does not carry the commitment %s", ev.Event, o.Commitment)
	}
	l, err := leaf.Parse([]byte(ev.Leaf))
	if err != nil || !l.Verify(ev.Salt, []byte(ev.Committed)) {
		t.Fatalf("the event's leaf does not commit to it: %v", err)
	}
	var proof []merkle.Hash
	for _, p := range ev.Proof {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != 32 {
			t.Fatal("malformed proof")
		}
		proof = append(proof, merkle.Hash(b))
	}
	lines := strings.Split(st.Log.Checkpoint, "\n")
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("checkpoint %q", st.Log.Checkpoint)
	}
	if err := merkle.VerifyInclusion(proof, ev.Index, st.Log.Size, merkle.LeafHash([]byte(ev.Leaf)), merkle.Hash(root)); err != nil {
		t.Fatalf("the commitment's event is not included in the log: %v", err)
	}
	var body authority.NoticeBody
	if err := json.Unmarshal([]byte(o.Committed), &body); err != nil || body.Subject != st.SubjectRef {
		t.Fatalf("the notice names %q, want %s (%v)", body.Subject, st.SubjectRef, errors.Unwrap(err))
	}
}
