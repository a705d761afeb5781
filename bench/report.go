package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what domicile bench prints and writes with --json: every run,
// and domicile as a ratio of the baseline where both ran the same mix.
type Report struct {
	Started time.Time `json:"started"`
	Host    Host      `json:"host"`
	// Command is the command line that reproduces the report.
	Command string     `json:"command"`
	Runs    []*Result  `json:"runs"`
	Ratios  []*Ratio   `json:"ratios,omitempty"`
	Notes   []string   `json:"notes,omitempty"`
	Growth  []GrowthPt `json:"growth,omitempty"`
}

// Host describes the machine that ran the load.
type Host struct {
	Name       string `json:"name"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
}

// ThisHost describes the current machine.
func ThisHost() Host {
	return Host{Name: hostname(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
}

// Ratio is a target's run as a fraction of the baseline's run of the same
// mix: throughput ratios above 1 and latency ratios below 1 favour the
// target.
type Ratio struct {
	Mix        string  `json:"mix"`
	Target     string  `json:"target"`
	Baseline   string  `json:"baseline"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	// CPUPerOp is the target's server CPU per request over the baseline's.
	CPUPerOp float64 `json:"cpu_per_op,omitempty"`
}

// Compare returns target's run as a ratio of base's.
func Compare(target, base *Result) *Ratio {
	r := &Ratio{Mix: target.Mix, Target: target.Target, Baseline: base.Target}
	r.Throughput = div(target.Throughput, base.Throughput)
	r.P50 = div(target.Latency.P50, base.Latency.P50)
	r.P99 = div(target.Latency.P99, base.Latency.P99)
	if target.Server != nil && base.Server != nil {
		r.CPUPerOp = div(target.Server.CPUPerOp, base.Server.CPUPerOp)
	}
	return r
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as text tables.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "domicile bench on %s (%d CPUs, %s)\n", r.Host.Name, r.Host.CPUs, r.Host.GoVersion)
	if r.Command != "" {
		fmt.Fprintf(&b, "command: %s\n", r.Command)
	}
	for _, run := range r.Runs {
		fmt.Fprintf(&b, "\n%s: mix %s, %s, %d workers", run.Target, run.Mix, run.Mode, run.Workers)
		if run.Rate > 0 {
			fmt.Fprintf(&b, ", %.0f req/s offered", run.Rate)
		}
		fmt.Fprintf(&b, ", %gs after %gs warm-up, %d-byte records", run.DurationSeconds, run.WarmupSeconds, run.RecordBytes)
		if run.ObjectBytes > 0 {
			fmt.Fprintf(&b, ", %s objects", fmtBytes(int64(run.ObjectBytes)))
		}
		fmt.Fprintf(&b, ", %d subjects, %s client\n", run.Subjects, run.Client)
		fmt.Fprintf(&b, "  latency %s\n", run.CoordinatedOmission)
		if run.Behind != "" {
			fmt.Fprintf(&b, "  behind schedule: %s\n", run.Behind)
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmix\top\tok\treq/s\tMB/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tsrv CPU/req\tsrv peak RSS\tclient CPU\t")
	for _, run := range r.Runs {
		nerr := int64(0)
		for _, n := range run.Errors {
			nerr += n
		}
		cpu, rss := "-", "-"
		if run.Server != nil {
			cpu = fmt.Sprintf("%.0fµs", run.Server.CPUPerOp)
			rss = fmtBytes(run.Server.PeakRSS)
		}
		row := func(op string, ops int64, tput, bps float64, l Latency, errs string, cpu, rss, ccpu string) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", run.Target, run.Mix, op, ops, tput, bps/1e6,
				fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), errs, cpu, rss, ccpu)
		}
		row("all", run.Ops, run.Throughput, run.BytesPerSecond, run.Latency, fmt.Sprint(nerr), cpu, rss, fmt.Sprintf("%.1fs", run.ClientCPUSeconds))
		if len(run.PerOp) > 1 {
			for _, op := range run.PerOp {
				row(op.Name, op.Ops, op.Throughput, op.BytesPerSecond, op.Latency, "", "", "", "")
			}
		}
	}
	tw.Flush()
	if len(r.Ratios) > 0 {
		b.WriteString("\nas a ratio of the baseline (same mix, same machine, same run):\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tmix\tthroughput\tp50\tp99\tsrv CPU/req\t")
		for _, ra := range r.Ratios {
			fmt.Fprintf(tw, "%s / %s\t%s\t%.2f\t%.2f×\t%.2f×\t%.2f×\t\n", ra.Target, ra.Baseline, ra.Mix, ra.Throughput, ra.P50, ra.P99, ra.CPUPerOp)
		}
		tw.Flush()
	}
	var stores []*Result
	for _, run := range r.Runs {
		if run.Server != nil && run.Server.Store != nil {
			stores = append(stores, run)
		}
	}
	if len(stores) > 0 {
		b.WriteString("\nstore writers over the measured window (their commit counters in /metrics):\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tmix\tcommits/s\trequests/commit\twriter busy\tms/commit\tof it committing\t")
		for _, run := range stores {
			st := run.Server.Store
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.0f%%\t%.2f\t%.2f\t\n", run.Target, run.Mix, st.Commits/run.DurationSeconds,
				st.BatchesPerCommit, st.WriterBusy*100, st.BusyPerCommit, st.CommitPerCommit)
		}
		tw.Flush()
	}
	var errLines []string
	for _, run := range r.Runs {
		for k, n := range run.Errors {
			errLines = append(errLines, fmt.Sprintf("  %s %s: %s × %d", run.Target, run.Mix, k, n))
		}
	}
	if len(errLines) > 0 {
		sort.Strings(errLines)
		b.WriteString("\nerrors by kind:\n" + strings.Join(errLines, "\n") + "\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	if len(r.Growth) > 0 {
		b.WriteString("\ngrowth:\n")
		writeGrowthTable(&b, r.Growth)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMs(v float64) string { return fmtDur(time.Duration(v * 1e6)) }

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
