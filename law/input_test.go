package law

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var day = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// TestBadInput checks that each kind of bad input is an *InputError naming
// the field, and that nothing is reported.
func TestBadInput(t *testing.T) {
	e := MustEngine(t)
	tests := []struct {
		name, doc, field string
	}{
		{"unknown fact", "transfers_abroad: true\nteleport: true\n", "teleport"},
		{"wrong type bool", "transfers_abroad: 1\n", "transfers_abroad"},
		{"wrong type int as string", `pi_individuals_ytd: "100000"`, "pi_individuals_ytd"},
		{"wrong type int as float", "pi_individuals_ytd: 1.5e5\n", "pi_individuals_ytd"},
		{"negative count", "pi_individuals_ytd: -1\n", "pi_individuals_ytd"},
		{"int overflow", "pi_individuals_ytd: 99999999999999999999\n", "pi_individuals_ytd"},
		{"enum value", "transfer_purpose: shopping\n", "transfer_purpose"},
		{"country lowercase", "recipient_country: us\n", "recipient_country"},
		{"country three letters", "recipient_country: USA\n", "recipient_country"},
		{"country empty", `recipient_country: ""`, "recipient_country"},
		{"sensitive more than total", "pi_individuals_total: 100\nsensitive_pi_individuals_ytd: 101\n", "sensitive_pi_individuals_ytd"},
		{"sensitive more than total since prev year", "pi_individuals_since_prev_year: 10\nsensitive_pi_individuals_since_prev_year: 11\n", "sensitive_pi_individuals_since_prev_year"},
		{"incident sensitive more than affected", "incident_individuals_affected: 5\nincident_sensitive_individuals_affected: 6\n", "incident_sensitive_individuals_affected"},
		{"malformed date", "as_of: 2024-3-22\n", "as_of"},
		{"impossible date", "as_of: 2023-02-29\n", "as_of"},
		{"null value", "transfers_abroad:\n", "transfers_abroad"},
		{"duplicate key", "transfers_abroad: true\ntransfers_abroad: false\n", ""},
		{"yes is not a boolean", "transfers_abroad: yes\n", "transfers_abroad"},
		{"not a mapping", "- a\n- b\n", ""},
		{"alias", "a: &x true\ntransfers_abroad: *x\n", "a"},
		{"json wrong type", `{"transfers_abroad": "true"}`, "transfers_abroad"},
		{"inventory unknown field", "entity: {name: x}\ncolour: red\n", "colour"},
		{"inventory flow destination", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: usa, categories: [c]}]\n", "flows[0].destination"},
		{"inventory flow missing destination", "entity: {categories: [{name: c}]}\nflows: [{name: f, categories: [c]}]\n", "flows[0].destination"},
		{"inventory unknown category", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: US, categories: [d]}]\n", "flows[0].categories[0]"},
		{"inventory negative count", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: US, categories: [c], individuals_ytd: -5}]\n", "flows[0].individuals_ytd"},
		{"inventory sensitive without sensitive category", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: US, categories: [c], sensitive_individuals_ytd: 5}]\n", "flows[0].sensitive_individuals_ytd"},
		{"inventory sensitive more than processed", "entity: {individuals_processed: 10, categories: [{name: h, sensitive: true}]}\nflows: [{name: f, destination: US, categories: [h], sensitive_individuals_ytd: 11}]\n", "flows[0].sensitive_individuals_ytd"},
		{"inventory computed fact", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: US, categories: [c], facts: {transfers_abroad: false}}]\n", "flows[0].facts.transfers_abroad"},
		{"inventory duplicate flow", "entity: {categories: [{name: c}]}\nflows: [{name: f, destination: US, categories: [c]}, {name: f, destination: US, categories: [c]}]\n", "flows[1].name"},
		{"inventory fact twice", "entity: {ciio: true, facts: {is_ciio: false}}\n", "entity.facts.is_ciio"},
		{"inventory system location", "entity: {systems: [{name: s, location: Germany}]}\n", "entity.systems[0].location"},
		{"inventory bad as_of", "as_of: tomorrow\nentity: {name: x}\n", "as_of"},
		{"inventory missing entity", "flows: []\n", "entity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := e.Parse([]byte(tc.doc))
			if err == nil {
				_, err = e.Assess(in, day)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Parse+Assess(%q) = %v, want *InputError", tc.doc, err)
			}
			if tc.field != "" && ie.Field != tc.field {
				t.Errorf("Parse(%q) field = %q (%v), want %q", tc.doc, ie.Field, err, tc.field)
			}
		})
	}
}

// TestDefaultsNeverConflict: a missing fact takes its default and is never
// the cause of an impossible-combination error.
func TestDefaultsNeverConflict(t *testing.T) {
	e := MustEngine(t)
	for _, doc := range []string{
		"sensitive_pi_individuals_ytd: 500\n",          // pi_individuals_total defaults to 0
		"incident_sensitive_individuals_affected: 3\n", // incident_individuals_affected defaults to 0
		"sensitive_pi_individuals_since_prev_year: 7\n",
	} {
		in, err := e.Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q) = %v, want no error", doc, err)
		}
		if _, err := e.Assess(in, day); err != nil {
			t.Errorf("Assess(%q) = %v", doc, err)
		}
	}
}

// TestUnassignedCountryWarns: a well-formed but unassigned code is a warning.
func TestUnassignedCountryWarns(t *testing.T) {
	e := MustEngine(t)
	for _, code := range []string{"XX", "ZZ", "AA", "QM"} {
		in, err := e.Parse([]byte("transfers_abroad: true\ntransfer_contains_pi: true\nrecipient_country: " + code + "\n"))
		if err != nil {
			t.Fatalf("Parse(%s) = %v, want a warning only", code, err)
		}
		rep, err := e.Assess(in, day)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, w := range rep.Warnings {
			if w.Code == WarnUnassignedCountry && w.Field == "recipient_country" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d unassigned_country warnings, want 1: %v", code, n, rep.Warnings)
		}
	}
	rep, err := e.Decide(Facts{"recipient_country": "DE", "transfers_abroad": true}, day)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Warnings {
		if w.Code == WarnUnassignedCountry {
			t.Errorf("DE warned as unassigned: %v", w)
		}
	}
}

// TestDecide covers the gateway's entry point: Go values, int accepted as int64.
func TestDecide(t *testing.T) {
	e := MustEngine(t)
	tests := []struct {
		name  string
		facts Facts
		want  string
		err   string
	}{
		{"exempt", Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(10), "recipient_country": "US"}, "exempt", ""},
		{"int accepted", Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": 100000, "recipient_country": "US"}, "sc_or_certification", ""},
		{"wrong type", Facts{"transfers_abroad": "yes"}, "", "transfers_abroad"},
		{"float rejected", Facts{"pi_individuals_ytd": 1.0}, "", "pi_individuals_ytd"},
		{"unknown", Facts{"colour": "red"}, "", "colour"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := e.Decide(tc.facts, day)
			if tc.err != "" {
				var ie *InputError
				if !errors.As(err, &ie) || ie.Field != tc.err {
					t.Fatalf("Decide = %v, want InputError on %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.MechanismName() != tc.want {
				t.Errorf("Decide mechanism = %s, want %s", rep.MechanismName(), tc.want)
			}
		})
	}
}

// TestRegimeChange: the same business as of 2023-06-01 and 2024-06-01
// differs, and the report says why.
func TestRegimeChange(t *testing.T) {
	e := MustEngine(t)
	f := Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(45000),
		"pi_individuals_since_prev_year": int64(120000), "recipient_country": "IE"}
	old, err := e.Decide(f, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := e.Decide(f, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if old.MechanismName() != "security_assessment" || old.MechanismRule != "CN.SAM.4" {
		t.Errorf("2023-06-01: %s by %s, want security_assessment by CN.SAM.4", old.MechanismName(), old.MechanismRule)
	}
	if cur.MechanismName() != "exempt" || cur.MechanismRule != "CN.CBDF.5.4" {
		t.Errorf("2024-06-01: %s by %s, want exempt by CN.CBDF.5.4", cur.MechanismName(), cur.MechanismRule)
	}
	regime := func(r *Report, pred string) RegimeNote {
		for _, n := range r.Regime {
			if n.Predicate == pred {
				return n
			}
		}
		t.Fatalf("no regime note for %s", pred)
		return RegimeNote{}
	}
	if n := regime(old, "cn_sa_trigger"); !strings.Contains(n.Version, "2022") || n.EffectiveUntil != "2024-03-21" {
		t.Errorf("2023 cn_sa_trigger version = %+v", n)
	}
	if n := regime(cur, "cn_sa_trigger"); !strings.Contains(n.Version, "2024") {
		t.Errorf("2024 cn_sa_trigger version = %+v", n)
	}
	if n := regime(old, "cn_art5_4_exempt"); n.InForce {
		t.Errorf("2023: small-volume exemption in force: %+v", n)
	}
	var dated []string
	for _, d := range cur.NotInForce {
		dated = append(dated, d.Rule)
	}
	if slices.Contains(dated, "CN.SAM.4") {
		t.Errorf("2024: CN.SAM.4 listed not in force although its 2024 condition is false: %v", dated)
	}
	// In 2023 the 2024 rule that would catch the same facts is named as not yet in force.
	found := false
	for _, d := range old.NotInForce {
		found = found || (d.Rule == "CN.CBDF.7" && d.Status == "not yet in force")
	}
	if !found {
		t.Errorf("2023 report does not say CN.CBDF.7 is not yet in force: %+v", old.NotInForce)
	}
}

// TestInventoryAggregation: two flows of one entity are summed as an upper
// bound, or use the declared distinct count; exempt flows are left out.
func TestInventoryAggregation(t *testing.T) {
	e := MustEngine(t)
	const base = `as_of: 2026-03-01
entity:
  individuals_processed: 500000
  %s
  categories: [{name: c}]
flows:
  - {name: a, destination: US, categories: [c], individuals_ytd: 60000}
  - {name: b, destination: SG, categories: [c], individuals_ytd: 50000}
  - {name: orders, destination: US, categories: [c], purpose: contract_with_individual, necessary: true, individuals_ytd: 900000}
`
	tests := []struct {
		name, extra, mech, basis string
		value                    int64
		warn                     bool
		field                    string
	}{
		{"sum is upper bound", "", "sc_or_certification", "sum_upper_bound", 110000, true, ""},
		{"declared distinct", "distinct_individuals_ytd: 70000", "exempt", "declared_distinct", 70000, false, ""},
		{"declared below largest flow", "distinct_individuals_ytd: 59999", "", "", 0, false, "entity.distinct_individuals_ytd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := e.Parse([]byte(strings.Replace(base, "%s", tc.extra, 1)))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Assess(in, day)
			if tc.field != "" {
				var ie *InputError
				if !errors.As(err, &ie) || ie.Field != tc.field {
					t.Fatalf("Assess = %v, want InputError on %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.MechanismName() != tc.mech {
				t.Errorf("mechanism = %s, want %s", rep.MechanismName(), tc.mech)
			}
			c := rep.Aggregation.Counters[0]
			if c.Fact != "pi_individuals_ytd" || c.Value != tc.value || c.Basis != tc.basis || c.Sum != 110000 {
				t.Errorf("counter = %+v, want %d by %s (sum 110000)", c, tc.value, tc.basis)
			}
			if !slices.Equal(rep.Aggregation.Excluded, []string{"orders"}) {
				t.Errorf("excluded = %v, want [orders]", rep.Aggregation.Excluded)
			}
			warned := false
			for _, w := range rep.Warnings {
				warned = warned || w.Code == WarnUpperBound
			}
			if warned != tc.warn {
				t.Errorf("upper_bound warning = %v, want %v", warned, tc.warn)
			}
			if len(rep.Flows) != 3 || rep.Flows[2].Facts["pi_individuals_ytd"] != rep.Aggregation.Counters[0].Value {
				t.Errorf("flows do not carry the aggregated count: %+v", rep.Flows)
			}
		})
	}
}

// TestExamplesInventories assesses the shipped example inventories.
func TestExampleInventories(t *testing.T) {
	e := MustEngine(t)
	tests := []struct {
		file, asOf, mech string
	}{
		{"retail-two-flows.yaml", "", "sc_or_certification"},
		{"retail-two-flows-distinct.yaml", "", "exempt"},
		{"ecommerce-mixed.yaml", "", "gba_standard_contract"},
		{"pre-2024-regime.yaml", "", "security_assessment"},
		{"pre-2024-regime.yaml", "2024-06-01", "exempt"},
		{"multi-jurisdiction.yaml", "", "sc_or_certification"},
	}
	for _, tc := range tests {
		t.Run(tc.file+tc.asOf, func(t *testing.T) {
			data := mustRead(t, "../examples/inventory/"+tc.file)
			in, err := e.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if tc.asOf != "" {
				in.AsOf = tc.asOf
			}
			rep, err := e.Assess(in, day)
			if err != nil {
				t.Fatal(err)
			}
			if rep.MechanismName() != tc.mech {
				t.Errorf("%s as of %s: mechanism %s, want %s", tc.file, rep.AsOf, rep.MechanismName(), tc.mech)
			}
		})
	}
}
