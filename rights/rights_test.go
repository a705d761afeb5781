package rights

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"domicile"
	"domicile/deploy"
	"domicile/i18n"
	"domicile/transfer"
)

func TestDeadlineFor(t *testing.T) {
	p := i18n.NewPrinter(i18n.EN)
	cal := transfer.CN()
	cst := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		name        string
		j           domicile.Jurisdiction
		received    time.Time
		due         time.Time
		rule        string
		approximate bool
	}{
		{"CN across the 2027 Spring Festival", "CN", time.Date(2027, 2, 4, 10, 0, 0, 0, cst), time.Date(2027, 3, 4, 23, 59, 59, 0, cst), "CN.PIPL.44-50", false},
		// 2026-09-28 (Mon) + 15 working days: Golden Week off, 10-10 (Sat) a working day.
		{"CN across National Day 2026", "CN", time.Date(2026, 9, 28, 9, 0, 0, 0, cst), time.Date(2026, 10, 23, 23, 59, 59, 0, cst), "CN.PIPL.44-50", false},
		// Late in the evening UTC is the next day in China.
		{"CN counts China's day", "CN", time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC), time.Date(2026, 3, 23, 23, 59, 59, 0, cst), "CN.PIPL.44-50", false},
		{"CN in a year the calendar does not cover", "CN", time.Date(2027, 12, 24, 10, 0, 0, 0, cst), time.Date(2028, 1, 14, 23, 59, 59, 0, cst), "CN.PIPL.44-50", true},
		{"EU one month", "DE", time.Date(2027, 3, 15, 8, 0, 0, 0, time.UTC), time.Date(2027, 4, 15, 23, 59, 59, 0, time.UTC), "GDPR Art. 12(3)", false},
		{"EU from the 31st", "FR", time.Date(2027, 1, 31, 8, 0, 0, 0, time.UTC), time.Date(2027, 2, 28, 23, 59, 59, 0, time.UTC), "GDPR Art. 12(3)", false},
		{"EU in a leap year", "EU", time.Date(2028, 1, 30, 8, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC), "GDPR Art. 12(3)", false},
		{"elsewhere one month", "JP", time.Date(2027, 12, 31, 8, 0, 0, 0, time.UTC), time.Date(2028, 1, 31, 23, 59, 59, 0, time.UTC), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DeadlineFor(p, cal, tc.j, tc.received)
			if !d.Due.Equal(tc.due) || d.Rule != tc.rule || d.Approximate != tc.approximate || d.Basis == "" {
				t.Errorf("DeadlineFor(%s, %s) = %+v, want due %s, rule %q, approximate %v", tc.j, tc.received, d, tc.due, tc.rule, tc.approximate)
			}
		})
	}
}

func TestInputValidate(t *testing.T) {
	dep := deploy.Default()
	id, _ := age.GenerateX25519Identity()
	key := id.Recipient().String()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name  string
		in    Input
		field string // "" means valid
	}{
		{"access", Input{Kind: Access}, ""},
		{"copy encrypted", Input{Kind: Copy, Recipient: key}, ""},
		{"portability", Input{Kind: Portability, To: &Handler{Name: "Acme", Jurisdiction: "US"}}, ""},
		{"correction", Input{Kind: Correction, Record: &RecordRef{Kind: "profile", ID: "main"}, Changes: map[string]json.RawMessage{"name": raw(`"x"`)}}, ""},
		{"unknown kind", Input{Kind: "forget"}, "kind"},
		{"no kind", Input{}, "kind"},
		{"bad recipient", Input{Kind: Copy, Recipient: "age1nope"}, "recipient"},
		{"recipient on access", Input{Kind: Access, Recipient: key}, "recipient"},
		{"portability without a handler", Input{Kind: Portability}, "to"},
		{"handler on a copy", Input{Kind: Copy, To: &Handler{Name: "Acme", Jurisdiction: "US"}}, "to"},
		{"handler without a name", Input{Kind: Portability, To: &Handler{Jurisdiction: "US"}}, "to.name"},
		{"handler in nowhere", Input{Kind: Portability, To: &Handler{Name: "Acme", Jurisdiction: "XX1"}}, "to.jurisdiction"},
		{"correction without a record", Input{Kind: Correction, Changes: map[string]json.RawMessage{"name": raw(`"x"`)}}, "record"},
		{"correction of an unknown kind", Input{Kind: Correction, Record: &RecordRef{Kind: "diary", ID: "1"}, Changes: map[string]json.RawMessage{"x": raw(`1`)}}, "record.kind"},
		{"correction of a bad id", Input{Kind: Correction, Record: &RecordRef{Kind: "profile", ID: "a/b"}, Changes: map[string]json.RawMessage{"name": raw(`1`)}}, "record.id"},
		{"correction without changes", Input{Kind: Correction, Record: &RecordRef{Kind: "profile", ID: "main"}}, "changes"},
		{"correction of an undeclared field", Input{Kind: Correction, Record: &RecordRef{Kind: "profile", ID: "main"}, Changes: map[string]json.RawMessage{"shoe": raw(`1`)}}, "changes"},
		{"changes on a copy", Input{Kind: Copy, Changes: map[string]json.RawMessage{"name": raw(`1`)}}, "record"},
		{"long note", Input{Kind: Access, Note: strings.Repeat("x", MaxNoteBytes+1)}, "note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate(dep)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var de *domicile.Error
			if !errorAs(err, &de) || de.Field != tc.field || de.Code != domicile.EInvalid {
				t.Fatalf("Validate = %v, want an invalid-input error naming %q", err, tc.field)
			}
		})
	}
}

func TestUpdateValidate(t *testing.T) {
	for _, tc := range []struct {
		u     Update
		field string
	}{
		{Update{State: InProgress}, ""},
		{Update{State: Completed, Note: "done"}, ""},
		{Update{State: Refused, Reason: "the record is not the subject's"}, ""},
		{Update{State: Refused}, "reason"},
		{Update{State: Refused, Reason: "  "}, "reason"},
		{Update{State: Completed, Reason: "why"}, "reason"},
		{Update{State: Received}, "state"},
		{Update{State: "done"}, "state"},
	} {
		err := tc.u.Validate()
		var de *domicile.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tc.u, err)
		case tc.field != "" && (!errorAs(err, &de) || de.Field != tc.field):
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tc.u, err, tc.field)
		}
	}
}

func errorAs(err error, target **domicile.Error) bool {
	de, ok := err.(*domicile.Error)
	if ok {
		*target = de
	}
	return ok
}

// bundle builds a small bundle with the package's writer.
func bundle(t testing.TB) []byte {
	var b bytes.Buffer
	w := newBundleWriter(&b, time.Date(2027, 2, 4, 0, 0, 0, 0, time.UTC))
	if err := w.addJSON(recordPath("message", "m 1/ü"), map[string]string{"body": "明天见"}); err != nil {
		t.Fatal(err)
	}
	if err := w.add("objects/photo.jpg", strings.NewReader("\xff\xd8 photo")); err != nil {
		t.Fatal(err)
	}
	if err := w.finish(Manifest{Request: "rq_1", Kind: Copy, Subject: "li", Cell: "cn-gz1"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rezip rewrites a bundle's files through edit (which may change, drop or
// add files).
func rezip(t *testing.T, data []byte, edit func(name string, body []byte) (string, []byte)) []byte {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		var body bytes.Buffer
		body.ReadFrom(rc)
		rc.Close()
		name, b := edit(f.Name, body.Bytes())
		if name == "" {
			continue
		}
		w, _ := zw.Create(name)
		w.Write(b)
	}
	zw.Close()
	return out.Bytes()
}

func TestVerifyBundle(t *testing.T) {
	good := bundle(t)
	m, err := VerifyBundle(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatalf("VerifyBundle(good) = %v", err)
	}
	if len(m.Files) != 2 || m.Files[0].Path != "records/message/m%201%2F%C3%BC.json" {
		t.Errorf("manifest files %+v", m.Files)
	}
	for _, tc := range []struct {
		name string
		edit func(string, []byte) (string, []byte)
	}{
		{"a changed file", func(n string, b []byte) (string, []byte) {
			if n == "objects/photo.jpg" {
				return n, []byte("\xff\xd8 other")
			}
			return n, b
		}},
		{"a missing file", func(n string, b []byte) (string, []byte) {
			if n == "objects/photo.jpg" {
				return "", nil
			}
			return n, b
		}},
		{"an extra file", func(n string, b []byte) (string, []byte) {
			if n == "objects/photo.jpg" {
				return "objects/photo2.jpg", b
			}
			return n, b
		}},
		{"a SHA256SUMS that differs", func(n string, b []byte) (string, []byte) {
			if n == "SHA256SUMS" {
				return n, bytes.Replace(b, []byte("photo"), []byte("phot0"), 1)
			}
			return n, b
		}},
		{"no manifest", func(n string, b []byte) (string, []byte) {
			if n == "manifest.json" {
				return "", nil
			}
			return n, b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := rezip(t, good, tc.edit)
			if _, err := VerifyBundle(bytes.NewReader(bad), int64(len(bad))); err == nil {
				t.Error("VerifyBundle passed a broken bundle")
			}
		})
	}
}

// FuzzVerifyBundle: VerifyBundle never panics, and whatever it accepts
// has a manifest that lists exactly its files.
func FuzzVerifyBundle(f *testing.F) {
	f.Add(bundle(f))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := VerifyBundle(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if m.Format != BundleFormat {
			t.Fatalf("accepted format %q", m.Format)
		}
	})
}

func TestAddMonth(t *testing.T) {
	for in, want := range map[string]string{
		"2027-01-31": "2027-02-28", "2027-03-31": "2027-04-30", "2027-12-15": "2028-01-15", "2028-01-29": "2028-02-29",
	} {
		d, _ := time.Parse(time.DateOnly, in)
		if got := AddMonth(d).Format(time.DateOnly); got != want {
			t.Errorf("AddMonth(%s) = %s, want %s", in, got, want)
		}
	}
}
