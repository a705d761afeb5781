package report

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
)

// Change kinds a plan knows.
const (
	ChangeOperator = "operator"
	ChangeLocation = "location"
	ChangeCustody  = "custody"
	ChangeHomeCell = "home-cell"
	// ChangeMechanism is a transfer mechanism declared, changed or no
	// longer declared (the deployment's mechanisms section). Data stays
	// in its cell; what changes is where copies of it may be sent.
	ChangeMechanism = "mechanism"
)

// Change is one difference between two deployments that touches subjects.
type Change struct {
	Kind string `json:"kind"`
	// Cell is the cell that changes (for home-cell changes: the current
	// home cell).
	Cell string `json:"cell"`
	// Jurisdiction is the subjects' jurisdiction for a home-cell change,
	// the mechanism's source for a mechanism change.
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction,omitempty"`
	Before       string                `json:"before"`
	After        string                `json:"after"`
	// KeepsData is true when the change leaves the data where it is (it
	// takes effect at a restart or reload); false when data would move
	// between cells.
	KeepsData bool `json:"keeps_data"`
	// Mechanism is the declaration of a mechanism change: the new one,
	// or the one no longer declared (After is then empty). Cell is empty.
	// In a subject's notice its categories are those of the subject's
	// data it covers.
	Mechanism *domicile.MechanismDecl `json:"mechanism,omitempty"`
	Text      string                  `json:"text"`
}

// CategoryCount is how many subjects of a group hold a category.
type CategoryCount struct {
	Category  domicile.Category `json:"category"`
	Subjects  int               `json:"subjects"`
	Sensitive bool              `json:"sensitive"`
}

// AffectedGroup is the subjects of one jurisdiction in one cell that a
// plan affects.
type AffectedGroup struct {
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Cell         string                `json:"cell"`
	Subjects     int                   `json:"subjects"`
	Categories   []CategoryCount       `json:"categories"`
}

// Side is one side (before or after) of a changed cell.
type Side struct {
	Place     Place       `json:"place"`
	Keys      Custody     `json:"keys"`
	Law       string      `json:"law"`
	Reach     []ReachLine `json:"reach"`
	Transfers string      `json:"transfers"`
}

// Comparison puts a changed cell before and after side by side.
type Comparison struct {
	Cell   string `json:"cell"`
	Before Side   `json:"before"`
	After  Side   `json:"after"`
}

// Step is one step of a plan's timeline.
type Step struct {
	When string `json:"when"`
	Text string `json:"text"`
}

// DeploymentRef names a deployment file by name and SHA-256.
type DeploymentRef struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// ImpactReport is the stakeholder impact report of a change plan.
type ImpactReport struct {
	Lang        i18n.Lang       `json:"lang"`
	Generated   time.Time       `json:"generated"`
	Plan        string          `json:"plan"`
	From        DeploymentRef   `json:"from"`
	To          DeploymentRef   `json:"to"`
	Changes     []Change        `json:"changes"`
	Affected    []AffectedGroup `json:"affected"`
	Total       int             `json:"affected_subjects"`
	SubjectRefs []string        `json:"subject_refs"`
	Comparisons []Comparison    `json:"comparisons"`
	Actions     []Action        `json:"actions"`
	Timeline    []Step          `json:"timeline"`
	// Ledger is, for each source jurisdiction the plan's transfers
	// concern, the transfer ledger's year so far: the counts, what the law
	// requires on them, which declared mechanisms satisfy it, and when a
	// threshold is crossed at the current rate. Empty when the plan did
	// not read the ledger.
	Ledger []LedgerLine `json:"ledger"`
	Notes  []string     `json:"notes"`
}

// LedgerLine is the ledger's year so far for one source jurisdiction, as
// an impact report shows it.
type LedgerLine struct {
	figures.Outlook
	// Declared are the mechanisms the new deployment declares for the
	// source that satisfy the mechanism the law requires (their ids);
	// Needs is the kinds that would (empty when the law needs no
	// registered mechanism of these kinds).
	Declared []string `json:"declared_mechanisms"`
	Needs    []string `json:"needs_kinds,omitempty"`
	Text     string   `json:"text"`
	// Crossing says when each threshold in force is crossed, in words.
	Crossing []string `json:"crossing_text"`
}

// ImpactInput is what an impact report is built from.
type ImpactInput struct {
	Now                time.Time
	Plan               string
	From, To           *domicile.Deployment
	FromRef, ToRef     DeploymentRef
	Changes            []Change
	Affected           []AffectedGroup
	SubjectRefs        []string
	TransfersReported  bool
	SubjectsCounted    bool
	Law                *law.Engine
	NoticesScheduledAt time.Time
	// Ledger is the transfer ledger's year so far of each source
	// jurisdiction the plan's transfers concern (the live assessment's
	// outlook); LedgerRead says whether it was read at all.
	Ledger     []figures.Outlook
	LedgerRead bool
}

// outlook returns the ledger's outlook of source j, or nil.
func (in *ImpactInput) outlook(j domicile.Jurisdiction) *figures.Outlook {
	for i := range in.Ledger {
		if in.Ledger[i].Source.Covers(j) {
			return &in.Ledger[i]
		}
	}
	return nil
}

func side(p *i18n.Printer, e *law.Engine, dep *domicile.Deployment, cc domicile.CellConfig, asOf time.Time, transfers bool) Side {
	s := Side{
		Place: Place{Cell: cc.ID, Jurisdiction: cc.Jurisdiction, Location: cc.Location, Operator: cc.Operator},
		Keys:  KeyCustody(p, cc, dep.Declarations.Entity),
		Law:   p.T("law.of", string(cc.Jurisdiction)),
		Reach: Reach(p, e, cc, dep.Declarations.Entity, asOf),
	}
	if cc.Jurisdiction == "CN" {
		s.Law = p.T("law.cn")
	}
	s.Transfers = p.T("impact.transfers.unchanged")
	if !transfers {
		s.Transfers = p.T("impact.transfers.unreported")
	}
	return s
}

// BuildImpact builds the stakeholder impact report in the printer's
// language.
func BuildImpact(p *i18n.Printer, in ImpactInput) *ImpactReport {
	r := &ImpactReport{
		Lang: p.Lang(), Generated: in.Now.UTC(), Plan: in.Plan, From: in.FromRef, To: in.ToRef,
		Changes: []Change{}, Affected: in.Affected, SubjectRefs: in.SubjectRefs,
		Comparisons: []Comparison{}, Actions: []Action{}, Timeline: []Step{}, Notes: []string{}, Ledger: []LedgerLine{},
	}
	if r.Affected == nil {
		r.Affected = []AffectedGroup{}
	}
	if r.SubjectRefs == nil {
		r.SubjectRefs = []string{}
	}
	for _, g := range r.Affected {
		r.Total += g.Subjects
	}
	seenCell := map[string]bool{}
	seenRule := map[string]bool{}
	keepsAll := true
	hasMech, cellChange := false, false
	for _, c := range in.Changes {
		c.Text = changeText(p, c)
		r.Changes = append(r.Changes, c)
		keepsAll = keepsAll && c.KeepsData
		if c.Kind == ChangeMechanism {
			hasMech = true
			if c.After != "" && c.Mechanism != nil {
				for _, a := range MechanismActions(p, in.Law, *c.Mechanism, in.To.Declarations, in.Now, in.outlook(c.Mechanism.Source)) {
					if !seenRule[a.Rule] {
						seenRule[a.Rule] = true
						r.Actions = append(r.Actions, a)
					}
				}
			}
			continue
		}
		cellChange = true
		before, after := in.From.Cell(c.Cell), in.To.Cell(c.Cell)
		if c.Kind == ChangeHomeCell {
			after = in.To.Cell(c.After)
		}
		if before != nil && after != nil && !seenCell[c.Cell+"→"+after.ID] {
			seenCell[c.Cell+"→"+after.ID] = true
			r.Comparisons = append(r.Comparisons, Comparison{Cell: c.Cell,
				Before: side(p, in.Law, in.From, *before, in.Now, in.TransfersReported),
				After:  side(p, in.Law, in.To, *after, in.Now, in.TransfersReported)})
		}
		if before == nil {
			continue
		}
		facts := law.Facts{"shares_with_other_handler": true}
		if c.Kind == ChangeHomeCell && after != nil && after.Jurisdiction != before.Jurisdiction {
			facts = law.Facts{"transfers_abroad": true, "transfer_contains_pi": true, "recipient_country": string(after.Jurisdiction)}
			ledgerFacts(facts, in.outlook(before.Jurisdiction))
		}
		if c.Kind == ChangeLocation || c.Kind == ChangeCustody {
			facts = law.Facts{}
		}
		sensitive := false
		for _, g := range in.Affected {
			if g.Cell == c.Cell {
				for _, cc := range g.Categories {
					sensitive = sensitive || cc.Sensitive
				}
			}
		}
		if sensitive {
			facts["processes_sensitive_pi"] = true
		}
		for _, a := range ChangeActions(p, in.Law, before.Jurisdiction, in.To.Declarations, facts, in.Now) {
			if !seenRule[a.Rule] {
				seenRule[a.Rule] = true
				r.Actions = append(r.Actions, a)
			}
		}
	}
	if hasMech {
		mechanismComparisons(p, in, r, seenCell)
	}
	sortActions(r.Actions)
	day := in.Now.UTC().Format("2006-01-02")
	r.Timeline = append(r.Timeline,
		Step{When: day, Text: p.T("timeline.plan")},
		Step{When: p.T("timeline.before"), Text: p.T("timeline.actions", len(r.Actions))},
		Step{When: p.T("timeline.before"), Text: p.T("timeline.notices", r.Total)},
	)
	if keepsAll {
		r.Timeline = append(r.Timeline, Step{When: p.T("timeline.reload.when"), Text: p.T("timeline.reload")})
	} else {
		r.Timeline = append(r.Timeline, Step{When: p.T("timeline.move.when"), Text: p.T("timeline.move")})
	}
	r.Timeline = append(r.Timeline, Step{When: p.T("timeline.after"), Text: p.T("timeline.statements")})
	if !in.SubjectsCounted {
		r.Notes = append(r.Notes, p.T("impact.note.uncounted"))
	}
	if !in.TransfersReported {
		r.Notes = append(r.Notes, p.T("impact.note.transfers"))
	}
	if cellChange || !hasMech {
		r.Notes = append(r.Notes, p.T("impact.note.law"))
	}
	for _, o := range in.Ledger {
		r.Ledger = append(r.Ledger, ledgerLine(p, o, in.To))
	}
	if hasMech {
		if in.LedgerRead {
			r.Notes = append(r.Notes, p.T("impact.note.mechanism.ledger"))
		} else {
			r.Notes = append(r.Notes, p.T("impact.note.mechanism"))
		}
	}
	return r
}

// ledgerFacts adds the ledger's year-to-date counts of o to facts (none
// when the ledger was not read).
func ledgerFacts(facts law.Facts, o *figures.Outlook) {
	if o == nil {
		return
	}
	facts[figures.FactPIYTD] = o.People
	facts[figures.FactSPIYTD] = o.SensitivePeople
}

// ledgerLine says what the ledger's year so far means for a plan: the
// mechanism the law requires on the counts, the declared mechanisms of
// the deployment that satisfy it, and when thresholds are crossed.
func ledgerLine(p *i18n.Printer, o figures.Outlook, to *domicile.Deployment) LedgerLine {
	l := LedgerLine{Outlook: o, Declared: []string{}, Crossing: []string{}}
	kinds := domicile.KindsFor(o.Law)
	for _, k := range kinds {
		l.Needs = append(l.Needs, string(k))
	}
	for _, m := range to.Mechanisms {
		if m.Source.Covers(o.Source) && slices.Contains(kinds, m.Kind) {
			l.Declared = append(l.Declared, m.ID)
		}
	}
	text := []string{p.T("impact.ledger.counts", string(o.Source), strconv.Itoa(o.Year), o.AsOf, o.People, o.SensitivePeople)}
	if o.Law != "" {
		text = append(text, p.T("impact.ledger.law", lawMechText(p, o.Law), o.Rule))
	}
	switch {
	case len(kinds) == 0:
	case len(l.Declared) > 0:
		text = append(text, p.T("impact.ledger.declared", strings.Join(l.Declared, p.T("list.sep"))))
	default:
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = MechanismKindName(p, k)
		}
		text = append(text, p.T("impact.ledger.undeclared", strings.Join(names, p.T("list.sep"))))
	}
	sep := " "
	if p.Lang() == i18n.ZH {
		sep = "" // Chinese sentences run on without a space
	}
	l.Text = strings.Join(text, sep)
	for _, c := range o.Crossings {
		fact := c.Fact
		if key := "fact." + c.Fact; i18n.Has(key) {
			fact = p.T(key)
		}
		switch {
		case c.Reached:
			l.Crossing = append(l.Crossing, p.T("impact.ledger.reached", fact, c.Threshold, c.Rule, c.What))
		case c.Date != "":
			l.Crossing = append(l.Crossing, p.T("impact.ledger.crossing", fact, c.Threshold, c.Rule, c.What, c.Date))
		default:
			l.Crossing = append(l.Crossing, p.T("impact.ledger.not-this-year", fact, c.Threshold, c.Rule, c.What))
		}
	}
	return l
}

// lawMechText is a mechanism of the law engine's effects vocabulary in
// words.
func lawMechText(p *i18n.Printer, m string) string {
	if key := "lawmech." + m; i18n.Has(key) {
		return p.T(key)
	}
	return m
}

// mechanismComparisons sets, for each cell whose data a changed mechanism
// covers, the transfers before and after: the mechanisms each deployment
// declares for that cell's jurisdiction. A cell no other change compares
// gets a comparison of its own.
func mechanismComparisons(p *i18n.Printer, in ImpactInput, r *ImpactReport, seenCell map[string]bool) {
	for _, c := range in.Changes {
		if c.Kind != ChangeMechanism || c.Mechanism == nil {
			continue
		}
		for _, cc := range in.From.Cells {
			after := in.To.Cell(cc.ID)
			if after == nil || !c.Mechanism.Source.Covers(cc.Jurisdiction) || seenCell[cc.ID+"→"+cc.ID] {
				continue
			}
			seenCell[cc.ID+"→"+cc.ID] = true
			r.Comparisons = append(r.Comparisons, Comparison{Cell: cc.ID,
				Before: side(p, in.Law, in.From, cc, in.Now, in.TransfersReported),
				After:  side(p, in.Law, in.To, *after, in.Now, in.TransfersReported)})
		}
	}
	for i := range r.Comparisons {
		cp := &r.Comparisons[i]
		j := cp.Before.Place.Jurisdiction
		covered := false
		for _, c := range in.Changes {
			covered = covered || c.Kind == ChangeMechanism && c.Mechanism != nil && c.Mechanism.Source.Covers(j)
		}
		if covered {
			cp.Before.Transfers = declaredTransfers(p, in.From, j)
			cp.After.Transfers = declaredTransfers(p, in.To, cp.After.Place.Jurisdiction)
		}
	}
}

// declaredTransfers says under which declared mechanisms data of a cell
// in jurisdiction j may go abroad.
func declaredTransfers(p *i18n.Printer, d *domicile.Deployment, j domicile.Jurisdiction) string {
	var items []string
	for _, m := range d.Mechanisms {
		if m.Source.Covers(j) {
			items = append(items, p.T("impact.transfers.item", m.ID, MechanismKindName(p, m.Kind), jurText(p, m.Destinations)))
		}
	}
	if len(items) == 0 {
		return p.T("impact.transfers.none")
	}
	return p.T("impact.transfers.declared", strings.Join(items, p.T("list.sep")))
}

func sortActions(as []Action) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0; j-- {
			ri, rj := obligationRank(as[j].Obligations), obligationRank(as[j-1].Obligations)
			if ri < rj || ri == rj && as[j].Rule < as[j-1].Rule {
				as[j], as[j-1] = as[j-1], as[j]
				continue
			}
			break
		}
	}
}

func changeText(p *i18n.Printer, c Change) string {
	switch c.Kind {
	case ChangeOperator:
		return p.T("change.operator", c.Cell, c.Before, c.After)
	case ChangeLocation:
		return p.T("change.location", c.Cell, c.Before, c.After)
	case ChangeCustody:
		return p.T("change.custody", c.Cell, custodyName(p, c.Before), custodyName(p, c.After))
	case ChangeHomeCell:
		return p.T("change.home-cell", string(c.Jurisdiction), c.Before, c.After)
	case ChangeMechanism:
		if c.Mechanism == nil {
			break
		}
		m := c.Mechanism
		switch {
		case c.After == "":
			return p.T("change.mechanism.removed", m.ID, MechanismKindName(p, m.Kind), string(m.Source), catText(p, m.Categories), jurText(p, m.Destinations))
		case c.Before == "":
			return p.T("change.mechanism.new", m.ID, MechanismKindName(p, m.Kind), string(m.Source), catText(p, m.Categories), jurText(p, m.Destinations), recipientText(p, m.Recipients), purposeText(p, m.Purposes))
		default:
			return p.T("change.mechanism.changed", m.ID, MechanismKindName(p, m.Kind), string(m.Source), catText(p, m.Categories), jurText(p, m.Destinations), recipientText(p, m.Recipients), purposeText(p, m.Purposes))
		}
	}
	return c.Kind
}

// MechanismKindName is a kind of transfer mechanism in words.
func MechanismKindName(p *i18n.Printer, kind domicile.MechanismKind) string {
	if key := "mkind." + string(kind); i18n.Has(key) {
		return p.T(key)
	}
	return string(kind)
}

func jurText(p *i18n.Printer, js []domicile.Jurisdiction) string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = string(j)
	}
	return strings.Join(out, p.T("list.sep"))
}

func recipientText(p *i18n.Printer, rs []string) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r
		if r == "*" {
			out[i] = p.T("mechanism.any-recipient")
		}
	}
	return strings.Join(out, p.T("list.sep"))
}

func purposeText(p *i18n.Printer, ps []string) string {
	out := make([]string, len(ps))
	for i, x := range ps {
		switch key := "purpose." + x; {
		case x == "*":
			out[i] = p.T("mechanism.any-purpose")
		case i18n.Has(key):
			out[i] = p.T(key)
		default:
			out[i] = x
		}
	}
	return strings.Join(out, p.T("list.sep"))
}

func custodyName(p *i18n.Printer, kind string) string {
	if kind == "" {
		kind = "file"
	}
	key := "custody.name." + kind
	if i18n.Has(key) {
		return p.T(key)
	}
	return kind
}

// SubjectNotice is the notice one affected subject receives, in every
// language.
type SubjectNotice struct {
	ID         string                `json:"id"`
	Plan       string                `json:"plan"`
	SubjectRef string                `json:"subject_ref"`
	Created    time.Time             `json:"created"`
	Texts      map[string]NoticeText `json:"texts"`
}

// NoticeInput is what a subject's notice is built from.
type NoticeInput struct {
	ID, Plan, SubjectRef string
	Now                  time.Time
	Changes              []Change
	Before, After        *domicile.Deployment
	Law                  *law.Engine
}

// BuildNotice writes the notice of one subject in every language.
func BuildNotice(in NoticeInput) *SubjectNotice {
	n := &SubjectNotice{ID: in.ID, Plan: in.Plan, SubjectRef: in.SubjectRef, Created: in.Now.UTC(), Texts: map[string]NoticeText{}}
	for _, l := range i18n.Langs {
		p := i18n.NewPrinter(l)
		var body []string
		onlyMech := len(in.Changes) > 0
		newMech := false
		for _, c := range in.Changes {
			if c.Kind == ChangeMechanism {
				body = append(body, mechanismNotice(p, c)...)
				newMech = newMech || c.After != ""
				continue
			}
			onlyMech = false
			body = append(body, changeText(p, c))
			after := in.After.Cell(c.Cell)
			if c.Kind == ChangeHomeCell {
				after = in.After.Cell(c.After)
			}
			if after != nil {
				k := KeyCustody(p, *after, in.After.Declarations.Entity)
				body = append(body, k.Text)
				for _, rl := range Reach(p, in.Law, *after, in.After.Declarations.Entity, in.Now) {
					if rl.Who == "prc-authorities" || rl.Who == "local-authorities" {
						body = append(body, rl.Text)
					}
				}
			}
			if c.KeepsData {
				body = append(body, p.T("notice.keeps-data"))
			} else {
				body = append(body, p.T("notice.moves-data"))
			}
		}
		contact := in.After.Declarations.Contact
		if contact == "" {
			contact = p.T("contact.unset")
		}
		if newMech {
			// What PIPL Art. 39 asks to be told: how to exercise rights
			// against the recipients abroad, and the consent to withdraw.
			body = append(body, p.T("notice.mechanism.rights", contact))
		} else {
			body = append(body, p.T("notice.rights", contact))
		}
		title := p.T("notice.title")
		if onlyMech {
			title = p.T("notice.title.transfer")
		}
		n.Texts[string(l)] = NoticeText{Title: title, Body: strings.Join(body, "\n\n")}
	}
	return n
}

// mechanismNotice is what a subject is told of a mechanism change: for a
// new (or changed) mechanism, what PIPL Art. 39 asks to be told before
// personal information leaves China (recipients, purposes, categories,
// and the mechanism; BuildNotice closes with how to exercise rights
// against the recipients); for one no longer declared, that it no longer
// covers their data.
func mechanismNotice(p *i18n.Printer, c Change) []string {
	m := c.Mechanism
	if m == nil {
		return []string{changeText(p, c)}
	}
	if c.After == "" {
		return []string{p.T("notice.mechanism.removed", m.ID, MechanismKindName(p, m.Kind), catText(p, m.Categories), jurText(p, m.Destinations))}
	}
	ref := m.Reference
	if ref == "" {
		ref = p.T("mechanism.no-reference")
	}
	return []string{
		p.T("notice.mechanism.new", string(m.Source), jurText(p, m.Destinations), catText(p, m.Categories), recipientText(p, m.Recipients), purposeText(p, m.Purposes), MechanismKindName(p, m.Kind), m.ID, ref),
		p.T("notice.mechanism.how", string(m.Source)),
	}
}
