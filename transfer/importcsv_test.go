package transfer

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"domicile"
)

// readAll parses a whole import CSV.
func readAll(src string) ([]*ImportRow, error) {
	ir, err := NewImportReader(strings.NewReader(src))
	if err != nil {
		return nil, err
	}
	var rows []*ImportRow
	for {
		r, err := ir.Next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
}

func TestImportReader(t *testing.T) {
	const h = ImportHeader + "\n"
	rows, err := readAll(h + "2025-01-02,li.wei,US,personal;medical-health,standard_contract\r\n\n" + `"2025-03-04","a b",DE,"personal",x` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Line != 2 || rows[1].Line != 4 || rows[0].SubjectID != "li.wei" || rows[0].Destination != "US" ||
		len(rows[0].Categories) != 2 || rows[0].Mechanism != "standard_contract" || !rows[0].Date.Equal(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)) ||
		rows[1].SubjectID != "a b" {
		t.Fatalf("rows = %+v %+v", rows[0], rows[1])
	}
	for _, tc := range []struct {
		name, src   string
		line        int64
		column, msg string
	}{
		{"date", h + "2025-13-01,a,US,personal,m\n", 2, "date", "YYYY-MM-DD"},
		{"date not canonical", h + "2025-1-01,a,US,personal,m\n", 2, "date", "YYYY-MM-DD"},
		{"subject", h + "2025-01-01,,US,personal,m\n", 2, "subject_id", "bad subject_id"},
		{"destination", h + "2025-01-01,a,usa,personal,m\n", 2, "destination", "jurisdiction"},
		{"category", h + "2025-01-01,a,US,personal;nope,m\n", 2, "categories", `"nope"`},
		{"mechanism empty", h + "2025-01-01,a,US,personal,\n", 2, "mechanism", "1 to 64"},
		{"mechanism long", h + "2025-01-01,a,US,personal," + strings.Repeat("m", 65) + "\n", 2, "mechanism", "1 to 64"},
		{"fields", h + "2025-01-01,a,US,personal\n", 2, "", "want 5 fields"},
		{"quote", h + "2025-01-01,\"a,US,personal,m\n", 2, "at character", "malformed CSV"},
		{"bare quote", h + "2025-01-01,a\"b,US,personal,m\n", 2, "at character", "malformed CSV"},
		{"second row", h + "2025-01-01,a,US,personal,m\n\n2025-01-01,a,US,personal,m,extra\n", 4, "", "want 5 fields"},
		{"long line", h + strings.Repeat("x", MaxImportLineBytes+1) + "\n", 2, "", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.src)
			var ie *ImportError
			if !errors.As(err, &ie) || ie.Line != tc.line || !strings.HasPrefix(ie.Column, tc.column) || !strings.Contains(ie.Msg, tc.msg) {
				t.Fatalf("error = %v; want line %d, column %q, message with %q", err, tc.line, tc.column, tc.msg)
			}
		})
	}
	for _, src := range []string{"", "date,subject_id\n", "Date,subject_id,destination,categories,mechanism\n", strings.Repeat("x", 10000)} {
		if _, err := NewImportReader(strings.NewReader(src)); domicile.ErrorCode(err) != domicile.EInvalid {
			t.Errorf("NewImportReader(%.20q) = %v, want EInvalid naming the header", src, err)
		}
	}
}

// FuzzImportReader: the parser never panics, never returns a row that
// fails the checks it promises, and stops on the first error.
func FuzzImportReader(f *testing.F) {
	f.Add(ImportHeader + "\n2025-01-02,li.wei,US,personal;medical-health,standard_contract\n")
	f.Add(ImportHeader + "\r\n\"2025-01-02\",\"a,b\",DE,personal,x\r\n\r\n")
	f.Add(ImportHeader + "\n2025-01-02,a,US,personal,\"m\"\"q\"\n")
	f.Add(ImportHeader + "\n2025-02-30,a,US,personal,m\n")
	f.Add(ImportHeader)
	f.Fuzz(func(t *testing.T, src string) {
		ir, err := NewImportReader(strings.NewReader(src))
		if err != nil {
			return
		}
		last := int64(1)
		for {
			r, err := ir.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ie *ImportError
				if !errors.As(err, &ie) || ie.Line <= last {
					t.Fatalf("error %v: want an *ImportError after line %d", err, last)
				}
				return
			}
			if r.Line <= last || r.Date.Format(time.DateOnly) == "" || domicile.ValidateID("id", r.SubjectID) != nil ||
				len(r.Categories) == 0 || r.Mechanism == "" || len(r.Mechanism) > 64 || strings.ContainsAny(r.SubjectID+r.Mechanism, "\r\n") {
				t.Fatalf("row %+v breaks the parser's promises", r)
			}
			if _, err := domicile.ParseJurisdiction(string(r.Destination)); err != nil {
				t.Fatalf("row %+v: destination %v", r, err)
			}
			last = r.Line
		}
	})
}
