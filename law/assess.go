package law

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

var defaultEngine = sync.OnceValues(New)

// Assess evaluates a fact file or an inventory. The law applied is that of
// the input's as_of date, or else of asOf's calendar day (in asOf's
// location). Bad input gives an *InputError and no report.
func (e *Engine) Assess(in *Input, asOf time.Time) (*Report, error) {
	date, err := in.date(asOf)
	if err != nil {
		return nil, err
	}
	switch in.Kind {
	case KindFacts:
		f, warns, err := e.ValidateFacts(in.Facts)
		if err != nil {
			return nil, err
		}
		ev, err := e.evaluate(f, date)
		if err != nil {
			return nil, err
		}
		rep := e.newReport(date, string(KindFacts))
		rep.Facts = f
		rep.Warnings = append(rep.Warnings, warns...)
		e.fill(rep, []*evaluation{ev}, nil)
		declared := func(name string) bool { _, ok := f[name]; return ok }
		if err := e.withMissing(rep, []*evaluation{ev}, nil, declared); err != nil {
			return nil, err
		}
		return rep, nil
	case KindInventory:
		if in.Inventory == nil {
			return nil, inputErr("entity", "required")
		}
		ie, err := e.evaluateInventory(in.Inventory, date)
		if err != nil {
			return nil, err
		}
		rep := e.newReport(date, string(KindInventory))
		rep.Warnings = append(rep.Warnings, in.Warnings...)
		e.fill(rep, ie.evs, ie.tags)
		rep.Aggregation = ie.agg
		rep.Flows = e.flowReports(in.Inventory, ie)
		entLaw := e.entitySource(&in.Inventory.Entity)
		for _, c := range ie.agg.Counters {
			under := ""
			if c.Jurisdiction != entLaw {
				under = " (data under the rules of " + c.Jurisdiction + ")"
			}
			if c.Basis == "sum_upper_bound" {
				msg := fmt.Sprintf("%s = %s is the sum over flows: an upper bound, since a person in several flows counts once; declare entity.%s for the exact distinct count",
					c.Fact, group(c.Value), distinctField(c.Fact))
				if under != "" {
					msg = fmt.Sprintf("%s = %s%s is the sum over flows: an upper bound, since a person in several flows counts once", c.Fact, group(c.Value), under)
				}
				rep.Warnings = append(rep.Warnings, Warning{Code: WarnUpperBound, Field: c.Fact, Message: msg})
			}
			if c.Declared != nil && c.Sum > 0 && *c.Declared > c.Sum {
				rep.Warnings = append(rep.Warnings, Warning{Code: WarnDeclaredCount, Field: "entity." + distinctField(c.Fact),
					Message: fmt.Sprintf("declared %s exceeds the sum over counted flows (%s): are flows missing from the inventory?", group(*c.Declared), group(c.Sum))})
			}
		}
		rep.Warnings = append(rep.Warnings, e.storageAbroad(in.Inventory)...)
		rep.Warnings = append(rep.Warnings, ie.warnings...)
		inv := in.Inventory
		declared := func(name string) bool {
			if _, ok := inv.Entity.Facts[name]; ok {
				return true
			}
			if _, ok := inv.Entity.Distinct[name]; ok {
				return true
			}
			for _, f := range inv.Flows {
				if _, ok := f.Facts[name]; ok {
					return true
				}
				for _, l := range f.locations() {
					if _, ok := l.Facts[name]; ok {
						return true
					}
				}
			}
			return false
		}
		if err := e.withMissing(rep, ie.evs, ie.tags, declared); err != nil {
			return nil, err
		}
		return rep, nil
	}
	return nil, inputErr("", "unknown input kind %q", in.Kind)
}

func distinctField(fact string) string {
	for _, c := range counterFacts {
		if c.fact == fact {
			return c.name
		}
	}
	return fact
}

// flowFacts combines entity facts, a flow's own facts and the facts its
// categories imply.
func flowFacts(ent *Entity, f *Flow) Facts {
	out := Facts{}
	for k, v := range ent.Facts {
		out[k] = v
	}
	for k, v := range f.Facts {
		out[k] = v
	}
	out["transfers_abroad"] = true
	pi, sens, imp := false, false, false
	for _, name := range f.Categories {
		c := ent.category(name)
		pi = pi || c.Personal
		sens = sens || c.Sensitive
		imp = imp || c.Important
	}
	out["transfer_contains_pi"] = pi
	out["transfer_contains_sensitive_pi"] = sens
	out["has_important_data"] = imp
	if imp {
		out["processes_important_data"] = true
	}
	if sens {
		out["processes_sensitive_pi"] = true
	}
	return out
}

// evalTag says what one evaluation of an inventory is about.
type evalTag struct {
	flow  string // "entity" or the flow's name
	leg   *Leg   // nil for the entity
	label string // for explanations: the flow, and the leg when it has several
}

// inventoryEval is an inventory evaluated on one day.
type inventoryEval struct {
	evs      []*evaluation // the entity's first, then each assessed leg of each flow
	tags     []evalTag     // one per evaluation
	agg      *Aggregation
	flows    []flowEval // one per flow
	warnings []Warning
}

// flowEval is one flow's legs and their evaluations.
type flowEval struct {
	source, storage string
	legs            []flowLeg
	ev              []int // per leg: its index in evs, or -1 when not assessed
}

// locations are the places a flow's data is stored or read.
func (f *Flow) locations() []Location {
	if f.Storage == nil {
		return f.Access
	}
	return append([]Location{*f.Storage}, f.Access...)
}

// evaluateInventory aggregates an inventory's flows the way the law counts
// and evaluates the entity on its own and each leg of each flow under the
// rules of the jurisdiction the leg leaves. Counts are aggregated per law:
// a flow counts under a law when one of its legs under that law is a
// transfer not exempt on its own ground.
func (e *Engine) evaluateInventory(inv *Inventory, date string) (*inventoryEval, error) {
	ie := &inventoryEval{agg: &Aggregation{Counters: []Counter{}, Counted: []string{}, Excluded: []string{}, Notes: []string{}},
		flows: make([]flowEval, len(inv.Flows))}
	agg := ie.agg
	entLaw := e.entitySource(&inv.Entity)
	n := len(inv.Flows)
	var laws []string
	counted, moved := map[string][]bool{}, map[string][]bool{}
	addLaw := func(l string) {
		if _, ok := counted[l]; !ok {
			counted[l], moved[l] = make([]bool, n), make([]bool, n)
			laws = append(laws, l)
		}
	}
	addLaw(entLaw)
	base := make([][]Facts, n)
	total := 0
	for i := range inv.Flows {
		f := &inv.Flows[i]
		src, stor, legs := e.flowLegs(&inv.Entity, f)
		if total += len(legs); total > MaxLegs {
			return nil, inputErr("flows", "more than %d legs (crossings of a border) in all", MaxLegs)
		}
		ie.flows[i] = flowEval{source: src, storage: stor, legs: legs, ev: make([]int, len(legs))}
		ie.warnings = append(ie.warnings, unassessed(i, f, legs)...)
		base[i] = make([]Facts, len(legs))
		for j, l := range legs {
			if l.Law == "" {
				continue
			}
			base[i][j] = legFactsOf(&inv.Entity, f, l)
			if l.Via == ViaLocal {
				continue
			}
			addLaw(l.Law)
			moved[l.Law][i] = true
			// Transfers exempt on their own ground are left out of the counts
			// (2024 Provisions; working assumption, UNCONFIRMED).
			ev, err := e.evaluate(base[i][j], date)
			if err != nil {
				return nil, err
			}
			if x, _ := ev.value("cn_count_excluded"); x != true {
				counted[l.Law][i] = true
			}
		}
	}
	for i, f := range inv.Flows {
		in, out := false, false
		for _, l := range laws {
			in = in || counted[l][i]
			out = out || (moved[l][i] && !counted[l][i])
		}
		if in {
			agg.Counted = append(agg.Counted, f.Name)
		}
		if out {
			agg.Excluded = append(agg.Excluded, f.Name)
		}
	}
	totals := map[string]Facts{}
	for _, l := range laws {
		totals[l] = Facts{}
		for _, c := range counterFacts {
			var sum, max int64
			contributors := 0
			names := []string{}
			for i := range inv.Flows {
				if !counted[l][i] {
					continue
				}
				names = append(names, inv.Flows[i].Name)
				v, _ := inv.Flows[i].Facts[c.fact].(int64)
				if v > 0 {
					contributors++
				}
				sum += v
				if v > max {
					max = v
				}
			}
			ctr := Counter{Jurisdiction: l, Fact: c.fact, Value: sum, Sum: sum, Basis: "single_flow", Flows: names}
			if contributors > 1 {
				ctr.Basis = "sum_upper_bound"
			}
			// Declared distinct counts are the entity's own, under its own law.
			if d, ok := inv.Entity.Distinct[c.fact]; ok && l == entLaw {
				if d < max {
					return nil, inputErr("entity."+c.name, "%d is less than the largest counted flow (%d): a distinct count across flows cannot be", d, max)
				}
				dd := d
				ctr.Value, ctr.Declared, ctr.Basis = d, &dd, "declared_distinct"
			}
			if ctr.Value == 0 && ctr.Declared == nil {
				continue
			}
			totals[l][c.fact] = ctr.Value
			agg.Counters = append(agg.Counters, ctr)
		}
	}
	if len(agg.Excluded) > 0 {
		agg.Notes = append(agg.Notes, fmt.Sprintf("left out of the counts as exempt on their own ground (2024 Provisions Arts. 4, 5(1)-(3), 6; NDSMR Art. 35(6)): %s", strings.Join(agg.Excluded, ", ")))
	}
	for _, c := range agg.Counters {
		under := ""
		if c.Jurisdiction != entLaw {
			under = fmt.Sprintf(" for data under the rules of %s (%s)", c.Jurisdiction, strings.Join(c.Flows, ", "))
		}
		switch c.Basis {
		case "sum_upper_bound":
			agg.Notes = append(agg.Notes, fmt.Sprintf("%s = %s%s is the sum over counted flows, an upper bound of the distinct people (the law counts each person once since 1 January); no distinct count was declared", c.Fact, group(c.Value), under))
		case "declared_distinct":
			agg.Notes = append(agg.Notes, fmt.Sprintf("%s = %s as declared distinct across flows (sum over counted flows: %s)", c.Fact, group(c.Value), group(c.Sum)))
		default:
			if under != "" {
				agg.Notes = append(agg.Notes, fmt.Sprintf("%s = %s%s", c.Fact, group(c.Value), under))
			}
		}
	}
	entFacts := Facts{}
	for k, v := range inv.Entity.Facts {
		entFacts[k] = v
	}
	for k, v := range totals[entLaw] {
		entFacts[k] = v
	}
	if err := checkCombinations("entity.", entFacts); err != nil {
		// Sums are upper bounds, not declarations: only declared counts can be impossible.
		if len(inv.Entity.Distinct) > 0 {
			return nil, err
		}
	}
	ev, err := e.evaluate(entFacts, date)
	if err != nil {
		return nil, err
	}
	ie.evs, ie.tags = append(ie.evs, ev), append(ie.tags, evalTag{flow: "entity", label: "entity"})
	for i := range inv.Flows {
		fe := &ie.flows[i]
		for j := range fe.legs {
			fe.ev[j] = -1
			f := base[i][j]
			if f == nil {
				continue
			}
			l := &fe.legs[j].Leg
			for _, c := range counterFacts {
				if v, ok := totals[l.Law][c.fact]; ok {
					f[c.fact] = v
				} else {
					delete(f, c.fact)
				}
			}
			ev, err := e.evaluate(f, date)
			if err != nil {
				return nil, err
			}
			label := inv.Flows[i].Name
			if len(fe.legs) > 1 {
				label += ": " + l.String()
			}
			fe.ev[j] = len(ie.evs)
			ie.evs, ie.tags = append(ie.evs, ev), append(ie.tags, evalTag{flow: inv.Flows[i].Name, leg: l, label: label})
		}
	}
	return ie, nil
}

// flowReports decides each flow: the strongest mechanism over its legs,
// the union of their rules and obligations, and each leg on its own.
func (e *Engine) flowReports(inv *Inventory, ie *inventoryEval) []FlowReport {
	out := make([]FlowReport, 0, len(inv.Flows))
	for i, f := range inv.Flows {
		fe := ie.flows[i]
		dest, _ := f.Facts["recipient_country"].(string)
		fr := FlowReport{Name: f.Name, Destination: dest, Recipient: f.Recipient, Source: fe.source, Storage: fe.storage,
			Legs: []LegReport{}}
		for _, a := range f.Access {
			fr.Access = append(fr.Access, a.Jurisdiction)
		}
		fired := map[*compiledRule]bool{}
		assessed := false
		for j, l := range fe.legs {
			lr := LegReport{Leg: l.Leg, Fired: []string{}, Obligations: []string{}}
			if k := fe.ev[j]; k >= 0 {
				ev := ie.evs[k]
				lr.Assessed = true
				lr.Mechanism, lr.MechanismRule = e.mechanismOf(ev)
				lr.Fired, lr.Obligations, lr.Facts = ruleIDs(ev.fired), e.obligationsOf(ev.fired), ev.facts
				if !assessed || e.stronger(lr.Mechanism, fr.Mechanism) {
					fr.Mechanism, fr.MechanismRule = lr.Mechanism, lr.MechanismRule
				}
				if !assessed {
					fr.Facts = ev.facts
				}
				assessed = true
				for _, r := range ev.fired {
					fired[r] = true
				}
			}
			fr.Legs = append(fr.Legs, lr)
		}
		var rules []*compiledRule
		for _, r := range e.rules {
			if fired[r] {
				rules = append(rules, r)
			}
		}
		fr.Fired, fr.Obligations = ruleIDs(rules), e.obligationsOf(rules)
		out = append(out, fr)
	}
	return out
}

// storageAbroad warns about systems outside the entity's jurisdiction that
// hold personal data while no flow goes to that country: storage abroad is
// itself a transfer.
func (e *Engine) storageAbroad(inv *Inventory) []Warning {
	src := e.entitySource(&inv.Entity)
	dest := map[string]bool{}
	for _, f := range inv.Flows {
		if d, ok := f.Facts["recipient_country"].(string); ok {
			dest[d] = true
		}
		for _, l := range f.locations() {
			dest[l.Jurisdiction] = true
		}
	}
	var out []Warning
	for i, s := range inv.Entity.Systems {
		if !e.crosses(src, s.Location) || dest[s.Location] {
			continue
		}
		personal := false
		for _, c := range s.Categories {
			if cat := inv.Entity.category(c); cat != nil && (cat.Personal || cat.Important) {
				personal = true
			}
		}
		if personal {
			out = append(out, Warning{Code: WarnStorageAbroad, Field: fmt.Sprintf("entity.systems[%d]", i),
				Message: fmt.Sprintf("system %s stores personal or important data in %s but no flow to %s is declared; storage abroad is a transfer", s.Name, s.Location, s.Location)})
		}
	}
	return out
}
