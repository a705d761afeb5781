package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin),
		Getenv: func(string) string { return "" },
		Now:    func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }}
	code := Main(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestAssessCLI(t *testing.T) {
	dir := t.TempDir()
	facts := filepath.Join(dir, "facts.yaml")
	if err := os.WriteFile(facts, []byte("transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 100000\nrecipient_country: US\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := "../../examples/inventory/retail-two-flows.yaml"
	tests := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		jsonMech string
	}{
		{"json fact file", "", []string{"assess", "--format", "json", facts}, 0, `"mechanism": "sc_or_certification"`, "", "sc_or_certification"},
		{"text default", "", []string{"assess", facts}, 0, "Mechanism: sc_or_certification (decided by CN.CBDF.8)", "", ""},
		{"stdin", "transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 5\n", []string{"assess", "--format", "json", "-"}, 0, "", "", "exempt"},
		// The file gives this year's count only; 2023 counted since the previous year's 1 January.
		{"as-of flag", "", []string{"assess", "--format", "json", "--as-of", "2023-06-01", facts}, 0, `"fact": "pi_individuals_since_prev_year"`, "", "undetermined"},
		{"inventory markdown", "", []string{"assess", "--format", "markdown", inv}, 0, "## Aggregation", "", ""},
		{"inventory html", "", []string{"assess", "--format", "html", inv}, 0, "<!DOCTYPE html>", "", ""},
		{"explain", "", []string{"assess", "--explain", "CN.CBDF.5.4", facts}, 0, "pi_individuals_ytd < 100000 = false", "", ""},
		{"unknown fact", "colour: red\n", []string{"assess", "-"}, 1, "", "law: colour: unknown fact", ""},
		{"negative", "pi_individuals_ytd: -3\n", []string{"assess", "-"}, 1, "", "pi_individuals_ytd: must not be negative", ""},
		{"bad as-of", "", []string{"assess", "--as-of", "2024-13-01", facts}, 1, "", "--as-of", ""},
		{"bad format", "", []string{"assess", "--format", "pdf", facts}, 1, "", "format", ""},
		{"unknown rule", "", []string{"assess", "--explain", "CN.NOPE", facts}, 1, "", "explain", ""},
		{"missing file", "", []string{"assess", filepath.Join(dir, "nope.yaml")}, 1, "", "nope.yaml", ""},
		{"no argument", "", []string{"assess"}, 2, "", "usage: domicile assess", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errs)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errs)
			}
			if tc.code != 0 && out != "" {
				t.Errorf("partial output on error: %s", out)
			}
			if tc.jsonMech != "" {
				var rep struct{ Mechanism string }
				if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Mechanism != tc.jsonMech {
					t.Errorf("mechanism = %q (%v), want %s", rep.Mechanism, err, tc.jsonMech)
				}
			}
		})
	}
	t.Run("out file", func(t *testing.T) {
		dst := filepath.Join(dir, "report.html")
		code, out, errs := runCLI(t, "", "assess", "--format", "html", "--out", dst, inv)
		if code != 0 || out != "" {
			t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errs)
		}
		b, err := os.ReadFile(dst)
		if err != nil || !bytes.Contains(b, []byte("Obligations report")) {
			t.Errorf("report file: %v", err)
		}
	})
}

const scBandFacts = "transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 150000\nsensitive_pi_individuals_ytd: 0\npi_individuals_total: 400000\nrecipient_country: US\n"

// counselRuleDoc is a rule counsel adds in a bundle.
const counselRuleDoc = `rules:
  - id: CN.COUNSEL.1
    jurisdiction: CN
    topic: transfer_mechanism
    instrument: "Counsel's memorandum"
    article: "para. 1"
    effective_from: "2026-01-01"
    condition: "cn_transfer && transfer_contains_pi"
    consequence: >-
      Record the transfer in the group's register.
    effects: {obligations: [retain_sharing_records_3y]}
    confidence: secondary
    sources: [NONE]
`

type changeJSON struct {
	From, To        string
	MechanismBefore *string `json:"mechanism_before"`
	MechanismAfter  *string `json:"mechanism_after"`
	Changes         []struct {
		Date, Rule, Change string
		Obligations        []string `json:"obligations"`
		Gained             []string `json:"obligations_gained"`
	}
	RuleSet struct{ Version, Digest string } `json:"rule_set"`
}

func TestAssessChangesCLI(t *testing.T) {
	code, out, errs := runCLI(t, scBandFacts, "assess", "--changes", "2025-12-15..2026-01-05", "--format", "json", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var c changeJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range c.Changes {
		got = append(got, x.Date+" "+x.Rule+" "+x.Change)
	}
	if strings.Join(got, "; ") != "2026-01-01 CN.CERT.2025 starts; 2026-01-01 CN.CSL.2025.AMEND starts" || c.RuleSet.Version != "2026-12-07" {
		t.Errorf("changes %v, rule set %v", got, c.RuleSet)
	}
	for _, tc := range []struct{ args, want string }{
		{"2026-01-05..2025-12-15", "--changes"},
		{"2025-12-15", "--changes"},
		{"2025-12-15..2026-02-30", "--changes.to"},
	} {
		code, out, errs := runCLI(t, scBandFacts, "assess", "--changes", tc.args, "-")
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("--changes %s: exit %d, stderr %q, stdout %q", tc.args, code, errs, out)
		}
	}
	code, out, _ = runCLI(t, scBandFacts, "assess", "--changes", "2025-12-15..2026-01-05", "--format", "markdown", "-")
	if code != 0 || !strings.Contains(out, "| 2026-01-01 | `CN.CERT.2025` | starts |") {
		t.Errorf("markdown: %s", out)
	}
	// The observed fault: only the year-to-date count, on a date that
	// needs the count since the previous year's 1 January.
	code, out, _ = runCLI(t, "as_of: 2023-06-01\ntransfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 40000\npi_individuals_total: 400000\n", "assess", "-")
	if code != 0 || !strings.Contains(out, "Mechanism: undetermined") || !strings.Contains(out, "MISSING pi_individuals_since_prev_year") {
		t.Errorf("missing count: exit %d\n%s", code, out)
	}
}

// makeBundle exports the embedded rules, adds counsel's rule, and signs a
// bundle with a new key named name, through the commands counsel runs.
func makeBundle(t *testing.T, dir, name string) (bundle, vkey string) {
	t.Helper()
	rules := filepath.Join(dir, "rules-"+name)
	if code, _, errs := runCLI(t, "", "rules", "export", rules); code != 0 {
		t.Fatalf("rules export: %s", errs)
	}
	voc := filepath.Join(rules, "vocabulary.yaml")
	b, _ := os.ReadFile(voc)
	os.WriteFile(voc, bytes.Replace(b, []byte(`version: "2026-12-07"`), []byte(`version: "2027-01-15"`), 1), 0o644)
	os.WriteFile(filepath.Join(rules, "rules", "zz_counsel.yaml"), []byte(counselRuleDoc), 0o644)
	skey := filepath.Join(dir, name+".key")
	code, out, errs := runCLI(t, "", "rules", "keygen", "--out", skey, name)
	if code != 0 {
		t.Fatalf("rules keygen: %s", errs)
	}
	vkey = strings.TrimSpace(out)
	bundle = filepath.Join(dir, name+".bundle")
	if code, _, errs := runCLI(t, "", "rules", "bundle", "--key", skey, "--out", bundle, rules); code != 0 {
		t.Fatalf("rules bundle: %s", errs)
	}
	return bundle, vkey
}

func TestRulesBundleCLI(t *testing.T) {
	dir := t.TempDir()
	bundle, vkey := makeBundle(t, dir, "counsel.example")
	other, otherKey := makeBundle(t, dir, "intruder.example")
	_ = otherKey
	code, out, errs := runCLI(t, "", "rules", "check", "--key", vkey, bundle)
	if code != 0 || !strings.Contains(out, "rule CN.COUNSEL.1 added") || !strings.Contains(out, "signed by counsel.example") || !strings.Contains(out, "version 2027-01-15") {
		t.Errorf("rules check: exit %d %s\n%s", code, errs, out)
	}
	code, out, errs = runCLI(t, scBandFacts, "assess", "--rules", bundle, "--rules-key", vkey, "--format", "json", "-")
	if code != 0 || !strings.Contains(out, `"CN.COUNSEL.1"`) || !strings.Contains(out, `"version": "2027-01-15"`) {
		t.Errorf("assess --rules: exit %d %s\n%s", code, errs, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rules", "check", "--key", vkey, other}, "intruder.example"},
		{[]string{"rules", "check", bundle}, "no verifier keys"},
		{[]string{"assess", "--rules", other, "--rules-key", vkey, "-"}, "intruder.example"},
		{[]string{"rules", "check", "--key", "nonsense", bundle}, "verifier key"},
	} {
		code, out, errs := runCLI(t, scBandFacts, tc.args...)
		if code == 0 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errs)
		}
	}
}

// End to end through the real binary: serve with a signed bundle the
// deployment lists, ask what changes over new year with --changes --live,
// and a second server whose bundle is signed by another key keeps the
// embedded rules.
func TestAssessChangesLiveE2E(t *testing.T) {
	dir := t.TempDir()
	bundle, vkey := makeBundle(t, dir, "counsel.example")
	other, _ := makeBundle(t, dir, "intruder.example")
	def, err := os.ReadFile("../../deploy/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	depFile := filepath.Join(dir, "deployment.yaml")
	os.WriteFile(depFile, append(def, []byte(fmt.Sprintf("\nrules:\n  path: %s\n  keys: [%q]\n", filepath.Base(bundle), vkey))...), 0o644)

	s := startServer(t, "", "--deployment", depFile)
	out, err := runBinary(t, "assess", "--live", "--changes", "2025-12-15..2026-01-05", "--format", "json", "--server", s.URL, "--token", s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	var c changeJSON
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c.From != "2025-12-15" || c.To != "2026-01-05" || c.RuleSet.Version != "2027-01-15" {
		t.Errorf("change report %+v", c)
	}
	found := false
	for _, x := range c.Changes {
		found = found || (x.Rule == "CN.COUNSEL.1" && x.Date == "2026-01-01" && x.Change == "starts")
	}
	if !found {
		t.Errorf("the served bundle's rule does not start on 2026-01-01: %+v", c.Changes)
	}
	out, err = runBinary(t, "assess", "--live", "--changes", "2025-12-15..2026-01-05", "--server", s.URL, "--token", s.Admin)
	if err != nil || !strings.Contains(string(out), "Live facts of") || !strings.Contains(string(out), "CN.COUNSEL.1 starts") {
		t.Errorf("text: %v\n%s", err, out)
	}

	os.WriteFile(depFile, append(def, []byte(fmt.Sprintf("\nrules:\n  path: %s\n  keys: [%q]\n", other, vkey))...), 0o644)
	s2 := startServer(t, "", "--deployment", depFile)
	out, err = runBinary(t, "assess", "--live", "--changes", "2025-12-15..2026-01-05", "--format", "json", "--server", s2.URL, "--token", s2.Admin)
	if err != nil {
		t.Fatal(err)
	}
	c = changeJSON{}
	json.Unmarshal(out, &c)
	if c.RuleSet.Version != "2026-12-07" {
		t.Errorf("a bundle signed by another key was served: %+v", c.RuleSet)
	}
	if log := s2.out.String(); !strings.Contains(log, "rule bundle refused") || !strings.Contains(log, "intruder.example") {
		t.Errorf("refusal not logged with the key:\n%s", log)
	}
}
