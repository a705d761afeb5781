// Package notice plans a change of a deployment and tells the people it
// affects. [MakePlan] compares two deployment files (a cell gets a new
// operator, location or key custody; a jurisdiction's subjects get a new
// home cell; a transfer mechanism is declared, changed or withdrawn),
// names the affected subjects, and writes the stakeholder
// impact report and each subject's notice in every language. A [Sender]
// delivers the notices to a webhook the business implements: payloads are
// signed with HMAC-SHA256 ([Sign], [Verify]), carry an idempotency key
// (the notice id, stable across retries and re-plans), and are retried
// with exponential backoff; delivery and acknowledgement are tracked in a
// [Store] and shown in the subject's data statement.
package notice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
	"domicile/report"
)

// Diff returns the changes from one deployment to the next that touch
// subjects: per cell, a new operator, location or key custody; per
// jurisdiction, a new default home cell; per declared transfer mechanism,
// one that is new, changed (same id, other words) or no longer declared.
// Cells that exist in only one of the two are not changes of this kind
// (adding or removing cells needs a restart and a migration) and are
// ignored.
func Diff(from, to *domicile.Deployment) []report.Change {
	var out []report.Change
	for _, a := range from.Cells {
		b := to.Cell(a.ID)
		if b == nil {
			continue
		}
		if a.Operator != b.Operator {
			out = append(out, report.Change{Kind: report.ChangeOperator, Cell: a.ID, Before: a.Operator, After: b.Operator, KeepsData: true})
		}
		if a.Location != b.Location {
			out = append(out, report.Change{Kind: report.ChangeLocation, Cell: a.ID, Before: a.Location, After: b.Location, KeepsData: true})
		}
		ka, kb := kindOr(a.Custody.Kind), kindOr(b.Custody.Kind)
		if ka != kb {
			out = append(out, report.Change{Kind: report.ChangeCustody, Cell: a.ID, Before: ka, After: kb, KeepsData: true})
		}
	}
	seen := map[domicile.Jurisdiction]bool{}
	var js []domicile.Jurisdiction
	for _, d := range []*domicile.Deployment{from, to} {
		for _, r := range d.Policy {
			if !seen[r.Jurisdiction] {
				seen[r.Jurisdiction] = true
				js = append(js, r.Jurisdiction)
			}
		}
	}
	sort.Slice(js, func(i, j int) bool { return js[i] < js[j] })
	for _, j := range js {
		fa, fb := first(from.PermittedCells(j)), first(to.PermittedCells(j))
		if fa != "" && fb != "" && fa != fb {
			out = append(out, report.Change{Kind: report.ChangeHomeCell, Cell: fa, Jurisdiction: j, Before: fa, After: fb, KeepsData: false})
		}
	}
	for i := range to.Mechanisms {
		m := to.Mechanisms[i]
		old := from.Mechanism(m.ID)
		switch {
		case old == nil:
			out = append(out, report.Change{Kind: report.ChangeMechanism, Jurisdiction: m.Source, After: m.ID, KeepsData: true, Mechanism: &m})
		case !old.Equal(&m):
			out = append(out, report.Change{Kind: report.ChangeMechanism, Jurisdiction: m.Source, Before: m.ID, After: m.ID, KeepsData: true, Mechanism: &m})
		}
	}
	for i := range from.Mechanisms {
		m := from.Mechanisms[i]
		if to.Mechanism(m.ID) == nil {
			out = append(out, report.Change{Kind: report.ChangeMechanism, Jurisdiction: m.Source, Before: m.ID, KeepsData: true, Mechanism: &m})
		}
	}
	return out
}

// changeCells returns the cells whose subjects a change may touch: the
// changed cell, or for a mechanism every cell (of the deployment in
// force) in its source jurisdiction.
func changeCells(from *domicile.Deployment, c report.Change) []string {
	if c.Kind != report.ChangeMechanism {
		return []string{c.Cell}
	}
	var out []string
	for _, cc := range from.Cells {
		if c.Mechanism != nil && c.Mechanism.Source.Covers(cc.Jurisdiction) {
			out = append(out, cc.ID)
		}
	}
	return out
}

// subjectCategories returns the data categories a subject's records hold.
func subjectCategories(d *domicile.Deployment, s SubjectInfo) map[domicile.Category]bool {
	seen := map[domicile.Category]bool{}
	for kind, fields := range s.Fields {
		if kd := d.Kind(kind); kd != nil {
			for _, cat := range kd.Categories(fields) {
				seen[cat] = true
			}
		}
	}
	return seen
}

func kindOr(k string) string {
	if k == "" {
		return "file"
	}
	return k
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// SubjectInfo is one subject of a cell, as a plan counts it.
type SubjectInfo struct {
	Ref          string                `json:"ref"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	// Fields lists, per record kind, the fields the subject's records hold.
	Fields map[string][]string `json:"fields"`
}

// Subjects lists the subjects of a cell.
type Subjects interface {
	CellSubjects(ctx context.Context, cell string) ([]SubjectInfo, error)
}

// SubjectsFunc adapts a function to Subjects.
type SubjectsFunc func(ctx context.Context, cell string) ([]SubjectInfo, error)

// CellSubjects calls f.
func (f SubjectsFunc) CellSubjects(ctx context.Context, cell string) ([]SubjectInfo, error) {
	return f(ctx, cell)
}

// Plan is a change plan: what changes, whom it affects, the impact report
// in each language and each affected subject's notice.
type Plan struct {
	ID       string                          `json:"id"`
	Created  time.Time                       `json:"created"`
	From     report.DeploymentRef            `json:"from"`
	To       report.DeploymentRef            `json:"to"`
	Changes  []report.Change                 `json:"changes"`
	Counted  bool                            `json:"subjects_counted"`
	Reports  map[string]*report.ImpactReport `json:"reports"`
	Notices  []Planned                       `json:"notices"`
	Affected []report.AffectedGroup          `json:"affected"`
	// Ledger is the transfer ledger's year so far of each source the
	// plan's transfers concern, as the plan read it.
	Ledger []figures.Outlook `json:"ledger,omitempty"`
}

// Planned is one subject's notice in a plan.
type Planned struct {
	Cell   string               `json:"cell"`
	Notice report.SubjectNotice `json:"notice"`
}

// PlanInput is what a plan is made from.
type PlanInput struct {
	From, To       *domicile.Deployment
	FromRef, ToRef report.DeploymentRef
	Subjects       Subjects // nil: subjects are not counted
	Law            *law.Engine
	Now            time.Time
	TransfersWired bool
	// Ledger returns the transfer ledger's year so far for a source
	// jurisdiction (nil, nil for one the law engine has no regime for);
	// nil: the plan does not read the ledger, and its report says so.
	Ledger LedgerFunc
}

// LedgerFunc returns the transfer ledger's outlook of a source
// jurisdiction: its year's counts so far and what the law makes of them.
type LedgerFunc func(ctx context.Context, src domicile.Jurisdiction) (*figures.Outlook, error)

// ledgerSources returns the source jurisdictions whose transfers a plan's
// changes concern: each mechanism's source, and the jurisdiction a home
// cell moves out of.
func ledgerSources(from, to *domicile.Deployment, changes []report.Change) []domicile.Jurisdiction {
	var out []domicile.Jurisdiction
	add := func(j domicile.Jurisdiction) {
		if j != "" && !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	for _, c := range changes {
		switch c.Kind {
		case report.ChangeMechanism:
			if c.Mechanism != nil {
				add(c.Mechanism.Source)
			}
		case report.ChangeHomeCell:
			if a, b := from.Cell(c.Before), to.Cell(c.After); a != nil && b != nil && a.Jurisdiction != b.Jurisdiction {
				add(a.Jurisdiction)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Ref names a deployment file by its name and the SHA-256 of its bytes.
func Ref(name string, data []byte) report.DeploymentRef {
	sum := sha256.Sum256(data)
	return report.DeploymentRef{Name: name, SHA256: hex.EncodeToString(sum[:])}
}

// MakePlan compares the two deployments and writes the plan. The plan's id
// and each notice's id depend only on the two files (and the subject), so
// planning the same change twice yields the same ids: a notice is never
// delivered twice as two different notices.
func MakePlan(ctx context.Context, in PlanInput) (*Plan, error) {
	h := sha256.Sum256([]byte(in.FromRef.SHA256 + "\n" + in.ToRef.SHA256))
	p := &Plan{ID: "p-" + hex.EncodeToString(h[:8]), Created: in.Now.UTC(), From: in.FromRef, To: in.ToRef,
		Changes: Diff(in.From, in.To), Reports: map[string]*report.ImpactReport{}, Notices: []Planned{}, Affected: []report.AffectedGroup{}}
	// Subjects touched: every subject of a cell that changes; for a new
	// home cell, the subjects of that jurisdiction in the old one; for a
	// transfer mechanism, the subjects of the cells in its source
	// jurisdiction whose records hold a category it covers.
	type groupKey struct {
		j    domicile.Jurisdiction
		cell string
	}
	groups := map[groupKey]*report.AffectedGroup{}
	cats := map[groupKey]map[domicile.Category]int{}
	changesOf := map[string][]report.Change{} // subject ref -> changes
	cellOf := map[string]string{}
	var refs []string
	if in.Subjects != nil {
		p.Counted = true
		byCell := map[string][]SubjectInfo{}
		for _, c := range p.Changes {
			for _, cell := range changeCells(in.From, c) {
				if _, ok := byCell[cell]; ok {
					continue
				}
				subs, err := in.Subjects.CellSubjects(ctx, cell)
				if err != nil {
					return nil, err
				}
				byCell[cell] = subs
			}
		}
		for _, c := range p.Changes {
			for _, cell := range changeCells(in.From, c) {
				for _, s := range byCell[cell] {
					if c.Kind == report.ChangeHomeCell && (first(in.From.PermittedCells(s.Jurisdiction)) != c.Before || first(in.To.PermittedCells(s.Jurisdiction)) != c.After) {
						continue
					}
					held := subjectCategories(in.From, s)
					sc := c
					if c.Kind == report.ChangeMechanism {
						// Only subjects holding data the mechanism covers;
						// their notice names just those categories.
						m := *c.Mechanism
						m.Categories = nil
						for _, cat := range c.Mechanism.Categories {
							if held[cat] {
								m.Categories = append(m.Categories, cat)
							}
						}
						if len(m.Categories) == 0 {
							continue
						}
						sc.Mechanism = &m
					}
					if _, ok := changesOf[s.Ref]; !ok {
						refs = append(refs, s.Ref)
						cellOf[s.Ref] = cell
						k := groupKey{s.Jurisdiction, cell}
						g := groups[k]
						if g == nil {
							g = &report.AffectedGroup{Jurisdiction: s.Jurisdiction, Cell: cell}
							groups[k] = g
							cats[k] = map[domicile.Category]int{}
						}
						g.Subjects++
						for cat := range held {
							cats[k][cat]++
						}
					}
					changesOf[s.Ref] = append(changesOf[s.Ref], sc)
				}
			}
		}
	}
	var keys []groupKey
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].j != keys[j].j {
			return keys[i].j < keys[j].j
		}
		return keys[i].cell < keys[j].cell
	})
	for _, k := range keys {
		g := groups[k]
		for cat, n := range cats[k] {
			g.Categories = append(g.Categories, report.CategoryCount{Category: cat, Subjects: n, Sensitive: cat.Sensitive()})
		}
		sort.Slice(g.Categories, func(i, j int) bool { return g.Categories[i].Category < g.Categories[j].Category })
		p.Affected = append(p.Affected, *g)
	}
	sort.Strings(refs)
	var outlooks []figures.Outlook
	if in.Ledger != nil {
		for _, src := range ledgerSources(in.From, in.To, p.Changes) {
			o, err := in.Ledger(ctx, src)
			if err != nil {
				return nil, err
			}
			if o != nil {
				outlooks = append(outlooks, *o)
			}
		}
	}
	p.Ledger = outlooks
	for _, l := range i18n.Langs {
		p.Reports[string(l)] = report.BuildImpact(i18n.NewPrinter(l), report.ImpactInput{
			Now: in.Now, Plan: p.ID, From: in.From, To: in.To, FromRef: in.FromRef, ToRef: in.ToRef,
			Changes: p.Changes, Affected: p.Affected, SubjectRefs: refs, SubjectsCounted: p.Counted,
			TransfersReported: in.TransfersWired, Law: in.Law, Ledger: outlooks, LedgerRead: in.Ledger != nil,
		})
	}
	for _, ref := range refs {
		nh := sha256.Sum256([]byte(p.ID + "\n" + ref))
		n := report.BuildNotice(report.NoticeInput{ID: "n-" + hex.EncodeToString(nh[:12]), Plan: p.ID, SubjectRef: ref, Now: in.Now,
			Changes: changesOf[ref], Before: in.From, After: in.To, Law: in.Law})
		p.Notices = append(p.Notices, Planned{Cell: cellOf[ref], Notice: *n})
	}
	return p, nil
}
