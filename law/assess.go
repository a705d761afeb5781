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
		evs, labels, agg, err := e.evaluateInventory(in.Inventory, date)
		if err != nil {
			return nil, err
		}
		rep := e.newReport(date, string(KindInventory))
		rep.Warnings = append(rep.Warnings, in.Warnings...)
		e.fill(rep, evs, labels)
		rep.Aggregation = agg
		for i, f := range in.Inventory.Flows {
			ev := evs[i+1]
			m, mr := e.mechanismOf(ev)
			dest, _ := f.Facts["recipient_country"].(string)
			rep.Flows = append(rep.Flows, FlowReport{Name: f.Name, Destination: dest, Recipient: f.Recipient,
				Mechanism: m, MechanismRule: mr, Fired: ruleIDs(ev.fired), Obligations: e.obligationsOf(ev.fired), Facts: ev.facts})
		}
		for _, c := range agg.Counters {
			if c.Basis == "sum_upper_bound" {
				rep.Warnings = append(rep.Warnings, Warning{Code: WarnUpperBound, Field: c.Fact,
					Message: fmt.Sprintf("%s = %s is the sum over flows: an upper bound, since a person in several flows counts once; declare entity.%s for the exact distinct count",
						c.Fact, group(c.Value), distinctField(c.Fact))})
			}
			if c.Declared != nil && c.Sum > 0 && *c.Declared > c.Sum {
				rep.Warnings = append(rep.Warnings, Warning{Code: WarnDeclaredCount, Field: "entity." + distinctField(c.Fact),
					Message: fmt.Sprintf("declared %s exceeds the sum over counted flows (%s): are flows missing from the inventory?", group(*c.Declared), group(c.Sum))})
			}
		}
		rep.Warnings = append(rep.Warnings, storageAbroad(in.Inventory)...)
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
			}
			return false
		}
		if err := e.withMissing(rep, evs, labels, declared); err != nil {
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

// evaluateInventory aggregates an inventory's flows the way the law counts
// and evaluates the entity on its own and each flow. The first evaluation
// is the entity's (label "entity"); then one per flow, in order.
func (e *Engine) evaluateInventory(inv *Inventory, date string) ([]*evaluation, []string, *Aggregation, error) {
	agg := &Aggregation{Counted: []string{}, Excluded: []string{}, Notes: []string{}}
	base := make([]Facts, len(inv.Flows))
	counted := make([]bool, len(inv.Flows))
	for i := range inv.Flows {
		f := &inv.Flows[i]
		base[i] = flowFacts(&inv.Entity, f)
		// Transfers exempt on their own ground are left out of the counts
		// (2024 Provisions; working assumption, UNCONFIRMED).
		ev, err := e.evaluate(base[i], date)
		if err != nil {
			return nil, nil, nil, err
		}
		if x, _ := ev.value("cn_count_excluded"); x == true {
			agg.Excluded = append(agg.Excluded, f.Name)
			continue
		}
		counted[i] = true
		agg.Counted = append(agg.Counted, f.Name)
	}
	totals := Facts{}
	for _, c := range counterFacts {
		var sum, max int64
		contributors := 0
		for i := range inv.Flows {
			if !counted[i] {
				continue
			}
			v, _ := inv.Flows[i].Facts[c.fact].(int64)
			if v > 0 {
				contributors++
			}
			sum += v
			if v > max {
				max = v
			}
		}
		ctr := Counter{Fact: c.fact, Value: sum, Sum: sum, Basis: "single_flow"}
		if contributors > 1 {
			ctr.Basis = "sum_upper_bound"
		}
		if d, ok := inv.Entity.Distinct[c.fact]; ok {
			if d < max {
				return nil, nil, nil, inputErr("entity."+c.name, "%d is less than the largest counted flow (%d): a distinct count across flows cannot be", d, max)
			}
			dd := d
			ctr.Value, ctr.Declared, ctr.Basis = d, &dd, "declared_distinct"
		}
		if ctr.Value == 0 && ctr.Declared == nil {
			continue
		}
		totals[c.fact] = ctr.Value
		agg.Counters = append(agg.Counters, ctr)
	}
	if len(agg.Excluded) > 0 {
		agg.Notes = append(agg.Notes, fmt.Sprintf("left out of the counts as exempt on their own ground (2024 Provisions Arts. 4, 5(1)-(3), 6; NDSMR Art. 35(6)): %s", strings.Join(agg.Excluded, ", ")))
	}
	for _, c := range agg.Counters {
		switch c.Basis {
		case "sum_upper_bound":
			agg.Notes = append(agg.Notes, fmt.Sprintf("%s = %s is the sum over counted flows, an upper bound of the distinct people (the law counts each person once since 1 January); no distinct count was declared", c.Fact, group(c.Value)))
		case "declared_distinct":
			agg.Notes = append(agg.Notes, fmt.Sprintf("%s = %s as declared distinct across flows (sum over counted flows: %s)", c.Fact, group(c.Value), group(c.Sum)))
		}
	}
	evs := make([]*evaluation, 0, len(inv.Flows)+1)
	labels := make([]string, 0, len(inv.Flows)+1)
	entFacts := Facts{}
	for k, v := range inv.Entity.Facts {
		entFacts[k] = v
	}
	for k, v := range totals {
		entFacts[k] = v
	}
	if err := checkCombinations("entity.", entFacts); err != nil {
		// Sums are upper bounds, not declarations: only declared counts can be impossible.
		if len(inv.Entity.Distinct) > 0 {
			return nil, nil, nil, err
		}
	}
	ev, err := e.evaluate(entFacts, date)
	if err != nil {
		return nil, nil, nil, err
	}
	evs, labels = append(evs, ev), append(labels, "entity")
	for i := range inv.Flows {
		f := base[i]
		for _, c := range counterFacts {
			if v, ok := totals[c.fact]; ok {
				f[c.fact] = v
			} else {
				delete(f, c.fact)
			}
		}
		ev, err := e.evaluate(f, date)
		if err != nil {
			return nil, nil, nil, err
		}
		evs, labels = append(evs, ev), append(labels, inv.Flows[i].Name)
	}
	return evs, labels, agg, nil
}

// storageAbroad warns about systems outside the entity's jurisdiction that
// hold personal data while no flow goes to that country: storage abroad is
// itself a transfer.
func storageAbroad(inv *Inventory) []Warning {
	src, _ := inv.Entity.Facts["source_jurisdiction"].(string)
	if src == "" {
		src = "CN"
	}
	dest := map[string]bool{}
	for _, f := range inv.Flows {
		if d, ok := f.Facts["recipient_country"].(string); ok {
			dest[d] = true
		}
	}
	var out []Warning
	for i, s := range inv.Entity.Systems {
		if s.Location == src || dest[s.Location] {
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
