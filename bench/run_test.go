package bench

import (
	"bytes"
	"context"
	"domicile/client"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile/bench/baseline"
	"domicile/httpapi"
	"domicile/sqlite"
)

// stall wraps h: from 400 ms after the first GET it sees, for 400 ms,
// every GET blocks 200 ms before it is served.
type stall struct {
	h     http.Handler
	once  sync.Once
	start time.Time
}

const stallDelay = 200 * time.Millisecond

func (s *stall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.once.Do(func() { s.start = time.Now() })
		if since := time.Since(s.start); since >= 400*time.Millisecond && since < 800*time.Millisecond {
			time.Sleep(stallDelay)
		}
	}
	s.h.ServeHTTP(w, r)
}

// newStalledBaseline serves the real baseline on a real store, behind a
// stall.
func newStalledBaseline(t *testing.T) *httpapi.Client {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&stall{h: baseline.New(st, nil)})
	t.Cleanup(func() { srv.Close(); st.Close() })
	return &httpapi.Client{Client: client.Client{BaseURL: srv.URL, HTTP: NewHTTPClient(4)}}
}

func stallPlan(t *testing.T, c *httpapi.Client) *Plan {
	t.Helper()
	p := &Plan{Subjects: []string{"s0", "s1", "s2", "s3"}, Record: RecordBody(256), Concurrency: 4}
	for _, s := range p.Subjects {
		if _, err := c.CreateSubject(context.Background(), s, "CN", ""); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestFixedRateReportsStall: one worker at 400 req/s for 1.5 s is 600
// requests; the stall delays only two of them by 200 ms each as sent, which
// is under 1% and would not reach p99. Measured from their intended start,
// the requests that queued behind the stall do.
func TestFixedRateReportsStall(t *testing.T) {
	c := newStalledBaseline(t)
	res, err := Run(context.Background(), Config{
		Target: "stalled", Client: c, Mix: Mixes["read"], Workers: 1, Rate: 400,
		Duration: 1500 * time.Millisecond, Plan: stallPlan(t, c),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p99 := time.Duration(res.Latency.P99 * 1e6); p99 < stallDelay {
		t.Errorf("fixed-rate p99 = %v, want ≥ %v (the stall); result %+v", p99, stallDelay, res.Latency)
	}
	if res.Mode != "fixed-rate" || res.CoordinatedOmission != COCorrected {
		t.Errorf("fixed-rate run reports mode %q, %q", res.Mode, res.CoordinatedOmission)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// TestFixedWorkersSaysUncorrected: the fixed-worker report states plainly
// that it does not correct for coordinated omission.
func TestFixedWorkersSaysUncorrected(t *testing.T) {
	c := newStalledBaseline(t)
	res, err := Run(context.Background(), Config{
		Target: "stalled", Client: c, Mix: Mixes["80/20"], Workers: 2,
		Duration: 1200 * time.Millisecond, Plan: stallPlan(t, c),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "fixed-workers" || res.CoordinatedOmission != CONotCorrected {
		t.Errorf("fixed-worker run reports mode %q, %q", res.Mode, res.CoordinatedOmission)
	}
	var buf bytes.Buffer
	rep := &Report{Runs: []*Result{res}}
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "NOT corrected for coordinated omission") {
		t.Errorf("table does not say the latencies are uncorrected:\n%s", buf.String())
	}
	if res.Ops == 0 || len(res.PerOp) != 2 {
		t.Errorf("ops %d, per-op %d entries", res.Ops, len(res.PerOp))
	}
}
