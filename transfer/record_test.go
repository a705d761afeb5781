package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/transfer"
)

// evidence returns every transfer record, from the gateway's JSON
// evidence.
func (e *env) evidence() []domicile.TransferRecord {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.g.Evidence(context.Background(), e.admin, time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), "json", &buf); err != nil {
		e.t.Fatal(err)
	}
	var out []domicile.TransferRecord
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var r domicile.TransferRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestRecordsCountPeople: the evidence of each transfer says how many
// people it carried and how many of them were new to the year's counts;
// an import's duplicate rows and a person with both sensitive and
// non-sensitive data are one person each; prior-year rows go to their
// own year.
func TestRecordsCountPeople(t *testing.T) {
	e := newEnv(t, march)
	// Exports first: once sensitive data of anyone has left this year,
	// every transfer needs a standard contract (CN.CBDF.8).
	e.subject("a")
	if _, _, err := e.transferPlain(messageRequest("a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.transferPlain(messageRequest("a")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(transfer.ImportHeader + "\n")
	for _, row := range []string{
		"2026-01-05,p1,US,personal,exempt",
		"2026-01-05,p1,US,personal,exempt", // the same person twice
		"2026-01-06,p2,US,personal;medical-health,exempt",
		"2026-01-07,p3,US,medical-health,exempt",
		"2025-12-30,p1,US,personal,exempt", // last year
		"2026-01-08,p4,US,personal,exemption_hr",
	} {
		b.WriteString(row + "\n")
	}
	res, err := e.g.Import(context.Background(), e.admin, "CN", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 6 || res.Counted != 5 || res.NewPI != 3 || res.NewSPI != 2 {
		t.Errorf("import = %+v; want 6 rows, 5 counted, 3 new pi (p1 in 2025 and 2026, p2), 2 new spi", res)
	}
	type want struct{ people, newPI, newSPI int64 }
	got := map[string]want{}
	for _, r := range e.evidence() {
		key := r.Channel + "/" + r.Law + "/" + r.Mechanism + "/" + string(rune('0'+r.Year%10))
		w := got[key]
		w.people += r.People
		w.newPI += r.NewPI
		w.newSPI += r.NewSPI
		got[key] = w
	}
	for key, w := range map[string]want{
		"import/exempt//6":       {3, 2, 2}, // p1, p2 (pi); p2, p3 (spi)
		"import/exempt//5":       {1, 1, 0}, // p1 in 2025
		"import/exemption_hr//6": {1, 0, 0}, // not counted
		"export/exempt//6":       {2, 1, 0}, // a twice, new once
	} {
		if got[key] != w {
			t.Errorf("evidence %s: people %d, new pi %d, new spi %d; want %+v (all: %+v)", key, got[key].people, got[key].newPI, got[key].newSPI, w, got)
		}
	}
	if pi, spi := e.counts(); pi != 3 || spi != 2 {
		t.Errorf("2026 counts pi %d spi %d, want 3 (p1, p2, a) and 2 (p2, p3)", pi, spi)
	}
}
