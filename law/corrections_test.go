package law

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The corrections of 2026-12-07: each has a case on both sides.

func onDay(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func decideAt(t *testing.T, f Facts, date string) *Report {
	t.Helper()
	rep, err := MustEngine(t).Decide(f, onDay(date))
	if err != nil {
		t.Fatalf("Decide(%v, %s): %v", f, date, err)
	}
	return rep
}

func mechOf(r *Report) string {
	if r.Mechanism == nil {
		return "null"
	}
	return *r.Mechanism
}

func TestCorrectionFTZNotForCIIO(t *testing.T) {
	base := Facts{"transfers_abroad": true, "transfer_contains_pi": true, "in_ftz": true, "ftz_negative_list_hit": false,
		"pi_individuals_ytd": int64(50000), "sensitive_pi_individuals_ytd": int64(0), "pi_individuals_total": int64(80000), "recipient_country": "DE"}
	for _, tc := range []struct {
		ciio    bool
		mech    string
		fires   []string
		notFire []string
	}{
		{false, "exempt", []string{"CN.CBDF.6"}, []string{"CN.CBDF.7"}},
		{true, "security_assessment", []string{"CN.CBDF.7"}, []string{"CN.CBDF.6"}},
	} {
		f := Facts{"is_ciio": tc.ciio}
		for k, v := range base {
			f[k] = v
		}
		for _, date := range []string{"2024-03-22", "2026-12-07"} {
			rep := decideAt(t, f, date)
			if mechOf(rep) != tc.mech {
				t.Errorf("ciio=%v as of %s: mechanism %s, want %s", tc.ciio, date, mechOf(rep), tc.mech)
			}
			for _, id := range tc.fires {
				if !slices.Contains(rep.Fired, id) {
					t.Errorf("ciio=%v as of %s: %s did not fire (%v)", tc.ciio, date, id, rep.Fired)
				}
			}
			for _, id := range tc.notFire {
				if slices.Contains(rep.Fired, id) {
					t.Errorf("ciio=%v as of %s: %s fired", tc.ciio, date, id)
				}
			}
		}
	}
}

func TestCorrectionGDPR49Occasional(t *testing.T) {
	standalone := map[string]bool{"explicit_consent": true, "public_interest": true, "vital_interests": true, "public_register": true}
	var derogations []string
	for _, f := range MustEngine(t).Vocabulary().Facts {
		if f.Name == "eu_art49_derogation" {
			derogations = f.Values
		}
	}
	if len(derogations) != 8 {
		t.Fatalf("eu_art49_derogation values = %v", derogations)
	}
	for _, d := range derogations {
		for _, occasional := range []bool{false, true} {
			f := Facts{"source_jurisdiction": "EU", "transfers_abroad": true, "transfer_contains_pi": true, "recipient_country": "CN",
				"processor_in_prc": false, "eu_art49_derogation": d, "eu_transfer_occasional": occasional}
			rep := decideAt(t, f, "2026-12-07")
			carried := d != "none" && (occasional || standalone[d])
			got49, got46 := slices.Contains(rep.Fired, "EU.GDPR.49"), slices.Contains(rep.Fired, "EU.GDPR.46")
			if got49 != carried || got46 == carried {
				t.Errorf("%s occasional=%v: EU.GDPR.49 fired %v, EU.GDPR.46 fired %v; want 49=%v 46=%v", d, occasional, got49, got46, carried, !carried)
			}
			if !carried && !(slices.Contains(rep.Obligations, "eu_sccs") && slices.Contains(rep.Obligations, "eu_tia")) {
				t.Errorf("%s occasional=%v: systematic transfer without eu_sccs and eu_tia: %v", d, occasional, rep.Obligations)
			}
			if carried && mechOf(rep) != "exempt" {
				t.Errorf("%s occasional=%v: mechanism %s, want exempt", d, occasional, mechOf(rep))
			}
		}
	}
	// A group that centralises staff records abroad under the contract
	// derogation: systematic, so safeguards and a TIA.
	rep := decideAt(t, Facts{"source_jurisdiction": "EU", "transfers_abroad": true, "transfer_contains_pi": true, "recipient_country": "US",
		"processor_in_prc": false, "eu_art49_derogation": "contract"}, "2026-12-07")
	if slices.Contains(rep.Fired, "EU.GDPR.49") || !slices.Contains(rep.Fired, "EU.GDPR.46") {
		t.Errorf("systematic contract transfer: fired %v", rep.Fired)
	}
}

func TestCorrectionUSExemption(t *testing.T) {
	var values []string
	for _, f := range MustEngine(t).Vocabulary().Facts {
		if f.Name == "us_exemption" {
			values = f.Values
		}
	}
	if len(values) != 12 || values[0] != "none" {
		t.Fatalf("us_exemption values = %v", values)
	}
	for _, v := range values {
		for _, tc := range []struct {
			name     string
			facts    Facts
			blocking string // the rule that applies without an exemption
			mech     string
		}{
			{"restricted", Facts{"us_transaction_type": "vendor", "us_bulk_category": "covered_identifiers", "us_bulk_count": int64(150000)}, "US.DOJ.202.RESTRICTED", "legal_review"},
			{"prohibited", Facts{"us_transaction_type": "data_brokerage", "us_bulk_category": "health", "us_bulk_count": int64(10001)}, "US.DOJ.202.PROHIBITED", "prohibited"},
		} {
			f := Facts{"source_jurisdiction": "US", "us_person": true, "us_counterparty_covered": true, "processor_in_prc": false, "us_exemption": v}
			for k, x := range tc.facts {
				f[k] = x
			}
			rep := decideAt(t, f, "2026-12-07")
			exempt := v != "none"
			if slices.Contains(rep.Fired, tc.blocking) == exempt || slices.Contains(rep.Fired, "US.DOJ.202.EXEMPT") != exempt {
				t.Errorf("%s, us_exemption=%s: fired %v", tc.name, v, rep.Fired)
			}
			want := tc.mech
			if exempt {
				want = "exempt"
			}
			if mechOf(rep) != want {
				t.Errorf("%s, us_exemption=%s: mechanism %s, want %s", tc.name, v, mechOf(rep), want)
			}
		}
	}
	// § 202.506(b)(2): access to satisfy a country-of-concern government's
	// request is never exempt under the corporate-group exemption.
	f := Facts{"source_jurisdiction": "US", "us_person": true, "us_counterparty_covered": true, "processor_in_prc": false,
		"us_transaction_type": "employment", "us_bulk_category": "covered_identifiers", "us_bulk_count": int64(150000), "us_exemption": "corporate_group"}
	if rep := decideAt(t, f, "2026-12-07"); !slices.Contains(rep.Fired, "US.DOJ.202.EXEMPT") {
		t.Errorf("Example 1 (corporate group, ordinary operations): fired %v", rep.Fired)
	}
	f["foreign_authority_request"] = true
	if rep := decideAt(t, f, "2026-12-07"); slices.Contains(rep.Fired, "US.DOJ.202.EXEMPT") || !slices.Contains(rep.Fired, "US.DOJ.202.RESTRICTED") {
		t.Errorf("corporate group answering a government request: fired %v", rep.Fired)
	}
	// The rule starts with the Data Security Program.
	delete(f, "foreign_authority_request")
	if rep := decideAt(t, f, "2025-04-07"); slices.Contains(rep.Fired, "US.DOJ.202.EXEMPT") {
		t.Errorf("2025-04-07: US.DOJ.202.EXEMPT fired before the program started")
	}
	if rep := decideAt(t, f, "2025-04-08"); !slices.Contains(rep.Fired, "US.DOJ.202.EXEMPT") {
		t.Errorf("2025-04-08: US.DOJ.202.EXEMPT did not fire")
	}
}

func TestCorrectionDPDP16Commencement(t *testing.T) {
	f := Facts{"source_jurisdiction": "IN", "transfers_abroad": true, "transfer_contains_pi": true, "recipient_country": "US", "processor_in_prc": false}
	for _, tc := range []struct {
		date   string
		fires  bool
		status string
	}{
		{"2023-08-11", false, "not yet in force"},
		{"2026-12-07", false, "not yet in force"},
		{"2027-05-12", false, "not yet in force"},
		{"2027-05-13", true, ""},
		{"2027-05-14", true, ""},
	} {
		rep := decideAt(t, f, tc.date)
		if slices.Contains(rep.Fired, "IN.DPDP.16") != tc.fires {
			t.Errorf("%s: IN.DPDP.16 fired = %v, want %v", tc.date, !tc.fires, tc.fires)
		}
		if !tc.fires {
			found := false
			for _, d := range rep.NotInForce {
				found = found || (d.Rule == "IN.DPDP.16" && d.Status == tc.status && d.EffectiveFrom == "2027-05-13")
			}
			if !found {
				t.Errorf("%s: IN.DPDP.16 not listed as %s from 2027-05-13: %v", tc.date, tc.status, rep.NotInForce)
			}
		}
	}
}

func TestNewFactsInput(t *testing.T) {
	e := MustEngine(t)
	for _, tc := range []struct {
		doc, field string
	}{
		{"us_exemption: diplomatic\n", "us_exemption"},
		{"us_exemption: 3\n", "us_exemption"},
		{"eu_transfer_occasional: sometimes\n", "eu_transfer_occasional"},
	} {
		_, err := e.Parse([]byte(tc.doc))
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("Parse(%q) = %v, want an error naming %s", tc.doc, err, tc.field)
		}
		if err != nil && !strings.Contains(err.Error(), tc.field) {
			t.Errorf("message %q does not name %s", err, tc.field)
		}
	}
	in, err := e.Parse([]byte("source_jurisdiction: US\nus_exemption: corporate_group\neu_transfer_occasional: true\n"))
	if err != nil || in.Facts["us_exemption"] != "corporate_group" || in.Facts["eu_transfer_occasional"] != true {
		t.Errorf("Parse of the new facts: %v %v", in, err)
	}
}
