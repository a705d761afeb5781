package law_test

import (
	"testing"

	"domicile/law"
)

// TestThresholdsBySource: a volume threshold binds only data leaving the
// jurisdiction whose rule sets it, and every threshold names a rule of
// the set (else it would bind no one, silently).
func TestThresholdsBySource(t *testing.T) {
	e, err := law.New()
	if err != nil {
		t.Fatal(err)
	}
	all := e.Vocabulary().Thresholds
	for _, th := range all {
		if _, ok := e.Rule(th.Rule); !ok {
			t.Errorf("threshold %s ≥ %d names rule %s, which is not in the rule set", th.Fact, th.Value, th.Rule)
		}
	}
	cn := e.Thresholds("CN")
	if len(cn) != len(all) {
		t.Errorf("Thresholds(CN) = %d thresholds, want all %d (every threshold of the embedded set is China's)", len(cn), len(all))
	}
	for _, src := range []string{"EU", "US", "", "XX"} {
		if got := e.Thresholds(src); len(got) != 0 {
			t.Errorf("Thresholds(%q) = %v, want none", src, got)
		}
	}
}
