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
