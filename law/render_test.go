package law

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (run go test -update after checking the change):\n%s", name, firstDiff(string(got), string(want)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + x + "\nwant: " + y
		}
	}
	return ""
}

// TestRenderGolden renders a fact-file report and an inventory report in
// every format.
func TestRenderGolden(t *testing.T) {
	e := MustEngine(t)
	inputs := map[string][]byte{
		"s01":       []byte("transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 85000\nrecipient_country: US\npi_individuals_total: 400000\n"),
		"inventory": mustRead(t, "../examples/inventory/retail-two-flows.yaml"),
		"multi":     mustRead(t, "../examples/inventory/multi-jurisdiction.yaml"),
	}
	for name, data := range inputs {
		in, err := e.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []Format{FormatText, FormatJSON, FormatMarkdown, FormatHTML} {
			var buf bytes.Buffer
			if err := rep.Render(&buf, f); err != nil {
				t.Fatalf("Render(%s): %v", f, err)
			}
			golden(t, name+"."+string(f), buf.Bytes())
		}
	}
}

// TestJSONContract checks the keys the README contract requires.
func TestJSONContract(t *testing.T) {
	e := MustEngine(t)
	rep, err := e.Decide(Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(100000)}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Render(&buf, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mechanism", "fired", "obligations", "findings", "as_of", "warnings", "review"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	f := m["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"rule", "citation", "consequence", "confidence", "effective_from"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding lacks %q", k)
		}
	}
	if m["mechanism"] != "sc_or_certification" {
		t.Errorf("mechanism = %v", m["mechanism"])
	}
	// A non-transfer case reports mechanism null.
	rep, _ = e.Decide(Facts{"prc_authority_request": "intelligence"}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	buf.Reset()
	rep.Render(&buf, FormatJSON)
	if !strings.Contains(buf.String(), `"mechanism": null`) {
		t.Errorf("mechanism not null for a non-transfer case")
	}
}

// TestHTMLSelfContained: the HTML report loads nothing from elsewhere.
func TestHTMLSelfContained(t *testing.T) {
	e := MustEngine(t)
	rep, _ := e.Decide(Facts{"transfers_abroad": true, "transfer_contains_pi": true, "recipient_country": "US"}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	if err := rep.Render(&buf, FormatHTML); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, bad := range []string{"<script", "<link", "src=", "http://", "https://"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML report contains %q", bad)
		}
	}
	if !strings.Contains(s, "@media print") {
		t.Errorf("HTML report has no print style")
	}
}
