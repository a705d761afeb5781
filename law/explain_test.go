package law

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func findTerm(t *Term, expr string) *Term {
	if t == nil {
		return nil
	}
	if t.Expr == expr {
		return t
	}
	for _, c := range t.Children {
		if x := findTerm(c, expr); x != nil {
			return x
		}
	}
	return nil
}

// TestExplain explains why Art. 8 did or did not fire, fact by fact.
func TestExplain(t *testing.T) {
	e := MustEngine(t)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		facts   Facts
		rule    string
		fired   bool
		held    bool
		term    string
		value   any
		summary string
	}{
		{"fired at 100000", Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(100000)},
			"CN.CBDF.8", true, true, "pi_individuals_ytd >= 100000", true, "fired"},
		{"exempt below", Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(99999)},
			"CN.CBDF.8", false, false, "cn_art5_4_exempt", true, "did not hold"},
		{"not yet in force", Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_since_prev_year": int64(200000), "as_of_marker": nil},
			"CN.CBDF.7", false, true, "", nil, "takes effect only on 2024-03-22"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Facts{}
			when := at
			for k, v := range tc.facts {
				if k == "as_of_marker" {
					when = time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
					continue
				}
				f[k] = v
			}
			x, err := e.ExplainFacts(f, when, tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if x.Fired != tc.fired || x.ConditionHeld != tc.held {
				t.Errorf("fired=%v held=%v, want %v %v: %s", x.Fired, x.ConditionHeld, tc.fired, tc.held, x.Summary)
			}
			if !strings.Contains(x.Summary, tc.summary) {
				t.Errorf("summary %q lacks %q", x.Summary, tc.summary)
			}
			if tc.term != "" {
				term := findTerm(x.Condition, tc.term)
				if term == nil || term.Value != tc.value {
					t.Errorf("term %s = %+v, want value %v", tc.term, term, tc.value)
				}
			}
			// Every fact leaf says whether it was declared or defaulted.
			if term := findTerm(x.Condition, "transfers_abroad"); term == nil || term.Source != "declared" {
				t.Errorf("transfers_abroad term = %+v, want declared", term)
			}
			if term := findTerm(x.Condition, "has_important_data"); term == nil || term.Source != "default" {
				t.Errorf("has_important_data term = %+v, want default", term)
			}
			for _, f := range []Format{FormatText, FormatJSON, FormatMarkdown, FormatHTML} {
				var buf bytes.Buffer
				if err := x.Render(&buf, f); err != nil || buf.Len() == 0 {
					t.Errorf("Render(%s) = %v, %d bytes", f, err, buf.Len())
				}
			}
		})
	}
	_, err := e.ExplainFacts(Facts{}, at, "CN.NOPE")
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Errorf("Explain(unknown rule) = %v, want *InputError", err)
	}
}

// TestExplainInventory explains a rule per flow.
func TestExplainInventory(t *testing.T) {
	e := MustEngine(t)
	in, err := e.Parse(mustRead(t, "../examples/inventory/retail-two-flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Explain(in, time.Now(), "CN.CBDF.8")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Fired || len(x.Explanations) != 3 || x.Explanations[0].Flow != "entity" || x.Explanations[1].Flow != "crm-sync" {
		t.Errorf("explanation = fired %v, %d parts", x.Fired, len(x.Explanations))
	}
}
