package transfer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"domicile"
)

// Periods of China's routes.
const (
	// SCFilingWorkingDays: a standard contract is filed with the
	// provincial CAC within 10 working days of taking effect (SCM Art. 7,
	// rule CN.SCM.5; GBA contracts likewise).
	SCFilingWorkingDays = 10
	// SAReapplyWorkingDays: an assessment's extension is applied for in
	// its last 60 working days (2024 Provisions Art. 9, rule CN.CBDF.9).
	SAReapplyWorkingDays = 60
)

// Scope is what a mechanism covers. An entry "*" in Recipients or
// Purposes matches any.
type Scope struct {
	Destinations []domicile.Jurisdiction `json:"destinations"`
	Recipients   []string                `json:"recipients"`
	Purposes     []string                `json:"purposes"`
	Categories   []domicile.Category     `json:"categories"`
	// Fields, if not empty, narrows what leaves to these fields, written
	// "kind.field" (for example "message.body").
	Fields []string `json:"fields,omitempty"`
	// MaxIndividuals, if not zero, is the volume ceiling: distinct people
	// per calendar year under this mechanism.
	MaxIndividuals int64 `json:"max_individuals,omitempty"`
}

// Mechanism is one legal basis a business holds, with its dates and scope.
// Dates are calendar days (YYYY-MM-DD) in the source jurisdiction.
type Mechanism struct {
	ID   string                 `json:"id"`
	Kind domicile.MechanismKind `json:"kind"`
	// Source is the jurisdiction whose law the mechanism satisfies: CN for
	// China's routes and exemptions, EU for adequacy, SCCs and BCRs.
	Source domicile.Jurisdiction `json:"source"`
	// Reference is the approval number, contract or certificate reference.
	Reference string `json:"reference"`
	// Signed is the day a standard contract took effect.
	Signed string `json:"signed,omitempty"`
	// Filed and FilingReference record a standard contract's filing.
	Filed           string `json:"filed,omitempty"`
	FilingReference string `json:"filing_reference,omitempty"`
	// Approved is the day an assessment was passed or a certificate issued.
	Approved string `json:"approved,omitempty"`
	// ValidFrom and ValidUntil bound validity where the instrument says
	// so; for assessments and certificates ValidUntil defaults to three
	// years after Approved.
	ValidFrom  string    `json:"valid_from,omitempty"`
	ValidUntil string    `json:"valid_until,omitempty"`
	Scope      Scope     `json:"scope"`
	Note       string    `json:"note,omitempty"`
	Updated    time.Time `json:"updated"`
}

var mechID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func validDay(s string) bool {
	t, err := time.Parse(time.DateOnly, s)
	return err == nil && t.Format(time.DateOnly) == s
}

// Validate checks a mechanism: a known kind, an id, the dates its kind
// needs, and a scope naming destinations, recipients, purposes and
// categories.
func (m *Mechanism) Validate() error {
	if !mechID.MatchString(m.ID) {
		return domicile.FieldErrorf("id", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if !m.Kind.Valid() {
		return domicile.FieldErrorf("kind", "unknown mechanism kind %q", trunc(string(m.Kind), 32))
	}
	if _, err := domicile.ParseJurisdiction(string(m.Source)); err != nil {
		return domicile.FieldErrorf("source", "must be a jurisdiction code such as CN or EU")
	}
	if m.Reference == "" || len(m.Reference) > 256 {
		return domicile.FieldErrorf("reference", "must be 1 to 256 bytes")
	}
	for _, d := range []struct{ name, v string }{{"signed", m.Signed}, {"filed", m.Filed}, {"approved", m.Approved}, {"valid_from", m.ValidFrom}, {"valid_until", m.ValidUntil}} {
		if d.v != "" && !validDay(d.v) {
			return domicile.FieldErrorf(d.name, "must be a date written YYYY-MM-DD")
		}
	}
	switch m.Kind {
	case domicile.MechStandardContract, domicile.MechGBAStandardContract:
		if m.Signed == "" {
			return domicile.FieldErrorf("signed", "a standard contract needs the day it took effect")
		}
		if (m.Filed == "") != (m.FilingReference == "") {
			return domicile.FieldErrorf("filing_reference", "a filing needs both its date and its reference")
		}
		if m.Filed != "" && m.Filed < m.Signed {
			return domicile.FieldErrorf("filed", "is before the contract was signed")
		}
	case domicile.MechSecurityAssessment, domicile.MechCertification:
		if m.Approved == "" {
			return domicile.FieldErrorf("approved", "an assessment or certificate needs its approval date")
		}
	}
	if m.ValidFrom != "" && m.ValidUntil != "" && m.ValidUntil < m.ValidFrom {
		return domicile.FieldErrorf("valid_until", "is before valid_from")
	}
	s := &m.Scope
	if len(s.Destinations) == 0 {
		return domicile.FieldErrorf("scope.destinations", "must name at least one destination")
	}
	for _, d := range s.Destinations {
		if _, err := domicile.ParseJurisdiction(string(d)); err != nil {
			return domicile.FieldErrorf("scope.destinations", "%q is not a jurisdiction code", trunc(string(d), 16))
		}
	}
	if len(s.Recipients) == 0 || len(s.Purposes) == 0 {
		return domicile.FieldErrorf("scope", "must name recipients and purposes (\"*\" for any)")
	}
	if len(s.Categories) == 0 {
		return domicile.FieldErrorf("scope.categories", "must name at least one data category")
	}
	for _, c := range s.Categories {
		if _, err := domicile.ParseCategory(string(c)); err != nil {
			return domicile.FieldErrorf("scope.categories", "unknown data category %q", trunc(string(c), 32))
		}
	}
	for _, f := range s.Fields {
		if k, fl, ok := strings.Cut(f, "."); !ok || k == "" || fl == "" {
			return domicile.FieldErrorf("scope.fields", "%q must be written kind.field", trunc(f, 64))
		}
	}
	if s.MaxIndividuals < 0 {
		return domicile.FieldErrorf("scope.max_individuals", "must not be negative")
	}
	if len(m.Note) > 1024 {
		return domicile.FieldErrorf("note", "is over 1024 bytes")
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Status is a mechanism's standing on one day: valid or not, why, and
// its deadlines.
type Status struct {
	Valid bool `json:"valid"`
	// Problems say why it is not valid, and what would make it so.
	Problems []string `json:"problems,omitempty"`
	// Issues are the same problems as codes with their arguments, for a
	// reader that says them in its own language (the console).
	Issues []Issue `json:"issues,omitempty"`
	// FilingDue is the last day to file a standard contract.
	FilingDue string `json:"filing_due,omitempty"`
	// Until is the last valid day, if any.
	Until string `json:"valid_until,omitempty"`
	// ReapplyFrom opens the re-application or extension window.
	ReapplyFrom string `json:"reapply_from,omitempty"`
	// Approximate is set when a deadline falls in a year the holiday
	// calendar does not cover.
	Approximate bool `json:"approximate,omitempty"`
}

// Issue is one of a Status's problems as a code and its arguments: the
// mechanism's id first, then the dates the problem names.
//
//	unfiled          id, filing due
//	filing-overdue   id, filing due
//	filed-late       id, filed, filing due
//	not-in-effect    id, valid from
//	expired          id, valid until, the rule that bounds it ("" if none)
type Issue struct {
	Code string   `json:"code"`
	Args []string `json:"args"`
}

// problem adds a problem, in words and as an issue.
func (st *Status) problem(text, code string, args ...string) {
	st.Problems = append(st.Problems, text)
	st.Issues = append(st.Issues, Issue{Code: code, Args: args})
}

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}

// StatusOn returns the standing of m on the calendar day today
// (YYYY-MM-DD), counting working days on cal.
func (m *Mechanism) StatusOn(today string, cal *Calendar) Status {
	var st Status
	from, until := m.ValidFrom, m.ValidUntil
	switch m.Kind {
	case domicile.MechStandardContract, domicile.MechGBAStandardContract:
		if from == "" || from < m.Signed {
			from = m.Signed
		}
		due, exact := cal.AddWorkingDays(day(m.Signed), SCFilingWorkingDays)
		st.FilingDue, st.Approximate = due.Format(time.DateOnly), !exact
		switch {
		case m.Filed == "" && today <= st.FilingDue:
			st.problem(fmt.Sprintf("standard contract %s is not filed: file it with the provincial CAC by %s (10 working days after it took effect, CN.SCM.5) and register the filing date and reference", m.ID, st.FilingDue),
				"unfiled", m.ID, st.FilingDue)
		case m.Filed == "":
			st.problem(fmt.Sprintf("standard contract %s was not filed by its deadline %s (CN.SCM.5): file it and register the filing, or sign a new contract", m.ID, st.FilingDue),
				"filing-overdue", m.ID, st.FilingDue)
		case m.Filed > st.FilingDue:
			st.problem(fmt.Sprintf("standard contract %s was filed on %s, after its deadline %s (CN.SCM.5)", m.ID, m.Filed, st.FilingDue),
				"filed-late", m.ID, m.Filed, st.FilingDue)
		}
	case domicile.MechSecurityAssessment, domicile.MechCertification:
		if from == "" || from < m.Approved {
			from = m.Approved
		}
		if until == "" {
			until = day(m.Approved).AddDate(3, 0, -1).Format(time.DateOnly)
		}
		if m.Kind == domicile.MechSecurityAssessment {
			r, exact := cal.SubWorkingDays(day(until), SAReapplyWorkingDays)
			st.ReapplyFrom = r.Format(time.DateOnly)
			st.Approximate = st.Approximate || !exact
		} else {
			st.ReapplyFrom = day(until).AddDate(0, -6, 0).Format(time.DateOnly)
		}
	}
	st.Until = until
	if from != "" && today < from {
		st.problem(fmt.Sprintf("mechanism %s is not in effect before %s", m.ID, from), "not-in-effect", m.ID, from)
	}
	if until != "" && today > until {
		rule, why := "", ""
		switch m.Kind {
		case domicile.MechSecurityAssessment:
			rule = "CN.CBDF.9"
		case domicile.MechCertification:
			rule = "CN.CERT.2025"
		}
		if rule != "" {
			why = " (3 years, " + rule + ")"
		}
		st.problem(fmt.Sprintf("mechanism %s expired on %s%s: renew it and register the renewal", m.ID, until, why), "expired", m.ID, until, rule)
	}
	st.Valid = len(st.Problems) == 0
	return st
}

// covers reports whether the scope covers a destination, recipient and
// purpose.
func (s *Scope) covers(dest domicile.Jurisdiction, recipient, purpose string) bool {
	okDest := false
	for _, d := range s.Destinations {
		if d.Covers(dest) {
			okDest = true
		}
	}
	return okDest && matchAny(s.Recipients, recipient) && matchAny(s.Purposes, purpose)
}

func matchAny(list []string, v string) bool {
	for _, x := range list {
		if x == "*" || x == v {
			return true
		}
	}
	return false
}

// allows reports whether the scope lets field f of kind k, of category c,
// leave.
func (s *Scope) allows(k, f string, c domicile.Category) bool {
	if !slices.Contains(s.Categories, c) {
		return false
	}
	return len(s.Fields) == 0 || slices.Contains(s.Fields, k+"."+f)
}
