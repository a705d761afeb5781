package law

import "fmt"

// How a leg crosses, in [Leg.Via].
const (
	ViaDestination = "destination" // from the source to the flow's destination
	ViaStorage     = "storage"     // from the source to where the data is stored
	ViaAccess      = "access"      // read from another jurisdiction (remote access is a transfer)
	ViaOnward      = "onward"      // from the storage to a jurisdiction that reads it there
	ViaLocal       = "local"       // the flow crosses no border: assessed as domestic processing
)

// Leg is one crossing of an inventory flow, assessed under the rules of
// the jurisdiction the data leaves: data from CN stored in CN and read
// from the EU is a leg CN→EU under China's rules; data from the EU stored
// in the US and read from CN is three legs, EU→US and EU→CN under the
// EU's rules and US→CN under the US rules. A flow that crosses no border
// has one local leg.
type Leg struct {
	From string `json:"from"`
	To   string `json:"to,omitempty"` // "" for a local leg
	Via  string `json:"via"`
	// Law is the value of source_jurisdiction whose rules were applied to
	// the leg, or "" when no rules are modelled for From.
	Law string `json:"law,omitempty"`
}

// String is "CN→EU (access)".
func (l Leg) String() string {
	if l.Via == ViaLocal {
		return l.From + " (local)"
	}
	return l.From + "→" + l.To + " (" + l.Via + ")"
}

// LawOf returns the value of source_jurisdiction whose rules govern data
// held in jurisdiction j: j itself when it is one, the regime listing it
// (EU for DE), or "" when the rules model none.
func (e *Engine) LawOf(j string) string {
	if d, ok := e.factDefs["source_jurisdiction"]; ok && contains(d.Values, j) {
		return j
	}
	for _, k := range sortedKeys(e.vocab.Regimes) {
		if contains(e.vocab.Regimes[k].Members, j) {
			return k
		}
	}
	return ""
}

// crosses reports whether data moving from a to b leaves a's law: between
// codes of one regime it does not; between codes without rules, only when
// they differ.
func (e *Engine) crosses(a, b string) bool {
	la, lb := e.LawOf(a), e.LawOf(b)
	if la == "" || lb == "" {
		return a != b
	}
	return la != lb
}

// flowLeg is a leg with the facts of the location it goes to.
type flowLeg struct {
	Leg
	facts Facts
}

// entitySource is the entity's source_jurisdiction, declared or default.
func (e *Engine) entitySource(ent *Entity) string {
	if s, ok := ent.Facts["source_jurisdiction"].(string); ok {
		return s
	}
	if d, ok := e.factDefs["source_jurisdiction"]; ok {
		s, _ := d.Default.(string)
		return s
	}
	return ""
}

// flowLegs returns where f's data comes from and is stored, and its legs
// in order: into the storage (or destination), then for each access
// jurisdiction the leg from the source and the onward leg from the
// storage.
func (e *Engine) flowLegs(ent *Entity, f *Flow) (source, storage string, legs []flowLeg) {
	source = f.Source
	if source == "" {
		source = e.entitySource(ent)
	}
	storage, via := source, ViaStorage
	var storageFacts Facts
	if f.Storage != nil {
		storage, storageFacts = f.Storage.Jurisdiction, f.Storage.Facts
	} else if d, ok := f.Facts["recipient_country"].(string); ok {
		storage, via = d, ViaDestination
	}
	abroad := e.crosses(source, storage)
	if abroad {
		legs = append(legs, flowLeg{Leg{From: source, To: storage, Via: via, Law: e.LawOf(source)}, storageFacts})
	}
	for _, a := range f.Access {
		if e.crosses(source, a.Jurisdiction) {
			legs = append(legs, flowLeg{Leg{From: source, To: a.Jurisdiction, Via: ViaAccess, Law: e.LawOf(source)}, a.Facts})
		}
		if abroad && e.crosses(storage, a.Jurisdiction) {
			legs = append(legs, flowLeg{Leg{From: storage, To: a.Jurisdiction, Via: ViaOnward, Law: e.LawOf(storage)}, a.Facts})
		}
	}
	if len(legs) == 0 {
		legs = append(legs, flowLeg{Leg: Leg{From: source, Via: ViaLocal, Law: e.LawOf(source)}})
	}
	return source, storage, legs
}

// legFactsOf are the facts a leg is evaluated on: the flow's (entity,
// flow and category facts), the law and recipient of the leg, and the
// facts of the location it goes to.
func legFactsOf(ent *Entity, f *Flow, l flowLeg) Facts {
	out := flowFacts(ent, f)
	out["source_jurisdiction"] = l.Law
	delete(out, "recipient_country")
	if l.Via == ViaLocal {
		out["transfers_abroad"] = false
	} else {
		out["recipient_country"] = l.To
	}
	for k, v := range l.facts {
		out[k] = v
	}
	return out
}

// unassessed warns about legs no modelled rules govern.
func unassessed(i int, f *Flow, legs []flowLeg) []Warning {
	var out []Warning
	for _, l := range legs {
		if l.Law != "" {
			continue
		}
		field := fmt.Sprintf("flows[%d].source", i)
		if l.Via == ViaOnward {
			field = fmt.Sprintf("flows[%d].storage", i)
		}
		out = append(out, Warning{Code: WarnNoRules, Field: field,
			Message: fmt.Sprintf("flow %s: the leg %s is not assessed: no rules are modelled for %s", f.Name, l.Leg, l.From)})
	}
	return out
}
