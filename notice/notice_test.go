package notice_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/deploy"
	"domicile/law"
	"domicile/notice"
	"domicile/report"
	"domicile/sqlite/commstore"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"id":"n-1"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := notice.Sign(secret, now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"valid", secret, sig, body, now, true},
		{"valid within tolerance", secret, sig, body, now.Add(4 * time.Minute), true},
		{"stale", secret, sig, body, now.Add(10 * time.Minute), false},
		{"wrong secret", []byte("other"), sig, body, now, false},
		{"tampered body", secret, sig, []byte(`{"id":"n-2"}`), now, false},
		{"no signature", secret, "", body, now, false},
		{"non-canonical time", secret, "t=01800000000," + sig[len("t=1800000000,"):], body, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := notice.Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, notice.ErrBadSignature)) {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := notice.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Attempts: 8}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Delay(i + 2); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+2, got, w*time.Millisecond)
		}
	}
}

func nextDeployment(t *testing.T) (*domicile.Deployment, *domicile.Deployment) {
	t.Helper()
	a := deploy.Default()
	b := deploy.Default()
	cells := append([]domicile.CellConfig(nil), b.Cells...)
	cells[0].Operator = "New Operator Ltd."
	cells[1].Custody.Kind = "keyd"
	b.Cells = cells
	b.Policy = []domicile.PolicyRule{{Jurisdiction: "CN", Cells: []string{"cn-gz1"}}, {Jurisdiction: "EU", Cells: []string{"eu-fra1"}}, {Cells: []string{"eu-fra1"}}}
	return a, b
}

func TestDiff(t *testing.T) {
	a, b := nextDeployment(t)
	got := notice.Diff(a, b)
	want := []string{"operator cn-gz1", "custody eu-fra1", "home-cell us-east1"}
	if len(got) != len(want) {
		t.Fatalf("Diff = %+v, want %v", got, want)
	}
	for i, c := range got {
		if c.Kind+" "+c.Cell != want[i] {
			t.Errorf("change %d = %s %s, want %s", i, c.Kind, c.Cell, want[i])
		}
	}
	if !got[0].KeepsData || got[2].KeepsData {
		t.Errorf("KeepsData: operator %v, home cell %v", got[0].KeepsData, got[2].KeepsData)
	}
	if len(notice.Diff(a, a)) != 0 {
		t.Error("a deployment differs from itself")
	}
}

func TestMakePlanNamesAffected(t *testing.T) {
	a, b := nextDeployment(t)
	subjects := map[string][]notice.SubjectInfo{
		"cn-gz1":   {{Ref: "aa", Jurisdiction: "CN", Fields: map[string][]string{"profile": {"name", "id_number"}}}, {Ref: "bb", Jurisdiction: "CN"}},
		"eu-fra1":  {{Ref: "cc", Jurisdiction: "DE"}},
		"us-east1": {{Ref: "dd", Jurisdiction: "US"}, {Ref: "ee", Jurisdiction: "HK"}},
	}
	p, err := notice.MakePlan(context.Background(), notice.PlanInput{From: a, To: b, FromRef: notice.Ref("a", []byte("a")), ToRef: notice.Ref("b", []byte("b")),
		Subjects: notice.SubjectsFunc(func(_ context.Context, cell string) ([]notice.SubjectInfo, error) { return subjects[cell], nil }), Now: time.Unix(1_800_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, n := range p.Notices {
		refs = append(refs, n.Notice.SubjectRef)
		if n.Notice.Texts["en"].Body == "" || n.Notice.Texts["zh-CN"].Body == "" {
			t.Errorf("notice %s lacks a language", n.Notice.ID)
		}
	}
	if got := len(refs); got != 5 {
		t.Errorf("plan notices %v, want all five subjects", refs)
	}
	if p.Reports["en"].Total != 5 {
		t.Errorf("impact report counts %d subjects", p.Reports["en"].Total)
	}
	p2, _ := notice.MakePlan(context.Background(), notice.PlanInput{From: a, To: b, FromRef: notice.Ref("a", []byte("a")), ToRef: notice.Ref("b", []byte("b")), Now: time.Unix(1_900_000_000, 0)})
	if p2.ID != p.ID || p2.Counted {
		t.Errorf("re-planning gave id %s (counted %v), want %s uncounted", p2.ID, p2.Counted, p.ID)
	}
}

// TestSenderRetries: a 503 is retried under the same idempotency key; a
// 400 is not; delivery state lands in the store.
func TestSenderRetries(t *testing.T) {
	ctx := context.Background()
	store, err := commstore.OpenNotices(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, b := nextDeployment(t)
	b.Cells[1].Custody.Kind = ""
	b.Policy = a.Policy
	p, err := notice.MakePlan(ctx, notice.PlanInput{From: a, To: b, FromRef: notice.Ref("a", nil), ToRef: notice.Ref("b", nil), Now: time.Now(),
		Subjects: notice.SubjectsFunc(func(_ context.Context, cell string) ([]notice.SubjectInfo, error) {
			return []notice.SubjectInfo{{Ref: strings.Repeat("01", 32), Jurisdiction: "CN"}, {Ref: strings.Repeat("02", 32), Jurisdiction: "CN"}}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	secret := []byte("k")
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if notice.Verify(secret, r.Header.Get(notice.SignatureHeader), body, time.Now(), time.Minute) != nil {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get(notice.IdempotencyHeader)
		seen[key]++
		switch {
		case key == p.Notices[0].Notice.ID && seen[key] == 1:
			w.WriteHeader(503)
		case key == p.Notices[1].Notice.ID:
			w.WriteHeader(400)
		default:
			w.WriteHeader(200)
		}
	}))
	defer srv.Close()
	var delivered []string
	s := &notice.Sender{Store: store, Secret: secret, Backoff: notice.Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, Attempts: 4},
		OnDelivered: func(_ context.Context, st notice.State) error {
			delivered = append(delivered, st.Notice.ID)
			return nil
		}}
	defer s.Close(ctx)
	res, err := s.Send(ctx, p.ID, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 1 || res.Failed != 1 || seen[p.Notices[0].Notice.ID] != 2 || seen[p.Notices[1].Notice.ID] != 1 {
		t.Errorf("result %+v, attempts seen %v", res, seen)
	}
	st, err := store.Notice(ctx, p.Notices[0].Notice.ID)
	if err != nil || st.Delivered == nil || st.Attempts != 2 || len(delivered) != 1 {
		t.Errorf("stored state %+v, %v; delivered callbacks %v", st, err, delivered)
	}
	if err := store.Acknowledge(ctx, st.Notice.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Sending again skips what was delivered.
	res, _ = s.Send(ctx, p.ID, srv.URL)
	if res.Skipped != 1 {
		t.Errorf("second send %+v, want the delivered notice skipped", res)
	}
	lines, err := notice.Lines{Store: store}.SubjectNotices(ctx, mustRef(t, st.Notice.SubjectRef))
	if err != nil || len(lines) != 1 || lines[0].Acknowledged == nil {
		t.Errorf("statement lines %+v, %v", lines, err)
	}
	if err := store.PutApplied(ctx, []report.ChangeLine{{Time: time.Now(), Cell: "cn-gz1", Field: "operator", Before: "a", After: "b"}}); err != nil {
		t.Fatal(err)
	}
	if ap, _ := store.Applied(ctx); len(ap) != 1 || ap[0].After != "b" {
		t.Errorf("applied %+v", ap)
	}
}

func mustRef(t *testing.T, s string) domicile.SubjectRef {
	t.Helper()
	r, err := domicile.ParseSubjectRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withMechanism returns the demo deployment and a next one that declares
// a standard contract for support from the US covering specific-identity
// data, and (in the first) a mechanism the next one drops.
func withMechanism(t *testing.T) (*domicile.Deployment, *domicile.Deployment) {
	t.Helper()
	a, b := deploy.Default(), deploy.Default()
	a.Mechanisms = []domicile.MechanismDecl{{ID: "old-sccs", Kind: "sccs", Source: "EU", Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"*"}, Purposes: []string{"*"}, Categories: []domicile.Category{domicile.Personal}}}
	b.Mechanisms = []domicile.MechanismDecl{{ID: "sc-acme", Kind: "standard_contract", Source: "CN", Destinations: []domicile.Jurisdiction{"US"},
		Recipients: []string{"Acme Support Inc."}, Purposes: []string{"support"}, Categories: []domicile.Category{domicile.SpecificIdentity, domicile.Whereabouts}, Reference: "SC-2026-001"}}
	return a, b
}

func TestDiffMechanisms(t *testing.T) {
	a, b := withMechanism(t)
	changed := deploy.Default()
	changed.Mechanisms = append([]domicile.MechanismDecl(nil), b.Mechanisms...)
	changed.Mechanisms[0].Destinations = []domicile.Jurisdiction{"US", "SG"}
	tests := []struct {
		name     string
		from, to *domicile.Deployment
		want     []string // kind id before→after
	}{
		{"new and removed", a, b, []string{"mechanism sc-acme →sc-acme", "mechanism old-sccs old-sccs→"}},
		{"scope changed", b, changed, []string{"mechanism sc-acme sc-acme→sc-acme"}},
		{"unchanged", b, b, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range notice.Diff(tt.from, tt.to) {
				got = append(got, c.Kind+" "+c.Mechanism.ID+" "+c.Before+"→"+c.After)
				if !c.KeepsData || c.Cell != "" || c.Jurisdiction != c.Mechanism.Source {
					t.Errorf("change %+v: want KeepsData, no cell, the source as jurisdiction", c)
				}
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMakePlanMechanism: a new mechanism affects exactly the subjects of
// its source jurisdiction's cells whose records hold a category it covers,
// and each one's notice names only those categories, the destination, the
// recipient, the purpose and the mechanism, in both languages.
func TestMakePlanMechanism(t *testing.T) {
	a, b := withMechanism(t)
	a.Mechanisms = nil
	subjects := map[string][]notice.SubjectInfo{
		"cn-gz1": {
			{Ref: "aa", Jurisdiction: "CN", Fields: map[string][]string{"profile": {"name", "id_number"}}},
			{Ref: "bb", Jurisdiction: "CN", Fields: map[string][]string{"location": {"lat"}, "message": {"body"}}},
			{Ref: "cc", Jurisdiction: "CN", Fields: map[string][]string{"message": {"body"}}}, // personal only
			{Ref: "dd", Jurisdiction: "CN"}, // holds nothing
		},
		"eu-fra1":  {{Ref: "ee", Jurisdiction: "DE", Fields: map[string][]string{"profile": {"id_number"}}}},
		"us-east1": {{Ref: "ff", Jurisdiction: "US", Fields: map[string][]string{"profile": {"id_number"}}}},
	}
	var asked []string
	p, err := notice.MakePlan(context.Background(), notice.PlanInput{From: a, To: b, FromRef: notice.Ref("a", []byte("a")), ToRef: notice.Ref("b", []byte("b")),
		Subjects: notice.SubjectsFunc(func(_ context.Context, cell string) ([]notice.SubjectInfo, error) {
			asked = append(asked, cell)
			return subjects[cell], nil
		}), Law: mustLaw(t), Now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, ",") != "cn-gz1" {
		t.Errorf("plan read the subjects of %v, want only cn-gz1", asked)
	}
	wantCats := map[string]string{"aa": "specific identity (sensitive)", "bb": "whereabouts (sensitive)"}
	if len(p.Notices) != len(wantCats) {
		t.Fatalf("plan notices %+v, want aa and bb", p.Notices)
	}
	for _, n := range p.Notices {
		cat, ok := wantCats[n.Notice.SubjectRef]
		en, zh := n.Notice.Texts["en"], n.Notice.Texts["zh-CN"]
		if !ok || n.Cell != "cn-gz1" {
			t.Errorf("notice for %s in %s, want only aa and bb of cn-gz1", n.Notice.SubjectRef, n.Cell)
			continue
		}
		for _, want := range []string{cat, "US", "Acme Support Inc.", "customer support", "standard contract", "sc-acme", "SC-2026-001", "withdraw your consent"} {
			if !strings.Contains(en.Body, want) {
				t.Errorf("%s: English notice lacks %q:\n%s", n.Notice.SubjectRef, want, en.Body)
			}
		}
		for other, c := range wantCats {
			if other != n.Notice.SubjectRef && strings.Contains(en.Body, c) {
				t.Errorf("%s: notice names %q, a category the subject does not hold", n.Notice.SubjectRef, c)
			}
		}
		for _, want := range []string{"个人信息出境标准合同", "客户支持", "撤回"} {
			if !strings.Contains(zh.Body, want) {
				t.Errorf("%s: Chinese notice lacks %q:\n%s", n.Notice.SubjectRef, want, zh.Body)
			}
		}
		if en.Title != "Your data may be transferred abroad" {
			t.Errorf("%s: title %q", n.Notice.SubjectRef, en.Title)
		}
	}
	en := p.Reports["en"]
	if en.Total != 2 || len(en.Affected) != 1 || en.Affected[0].Cell != "cn-gz1" {
		t.Errorf("impact report: %d affected in %+v, want 2 in cn-gz1", en.Total, en.Affected)
	}
	rules := map[string]bool{}
	for _, a := range en.Actions {
		rules[a.Rule] = true
	}
	for _, r := range []string{"CN.SCM.5", "CN.PIPL.55", "CN.PIPL.39.CONSENT"} {
		if !rules[r] {
			t.Errorf("impact report actions lack %s: %v", r, rules)
		}
	}
}

func mustLaw(t *testing.T) *law.Engine {
	t.Helper()
	e, err := law.New()
	if err != nil {
		t.Fatal(err)
	}
	return e
}
