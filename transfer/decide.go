package transfer

// Decide: the law engine's answer on facts taken from the system, the
// consents the law requires, the registered mechanism that covers a plan,
// and minimisation. Nothing here writes.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/law"
)

// Warning is a headroom warning: a count at 80% or 90% of the next
// threshold.
type Warning struct {
	Fact      string `json:"fact"`
	Value     int64  `json:"value"`
	Threshold int64  `json:"threshold"`
	Percent   int    `json:"percent"`
	Rule      string `json:"rule"`
	// Date is the day the count reaches Threshold at this year's rate
	// (figures.Crossing.Date), if it does this year.
	Date    string `json:"date,omitempty"`
	Message string `json:"message"`
}

// Exclusion is a subject left out of a transfer, and why.
type Exclusion struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	Rule    string `json:"rule"`
}

// MechanismUse names the registered mechanism a transfer relies on.
type MechanismUse struct {
	ID        string                 `json:"id"`
	Kind      domicile.MechanismKind `json:"kind"`
	Reference string                 `json:"reference"`
	Status    Status                 `json:"status"`
}

// Decision is the gate's answer to a request or a remote read.
type Decision struct {
	ID          string                `json:"id"`
	Allowed     bool                  `json:"allowed"`
	Time        time.Time             `json:"time"`
	AsOf        string                `json:"as_of"`
	Entity      string                `json:"entity"`
	Year        int                   `json:"year"`
	Source      domicile.Jurisdiction `json:"source"`
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	Purpose     string                `json:"purpose"`
	Channel     string                `json:"channel"`
	// Law is the mechanism the law engine requires; MechanismRule the
	// rule that decided it.
	Law           string        `json:"law_mechanism"`
	MechanismRule string        `json:"mechanism_rule,omitempty"`
	Mechanism     *MechanismUse `json:"mechanism,omitempty"`
	Fired         []string      `json:"fired"`
	Obligations   []string      `json:"obligations"`
	// Counted is false when the transfer is exempt on its own ground.
	Counted bool `json:"counted"`
	// PIYTD and SensitivePIYTD are the year-to-date distinct counts with
	// this transfer (as the engine saw them).
	PIYTD          int64               `json:"pi_individuals_ytd"`
	SensitivePIYTD int64               `json:"sensitive_pi_individuals_ytd"`
	NewPI          int64               `json:"new_pi_individuals"`
	NewSensitivePI int64               `json:"new_sensitive_pi_individuals"`
	Subjects       int                 `json:"subjects"`
	Excluded       []Exclusion         `json:"excluded,omitempty"`
	Categories     []domicile.Category `json:"categories"`
	Fields         map[string][]string `json:"fields,omitempty"`
	Dropped        map[string][]string `json:"dropped_fields,omitempty"`
	// Reasons, Rules and Remedies explain a refusal: why, under which
	// rules, and what would make the request pass.
	Reasons  []string  `json:"reasons,omitempty"`
	Rules    []string  `json:"rules,omitempty"`
	Remedies []string  `json:"remedies,omitempty"`
	Warnings []Warning `json:"warnings,omitempty"`
}

// RefusedError is a refused transfer; Decision says why.
type RefusedError struct{ Decision *Decision }

func (e *RefusedError) Error() string {
	d := e.Decision
	return fmt.Sprintf("transfer refused under %s: %s", strings.Join(d.Rules, ", "), strings.Join(d.Reasons, "; "))
}

// candidate is a registered mechanism covering a plan's destination,
// recipient and purpose, with its standing.
type candidate struct {
	m  Mechanism
	st Status
}

func (g *Gateway) candidates(p *plan) []candidate {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []candidate
	for _, m := range g.mechs {
		if !m.Source.Covers(p.src) || !m.Scope.covers(p.dest, p.recipient, p.purpose) {
			continue
		}
		out = append(out, candidate{m: m, st: m.StatusOn(p.today, g.cfg.Calendar)})
	}
	return out
}

func hasValid(cs []candidate, k domicile.MechanismKind) bool {
	for _, c := range cs {
		if c.m.Kind == k && c.st.Valid {
			return true
		}
	}
	return false
}

// facts builds the law engine's facts for a plan.
func (g *Gateway) facts(p *plan, cs []candidate, pi, spi int64) law.Facts {
	dep := g.cfg.Router.Deployment()
	f := law.Facts{
		"source_jurisdiction":            sourceFact(p.src),
		"transfers_abroad":               !p.src.Covers(p.dest),
		"transfer_contains_pi":           p.hasPI || p.hasSPI,
		"transfer_contains_sensitive_pi": p.hasSPI,
		"processes_sensitive_pi":         p.hasSPI,
		"has_important_data":             dep.Declarations.ImportantData || p.hasImpData,
		"is_ciio":                        dep.Declarations.CIIO,
		"pi_individuals_ytd":             pi,
		"sensitive_pi_individuals_ytd":   spi,
		"transfer_purpose":               p.ground,
		"transfer_necessary":             p.necessary,
		"legal_basis":                    p.basis,
		"separate_consent_obtained":      true, // subjects without it are left out
		"hr_rules_lawful":                hasValid(cs, domicile.MechExemptHR),
		"in_ftz":                         hasValid(cs, domicile.MechExemptFTZ),
		"eu_adequacy_recipient":          hasValid(cs, domicile.MechAdequacy),
	}
	if p.dest != domicile.EU {
		f["recipient_country"] = string(p.dest)
	}
	if p.actor.Role == domicile.RoleAuthority && p.actor.Reason == domicile.ReasonLawfulForeign {
		// A foreign authority's demand: the government-access rules decide.
		f["foreign_authority_request"] = true
	}
	switch {
	case hasValid(cs, domicile.MechSCCs):
		f["eu_safeguard"] = "sccs"
	case hasValid(cs, domicile.MechBCRs):
		f["eu_safeguard"] = "bcrs"
	}
	return f
}

// ownGround maps the rules of exemptions on their own ground to the kind
// of registered mechanism documenting them. Transfers under them are left
// out of the counts.
var ownGround = map[string]domicile.MechanismKind{
	"CN.CBDF.4":        domicile.MechExemptTransit,
	"CN.CBDF.5.1":      domicile.MechExemptContract,
	"CN.CBDF.5.2":      domicile.MechExemptHR,
	"CN.CBDF.5.3":      domicile.MechExemptEmergency,
	"CN.CBDF.6":        domicile.MechExemptFTZ,
	"CN.NDSMR.35.DUTY": domicile.MechExemptLegalDuty,
	"EU.GDPR.45":       domicile.MechAdequacy,
}

// evaluate decides a plan: consents, counts, the engine, the mechanism,
// minimisation. It records nothing; the caller holds the entity's lock.
func (g *Gateway) evaluate(ctx context.Context, p *plan) (*Decision, []subj, error) {
	if err := g.refresh(ctx); err != nil {
		return nil, nil, err
	}
	d := &Decision{Time: g.cfg.Now().UTC(), AsOf: p.today, Entity: p.entity, Year: p.year, Source: p.src, Destination: p.dest,
		Recipient: p.recipient, Purpose: p.purpose, Channel: p.channel, Categories: p.cats}
	cs := g.candidates(p)
	keys := []domicile.CountKey{p.key(domicile.ClassPI, domicile.DimTotal, ""), p.key(domicile.ClassSPI, domicile.DimTotal, "")}
	cur, err := g.cfg.Store.Counts(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	// A first pass with today's counts says which consents the law needs.
	rep, err := g.cfg.Engine.Decide(g.facts(p, cs, cur[0], cur[1]), p.asOf)
	if err != nil {
		return nil, nil, err
	}
	included := p.subjects
	if p.excludedSet != nil {
		included, err = g.filterConsents(ctx, p, rep)
		if err != nil {
			return nil, nil, err
		}
	}
	d.Excluded = p.excluded
	refs := make([]domicile.SubjectRef, len(included))
	for i, s := range included {
		refs[i] = s.person
	}
	var newPI, newSPI []domicile.SubjectRef
	if p.hasPI && len(refs) > 0 {
		if newPI, err = g.newMembers(ctx, keys[0], refs); err != nil {
			return nil, nil, err
		}
	}
	if p.hasSPI && len(refs) > 0 {
		if newSPI, err = g.newMembers(ctx, keys[1], refs); err != nil {
			return nil, nil, err
		}
	}
	d.PIYTD, d.SensitivePIYTD = cur[0]+int64(len(newPI)), cur[1]+int64(len(newSPI))
	d.NewPI, d.NewSensitivePI = int64(len(newPI)), int64(len(newSPI))
	rep, err = g.cfg.Engine.Decide(g.facts(p, cs, d.PIYTD, d.SensitivePIYTD), p.asOf)
	if err != nil {
		return nil, nil, err
	}
	d.Fired, d.Obligations, d.MechanismRule = rep.Fired, rep.Obligations, rep.MechanismRule
	d.Law = "none"
	if rep.Mechanism != nil {
		d.Law = *rep.Mechanism
	}
	d.Subjects = len(included)
	d.Counted = d.Law != "not_regulated" && d.Law != "none" && (p.hasPI || p.hasSPI)
	if _, own := ownGround[rep.MechanismRule]; own {
		d.Counted = false
	}
	if !d.Counted {
		d.NewPI, d.NewSensitivePI = 0, 0
		d.PIYTD, d.SensitivePIYTD = cur[0], cur[1]
	}
	g.chooseMechanism(ctx, p, d, rep, cs)
	if len(included) == 0 {
		d.refuse("every subject was left out for want of a consent the law requires", "", "obtain the subjects' separate consents and record them (PUT /v1/subjects/{id}/consents/{kind})")
		for _, x := range p.excluded {
			d.addRule(x.Rule)
		}
	}
	d.Allowed = len(d.Reasons) == 0
	if d.Allowed {
		g.minimise(p, d)
	}
	d.Warnings = g.warnings(p, d.PIYTD, d.SensitivePIYTD)
	return d, included, nil
}

func (d *Decision) addRule(r string) {
	if r != "" && !slices.Contains(d.Rules, r) {
		d.Rules = append(d.Rules, r)
	}
}

func (d *Decision) refuse(reason, rule, remedy string) {
	d.Reasons = append(d.Reasons, reason)
	d.addRule(rule)
	if remedy != "" {
		d.Remedies = append(d.Remedies, remedy)
	}
}

func (g *Gateway) newMembers(ctx context.Context, k domicile.CountKey, refs []domicile.SubjectRef) ([]domicile.SubjectRef, error) {
	in, err := g.cfg.Store.Members(ctx, k, refs)
	if err != nil {
		return nil, err
	}
	var out []domicile.SubjectRef
	for i, ok := range in {
		if !ok {
			out = append(out, refs[i])
		}
	}
	return out, nil
}

// filterConsents leaves out the subjects lacking a consent the engine's
// first pass requires: separate consent to transfer (CN.PIPL.39.CONSENT)
// and to sensitive processing (CN.PIPL.28).
func (g *Gateway) filterConsents(ctx context.Context, p *plan, rep *law.Report) ([]subj, error) {
	type need struct {
		kind domicile.ConsentKind
		rule string
	}
	var needs []need
	if slices.Contains(rep.Fired, "CN.PIPL.39.CONSENT") {
		needs = append(needs, need{domicile.ConsentCrossBorder, "CN.PIPL.39.CONSENT"})
	}
	if slices.Contains(rep.Fired, "CN.PIPL.28") && p.hasSPI {
		needs = append(needs, need{domicile.ConsentSensitive, "CN.PIPL.28"})
	}
	if len(needs) == 0 {
		return p.subjects, nil
	}
	refs := make([]domicile.SubjectRef, len(p.subjects))
	for i, s := range p.subjects {
		refs[i] = s.key.Ref
	}
	for _, n := range needs {
		cons, err := g.cfg.Store.Consent(ctx, n.kind, refs)
		if err != nil {
			return nil, err
		}
		for i, c := range cons {
			if p.excludedSet[i] || (c != nil && c.Granted) {
				continue
			}
			p.excludedSet[i] = true
			reason := "no " + string(n.kind) + " consent"
			if c != nil {
				reason = string(n.kind) + " consent withdrawn on " + c.Time.In(zoneOf(p.src)).Format(time.DateOnly)
			}
			p.excluded = append(p.excluded, Exclusion{Subject: p.subjects[i].id, Reason: reason, Rule: n.rule})
		}
	}
	var out []subj
	for i, s := range p.subjects {
		if !p.excludedSet[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

func describeScope(p *plan) string {
	return fmt.Sprintf("destination %s, recipient %q, purpose %s, categories %s", p.dest, p.recipient, p.purpose, joinCats(p.cats))
}

func joinCats(cs []domicile.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// chooseMechanism finds the registered mechanism the engine's answer
// needs, or records why there is none.
func (g *Gateway) chooseMechanism(ctx context.Context, p *plan, d *Decision, rep *law.Report, cs []candidate) {
	var kindsOK []domicile.MechanismKind
	switch d.Law {
	case "prohibited":
		d.refuse("the law prohibits this transfer", d.MechanismRule,
			"nothing registered can make it pass: it needs the approval of the competent PRC authority (for a foreign authority's request) or the removal of the prohibited recipient or counterparty, as the rules cited say")
		for _, f := range rep.Findings {
			if f.Mechanism == "prohibited" {
				d.addRule(f.Rule)
			}
		}
		return
	case "legal_review":
		d.refuse("no rule decides this transfer; it needs a lawyer's review before it may pass", d.MechanismRule, "have the transfer reviewed and register the mechanism it rests on")
		return
	case "none", "not_regulated":
		if slices.Contains(rep.Obligations, "eu_sccs") {
			kindsOK = []domicile.MechanismKind{domicile.MechSCCs, domicile.MechBCRs, domicile.MechAdequacy}
			break
		}
		return
	case "exempt":
		k, own := ownGround[d.MechanismRule]
		if !own {
			return // statutory exemption decided by the counts (CN.CBDF.5.4) or the regime
		}
		kindsOK = []domicile.MechanismKind{k}
	default:
		kindsOK = domicile.KindsFor(d.Law)
	}
	var problems []string
	for _, k := range kindsOK {
		for _, c := range cs {
			if c.m.Kind != k {
				continue
			}
			if !c.st.Valid {
				problems = append(problems, c.st.Problems...)
				continue
			}
			if !g.anyAllowed(p, &c.m) {
				problems = append(problems, fmt.Sprintf("mechanism %s covers none of the requested categories (%s)", c.m.ID, joinCats(p.cats)))
				continue
			}
			if max := c.m.Scope.MaxIndividuals; max > 0 {
				if over, n := g.overCeiling(ctx, p, &c.m, d); over {
					problems = append(problems, fmt.Sprintf("mechanism %s's volume ceiling of %d people would be exceeded (%d)", c.m.ID, max, n))
					continue
				}
			}
			st := c.st
			d.Mechanism = &MechanismUse{ID: c.m.ID, Kind: c.m.Kind, Reference: c.m.Reference, Status: st}
			return
		}
	}
	names := make([]string, len(kindsOK))
	for i, k := range kindsOK {
		names[i] = string(k)
	}
	d.refuse(fmt.Sprintf("the law requires %s (%s) and no valid registered mechanism of kind %s covers %s",
		d.Law, d.MechanismRule, strings.Join(names, " or "), describeScope(p)), d.MechanismRule,
		fmt.Sprintf("register a valid mechanism of kind %s covering %s", strings.Join(names, " or "), describeScope(p)))
	d.Reasons = append(d.Reasons, problems...)
	for _, f := range rep.Findings {
		if f.Mechanism == d.Law {
			d.addRule(f.Rule)
		}
	}
	if d.Law == "sc_or_certification" {
		d.addRule("CN.SCM.5")
		d.Remedies = append(d.Remedies, "a standard contract must be filed within 10 working days of taking effect (CN.SCM.5); register it with its filing date and reference")
	}
}

func (g *Gateway) anyAllowed(p *plan, m *Mechanism) bool {
	for kind, fs := range p.fields {
		for _, f := range fs {
			if m.Scope.allows(kind, f, p.fieldCat[kind+"."+f]) {
				return true
			}
		}
	}
	return false
}

// overCeiling reports whether m's yearly ceiling would be passed.
func (g *Gateway) overCeiling(ctx context.Context, p *plan, m *Mechanism, d *Decision) (bool, int64) {
	k := p.key(domicile.ClassPI, domicile.DimMechanism, m.ID)
	n, err := g.cfg.Store.Counts(ctx, []domicile.CountKey{k, p.key(domicile.ClassSPI, domicile.DimMechanism, m.ID)})
	if err != nil {
		return true, 0
	}
	total := max(n[0], n[1]) + int64(d.Subjects)
	return total > m.Scope.MaxIndividuals, total
}

// minimise narrows the fields to the mechanism's scope.
func (g *Gateway) minimise(p *plan, d *Decision) {
	d.Fields = map[string][]string{}
	var m *Mechanism
	if d.Mechanism != nil {
		g.mu.RLock()
		for i := range g.mechs {
			if g.mechs[i].ID == d.Mechanism.ID {
				mm := g.mechs[i]
				m = &mm
			}
		}
		g.mu.RUnlock()
	}
	var leaving []domicile.Category
	for kind, fs := range p.fields {
		for _, f := range fs {
			c := p.fieldCat[kind+"."+f]
			if m == nil || m.Scope.allows(kind, f, c) {
				d.Fields[kind] = append(d.Fields[kind], f)
				if !slices.Contains(leaving, c) {
					leaving = append(leaving, c)
				}
			} else {
				if d.Dropped == nil {
					d.Dropped = map[string][]string{}
				}
				d.Dropped[kind] = append(d.Dropped[kind], f)
			}
		}
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i] < leaving[j] })
	d.Categories = leaving
}

// warnings lists the counts at 80% or 90% of the next threshold in force.
func (g *Gateway) warnings(p *plan, pi, spi int64) []Warning {
	var out []Warning
	for _, c := range figures.Next(figures.Crossings(g.cfg.Engine.Thresholds(sourceFact(p.src)), p.asOf, pi, spi)) {
		pct := 0
		switch {
		case c.Value*10 >= c.Threshold*9:
			pct = 90
		case c.Value*10 >= c.Threshold*8:
			pct = 80
		default:
			continue
		}
		w := Warning{Fact: c.Fact, Value: c.Value, Threshold: c.Threshold, Percent: pct, Rule: c.Rule, Date: c.Date,
			Message: fmt.Sprintf("%s is %d, at least %d%% of %d: %d left before %s (%s)", c.Fact, c.Value, pct, c.Threshold, c.Threshold-c.Value, c.What, c.Rule)}
		if c.Date != "" {
			w.Message += fmt.Sprintf("; at this year's rate it is reached on %s", c.Date)
		}
		out = append(out, w)
	}
	return out
}

// Decide decides a request without carrying it out (a dry run): nothing
// is counted or logged.
func (g *Gateway) Decide(ctx context.Context, a domicile.Actor, req *Request) (*Decision, error) {
	p, err := g.resolve(ctx, a, req)
	if err != nil {
		return nil, err
	}
	unlock, err := g.lock(ctx, p.entity)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, _, err := g.evaluate(ctx, p)
	if err != nil {
		return nil, err
	}
	d.ID = "dry-run"
	return d, nil
}
