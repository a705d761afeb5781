package law

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	testEngineOnce sync.Once
	testEngine     *Engine
	testEngineErr  error
)

// MustEngine returns a shared compiled engine or fails the test.
func MustEngine(tb testing.TB) *Engine {
	tb.Helper()
	testEngineOnce.Do(func() { testEngine, testEngineErr = New() })
	if testEngineErr != nil {
		tb.Fatalf("New() = %v", testEngineErr)
	}
	return testEngine
}

// fixedDates are the days scenarios without as_of are checked on: any day
// from 2026-01-01 must give the same outcome.
var fixedDates = []time.Time{
	time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
	time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC),
}

type scenario struct {
	ID       string         `yaml:"id"`
	Title    string         `yaml:"title"`
	AsOf     string         `yaml:"as_of"`
	Facts    map[string]any `yaml:"facts"`
	Expected struct {
		Mechanism          *string  `yaml:"mechanism"`
		Fires              []string `yaml:"fires"`
		NotFires           []string `yaml:"not_fires"`
		ObligationsInclude []string `yaml:"obligations_include"`
		ObligationsExclude []string `yaml:"obligations_exclude"`
		Warnings           []string `yaml:"warnings"` // warning codes that must appear
	} `yaml:"expected"`
}

func loadScenarios(tb testing.TB, file string) []scenario {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Scenarios []scenario `yaml:"scenarios"`
	}
	dec := yaml.NewDecoder(bytesReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	if len(doc.Scenarios) == 0 {
		tb.Fatalf("%s: no scenarios", file)
	}
	return doc.Scenarios
}

// factFile renders a scenario's facts as a fact file, so scenarios go
// through the same parser as users' files.
func factFile(tb testing.TB, s scenario) []byte {
	tb.Helper()
	m := map[string]any{}
	for k, v := range s.Facts {
		m[k] = v
	}
	if s.AsOf != "" {
		m["as_of"] = s.AsOf
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func checkScenario(t *testing.T, s scenario, rep *Report) {
	t.Helper()
	got := "null"
	if rep.Mechanism != nil {
		got = *rep.Mechanism
	}
	want := "null"
	if s.Expected.Mechanism != nil {
		want = *s.Expected.Mechanism
	}
	if got != want {
		t.Errorf("%s (%s) as of %s: mechanism = %s (by %s), want %s", s.ID, s.Title, rep.AsOf, got, rep.MechanismRule, want)
	}
	for _, id := range s.Expected.Fires {
		if !slices.Contains(rep.Fired, id) {
			t.Errorf("%s as of %s: %s did not fire; fired %v", s.ID, rep.AsOf, id, rep.Fired)
		}
	}
	for _, id := range s.Expected.NotFires {
		if slices.Contains(rep.Fired, id) {
			t.Errorf("%s as of %s: %s fired, want not", s.ID, rep.AsOf, id)
		}
	}
	for _, o := range s.Expected.ObligationsInclude {
		if !slices.Contains(rep.Obligations, o) {
			t.Errorf("%s as of %s: obligation %s missing; got %v", s.ID, rep.AsOf, o, rep.Obligations)
		}
	}
	for _, o := range s.Expected.ObligationsExclude {
		if slices.Contains(rep.Obligations, o) {
			t.Errorf("%s as of %s: obligation %s present, want absent", s.ID, rep.AsOf, o)
		}
	}
	for _, w := range s.Expected.Warnings {
		found := false
		for _, rw := range rep.Warnings {
			found = found || rw.Code == w
		}
		if !found {
			t.Errorf("%s as of %s: warning %s missing; got %v", s.ID, rep.AsOf, w, rep.Warnings)
		}
	}
}

func runScenarioFile(t *testing.T, file string) {
	e := MustEngine(t)
	for _, s := range loadScenarios(t, file) {
		t.Run(s.ID, func(t *testing.T) {
			in, err := e.Parse(factFile(t, s))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			dates := fixedDates
			if s.AsOf != "" {
				dates = fixedDates[:1] // as_of in the file wins over the clock
			}
			for _, d := range dates {
				rep, err := e.Assess(in, d)
				if err != nil {
					t.Fatalf("Assess: %v", err)
				}
				if s.AsOf != "" && rep.AsOf != s.AsOf {
					t.Fatalf("report as_of = %s, want %s", rep.AsOf, s.AsOf)
				}
				checkScenario(t, s, rep)
			}
		})
	}
}

// TestScenarios runs every worked scenario of the reference.
func TestScenarios(t *testing.T) { runScenarioFile(t, "testdata/scenarios.yaml") }

// TestBoundaries runs the N-1, N, N+1 cases of every threshold and the
// effective-date cases of the 2024 Provisions.
func TestBoundaries(t *testing.T) { runScenarioFile(t, "testdata/boundaries.yaml") }
