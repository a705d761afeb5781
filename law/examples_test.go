package law

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The fact files in examples/facts, referenced from doc/law.md, give the
// outcome their comments promise.
func TestExampleFactFiles(t *testing.T) {
	e := MustEngine(t)
	want := map[string]string{
		"small-volume-exemption.yaml":      "exempt",
		"standard-contract-band.yaml":      "sc_or_certification",
		"security-assessment-band.yaml":    "security_assessment",
		"hr-transfer.yaml":                 "exempt",
		"gba-transfer.yaml":                "gba_standard_contract",
		"eu-flow.yaml":                     "null",
		"previous-year-count-missing.yaml": MechanismUndetermined,
	}
	files, _ := filepath.Glob("../examples/facts/*.yaml")
	if len(files) != len(want) {
		t.Errorf("examples/facts has %d files, the test knows %d", len(files), len(want))
	}
	for _, f := range files {
		in, err := e.Parse(mustRead(t, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		rep, err := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if got := mechOf(rep); got != want[filepath.Base(f)] {
			t.Errorf("%s: mechanism %s, want %s", f, got, want[filepath.Base(f)])
		}
	}
	if _, err := os.Stat("../examples/facts/eu-flow.yaml"); err == nil {
		in, _ := e.Parse(mustRead(t, "../examples/facts/eu-flow.yaml"))
		rep, _ := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if !contains(rep.Fired, "EU.GDPR.46") || !contains(rep.Obligations, "eu_tia") {
			t.Errorf("eu-flow: fired %v obligations %v", rep.Fired, rep.Obligations)
		}
	}
}
