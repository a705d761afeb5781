package transfer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"domicile"
)

// ImportHeader is the header line an import CSV must start with.
const ImportHeader = "date,subject_id,destination,categories,mechanism"

// MaxImportLineBytes bounds one line of an import CSV, its line ending
// included: a row is five short fields, so a longer line is an error, not
// a reason to buffer without limit.
const MaxImportLineBytes = 4096

// importColumns names the columns of an import CSV, in order.
var importColumns = strings.Split(ImportHeader, ",")

// ImportError is a bad line of an import: Line counts from 1 (the
// header), Column names the column at fault ("date", ...) or, for a line
// that is not CSV, the character where parsing stopped.
type ImportError struct {
	Line   int64
	Column string
	Msg    string
}

func (e *ImportError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("transfer: import line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("transfer: import line %d, column %s: %s", e.Line, e.Column, e.Msg)
}

// An ImportRow is one parsed line of an import CSV.
type ImportRow struct {
	// Line is the row's line number, counting the header as 1.
	Line        int64
	Date        time.Time
	SubjectID   string
	Destination domicile.Jurisdiction
	// Categories are the row's categories, in the order given.
	Categories []domicile.Category
	Mechanism  string
}

// An ImportReader reads an import CSV row by row: the header
// ([ImportHeader]), then one transfer per line (date as YYYY-MM-DD, a
// subject id, a destination jurisdiction, categories separated by ';',
// a mechanism of 1 to 64 bytes), each field optionally quoted as RFC 4180
// allows. Empty lines are skipped; a field never spans lines. It only
// parses: nothing is written anywhere.
type ImportReader struct {
	br   *bufio.Reader
	line int64
}

// NewImportReader reads and checks the header of an import CSV.
func NewImportReader(r io.Reader) (*ImportReader, error) {
	ir := &ImportReader{br: bufio.NewReaderSize(r, MaxImportLineBytes)}
	head, err := ir.readLine()
	if err != nil || string(head) != ImportHeader {
		return nil, &domicile.Error{Code: domicile.EInvalid, Field: "csv", Message: "the first line must be " + ImportHeader}
	}
	return ir, nil
}

// readLine returns the next line without its line ending, or io.EOF.
func (ir *ImportReader) readLine() ([]byte, error) {
	b, err := ir.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		ir.line++
		return nil, &ImportError{Line: ir.line, Msg: fmt.Sprintf("line longer than %d bytes", MaxImportLineBytes)}
	case errors.Is(err, io.EOF) && len(b) == 0:
		return nil, io.EOF
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("transfer: import line %d: %w", ir.line+1, err)
	}
	ir.line++
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b, nil
}

// Next returns the next row, io.EOF after the last, or an
// [*ImportError] naming the line and the column at fault. An error
// reading the source is returned wrapped, as it is.
func (ir *ImportReader) Next() (*ImportRow, error) {
	var b []byte
	for {
		var err error
		if b, err = ir.readLine(); err != nil {
			return nil, err
		}
		if len(b) > 0 {
			break
		}
	}
	line := ir.line
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = len(importColumns)
	f, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
			return nil, &ImportError{Line: line, Msg: fmt.Sprintf("want %d fields (%s)", len(importColumns), ImportHeader)}
		case errors.As(err, &pe):
			return nil, &ImportError{Line: line, Column: fmt.Sprintf("at character %d", pe.Column), Msg: "malformed CSV: " + pe.Err.Error()}
		}
		return nil, &ImportError{Line: line, Msg: "malformed CSV"}
	}
	bad := func(col int, msg string) error {
		return &ImportError{Line: line, Column: importColumns[col], Msg: msg}
	}
	row := &ImportRow{Line: line, SubjectID: f[1], Mechanism: f[4]}
	day, err := time.Parse(time.DateOnly, f[0])
	if err != nil || day.Format(time.DateOnly) != f[0] {
		return nil, bad(0, "date must be YYYY-MM-DD")
	}
	row.Date = day
	if err := domicile.ValidateID("subject_id", f[1]); err != nil {
		msg := "bad subject_id"
		var de *domicile.Error
		if errors.As(err, &de) {
			msg += ": " + de.Message
		}
		return nil, bad(1, msg)
	}
	if row.Destination, err = domicile.ParseJurisdiction(f[2]); err != nil {
		return nil, bad(2, "destination must be a jurisdiction code")
	}
	for c := range strings.SplitSeq(f[3], ";") {
		cat, err := domicile.ParseCategory(c)
		if err != nil {
			return nil, bad(3, fmt.Sprintf("unknown category %q", trunc(c, 32)))
		}
		row.Categories = append(row.Categories, cat)
	}
	if f[4] == "" || len(f[4]) > 64 {
		return nil, bad(4, "mechanism must be 1 to 64 bytes")
	}
	return row, nil
}
