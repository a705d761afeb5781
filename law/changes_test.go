package law

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const scBand = "transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 150000\nsensitive_pi_individuals_ytd: 0\npi_individuals_total: 400000\nrecipient_country: US\n"

func changesOf(t *testing.T, doc string, from, to string) *ChangeReport {
	t.Helper()
	e := MustEngine(t)
	in, err := e.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Changes(in, DateRange{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChangesNewYear2026(t *testing.T) {
	c := changesOf(t, scBand, "2025-12-15", "2026-01-05")
	if mech(c.MechanismBefore) != "sc_or_certification" || mech(c.MechanismAfter) != "sc_or_certification" {
		t.Errorf("mechanism %s -> %s", mech(c.MechanismBefore), mech(c.MechanismAfter))
	}
	var got []string
	for _, x := range c.Changes {
		got = append(got, x.Date+" "+x.Rule+" "+x.Change)
		if len(x.Obligations) == 0 || x.Citation == "" {
			t.Errorf("%s: no obligations or citation: %+v", x.Rule, x)
		}
	}
	want := []string{"2026-01-01 CN.CERT.2025 starts", "2026-01-01 CN.CSL.2025.AMEND starts"}
	if !slices.Equal(got, want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	if !slices.Equal(c.Changes[0].ObligationsGained, []string{"cert_apply", "cert_validity_3y"}) {
		t.Errorf("certification gains %v", c.Changes[0].ObligationsGained)
	}
	if c.RuleSet != MustEngine(t).RuleSet() || !strings.HasPrefix(c.RuleSet.Digest, "sha256:") {
		t.Errorf("rule set %v", c.RuleSet)
	}
	for _, f := range []Format{FormatText, FormatMarkdown, FormatHTML, FormatJSON} {
		var buf bytes.Buffer
		if err := c.Render(&buf, f); err != nil || !strings.Contains(buf.String(), "CN.CERT.2025") || !strings.Contains(buf.String(), "2026-01-01") {
			t.Errorf("%s: %v\n%s", f, err, buf.String())
		}
	}
}

func TestChangesRegime2024(t *testing.T) {
	doc := "transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 50000\npi_individuals_since_prev_year: 50000\npi_individuals_total: 400000\nrecipient_country: US\n"
	c := changesOf(t, doc, "2024-03-01", "2024-04-01")
	if mech(c.MechanismBefore) != "sc_or_certification" || mech(c.MechanismAfter) != "exempt" {
		t.Errorf("mechanism %s -> %s", mech(c.MechanismBefore), mech(c.MechanismAfter))
	}
	var starts, stops []string
	for _, x := range c.Changes {
		if x.Date != "2024-03-22" {
			t.Errorf("change on %s: %+v", x.Date, x)
		}
		if x.Change == "starts" {
			starts = append(starts, x.Rule)
		} else {
			stops = append(stops, x.Rule)
		}
	}
	if !slices.Contains(starts, "CN.CBDF.5.4") || !slices.Contains(stops, "CN.SCM.4") {
		t.Errorf("starts %v, stops %v", starts, stops)
	}
}

func TestChangesDPDP(t *testing.T) {
	c := changesOf(t, "source_jurisdiction: IN\ntransfers_abroad: true\ntransfer_contains_pi: true\nrecipient_country: US\nprocessor_in_prc: false\n", "2027-01-01", "2027-12-31")
	if len(c.Changes) != 1 || c.Changes[0].Rule != "IN.DPDP.16" || c.Changes[0].Date != "2027-05-13" || c.Changes[0].Change != "starts" {
		t.Errorf("changes %+v", c.Changes)
	}
	if mech(c.MechanismBefore) != "none" || mech(c.MechanismAfter) != "exempt" {
		t.Errorf("mechanism %s -> %s", mech(c.MechanismBefore), mech(c.MechanismAfter))
	}
}

func TestChangesBadRange(t *testing.T) {
	e := MustEngine(t)
	in, _ := e.Parse([]byte(scBand))
	for _, r := range []DateRange{{"2026-01-02", "2026-01-01"}, {"2026-02-30", "2026-03-01"}, {"", "2026-01-01"}} {
		_, err := e.Changes(in, r)
		var ie *InputError
		if !errors.As(err, &ie) || !strings.HasPrefix(ie.Field, "changes") {
			t.Errorf("Changes(%v) = %v", r, err)
		}
	}
	for _, s := range []string{"2026-01-01", "2026-01-01..", "x..2026-01-01", "2026-01-05..2026-01-01"} {
		if _, err := ParseDateRange("--changes", s); err == nil {
			t.Errorf("ParseDateRange(%q) accepted", s)
		}
	}
	if r, err := ParseDateRange("--changes", "2025-12-15..2026-01-05"); err != nil || r.From != "2025-12-15" || r.To != "2026-01-05" {
		t.Errorf("ParseDateRange = %v, %v", r, err)
	}
	if _, err := e.Parse([]byte(scBand + "changes: {from: 2026-01-01, until: 2026-02-01}\n")); err == nil {
		t.Error("changes with an unknown field accepted")
	}
	in, err := e.Parse([]byte(scBand + "changes: {from: 2025-12-15, to: 2026-01-05}\n"))
	if err != nil || in.Changes == nil || in.Changes.To != "2026-01-05" {
		t.Errorf("changes in a fact file: %v %v", in, err)
	}
}

// Property: starting from the rules fired on From and applying every change
// in order gives the rules fired on To; changes are in date order, inside
// the range, and each day's report agrees.
func TestChangesProperty(t *testing.T) {
	e := MustEngine(t)
	rng := rand.New(rand.NewPCG(1, 2))
	scen := loadScenarios(t, "testdata/scenarios.yaml")
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 40; i++ {
		s := scen[rng.IntN(len(scen))]
		s.AsOf = ""
		in, err := e.Parse(factFile(t, s))
		if err != nil {
			t.Fatal(err)
		}
		a := start.AddDate(0, 0, rng.IntN(365*7))
		b := a.AddDate(0, 0, rng.IntN(365*3))
		r := DateRange{From: dateOf(a), To: dateOf(b)}
		c, err := e.Changes(in, r)
		if err != nil {
			t.Fatal(err)
		}
		at := func(d string) []string {
			cp := *in
			cp.AsOf = d
			rep, err := e.Assess(&cp, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			return rep.Fired
		}
		fired := map[string]bool{}
		for _, id := range at(r.From) {
			fired[id] = true
		}
		prev := r.From
		for _, x := range c.Changes {
			if x.Date <= r.From || x.Date > r.To || x.Date < prev {
				t.Fatalf("%s %v: change out of order or range: %+v", s.ID, r, x)
			}
			prev = x.Date
			if x.Change == "starts" {
				fired[x.Rule] = true
			} else {
				delete(fired, x.Rule)
			}
		}
		var got []string
		for id := range fired {
			got = append(got, id)
		}
		want := at(r.To)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s %v: replaying the changes gives %v, the report on %s %v", s.ID, r, got, r.To, want)
		}
	}
}
