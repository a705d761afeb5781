package law

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// A count the rules in force need is never taken as zero: its absence is a
// finding naming it, and the mechanism is undetermined.
func TestMissingCounts(t *testing.T) {
	e := MustEngine(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		doc     string
		mech    string
		missing []string
		fires   []string // rules that fire whatever the missing counts are
	}{
		{"ytd only before 2024-03-22", "as_of: 2023-06-01\ntransfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 40000\npi_individuals_total: 400000\nrecipient_country: US\n",
			MechanismUndetermined, []string{"pi_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"}, []string{"CN.PIPL.38"}},
		{"previous-year basis declared", "as_of: 2023-06-01\ntransfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_since_prev_year: 40000\npi_individuals_total: 400000\nrecipient_country: US\n",
			"sc_or_certification", nil, []string{"CN.SCM.4"}},
		{"no total before 2024-03-22", "as_of: 2023-06-01\ntransfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_since_prev_year: 40000\nrecipient_country: US\n",
			MechanismUndetermined, []string{"pi_individuals_total"}, nil},
		{"since-previous-year count not needed from 2024-03-22", "as_of: 2026-03-01\ntransfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 40000\nrecipient_country: US\n",
			"exempt", nil, []string{"CN.CBDF.5.4"}},
		{"no count at all today", "transfers_abroad: true\ntransfer_contains_pi: true\nrecipient_country: US\n",
			MechanismUndetermined, []string{"pi_individuals_ytd", "sensitive_pi_individuals_ytd"}, []string{"CN.PIPL.38", "CN.PIPL.39"}},
		{"count irrelevant for a CIIO", "transfers_abroad: true\ntransfer_contains_pi: true\nis_ciio: true\nrecipient_country: US\n",
			"security_assessment", nil, []string{"CN.CBDF.7"}},
		{"US bulk count", "source_jurisdiction: US\nus_person: true\nus_counterparty_covered: true\nus_transaction_type: vendor\nus_bulk_category: health\n",
			MechanismUndetermined, []string{"us_bulk_count"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := e.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Assess(in, now)
			if err != nil {
				t.Fatal(err)
			}
			if mechOf(rep) != tc.mech {
				t.Errorf("mechanism %s, want %s", mechOf(rep), tc.mech)
			}
			var got []string
			for _, m := range rep.Missing {
				got = append(got, m.Fact)
				if !strings.Contains(m.Message, m.Fact) || len(m.Mechanisms) < 2 {
					t.Errorf("missing %s: message %q, mechanisms %v", m.Fact, m.Message, m.Mechanisms)
				}
			}
			if !slices.Equal(got, tc.missing) {
				t.Errorf("missing = %v, want %v", got, tc.missing)
			}
			var named []string
			for _, f := range rep.Findings {
				if f.MissingFact != "" {
					named = append(named, f.MissingFact)
					if f.Rule == "" || f.Citation == "" {
						t.Errorf("missing-fact finding without the rule that needs it: %+v", f)
					}
				}
			}
			if !slices.Equal(named, tc.missing) {
				t.Errorf("missing-fact findings %v, want %v", named, tc.missing)
			}
			for _, id := range tc.fires {
				if !slices.Contains(rep.Fired, id) {
					t.Errorf("%s not among the certain rules %v", id, rep.Fired)
				}
			}
			if tc.mech == MechanismUndetermined {
				for _, id := range []string{"CN.CBDF.5.4", "CN.CBDF.8", "CN.CBDF.7", "CN.SAM.4", "CN.SCM.4"} {
					if slices.Contains(rep.Fired, id) {
						t.Errorf("%s reported although it depends on a missing count", id)
					}
				}
				var buf bytes.Buffer
				if err := rep.Render(&buf, FormatText); err != nil || !strings.Contains(buf.String(), "MISSING "+tc.missing[0]) {
					t.Errorf("text report does not name the missing count: %v\n%s", err, buf.String())
				}
			}
		})
	}
}

func TestMissingCountsInventory(t *testing.T) {
	e := MustEngine(t)
	doc := `as_of: 2023-06-01
entity:
  jurisdiction: CN
  individuals_processed: 300000
  categories: [{name: contact}]
flows:
  - {name: crm, destination: US, categories: [contact], individuals_ytd: 20000}
`
	in, err := e.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Assess(in, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if mechOf(rep) != MechanismUndetermined || len(rep.Missing) == 0 || rep.Missing[0].Fact != "pi_individuals_since_prev_year" {
		t.Errorf("inventory without the previous-year count: mechanism %s, missing %+v", mechOf(rep), rep.Missing)
	}
}
