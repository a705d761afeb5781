package law

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// assessInventory parses and assesses an inventory document.
func assessInventory(t *testing.T, doc string) *Report {
	t.Helper()
	e := MustEngine(t)
	in, err := e.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	rep, err := e.Assess(in, day)
	if err != nil {
		t.Fatalf("Assess: %v\n%s", err, doc)
	}
	return rep
}

func finding(rep *Report, rule string) *Finding {
	for i := range rep.Findings {
		if rep.Findings[i].Rule == rule {
			return &rep.Findings[i]
		}
	}
	return nil
}

// legStrings lists legs as "FROM→TO (via) LAW".
func legStrings[T any](legs []T, f func(T) Leg) []string {
	out := []string{}
	for _, l := range legs {
		x := f(l)
		out = append(out, x.String()+" "+x.Law)
	}
	return out
}

func flowLegStrings(fr FlowReport) []string {
	return legStrings(fr.Legs, func(l LegReport) Leg { return l.Leg })
}

// TestFlowLegs: which crossings a flow is, and whose rules each is under.
func TestFlowLegs(t *testing.T) {
	tests := []struct {
		name, entity, flow string
		legs               []string // "FROM→TO (via) LAW"
		noRules            bool     // a no_rules warning
	}{
		{"destination, as before", "CN", "destination: US", []string{"CN→US (destination) CN"}, false},
		{"a CN cell read from the EU", "CN", "storage: CN\n    access: [DE]", []string{"CN→DE (access) CN"}, false},
		{"remote access without storage", "CN", "access: [EU]", []string{"CN→EU (access) CN"}, false},
		{"EU data stored in the US", "CN", "source: EU\n    storage: US", []string{"EU→US (storage) EU"}, false},
		{"member state data stored in the US", "CN", "source: FR\n    storage: US", []string{"FR→US (storage) EU"}, false},
		{"EU data stored in the US, read from CN", "CN", "source: EU\n    storage: US\n    access: [CN]",
			[]string{"EU→US (storage) EU", "EU→CN (access) EU", "US→CN (onward) US"}, false},
		{"read back where it came from", "CN", "storage: US\n    access: [CN]", []string{"CN→US (storage) CN", "US→CN (onward) US"}, false},
		{"within the EU is no transfer", "EU", "source: DE\n    storage: FR\n    access: [IT]", []string{"DE (local) EU"}, false},
		{"the EEA is the GDPR's", "EU", "storage: NO", []string{"EU (local) EU"}, false},
		{"HK is outside the mainland", "CN", "storage: HK", []string{"CN→HK (storage) CN"}, false},
		{"stored in the EU, read from another member state", "CN", "storage: DE\n    access: [FR]",
			[]string{"CN→DE (storage) CN", "CN→FR (access) CN"}, false},
		{"storage without modelled rules", "CN", "storage: JP\n    access: [US]",
			[]string{"CN→JP (storage) CN", "CN→US (access) CN", "JP→US (onward) "}, true},
		{"source without modelled rules", "CN", "source: JP\n    storage: CN\n    access: [US]",
			[]string{"JP→CN (storage) ", "JP→US (access) ", "CN→US (onward) CN"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := assessInventory(t, fmt.Sprintf("entity: {jurisdiction: %s, categories: [{name: c}]}\nflows:\n  - name: f\n    categories: [c]\n    %s\n", tc.entity, tc.flow))
			if got := flowLegStrings(rep.Flows[0]); !slices.Equal(got, tc.legs) {
				t.Errorf("legs = %q, want %q", got, tc.legs)
			}
			warned := slices.ContainsFunc(rep.Warnings, func(w Warning) bool { return w.Code == WarnNoRules })
			if warned != tc.noRules {
				t.Errorf("no_rules warning = %v, want %v: %+v", warned, tc.noRules, rep.Warnings)
			}
			for _, l := range rep.Flows[0].Legs {
				if l.Assessed != (l.Law != "") {
					t.Errorf("leg %s assessed = %v with law %q", l.Leg, l.Assessed, l.Law)
				}
				if l.Assessed && l.Facts["source_jurisdiction"] != l.Law {
					t.Errorf("leg %s evaluated with source_jurisdiction %v", l.Leg, l.Facts["source_jurisdiction"])
				}
				if l.Via == ViaLocal && l.Assessed && l.Facts["transfers_abroad"] != false {
					t.Errorf("local leg evaluated as a transfer: %v", l.Facts)
				}
			}
		})
	}
}

// inventoryOf turns a fact-file scenario with one transfer into an
// inventory of one flow from its source to its recipient's country, with
// place saying how the flow reaches it: "destination: D", "storage: D" or
// "storage: S\n    access: [D]" (read remotely).
func inventoryOf(t *testing.T, s scenario, place func(src, dst string) string) string {
	t.Helper()
	src, _ := s.Facts["source_jurisdiction"].(string)
	if src == "" {
		src = "CN"
	}
	dst := s.Facts["recipient_country"].(string)
	is := func(k string) bool { v, _ := s.Facts[k].(bool); return v }
	var cats, names []string
	if is("transfer_contains_pi") {
		cats, names = append(cats, "{name: pi}"), append(names, "pi")
	}
	if is("transfer_contains_sensitive_pi") {
		cats, names = append(cats, "{name: spi, sensitive: true}"), append(names, "spi")
	}
	if is("has_important_data") {
		cats, names = append(cats, "{name: imp, personal: false, important: true}"), append(names, "imp")
	}
	if len(cats) == 0 {
		cats, names = append(cats, "{name: other, personal: false}"), append(names, "other")
	}
	ent, flow := map[string]any{}, map[string]any{}
	var distinct []string
	for k, v := range s.Facts {
		switch k {
		case "transfers_abroad", "transfer_contains_pi", "transfer_contains_sensitive_pi", "has_important_data", "recipient_country", "source_jurisdiction":
		case "pi_individuals_ytd", "sensitive_pi_individuals_ytd", "pi_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year":
			// The flow's own count, and the same as the entity's distinct
			// count, so that a flow exempt on its own ground (left out of
			// the sum) still reads the count the scenario declares.
			flow[k] = v
			distinct = append(distinct, fmt.Sprintf("\n  %s: %v", distinctField(k), v))
		default:
			ent[k] = v
		}
	}
	enc := func(m map[string]any) string {
		if len(m) == 0 {
			return "{}"
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return "{" + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ", ") + "}"
	}
	slices.Sort(distinct)
	doc := fmt.Sprintf("entity:\n  jurisdiction: %s\n  categories: [%s]\n  facts: %s%s\nflows:\n  - name: f\n    categories: [%s]\n    facts: %s\n    %s\n",
		src, strings.Join(cats, ", "), enc(ent), strings.Join(distinct, ""), strings.Join(names, ", "), enc(flow), place(src, dst))
	if s.AsOf != "" {
		doc = "as_of: " + s.AsOf + "\n" + doc
	}
	return doc
}

// TestScenarioPairsAsFlows: every pair of jurisdictions of the worked
// scenarios (CN to US, SG, DE, JP, FR, TH, HK; HK, EU, VN and TR to CN ...)
// gives, as an inventory flow sent there, stored there or read from
// there, the scenario's outcome on the leg, under the rules of the
// jurisdiction the data leaves, and the same in the merged report.
func TestScenarioPairsAsFlows(t *testing.T) {
	e := MustEngine(t)
	places := []struct {
		name, via string
		place     func(src, dst string) string
	}{
		{"sent", ViaDestination, func(_, dst string) string { return "destination: " + dst }},
		{"stored", ViaStorage, func(_, dst string) string { return "storage: " + dst }},
		{"read remotely", ViaAccess, func(src, dst string) string { return "storage: " + src + "\n    access: [" + dst + "]" }},
	}
	pairs := map[string]bool{}
	for _, s := range loadScenarios(t, "testdata/scenarios.yaml") {
		dst, _ := s.Facts["recipient_country"].(string)
		if abroad, _ := s.Facts["transfers_abroad"].(bool); !abroad || dst == "" {
			continue
		}
		src, _ := s.Facts["source_jurisdiction"].(string)
		if src == "" {
			src = "CN"
		}
		pairs[src+"→"+dst] = true
		for _, p := range places {
			t.Run(fmt.Sprintf("%s %s→%s %s", s.ID, src, dst, p.name), func(t *testing.T) {
				doc := inventoryOf(t, s, p.place)
				rep := assessInventory(t, doc)
				if len(rep.Flows) != 1 || len(rep.Flows[0].Legs) != 1 {
					t.Fatalf("want one flow of one leg, got %+v", rep.Flows)
				}
				leg := rep.Flows[0].Legs[0]
				want := Leg{From: src, To: dst, Via: p.via, Law: e.LawOf(src)}
				if leg.Leg != want || !leg.Assessed {
					t.Fatalf("leg = %+v, want %+v assessed", leg.Leg, want)
				}
				// The leg alone is the scenario.
				legRep := &Report{AsOf: rep.AsOf, Mechanism: leg.Mechanism, Fired: leg.Fired, Obligations: leg.Obligations}
				checkScenario(t, s, legRep)
				// The merged report keeps it: mechanism, rules and obligations.
				checkScenario(t, s, rep)
				for _, id := range s.Expected.Fires {
					f := finding(rep, id)
					r, _ := e.Rule(id)
					if f == nil || f.Jurisdiction != r.Jurisdiction {
						t.Fatalf("finding %s = %+v, want jurisdiction %s", id, f, r.Jurisdiction)
					}
					if !slices.Contains(f.Legs, LegRef{Flow: "f", Leg: want}) {
						t.Errorf("finding %s legs = %+v, want the leg %s", id, f.Legs, want)
					}
				}
			})
		}
	}
	for _, p := range []string{"CN→US", "CN→HK", "CN→DE", "HK→CN", "EU→CN", "VN→CN", "TR→CN"} {
		if !pairs[p] {
			t.Errorf("no scenario for %s: the table lost a pair", p)
		}
	}
}

// The example of the issue: a CN cell read from the EU, and EU data
// stored in the US and read from China.
const multiDoc = `as_of: 2026-03-01
entity:
  jurisdiction: CN
  individuals_processed: 400000
  categories: [{name: contact}]
flows:
  - name: cn-orders
    storage: CN
    access: [DE]
    categories: [contact]
    individuals_ytd: 150000
  - name: eu-shop
    source: EU
    storage: {jurisdiction: US, facts: {eu_adequacy_recipient: true}}
    access: [{jurisdiction: CN, facts: {eu_safeguard: sccs, us_counterparty_covered: true}}]
    categories: [contact]
    individuals_ytd: 80000
    facts: {us_person: true, us_transaction_type: vendor, us_bulk_category: covered_identifiers, us_bulk_count: 150000}
`

// TestMergedFindings: findings of every jurisdiction a flow touches are
// merged, one per rule, tagged with their jurisdiction and legs, and
// sorted by deadline; each obligation is listed once with the
// jurisdictions that require it.
func TestMergedFindings(t *testing.T) {
	rep := assessInventory(t, multiDoc)
	if rep.MechanismName() != "sc_or_certification" {
		t.Errorf("mechanism = %s, want sc_or_certification (China's, the strongest)", rep.MechanismName())
	}
	want := map[string]string{ // rule -> the leg it fired for
		"CN.CBDF.8":             "cn-orders CN→DE (access) CN",
		"EU.GDPR.45":            "eu-shop EU→US (storage) EU",
		"EU.GDPR.46":            "eu-shop EU→CN (access) EU",
		"US.DOJ.202.RESTRICTED": "eu-shop US→CN (onward) US",
	}
	for rule, leg := range want {
		f := finding(rep, rule)
		if f == nil {
			t.Errorf("%s did not fire; fired %v", rule, rep.Fired)
			continue
		}
		got := legStrings(f.Legs, func(l LegRef) Leg { return l.Leg })
		if len(got) != 1 || f.Legs[0].Flow+" "+got[0] != leg {
			t.Errorf("%s legs = %+v, want %s", rule, f.Legs, leg)
		}
		if f.Jurisdiction != f.Legs[0].Law {
			t.Errorf("%s: jurisdiction %s, fired under the rules of %s", rule, f.Jurisdiction, f.Legs[0].Law)
		}
	}
	// GDPR Art. 45 covers the leg into the adequate country only.
	if f := finding(rep, "EU.GDPR.46"); f == nil || slices.ContainsFunc(f.Legs, func(l LegRef) bool { return l.To == "US" }) {
		t.Errorf("the US storage's adequacy did not stay with its leg: %+v", f)
	}
	seen := map[string]bool{}
	last := int64(-1)
	for _, f := range rep.Findings {
		if seen[f.Rule] {
			t.Errorf("%s is two findings", f.Rule)
		}
		seen[f.Rule] = true
		if k := dueKey(f.Due); k < last {
			t.Errorf("findings not sorted by deadline: %s (due %q) after a later one", f.Rule, f.Due)
		} else {
			last = k
		}
	}
	if rep.Findings[0].Rule != "CN.PIPL.55" || rep.Findings[0].Due != "before" {
		t.Errorf("first finding = %s (%s), want CN.PIPL.55, due before the transfer", rep.Findings[0].Rule, rep.Findings[0].Due)
	}
	obl := map[string]ObligationSource{}
	for _, o := range rep.ObligationSources {
		if _, dup := obl[o.Obligation]; dup {
			t.Errorf("obligation %s listed twice", o.Obligation)
		}
		obl[o.Obligation] = o
	}
	for code, j := range map[string]string{"eu_sccs": "EU", "eu_tia": "EU", "sc_file_10wd": "CN", "us_restricted_security_reqs": "US"} {
		if o, ok := obl[code]; !ok || !slices.Equal(o.Jurisdictions, []string{j}) {
			t.Errorf("obligation %s = %+v, want from %s", code, o, j)
		}
	}
	if o := obl["sc_file_10wd"]; o.Due != "10wd" {
		t.Errorf("sc_file_10wd due %q, want 10wd", o.Due)
	}
	if len(obl) != len(rep.Obligations) {
		t.Errorf("%d obligation sources for %d obligations", len(obl), len(rep.Obligations))
	}
	// Each flow is the strongest of its legs.
	if m := mech(rep.Flows[1].Mechanism); m != "legal_review" && m != "exempt" {
		t.Errorf("eu-shop mechanism %s", m)
	}
}

// TestSameRuleSeveralLegs: a rule that fires for two legs of one flow is
// one finding naming both, and its obligations appear once.
func TestSameRuleSeveralLegs(t *testing.T) {
	rep := assessInventory(t, `entity: {categories: [{name: c}]}
flows:
  - {name: f, storage: US, access: [SG], categories: [c], individuals_ytd: 150000}
`)
	f := finding(rep, "CN.CBDF.8")
	if f == nil {
		t.Fatalf("CN.CBDF.8 did not fire: %v", rep.Fired)
	}
	got := legStrings(f.Legs, func(l LegRef) Leg { return l.Leg })
	if !slices.Equal(got, []string{"CN→US (storage) CN", "CN→SG (access) CN"}) || !slices.Equal(f.Flows, []string{"f"}) {
		t.Errorf("CN.CBDF.8 legs %q flows %v", got, f.Flows)
	}
	n := 0
	for _, o := range rep.Obligations {
		if o == "sc_file_10wd" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("sc_file_10wd listed %d times", n)
	}
	if legs := flowLegStrings(rep.Flows[0]); len(legs) != 3 || legs[2] != "US→SG (onward) US" {
		t.Errorf("legs = %q", legs)
	}
}

// TestCountsPerLaw: people of a flow from the EU do not add to the count
// China's rules read; from China they do.
func TestCountsPerLaw(t *testing.T) {
	const doc = `entity: {jurisdiction: CN, categories: [{name: c}]}
flows:
  - {name: a, destination: US, categories: [c], individuals_ytd: 60000}
  - {name: b, source: %s, storage: US, categories: [c], individuals_ytd: 50000}
`
	for _, tc := range []struct {
		source, mech string
		cn           int64
	}{
		{"EU", "exempt", 60000},
		{"CN", "sc_or_certification", 110000},
	} {
		t.Run(tc.source, func(t *testing.T) {
			rep := assessInventory(t, fmt.Sprintf(doc, tc.source))
			if rep.MechanismName() != tc.mech {
				t.Errorf("mechanism %s, want %s", rep.MechanismName(), tc.mech)
			}
			var cn int64
			for _, c := range rep.Aggregation.Counters {
				if c.Jurisdiction == "CN" && c.Fact == "pi_individuals_ytd" {
					cn = c.Value
				}
			}
			if cn != tc.cn {
				t.Errorf("China's count = %d, want %d: %+v", cn, tc.cn, rep.Aggregation.Counters)
			}
			if got := rep.Flows[0].Legs[0].Facts["pi_individuals_ytd"]; got != tc.cn {
				t.Errorf("flow a evaluated with %v people, want %d", got, tc.cn)
			}
		})
	}
}

// TestLegInputErrors: bad source, storage and access input names the field.
func TestLegInputErrors(t *testing.T) {
	const head = "entity: {categories: [{name: c}]}\nflows:\n  - name: f\n    categories: [c]\n    "
	tests := []struct{ name, flow, field string }{
		{"nowhere", "recipient: x", "flows[0].destination"},
		{"destination and storage", "destination: US\n    storage: US", "flows[0].storage"},
		{"bad source", "source: china\n    storage: US", "flows[0].source"},
		{"bad storage", "storage: usa", "flows[0].storage"},
		{"bad access", "access: [DE, eu]", "flows[0].access[1]"},
		{"access twice", "access: [DE, DE]", "flows[0].access[1]"},
		{"access where stored", "storage: US\n    access: [US]", "flows[0].access[0]"},
		{"access where stored by default", "access: [CN]", "flows[0].access[0]"},
		{"location without jurisdiction", "storage: {facts: {eu_safeguard: sccs}}", "flows[0].storage.jurisdiction"},
		{"unknown location field", "storage: {jurisdiction: US, colour: red}", "flows[0].storage.colour"},
		{"unknown location fact", "storage: {jurisdiction: US, facts: {colour: red}}", "flows[0].storage.facts.colour"},
		{"bad location fact value", "access: [{jurisdiction: CN, facts: {eu_safeguard: handshake}}]", "flows[0].access[0].facts.eu_safeguard"},
		{"count on a location", "storage: {jurisdiction: US, facts: {pi_individuals_ytd: 5}}", "flows[0].storage.facts.pi_individuals_ytd"},
		{"recipient on a location", "storage: {jurisdiction: US, facts: {recipient_country: SG}}", "flows[0].storage.facts.recipient_country"},
		{"source as a fact", "destination: US\n    facts: {source_jurisdiction: EU}", "flows[0].facts.source_jurisdiction"},
		{"recipient as a fact", "facts: {recipient_country: US}", "flows[0].facts.recipient_country"},
		{"access not a list", "access: DE", "flows[0].access"},
		{"too many", "access: [" + strings.TrimSuffix(strings.Repeat("DE, FR, IT, ES, PT, NL, BE, AT, ", 3), ", ") + "]", "flows[0].access"},
	}
	e := MustEngine(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Parse([]byte(head + tc.flow + "\n"))
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("Parse = %v, want an error on %s", err, tc.field)
			}
		})
	}
	t.Run("too many legs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("entity: {categories: [{name: c}]}\nflows:\n")
		access := "[" + strings.Join(strings.Fields("DE FR IT ES PT NL BE AT SG JP KR TH MY PH ID VN"), ", ") + "]"
		for i := 0; i*33 <= MaxLegs; i++ {
			fmt.Fprintf(&b, "  - {name: f%d, storage: US, access: %s, categories: [c]}\n", i, access)
		}
		in, err := e.Parse([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Assess(in, day)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != "flows" {
			t.Errorf("Assess = %v, want an error on flows", err)
		}
	})
}

// TestExplainLegs: --explain names each leg of a flow with several.
func TestExplainLegs(t *testing.T) {
	e := MustEngine(t)
	in, err := e.Parse([]byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Explain(in, day, "EU.GDPR.46")
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for _, sub := range x.Explanations {
		if sub.Fired {
			fired = append(fired, sub.Flow)
		}
	}
	if !slices.Equal(fired, []string{"eu-shop: EU→CN (access)"}) {
		t.Errorf("EU.GDPR.46 fired for %q", fired)
	}
}

// TestChangesMultiJurisdiction: the change report of an inventory with
// several jurisdictions names each rule once on the day it starts.
func TestChangesMultiJurisdiction(t *testing.T) {
	e := MustEngine(t)
	in, err := e.Parse([]byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Changes(in, DateRange{From: "2025-12-15", To: "2026-01-05"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range c.Changes {
		got = append(got, x.Date+" "+x.Rule+" "+x.Change)
	}
	if want := []string{"2026-01-01 CN.CERT.2025 starts", "2026-01-01 CN.CSL.2025.AMEND starts"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

// TestScenarioPairsWithoutRecipient: the worked scenarios whose facts name
// no recipient country (a US business's vendor in China, a Russian shop
// collecting into Singapore) as flows between the two jurisdictions.
func TestScenarioPairsWithoutRecipient(t *testing.T) {
	byID := map[string]scenario{}
	for _, s := range loadScenarios(t, "testdata/scenarios.yaml") {
		byID[s.ID] = s
	}
	tests := []struct {
		id, doc, leg, rule string
	}{
		{"S46", `entity: {jurisdiction: US, facts: {processor_in_prc: false, us_person: true}, categories: [{name: ids}]}
flows:
  - name: support
    storage: US
    access: [{jurisdiction: CN, facts: {us_counterparty_covered: true, us_transaction_type: vendor}}]
    categories: [ids]
    facts: {us_bulk_category: covered_identifiers, us_bulk_count: 150000}
`, "US→CN (access) US", "US.DOJ.202.RESTRICTED"},
		{"S48", `entity: {jurisdiction: RU, facts: {processor_in_prc: false, collects_russian_citizens_pi: true}, categories: [{name: customer}]}
flows:
  - name: crm
    storage: {jurisdiction: SG, facts: {initial_collection_into_foreign_db: true}}
    categories: [customer]
`, "RU→SG (storage) RU", "RU.152FZ.18.5.BLOCK"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			s, ok := byID[tc.id]
			if !ok {
				t.Fatalf("no scenario %s", tc.id)
			}
			rep := assessInventory(t, tc.doc)
			checkScenario(t, s, rep)
			f := finding(rep, tc.rule)
			if f == nil || f.Jurisdiction != s.Facts["source_jurisdiction"] {
				t.Fatalf("finding %s = %+v", tc.rule, f)
			}
			if got := legStrings(f.Legs, func(l LegRef) Leg { return l.Leg }); !slices.Equal(got, []string{tc.leg}) {
				t.Errorf("%s legs = %q, want %s", tc.rule, got, tc.leg)
			}
		})
	}
}
