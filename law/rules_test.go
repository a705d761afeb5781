package law

import (
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestRuleDocuments loads every embedded rule document and checks what the
// loader and compiler promise: ids unique, effects in the vocabulary, every
// name a condition reads declared, dates well formed, sources known.
func TestRuleDocuments(t *testing.T) {
	e := MustEngine(t)
	rules := e.Rules()
	if len(rules) < 88 {
		t.Fatalf("Rules() has %d rules, want at least 88", len(rules))
	}
	v := e.Vocabulary()
	ids := map[string]bool{}
	docs := map[string]bool{}
	for _, r := range rules {
		if ids[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		ids[r.ID] = true
		docs[r.Document] = true
		if r.Effects.Mechanism != "" && !slices.Contains(v.Effects.Mechanisms, r.Effects.Mechanism) {
			t.Errorf("%s: mechanism %q not in vocabulary", r.ID, r.Effects.Mechanism)
		}
		for _, o := range r.Effects.Obligations {
			if !slices.Contains(v.Effects.Obligations, o) {
				t.Errorf("%s: obligation %q not in vocabulary", r.ID, o)
			}
		}
		if !validDate(r.EffectiveFrom) || (r.EffectiveUntil != "" && !validDate(r.EffectiveUntil)) {
			t.Errorf("%s: malformed dates %q..%q", r.ID, r.EffectiveFrom, r.EffectiveUntil)
		}
		for _, id := range identifiers(e.byID[r.ID].ast) {
			if _, fact := e.factDefs[id]; !fact && e.derivedByName(id) == nil {
				t.Errorf("%s: condition reads unknown name %s", r.ID, id)
			}
		}
	}
	// The reference's rule ids must all be present.
	for _, id := range []string{"CN.PIPL.38", "CN.CBDF.7", "CN.CBDF.8", "CN.CBDF.5.4", "EU.GDPR.46", "US.DOJ.202.PROHIBITED", "CN.SAM.4", "CN.SCM.4"} {
		if !ids[id] {
			t.Errorf("rule %s missing", id)
		}
	}
	if len(docs) < 20 {
		t.Errorf("rules come from %d documents, want one per instrument or jurisdiction", len(docs))
	}
	for _, th := range v.Thresholds {
		if _, ok := e.Rule(th.Rule); !ok {
			t.Errorf("threshold %s %d names unknown rule %s", th.Fact, th.Value, th.Rule)
		}
	}
	// Every derived predicate is dated and its versions do not overlap (checked by the loader).
	for _, d := range v.Derived {
		for _, dv := range d.Versions {
			if !validDate(dv.EffectiveFrom) {
				t.Errorf("derived %s: effective_from %q", d.Name, dv.EffectiveFrom)
			}
		}
	}
}

// TestRulesReachable fires every rule from its example in testdata.
func TestRulesReachable(t *testing.T) {
	e := MustEngine(t)
	data, err := os.ReadFile("testdata/reachability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Examples map[string]struct {
			AsOf  string         `yaml:"as_of"`
			Facts map[string]any `yaml:"facts"`
		} `yaml:"examples"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.Rules() {
		ex, ok := doc.Examples[r.ID]
		if !ok {
			t.Errorf("rule %s has no example in testdata/reachability.yaml", r.ID)
			continue
		}
		in, err := e.Parse(factFile(t, scenario{AsOf: ex.AsOf, Facts: ex.Facts}))
		if err != nil {
			t.Errorf("%s: example does not parse: %v", r.ID, err)
			continue
		}
		rep, err := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Errorf("%s: %v", r.ID, err)
			continue
		}
		if !slices.Contains(rep.Fired, r.ID) {
			t.Errorf("%s: its example does not fire it (fired %v)", r.ID, rep.Fired)
		}
	}
	for id := range doc.Examples {
		if _, ok := e.Rule(id); !ok {
			t.Errorf("example for unknown rule %s", id)
		}
	}
}

// TestBrokenDocumentsRejected checks that a rule naming an unknown fact, a
// type error, an unknown effect, a bad date or a duplicate id fails New.
func TestBrokenDocumentsRejected(t *testing.T) {
	good := `rules:
  - id: XX.TEST.1
    jurisdiction: CN
    topic: t
    instrument: "Test"
    article: "Art. 1"
    effective_from: "2024-01-01"
    condition: "transfers_abroad"
    consequence: "c"
    effects: {mechanism: exempt}
    confidence: confirmed
    sources: [LRB]
`
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown fact", `"transfers_abroad"`, `"transfers_abraod"`, "undeclared reference"},
		{"type error", `"transfers_abroad"`, `"pi_individuals_ytd == \"many\""`, "no matching overload"},
		{"not bool", `"transfers_abroad"`, `"pi_individuals_ytd"`, "want bool"},
		{"unknown mechanism", "mechanism: exempt", "mechanism: teleport", "not in the vocabulary"},
		{"unknown obligation", "{mechanism: exempt}", "{obligations: [dance]}", "not in the vocabulary"},
		{"bad date", `"2024-01-01"`, `"2024-02-30"`, "not YYYY-MM-DD"},
		{"until before from", `effective_from: "2024-01-01"`, "effective_from: \"2024-01-01\"\n    effective_until: \"2023-01-01\"", "on or after"},
		{"bad confidence", "confidence: confirmed", "confidence: sure", "confidence"},
		{"unknown source", "[LRB]", "[BLOG]", "unknown source"},
		{"unknown field", "topic: t", "topic: t\n    colour: red", "not found"},
		{"malformed id", "XX.TEST.1", "test one", "malformed id"},
		{"bad due", "confidence: confirmed", "deadline: \"soon\"\n    due: 2 weeks\n    confidence: confirmed", "due \"2 weeks\""},
		{"due zero", "confidence: confirmed", "deadline: \"now\"\n    due: 0h\n    confidence: confirmed", "due \"0h\""},
		{"due without deadline", "confidence: confirmed", "due: 10wd\n    confidence: confirmed", "without a deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.old, tc.new, 1)
			if doc == good {
				t.Fatalf("replacement %q not applied", tc.old)
			}
			_, err := newEngine(vocabularyYAML, fstest.MapFS{"rules/a.yaml": {Data: []byte(doc)}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("newEngine = %v, want error containing %q", err, tc.want)
			}
		})
	}
	t.Run("duplicate id", func(t *testing.T) {
		_, err := newEngine(vocabularyYAML, fstest.MapFS{"rules/a.yaml": {Data: []byte(good)}, "rules/b.yaml": {Data: []byte(good)}})
		if err == nil || !strings.Contains(err.Error(), "duplicate id") {
			t.Errorf("newEngine = %v, want duplicate id", err)
		}
	})
	t.Run("good", func(t *testing.T) {
		if _, err := newEngine(vocabularyYAML, fstest.MapFS{"rules/a.yaml": {Data: []byte(good)}}); err != nil {
			t.Errorf("newEngine(good) = %v", err)
		}
	})
}
