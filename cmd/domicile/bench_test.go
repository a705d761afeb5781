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
	rep, stdout, stderr := runBenchReport(t, "--local", "--baseline", "--duration", "1s", "--warmup", "200ms",
		"--workers", "4", "--subjects", "20", "--mix", "80/20")
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
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "req/s") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
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
	rep, _, _ := runBenchReport(t, "--store", "pebble", "--duration", "1s", "--warmup", "200ms",
		"--workers", "4", "--subjects", "20", "--mix", "write", "--client", "net/http")
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

// TestBenchDefaultStore runs the local benchmark without --store: the
// cells take the embedded default on bench's new data directory, Pebble,
// and the report says so.
func TestBenchDefaultStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	rep, _, stderr := runBenchReport(t, "--duration", "500ms", "--warmup", "100ms",
		"--workers", "4", "--subjects", "20", "--mix", "write")
	if len(rep.Runs) != 1 || rep.Runs[0].Ops == 0 || len(rep.Runs[0].Errors) != 0 {
		t.Fatalf("runs = %+v", rep.Runs)
	}
	if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, "cells on the pebble store (the embedded default") {
		t.Errorf("the report does not say the cells ran on Pebble, the default: %q", rep.Notes)
	}
	if !strings.Contains(stderr, "cells on pebble") {
		t.Errorf("bench's progress does not name the cells' store:\n%s", stderr)
	}
}

// TestBenchGrowth runs the growth benchmark at a small size on each store:
// the preload writes, offline and in batches, what registering subjects
// and writing their records through the service writes, so domicile
// serve then finds every preloaded subject, reads its records and writes
// more without an error; the log holds exactly the events preloaded, and
// `domicile check` verifies it against the cell's signed checkpoint. It
// checks the report's shape, never its timings.
func TestBenchGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	for _, store := range []string{"sqlite", "pebble"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			dir, plots := filepath.Join(t.TempDir(), "data"), t.TempDir()
			// From 300 to 2,600 subjects is more than one preload batch,
			// the last one partial; so is the log's growth to 30,000.
			// Each window is a second: in a 300 ms one, a write stalled
			// by the machine (the whole suite under -race on 2 CPUs)
			// once left a point with no write at all.
			rep, _, _ := runBenchReport(t, "--growth", "--store", store, "--growth-subjects", "300,2600", "--growth-log", "30000",
				"--growth-dir", dir, "--plots", plots, "--duration", "1s", "--warmup", "100ms", "--workers", "4", "--subjects", "200")
			// Three events per preloaded subject (its registration and two
			// records), counted before the point's measurement, whose reads
			// and writes the next point's count includes.
			want := []struct {
				axis             string
				subjects, events int64
				exact            bool
			}{{"subjects", 300, 900, true}, {"subjects", 2600, 7800, false}, {"log", 2600, 30000, true}}
			if len(rep.Growth) != len(want) {
				t.Fatalf("growth points = %+v, want %d", rep.Growth, len(want))
			}
			for i, w := range want {
				p := rep.Growth[i]
				if p.Axis != w.axis || p.Subjects != w.subjects || p.LogEntries < w.events || (w.exact && p.LogEntries != w.events) {
					t.Errorf("point %d = %s, %d subjects, %d log entries; want %s, %d, %d (exactly: %v)", i, p.Axis, p.Subjects, p.LogEntries, w.axis, w.subjects, w.events, w.exact)
				}
				if p.WritesPerSecond <= 0 || p.ReadsPerSecond <= 0 || p.DiskBytes <= 0 || p.ServerRSS <= 0 || p.ProofMicros <= 0 || p.ServeStart <= 0 {
					t.Errorf("point %d lacks a figure: %+v", i, p)
				}
			}
			if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, "cells on the "+store+" store (--store)") {
				t.Errorf("the report does not say the cells ran on %s: %q", store, rep.Notes)
			}
			for _, name := range []string{"growth-subjects-throughput.svg", "growth-log-disk.svg"} {
				if _, err := os.Stat(filepath.Join(plots, name)); err != nil {
					t.Errorf("plot: %v", err)
				}
			}
			depFile := filepath.Join(t.TempDir(), "deployment.yaml")
			if err := os.WriteFile(depFile, benchDeploymentYAML(store), 0o600); err != nil {
				t.Fatal(err)
			}
			check := exec.Command(binary, "check", "--data", dir, "--deployment", depFile, "--cell", "cn-gz1")
			if b, err := check.CombinedOutput(); err != nil {
				t.Errorf("domicile check of the preloaded cell: %v\n%s", err, b)
			}
		})
	}
}

// runBenchReport runs the binary's bench subcommand with args, its JSON
// report written to a file of the test's own (--json), and returns the
// report and what the command printed. A run that fails, or a report that
// does not parse, fails the test.
func runBenchReport(t *testing.T, args ...string) (rep bench.Report, stdout, stderr string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary, append(append([]string{"bench"}, args...), "--json", out)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("domicile bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, b)
	}
	return rep, o.String(), e.String()
}
