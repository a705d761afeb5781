package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/bench"
)

// TestBenchLocalBaseline runs the built binary's bench subcommand end to
// end: it starts domicile serve and the baseline server as children, runs
// a short 80/20 mix against each and writes a report with a ratio. It
// checks the report's shape, never its timings.
func TestBenchLocalBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary, "bench", "--local", "--baseline", "--duration", "1s", "--warmup", "200ms",
		"--workers", "4", "--subjects", "20", "--mix", "80/20", "--json", out)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("domicile bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, b)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Target != "baseline" || rep.Runs[1].Target != "domicile" {
		t.Fatalf("runs = %d, want baseline then domicile", len(rep.Runs))
	}
	for _, r := range rep.Runs {
		if r.Ops == 0 || len(r.Errors) != 0 {
			t.Errorf("%s: %d ops, errors %v", r.Target, r.Ops, r.Errors)
		}
		if r.Server == nil || r.Server.PeakRSS == 0 {
			t.Errorf("%s: no server CPU and memory figures", r.Target)
		}
		if r.Client != bench.ClientLean {
			t.Errorf("%s: client %q, want the lean client by default", r.Target, r.Client)
		}
		if r.CoordinatedOmission != bench.CONotCorrected {
			t.Errorf("%s: coordinated omission statement %q", r.Target, r.CoordinatedOmission)
		}
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Throughput <= 0 {
		t.Errorf("ratios = %+v, want one positive", rep.Ratios)
	}
	for _, want := range []string{"as a ratio of the baseline", "NOT corrected for coordinated omission", "p99.9", "lean client"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "req/s") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown mix", []string{"--mix", "nope"}},
		{"bad rate", []string{"--rate", "fast"}},
		{"zero workers", []string{"--workers", "0"}},
		{"remote without token", []string{"--server", "http://127.0.0.1:1", "--duration", "1s"}},
		{"unknown store", []string{"--store", "mongo"}},
		{"store of a remote server", []string{"--store", "pebble", "--server", "http://127.0.0.1:1", "--token", "t"}},
		{"unknown client", []string{"--client", "curl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			env := &cmdEnv{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
			if code := Main(t.Context(), env, append([]string{"bench"}, tt.args...)); code != 2 {
				t.Errorf("bench %v = exit %d, want 2; stderr:\n%s", tt.args, code, errb.String())
			}
		})
	}
}

// TestBenchStorePebble runs the local benchmark with the cells on Pebble:
// the deployment it serves says so, the report says so, and the store's
// commit counters reach the report. It runs with the net/http client,
// which the report names.
func TestBenchStorePebble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary, "bench", "--store", "pebble", "--duration", "1s", "--warmup", "200ms",
		"--workers", "4", "--subjects", "20", "--mix", "write", "--client", "net/http", "--json", out)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("domicile bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, b)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Ops == 0 || len(rep.Runs[0].Errors) != 0 {
		t.Fatalf("runs = %+v", rep.Runs)
	}
	if c := rep.Runs[0].Client; c != bench.ClientNetHTTP {
		t.Errorf("client %q, want net/http (--client)", c)
	}
	if st := rep.Runs[0].Server.Store; st == nil || st.Commits == 0 {
		t.Errorf("no commit counters from the Pebble store: %+v", rep.Runs[0].Server)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "pebble store") {
		t.Errorf("the report does not say the cells ran on Pebble: %q", rep.Notes)
	}
	if got := string(benchDeploymentYAML("pebble")); strings.Count(got, "store: {kind: pebble}") != 3 {
		t.Errorf("bench deployment does not put the three demo cells on Pebble:\n%s", got)
	}
}
