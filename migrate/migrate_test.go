package migrate

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func samplePlan() *Plan {
	return &Plan{ID: "m-0123456789abcdef", Created: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), To: "after.yaml",
		ToSHA256: strings.Repeat("ab", 32), NoticePlan: "p-0123456789abcdef", Notices: 2, NoticeLead: "0s",
		Moves: []Move{{Jurisdiction: "CN", From: "cn-gz1", To: "cn-gz2", FromJurisdiction: "CN", ToJurisdiction: "CN",
			FromOperator: "A", ToOperator: "B", Subjects: 2, Records: 6, Objects: 2, Bytes: 1000}},
		Subjects: 2, Records: 6, Objects: 2, Bytes: 1000}
}

func sampleReport() *Report {
	return &Report{Plan: "m-0123456789abcdef", Deployment: "demo", Started: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC), Retention: "0s", Transfers: []string{},
		Cells: []CellReport{
			{Cell: "cn-gz1", Role: "source", Operator: "A", Subjects: 2, Records: 6, Objects: 2, Bytes: 1000, Digest: AggregateDigest([]string{"a", "b"}), Shredded: 2, Events: []int64{3, 9}, Log: LogRef{URL: "/log/cn-gz1/", Size: 10}},
			{Cell: "cn-gz2", Role: "target", Operator: "B", Subjects: 2, Records: 6, Objects: 2, Bytes: 1000, Digest: AggregateDigest([]string{"b", "a"}), Events: []int64{0, 1}, Log: LogRef{URL: "/log/cn-gz2/", Size: 2}},
		}}
}

func TestPlanRoundTrip(t *testing.T) {
	b, err := FormatPlan(samplePlan())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlan(b)
	if err != nil {
		t.Fatalf("ParsePlan(FormatPlan(p)) = %v", err)
	}
	if p.Lead() != 0 || p.CrossBorder() || !strings.Contains(p.Summary(), "cn-gz1 (A) -> cn-gz2 (B)") {
		t.Errorf("plan = %+v\n%s", p, p.Summary())
	}
}

func TestParsePlanRefuses(t *testing.T) {
	good, _ := FormatPlan(samplePlan())
	for name, mutate := range map[string]func(*Plan){
		"bad id":              func(p *Plan) { p.ID = "m-xyz" },
		"counts do not add":   func(p *Plan) { p.Subjects = 3 },
		"negative lead":       func(p *Plan) { p.NoticeLead = "-1h" },
		"cross-border lie":    func(p *Plan) { p.Moves[0].ToJurisdiction = "US" },
		"same cell":           func(p *Plan) { p.Moves[0].To = "cn-gz1" },
		"bad digest":          func(p *Plan) { p.ToSHA256 = "zz" },
		"unknown move field":  nil,
		"trailing data":       nil,
		"non-canonical space": nil,
	} {
		t.Run(name, func(t *testing.T) {
			var b []byte
			switch name {
			case "unknown move field":
				b = bytes.Replace(good, []byte(`"bytes":1000}]`), []byte(`"bytes":1000,"x":1}]`), 1)
			case "trailing data":
				b = append(append([]byte(nil), good...), "{}"...)
			case "non-canonical space":
				b = bytes.Replace(good, []byte(`"id":`), []byte(`"id": `), 1)
			default:
				p := samplePlan()
				mutate(p)
				b, _ = FormatPlan(p)
			}
			if _, err := ParsePlan(b); err == nil {
				t.Errorf("ParsePlan(%s) = nil error", b)
			}
		})
	}
}

func TestReportSignAndOpen(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "domicile/demo/migrations")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	signed, err := SignReport(sampleReport(), s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReport(signed, vkey)
	if err != nil || r.Cells[0].Digest != r.Cells[1].Digest {
		t.Fatalf("OpenReport = %+v, %v", r, err)
	}
	altered := bytes.Replace(signed, []byte(`"subjects":2`), []byte(`"subjects":1`), 1)
	if _, err := OpenReport(altered, vkey); err == nil {
		t.Error("an altered report opened")
	}
	_, other, _ := note.GenerateKey(rand.Reader, "domicile/demo/migrations")
	if _, err := OpenReport(signed, other); err == nil {
		t.Error("a report opened with another key")
	}
}

func TestParseReportRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*Report){
		"events not counted":    func(r *Report) { r.Cells[0].Events = []int64{3} },
		"event beyond the log":  func(r *Report) { r.Cells[1].Events = []int64{0, 2} },
		"events out of order":   func(r *Report) { r.Cells[0].Events = []int64{9, 3} },
		"more shredded":         func(r *Report) { r.Cells[0].Shredded = 3 },
		"bad role":              func(r *Report) { r.Cells[0].Role = "both" },
		"log outside /log/":     func(r *Report) { r.Cells[0].Log.URL = "https://elsewhere/" },
		"no cells":              func(r *Report) { r.Cells = nil },
		"bad retention":         func(r *Report) { r.Retention = "soon" },
		"duplicate event index": func(r *Report) { r.Cells[0].Events = []int64{3, 3} },
	} {
		t.Run(name, func(t *testing.T) {
			r := sampleReport()
			mutate(r)
			b, _ := FormatReport(r)
			if _, err := ParseReport(b); err == nil {
				t.Errorf("ParseReport(%s) = nil error", b)
			}
		})
	}
}

func TestAggregateDigestOrderFree(t *testing.T) {
	if AggregateDigest([]string{"x", "y"}) != AggregateDigest([]string{"y", "x"}) || AggregateDigest([]string{"x"}) == AggregateDigest([]string{"x", "x"}) {
		t.Error("the aggregate digest depends on order, or ignores a repeated subject")
	}
}

func FuzzParsePlan(f *testing.F) {
	b, _ := FormatPlan(samplePlan())
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			return
		}
		out, err := FormatPlan(p)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("FormatPlan(ParsePlan(%q)) = %q, want the input", b, out)
		}
	})
}

func FuzzParseReport(f *testing.F) {
	b, _ := FormatReport(sampleReport())
	f.Add(b)
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		out, err := FormatReport(r)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("FormatReport(ParseReport(%q)) = %q, want the input", b, out)
		}
		for _, c := range r.Cells {
			if len(c.Events) != c.Subjects {
				t.Fatalf("a parsed report lists %d events for %d subjects", len(c.Events), c.Subjects)
			}
		}
	})
}
