package transfer_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"domicile"

	"domicile/transfer"
)

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestGoldenWeek pins working days around two National Day holidays,
// adjusted working days (调休) included.
func TestGoldenWeek(t *testing.T) {
	cal := transfer.CN()
	for _, tc := range []struct {
		day  string
		work bool
	}{
		{"2025-09-27", false}, // Saturday
		{"2025-09-28", true},  // Sunday, declared a working day
		{"2025-10-01", false},
		{"2025-10-08", false}, // the eighth day of the 2025 holiday
		{"2025-10-09", true},
		{"2025-10-11", true}, // Saturday, declared a working day
		{"2025-10-12", false},
		{"2026-02-14", true}, // Saturday before the Spring Festival
		{"2026-02-23", false},
	} {
		if got := cal.IsWorkingDay(date(tc.day)); got != tc.work {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", tc.day, got, tc.work)
		}
	}
	for _, tc := range []struct{ signed, due string }{
		{"2025-09-26", "2025-10-16"}, // across 2025's eight-day Golden Week
		{"2024-09-27", "2024-10-16"},
		{"2026-03-02", "2026-03-16"}, // an ordinary fortnight
	} {
		got, exact := cal.AddWorkingDays(date(tc.signed), transfer.SCFilingWorkingDays)
		if got.Format(time.DateOnly) != tc.due || !exact {
			t.Errorf("AddWorkingDays(%s, 10) = %s (exact %v), want %s", tc.signed, got.Format(time.DateOnly), exact, tc.due)
		}
	}
	if _, exact := cal.AddWorkingDays(date("2030-05-01"), 10); exact {
		t.Error("a deadline in an uncovered year claims to be exact")
	}
}

// TestStandardContractFiling: a contract signed before Golden Week may be
// filed on the tenth working day after, not the day after that.
func TestStandardContractFiling(t *testing.T) {
	cal := transfer.CN()
	for _, tc := range []struct {
		filed string
		valid bool
	}{{"2025-10-16", true}, {"2025-10-17", false}, {"", false}} {
		m := standardContract("sc", "2025-09-26", tc.filed)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		st := m.StatusOn("2025-10-20", cal)
		if st.Valid != tc.valid || st.FilingDue != "2025-10-16" {
			t.Errorf("filed %q: %+v, want valid %v, due 2025-10-16", tc.filed, st, tc.valid)
		}
	}
	sa := transfer.Mechanism{Kind: domicile.MechSecurityAssessment, Approved: "2024-05-10"}
	st := sa.StatusOn("2027-05-10", cal)
	if st.Until != "2027-05-09" || st.Valid {
		t.Errorf("assessment approved 2024-05-10 on 2027-05-10: %+v, want expired after 2027-05-09", st)
	}
}

func TestCalendarMerge(t *testing.T) {
	extra, err := transfer.ParseCalendar([]byte("2027-01-01 off 元旦\n"))
	if err != nil {
		t.Fatal(err)
	}
	cal := transfer.CN().Merge(extra)
	if !cal.Covers(2027) || cal.IsWorkingDay(date("2027-01-01")) {
		t.Error("merged year not applied")
	}
	if !bytes.Equal(cal.Format()[:len(transfer.CN().Format())], transfer.CN().Format()) {
		t.Error("merge changed the embedded years")
	}
}

func FuzzParseCalendar(f *testing.F) {
	f.Add(transfer.CN().Format())
	f.Add([]byte("2026-10-10 work 国庆节调休\n"))
	f.Add([]byte("2026-10-10 work x\n2026-10-09 off y\n"))
	f.Add([]byte("2026-02-30 off x\n"))
	f.Add([]byte("2027 source a notice\n2027-01-01 off 元旦\n"))
	f.Add([]byte("2027-01-01 off 元旦\n2027 source late\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := transfer.ParseCalendar(data)
		if err != nil {
			return
		}
		if out := c.Format(); !bytes.Equal(out, data) {
			t.Fatalf("Format output different from input:\n%q\n%q", out, data)
		}
	})
}

// TestCalendarSources: every embedded year names its source; a source
// line goes before its year's dates and nowhere else; a merged file's
// source replaces the embedded one.
func TestCalendarSources(t *testing.T) {
	cal := transfer.CN()
	for y := 2023; y <= 2027; y++ {
		if !cal.Covers(y) || cal.Source(y) == "" {
			t.Errorf("year %d: covered %v, source %q; want both", y, cal.Covers(y), cal.Source(y))
		}
	}
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"2027 source 国务院办公厅通知\n2027-01-01 off 元旦\n", true},
		{"2026-12-31 off x\n2027 source s\n", true},
		{"2027-01-01 off 元旦\n2027 source late\n", false},
		{"2027 source s\n2027 source t\n", false},
		{"2027 sauce s\n", false},
		{"2027 source  padded\n", false},
		{"27 source s\n", false},
	} {
		_, err := transfer.ParseCalendar([]byte(tc.text))
		if (err == nil) != tc.ok {
			t.Errorf("ParseCalendar(%q) = %v, want ok %v", tc.text, err, tc.ok)
		}
	}
	extra, err := transfer.ParseCalendar([]byte("2027 source the notice itself\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cal.Merge(extra).Source(2027); got != "the notice itself" {
		t.Errorf("merged source = %q", got)
	}
}

// TestCalendar2027 pins the 2027 schedule's long holidays and their
// adjusted working days.
func TestCalendar2027(t *testing.T) {
	cal := transfer.CN()
	for day, work := range map[string]bool{
		"2027-01-01": false, "2027-01-04": true,
		"2027-01-31": true, // Sunday, declared a working day
		"2027-02-05": false, "2027-02-13": false, "2027-02-14": true, "2027-02-15": true,
		"2027-04-05": false, "2027-05-05": false, "2027-05-08": true,
		"2027-06-09": false, "2027-09-15": false, "2027-09-26": true,
		"2027-10-07": false, "2027-10-08": true, "2027-10-09": true,
	} {
		if got := cal.IsWorkingDay(date(day)); got != work {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", day, got, work)
		}
	}
	// 15 working days from the eve of the Spring Festival holiday.
	got, exact := cal.AddWorkingDays(date("2027-02-04"), 15)
	if got.Format(time.DateOnly) != "2027-03-04" || !exact {
		t.Errorf("AddWorkingDays(2027-02-04, 15) = %s (exact %v), want 2027-03-04", got.Format(time.DateOnly), exact)
	}
}

// TestStatusIssues: each problem of a mechanism's status comes with its
// issue code and arguments, the mechanism's id first, so that a reader
// can say it in another language.
func TestStatusIssues(t *testing.T) {
	cal := transfer.CN()
	for _, tc := range []struct {
		m     transfer.Mechanism
		today string
		code  string
		args  []string
	}{
		{standardContract("sc", "2025-09-26", ""), "2025-10-10", "unfiled", []string{"sc", "2025-10-16"}},
		{standardContract("sc", "2025-09-26", ""), "2025-10-20", "filing-overdue", []string{"sc", "2025-10-16"}},
		{standardContract("sc", "2025-09-26", "2025-10-17"), "2025-10-20", "filed-late", []string{"sc", "2025-10-17", "2025-10-16"}},
		{standardContract("sc", "2025-09-26", "2025-10-16"), "2025-09-01", "not-in-effect", []string{"sc", "2025-09-26"}},
		{transfer.Mechanism{ID: "sa", Kind: domicile.MechSecurityAssessment, Approved: "2024-05-10"}, "2027-05-10", "expired", []string{"sa", "2027-05-09", "CN.CBDF.9"}},
	} {
		st := tc.m.StatusOn(tc.today, cal)
		if len(st.Issues) != len(st.Problems) {
			t.Errorf("%s on %s: %d problems, %d issues", tc.m.ID, tc.today, len(st.Problems), len(st.Issues))
			continue
		}
		if len(st.Issues) != 1 || st.Issues[0].Code != tc.code || strings.Join(st.Issues[0].Args, ",") != strings.Join(tc.args, ",") {
			t.Errorf("%s on %s: issues %+v, want %s %v", tc.m.ID, tc.today, st.Issues, tc.code, tc.args)
		}
	}
}
