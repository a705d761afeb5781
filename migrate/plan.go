// Package migrate moves subjects' data from one cell of a deployment to
// another: a plan says who moves where and what it needs first (notices,
// a transfer mechanism when the move crosses a border); a run copies each
// subject sealed, cell to cell, checks that both cells hold the same
// data (equal digests), switches the subject's home atomically in the
// directory, and crypto-shreds the source copy after the retention
// period; a report, signed, lists per-cell counts, digests and the log
// events of every move, and can be checked against both cells' public
// logs without any data. Progress is durable in the control store, one
// state per subject (domicile.MigrationSubject), so a run killed at any
// point resumes where it stopped. doc/migration.md is the design.
package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"domicile"
)

// Plan is a migration plan: which subjects move from which cell to
// which, how much, whether a move crosses a border, and which notices
// must have gone out first. Its subjects are kept in the control store.
type Plan struct {
	// ID is "m-" and 16 hex digits, derived from the change plan's id.
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// To names the next deployment file and its SHA-256.
	To       string `json:"to"`
	ToSHA256 string `json:"to_sha256"`
	// NoticePlan is the change plan (package notice) whose notices the
	// moved subjects must have received; Notices counts them.
	NoticePlan string `json:"notice_plan"`
	Notices    int    `json:"notices"`
	// NoticeLead is how long before the run the notices must have been
	// delivered (the next deployment's notice_lead), as a Go duration.
	NoticeLead string `json:"notice_lead"`
	Moves      []Move `json:"moves"`
	Subjects   int    `json:"subjects"`
	Records    int    `json:"records"`
	Objects    int    `json:"objects"`
	Bytes      int64  `json:"bytes"`
}

// Move is one flow of a plan: the subjects of one jurisdiction moving
// from one cell to another.
type Move struct {
	Jurisdiction     domicile.Jurisdiction `json:"jurisdiction"`
	From             string                `json:"from"`
	To               string                `json:"to"`
	FromJurisdiction domicile.Jurisdiction `json:"from_jurisdiction"`
	ToJurisdiction   domicile.Jurisdiction `json:"to_jurisdiction"`
	FromOperator     string                `json:"from_operator"`
	ToOperator       string                `json:"to_operator"`
	// CrossBorder is true when the cells are in different jurisdictions:
	// the move is then a transfer the gate must approve, counted in the
	// ledger.
	CrossBorder bool  `json:"cross_border"`
	Subjects    int   `json:"subjects"`
	Records     int   `json:"records"`
	Objects     int   `json:"objects"`
	Bytes       int64 `json:"bytes"`
}

// Lead returns the plan's notice lead time.
func (p *Plan) Lead() time.Duration {
	d, _ := time.ParseDuration(p.NoticeLead)
	return d
}

// MaxPlanBytes bounds a plan document.
const MaxPlanBytes = 1 << 20

// maxMoves bounds the moves of a plan (one per jurisdiction and pair of
// cells).
const maxMoves = 1024

var (
	planIDRE = regexp.MustCompile(`^m-[0-9a-f]{16}$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	cellRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

// ValidPlanID reports whether id has the syntax of a plan id.
func ValidPlanID(id string) bool { return planIDRE.MatchString(id) }

// ErrMalformed is returned by the parsers for any input they refuse.
var ErrMalformed = errors.New("migrate: malformed document")

// FormatPlan returns the plan's canonical JSON.
func FormatPlan(p *Plan) ([]byte, error) {
	return json.Marshal(p)
}

// ParsePlan parses a plan in its canonical JSON (FormatPlan's output,
// byte for byte): unknown fields, other spellings and impossible values
// are refused.
func ParsePlan(b []byte) (*Plan, error) {
	if len(b) > MaxPlanBytes {
		return nil, ErrMalformed
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return nil, ErrMalformed
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	out, err := FormatPlan(&p)
	if err != nil || !bytes.Equal(out, b) {
		return nil, ErrMalformed
	}
	return &p, nil
}

func (p *Plan) validate() error {
	lead, err := time.ParseDuration(p.NoticeLead)
	switch {
	case !ValidPlanID(p.ID), !hexRE.MatchString(p.ToSHA256), err != nil, lead < 0, len(p.Moves) > maxMoves,
		p.Subjects < 0, p.Records < 0, p.Objects < 0, p.Bytes < 0, p.Notices < 0, len(p.To) > 256, len(p.NoticePlan) > 64:
		return ErrMalformed
	}
	var s, r, o int
	var by int64
	for _, m := range p.Moves {
		if !cellRE.MatchString(m.From) || !cellRE.MatchString(m.To) || m.From == m.To || m.Subjects < 0 || m.Records < 0 || m.Objects < 0 || m.Bytes < 0 ||
			m.CrossBorder != (m.FromJurisdiction != m.ToJurisdiction) || len(m.FromOperator) > 256 || len(m.ToOperator) > 256 {
			return ErrMalformed
		}
		s, r, o, by = s+m.Subjects, r+m.Records, o+m.Objects, by+m.Bytes
	}
	if s != p.Subjects || r != p.Records || o != p.Objects || by != p.Bytes {
		return ErrMalformed
	}
	return nil
}

// CrossBorder reports whether any move of the plan crosses a border.
func (p *Plan) CrossBorder() bool {
	for _, m := range p.Moves {
		if m.CrossBorder {
			return true
		}
	}
	return false
}

// Summary is the plan as a person reads it.
func (p *Plan) Summary() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "migration plan %s (to %s, sha256 %s)\n", p.ID, p.To, p.ToSHA256[:12])
	if len(p.Moves) == 0 {
		b.WriteString("nothing moves: every subject is already in its next home cell\n")
	}
	for _, m := range p.Moves {
		kind := "same jurisdiction, new operator"
		if m.CrossBorder {
			kind = fmt.Sprintf("CROSS-BORDER %s -> %s: a transfer the gate must approve, counted in the ledger", m.FromJurisdiction, m.ToJurisdiction)
		} else if m.FromOperator == m.ToOperator {
			kind = "same jurisdiction, same operator"
		}
		fmt.Fprintf(&b, "  %s subjects: %s (%s) -> %s (%s): %d subjects, %d records, %d objects, %s; %s\n",
			m.Jurisdiction, m.From, m.FromOperator, m.To, m.ToOperator, m.Subjects, m.Records, m.Objects, Bytes(m.Bytes), kind)
	}
	fmt.Fprintf(&b, "total: %d subjects, %d records, %d objects, %s\n", p.Subjects, p.Records, p.Objects, Bytes(p.Bytes))
	fmt.Fprintf(&b, "notices first: change plan %s, %d notices, delivered at least %s before the run\n", p.NoticePlan, p.Notices, p.Lead())
	return b.String()
}

// Bytes formats a byte count.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
