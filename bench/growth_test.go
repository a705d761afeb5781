package bench

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"domicile"
)

func TestPlotIsWellFormedSVG(t *testing.T) {
	p := &Plot{Title: "t <&>", XLabel: "subjects", YLabel: "req/s", LogX: true, Series: []Series{
		{Name: "writes/s", Points: [][2]float64{{1e4, 9000}, {1e5, 8500}, {1e6, 7000}}},
		{Name: "reads/s", Points: [][2]float64{{1e4, 12000}, {1e5, 11000}, {1e6, 9000}}},
	}}
	var b bytes.Buffer
	if err := p.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
			}
			break
		}
	}
	for _, want := range []string{"<polyline", "writes/s", "reads/s", "t &lt;&amp;&gt;", ">1M<", ">10k<"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (domicile (x) y) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0")
	cpu, err := parseProcStat(stat)
	if err != nil || cpu != 3.0 {
		t.Errorf("parseProcStat = %v, %v, want 3 (300 ticks)", cpu, err)
	}
	rss, hwm := parseProcStatus([]byte("Name:\tdomicile\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if rss != 1<<20 || hwm != 2<<20 {
		t.Errorf("parseProcStatus = %d, %d, want %d, %d", rss, hwm, 1<<20, 2<<20)
	}
	s, proc, err := parseMetrics(strings.NewReader("# HELP x\nprocess_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 1.048576e+08\ngo_goroutines 7\n" +
		"domicile_store_commits_total{cell=\"a b\"} 10\ndomicile_store_commits_total{cell=\"c\"} 30\n" +
		"domicile_store_committed_batches_total{cell=\"a b\"} 200\ndomicile_store_writer_busy_seconds_total{cell=\"c\"} 1.5\n" +
		"domicile_store_commit_seconds_total{cell=\"c\"} 0.25\n"))
	if err != nil || !proc || s.CPUSeconds != 12.5 || s.RSS != 104857600 {
		t.Errorf("parseMetrics = %+v, %v, %v", s, proc, err)
	}
	want := domicile.CommitStats{Groups: 40, Batches: 200, Busy: 1500 * time.Millisecond, Commit: 250 * time.Millisecond}
	if !s.HaveStore || s.Store != want {
		t.Errorf("store counters %+v (have %v), want %+v", s.Store, s.HaveStore, want)
	}
	if _, proc, _ := parseMetrics(strings.NewReader("go_goroutines 7\n")); proc {
		t.Error("parseMetrics found process figures in metrics without them")
	}
	c := storeCost(domicile.CommitStats{Groups: 10, Batches: 50, Busy: time.Second, Commit: 500 * time.Millisecond},
		domicile.CommitStats{Groups: 110, Batches: 1050, Busy: 3 * time.Second, Commit: 1500 * time.Millisecond}, 4)
	if c.Commits != 100 || c.BatchesPerCommit != 10 || c.WriterBusy != 0.5 || c.BusyPerCommit != 20 || c.CommitPerCommit != 10 {
		t.Errorf("storeCost = %+v", c)
	}
}
