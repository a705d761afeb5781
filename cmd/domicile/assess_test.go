package main

import (
	"bytes"
	"context"
	"encoding/json"
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
		{"as-of flag", "", []string{"assess", "--format", "json", "--as-of", "2023-06-01", facts}, 0, `"as_of": "2023-06-01"`, "", "sc_or_certification"},
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
