package law

import (
	"fmt"
	"strings"
)

// MechanismUndetermined is the report's mechanism when a count the rules
// need on the date was not declared and its value would change the outcome.
const MechanismUndetermined = "undetermined"

// MissingFact is a count the rules in force need and the input did not
// declare: its value decides the mechanism.
type MissingFact struct {
	Fact string `json:"fact"`
	// NeededBy are the rules whose firing depends on the count.
	NeededBy []string `json:"needed_by"`
	// Mechanisms are the mechanisms the possible values lead to.
	Mechanisms []string `json:"mechanisms"`
	Message    string   `json:"message"`
}

// countGroups are counts declared together: a count of one basis (since 1
// January of this year, since 1 January of the previous year, one incident)
// declares the basis, and its undeclared companions read as zero. Every
// other count stands alone.
var countGroups = [][]string{
	{"pi_individuals_ytd", "sensitive_pi_individuals_ytd"},
	{"pi_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"},
	{"incident_individuals_affected", "incident_sensitive_individuals_affected"},
}

// probeValues are the values an undeclared count is tried at: zero, and each
// side of every threshold the rules use ("N or more" and "more than N").
var probeValues = []int64{1, 100, 101, 1000, 1001, 10000, 10001, 100000, 100001, 1000000, 1000001, 1 << 40}

// countGroupsOf lists every count fact of the vocabulary in its group.
func (e *Engine) countGroupsOf() [][]string {
	in := map[string]bool{}
	var out [][]string
	for _, g := range countGroups {
		var keep []string
		for _, f := range g {
			if d, ok := e.factDefs[f]; ok && d.Type == TypeInt {
				keep = append(keep, f)
				in[f] = true
			}
		}
		if len(keep) > 0 {
			out = append(out, keep)
		}
	}
	for _, f := range e.vocab.Facts {
		if f.Type == TypeInt && !in[f.Name] {
			out = append(out, []string{f.Name})
		}
	}
	return out
}

// findMissing tries every count that no fact of its group declares at
// values around each threshold, on each evaluation, and returns the counts
// whose value changes a mechanism, with the rules that fire whatever the
// missing counts are (nil when nothing is missing).
func (e *Engine) findMissing(evs []*evaluation, declared func(string) bool) ([]MissingFact, map[*compiledRule]bool, error) {
	var missing []MissingFact
	var certain map[*compiledRule]bool
	for _, g := range e.countGroupsOf() {
		anyDeclared := false
		for _, f := range g {
			anyDeclared = anyDeclared || declared(f)
		}
		if anyDeclared {
			continue
		}
		for _, fact := range g {
			values := append([]int64{}, probeValues...)
			for _, t := range e.vocab.Thresholds {
				if t.Fact == fact {
					values = append(values, t.Value-1, t.Value)
				}
			}
			needed := map[*compiledRule]bool{}
			mechs := map[string]bool{}
			var fired []map[*compiledRule]bool
			depends := false
			for _, ev := range evs {
				base, _ := e.mechanismOf(ev)
				mechs[mech(base)] = true
				baseSet := ruleSet(ev.fired)
				for _, v := range values {
					f := make(Facts, len(ev.facts)+1)
					for k, x := range ev.facts {
						f[k] = x
					}
					f[fact] = v
					pe, err := e.evaluate(f, ev.date)
					if err != nil {
						return nil, nil, err
					}
					m, _ := e.mechanismOf(pe)
					fired = append(fired, ruleSet(pe.fired))
					if mech(m) == mech(base) {
						continue
					}
					depends = true
					mechs[mech(m)] = true
					pset := ruleSet(pe.fired)
					for r := range pset {
						if !baseSet[r] && r.Effects.Mechanism != "" {
							needed[r] = true
						}
					}
					for r := range baseSet {
						if !pset[r] && r.Effects.Mechanism != "" {
							needed[r] = true
						}
					}
				}
			}
			if !depends {
				continue
			}
			if certain == nil {
				certain = map[*compiledRule]bool{}
				for _, ev := range evs {
					for _, r := range ev.fired {
						certain[r] = true
					}
				}
			}
			for _, s := range fired {
				for r := range certain {
					if !s[r] {
						delete(certain, r)
					}
				}
			}
			mf := MissingFact{Fact: fact}
			for _, r := range e.rules {
				if needed[r] {
					mf.NeededBy = append(mf.NeededBy, r.ID)
				}
			}
			for _, m := range e.vocab.Effects.Mechanisms {
				if mechs[m] {
					mf.Mechanisms = append(mf.Mechanisms, m)
				}
			}
			if mechs["none"] {
				mf.Mechanisms = append(mf.Mechanisms, "none")
			}
			mf.Message = fmt.Sprintf("%s is not declared and the law in force on %s needs it: depending on its value the mechanism is %s (%s). Declare it; a missing count is never taken as zero.",
				fact, evs[0].date, strings.Join(mf.Mechanisms, " or "), strings.Join(mf.NeededBy, ", "))
			missing = append(missing, mf)
		}
	}
	return missing, certain, nil
}

func ruleSet(rs []*compiledRule) map[*compiledRule]bool {
	m := make(map[*compiledRule]bool, len(rs))
	for _, r := range rs {
		m[r] = true
	}
	return m
}

// withMissing re-fills rep when counts are missing: the mechanism is
// undetermined, only the rules that fire whatever the missing counts are
// stay, and each missing count is a finding that names it.
func (e *Engine) withMissing(rep *Report, evs []*evaluation, tags []evalTag, declared func(string) bool) error {
	missing, certain, err := e.findMissing(evs, declared)
	if err != nil || len(missing) == 0 {
		return err
	}
	kept := make([]*evaluation, len(evs))
	for i, ev := range evs {
		c := *ev
		c.fired = nil
		for _, r := range ev.fired {
			if certain[r] {
				c.fired = append(c.fired, r)
			}
		}
		kept[i] = &c
	}
	warnings := rep.Warnings
	fresh := e.newReport(rep.AsOf, rep.Input)
	fresh.Warnings = nil
	e.fill(fresh, kept, tags)
	rep.Fired, rep.Obligations, rep.ObligationSources, rep.Findings, rep.Review = fresh.Fired, fresh.Obligations, fresh.ObligationSources, fresh.Findings, fresh.Review
	rep.Warnings = warnings
	m := MechanismUndetermined
	rep.Mechanism, rep.MechanismRule = &m, ""
	rep.Missing = missing
	var add []Finding
	for _, mf := range missing {
		f := Finding{MissingFact: mf.Fact, Consequence: mf.Message, Confidence: Confirmed, Sources: []string{}, RuleSet: e.ruleSet}
		if len(mf.NeededBy) > 0 {
			r := e.byID[mf.NeededBy[0]]
			f.Rule, f.Jurisdiction, f.Instrument, f.Article, f.Citation = r.ID, r.Jurisdiction, r.Instrument, r.Article, r.Citation()
			f.EffectiveFrom, f.EffectiveUntil, f.Confidence, f.Sources, f.Review = r.EffectiveFrom, r.EffectiveUntil, r.Confidence, r.Sources, r.Confidence != Confirmed
		}
		add = append(add, f)
	}
	rep.Findings = append(add, rep.Findings...)
	return nil
}
