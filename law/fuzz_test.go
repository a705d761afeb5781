package law

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// roundTrip checks the canonical form: Parse(Format(in)) equals in, and
// formatting again gives the same bytes.
func roundTrip(t *testing.T, e *Engine, data []byte) {
	in, err := e.Parse(data)
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("Parse error is not an *InputError: %v", err)
		}
		return
	}
	canon, err := in.Format()
	if err != nil {
		t.Fatalf("Format: %v", err)
	}
	again, err := e.Parse(canon)
	if err != nil {
		t.Fatalf("Parse(Format(x)) = %v\n%s", err, canon)
	}
	again.Warnings, in.Warnings = nil, nil
	if !reflect.DeepEqual(in, again) {
		t.Fatalf("Parse(Format(x)) differs:\n%#v\n%#v", in, again)
	}
	canon2, err := again.Format()
	if err != nil || !bytes.Equal(canon, canon2) {
		t.Fatalf("Format output different from input:\n%s\n%s", canon, canon2)
	}
	// Assessing what parsed must not panic; errors must be input errors.
	if _, err := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("Assess error is not an *InputError: %v", err)
		}
	}
}

func seedDir(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParseFacts fuzzes the fact-file parser.
func FuzzParseFacts(f *testing.F) {
	e := MustEngine(f)
	for _, s := range loadScenarios(f, "testdata/scenarios.yaml")[:10] {
		f.Add(factFile(f, s))
	}
	f.Add([]byte(`{"transfers_abroad": true, "pi_individuals_ytd": 100000, "as_of": "2024-03-22"}`))
	f.Add([]byte("recipient_country: XX\n"))
	f.Add([]byte("pi_individuals_ytd: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, e, data) })
}

// FuzzParseInventory fuzzes the inventory parser.
func FuzzParseInventory(f *testing.F) {
	e := MustEngine(f)
	seedDir(f, "../examples/inventory/*.yaml")
	f.Add([]byte(`{"entity": {"categories": [{"name": "c"}]}, "flows": [{"name": "f", "destination": "US", "categories": ["c"], "individuals_ytd": 5}]}`))
	f.Add([]byte("entity: {name: x, facts: {eu_safeguard: sccs}}\nflows: []\n"))
	f.Add([]byte("entity: {categories: [{name: c}]}\nflows:\n  - {name: f, source: EU, storage: {jurisdiction: US, facts: {eu_adequacy_recipient: true}}, access: [CN, {jurisdiction: SG}], categories: [c]}\n"))
	f.Add([]byte("entity: {categories: [{name: c}]}\nflows:\n  - {name: f, storage: {jurisdiction: JP, facts: {}}, access: [], categories: [c]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, e, data) })
}
