package rights

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/i18n"
	"domicile/law"
)

// explainTopics are the topics of the rules a category's processing rests
// on: the legal bases, and the extra conditions of sensitive data and of
// children's data.
var explainTopics = []string{"legal_basis", "sensitive_pi", "minors"}

// lawSource maps a subject's jurisdiction to the law engine's
// source_jurisdiction, or "" where the rule set has no entry for it.
func lawSource(j domicile.Jurisdiction) string {
	if j.InEU() {
		return "EU"
	}
	switch j {
	case "CN", "HK", "MO", "RU", "VN", "ID", "IN", "SA", "TR", "KZ", "NG", "US":
		return string(j)
	}
	return ""
}

// explain answers an explanation request: for each category of the data
// the subject holds, its fields, the declared purposes that read them
// (with the consent each needs and whether it is given), and the rules of
// the subject's jurisdiction it rests on.
func (s *Service) explain(ctx context.Context, p *i18n.Printer, c *cell.Cell, k cell.SubjectKey, inv *cell.Inventory, now time.Time) ([]CategoryBasis, error) {
	dep := s.cfg.Router.Deployment()
	given := map[string]bool{}
	if s.cfg.Gate != nil {
		cs, err := s.cfg.Gate.ConsentsOf(ctx, k.Ref)
		if err != nil {
			return nil, err
		}
		for _, con := range cs {
			given[string(con.Kind)] = con.Granted
		}
	}
	byCat := map[domicile.Category]*CategoryBasis{}
	add := func(cat domicile.Category, field string, reads func(*domicile.Purpose) bool) {
		b := byCat[cat]
		if b == nil {
			b = &CategoryBasis{Category: cat, Purposes: []PurposeBasis{}, Rules: []RuleRef{}}
			byCat[cat] = b
		}
		b.Fields = append(b.Fields, field)
		for i := range dep.Purposes {
			pu := &dep.Purposes[i]
			if !reads(pu) || slices.ContainsFunc(b.Purposes, func(x PurposeBasis) bool { return x.Purpose == pu.Name }) {
				continue
			}
			b.Purposes = append(b.Purposes, PurposeBasis{Purpose: pu.Name, Consent: pu.Consent, Given: pu.Consent != "" && given[pu.Consent]})
		}
	}
	for kind, h := range inv.Kinds {
		for _, f := range h.Fields {
			cat := category(dep, kind, f)
			add(cat, kind+"."+f, func(pu *domicile.Purpose) bool { return pu.ReadsField(kind, f, cat) })
		}
	}
	if inv.Objects > 0 {
		add(domicile.Personal, domicile.ObjectKind, func(pu *domicile.Purpose) bool { return pu.ReadsKind(domicile.ObjectKind) })
	}
	out := make([]CategoryBasis, 0, len(byCat))
	for cat, b := range byCat {
		sort.Strings(b.Fields)
		sort.Slice(b.Purposes, func(i, j int) bool { return b.Purposes[i].Purpose < b.Purposes[j].Purpose })
		b.Rules = s.rulesFor(p, inv.Subject.Jurisdiction, cat, now)
		b.Text = basisText(p, inv.Subject.Jurisdiction, b)
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Category < out[j].Category })
	return out, nil
}

// rulesFor asks the law engine which rules processing data of category
// cat of a subject of jurisdiction j rests on, as of now.
func (s *Service) rulesFor(p *i18n.Printer, j domicile.Jurisdiction, cat domicile.Category, now time.Time) []RuleRef {
	out := []RuleRef{}
	src := lawSource(j)
	if s.cfg.Law == nil || src == "" {
		return out
	}
	facts := law.Facts{"source_jurisdiction": src, "processes_sensitive_pi": cat.Sensitive(), "processes_minors_under_14": cat == domicile.MinorUnder14}
	rep, err := s.cfg.Law.Decide(facts, now)
	if err != nil {
		return out
	}
	for _, f := range rep.Findings {
		r, ok := s.cfg.Law.Rule(f.Rule)
		if !ok || !slices.Contains(explainTopics, r.Topic) {
			continue
		}
		sum := f.Consequence
		if i18n.Has("rule." + f.Rule) {
			sum = p.T("rule." + f.Rule)
		} else if p.Lang() == i18n.ZH {
			sum = p.T("rule.english-original", f.Consequence)
		}
		out = append(out, RuleRef{ID: f.Rule, Citation: f.Citation, Summary: sum})
	}
	return out
}

// basisText says a category's basis in words.
func basisText(p *i18n.Printer, j domicile.Jurisdiction, b *CategoryBasis) string {
	cat := string(b.Category)
	if i18n.Has("category." + cat) {
		cat = p.T("category." + cat)
	}
	var ps []string
	for _, pu := range b.Purposes {
		switch {
		case pu.Consent == "":
			ps = append(ps, pu.Purpose)
		case pu.Given:
			ps = append(ps, p.T("rights.explain.consent.given", pu.Purpose, pu.Consent))
		default:
			ps = append(ps, p.T("rights.explain.consent.missing", pu.Purpose, pu.Consent))
		}
	}
	purposes := p.T("rights.explain.nopurpose")
	if len(ps) > 0 {
		purposes = strings.Join(ps, p.T("rights.list.sep"))
	}
	rules := p.T("rights.explain.norule", string(j))
	if len(b.Rules) > 0 {
		var rs []string
		for _, r := range b.Rules {
			rs = append(rs, r.ID+" ("+r.Citation+")")
		}
		rules = strings.Join(rs, p.T("rights.list.sep"))
	}
	return p.T("rights.explain.category", cat, purposes, rules)
}
