package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ProcSampler reads a local process's CPU time and memory from /proc,
// and, if Metrics is set, its cell stores' commit counters from that
// /metrics URL.
type ProcSampler struct {
	PID     int
	Metrics string
	HTTP    *http.Client
}

// Source names /proc/<pid>.
func (p ProcSampler) Source() string { return fmt.Sprintf("/proc/%d", p.PID) }

// Sample reads /proc/<pid>/stat (utime + stime) and /proc/<pid>/status
// (VmRSS, VmHWM).
func (p ProcSampler) Sample(ctx context.Context) (Sample, error) {
	var s Sample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return s, err
	}
	s.CPUSeconds, err = parseProcStat(stat)
	if err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return s, err
	}
	s.RSS, s.PeakRSS = parseProcStatus(status)
	if p.Metrics != "" {
		// Without the counters the report only lacks its store line.
		if m, _, err := fetchMetrics(ctx, p.HTTP, p.Metrics); err == nil {
			s.Store, s.HaveStore = m.Store, m.HaveStore
		}
	}
	return s, nil
}

// parseProcStat returns utime+stime in seconds from a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so
// fields are counted after its last ')'.
func parseProcStat(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: malformed /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: malformed /proc stat")
	}
	return float64(u+s) / clockTicks, nil
}

// parseProcStatus returns VmRSS and VmHWM in bytes.
func parseProcStatus(b []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// MetricsSampler reads process_cpu_seconds_total and
// process_resident_memory_bytes from a server's Prometheus /metrics.
type MetricsSampler struct {
	URL  string
	HTTP *http.Client
}

// Source names the metrics URL.
func (m MetricsSampler) Source() string { return m.URL }

// Sample fetches and parses the metrics.
func (m MetricsSampler) Sample(ctx context.Context) (Sample, error) {
	s, haveProc, err := fetchMetrics(ctx, m.HTTP, m.URL)
	if err != nil {
		return s, err
	}
	if !haveProc {
		return s, fmt.Errorf("bench: metrics lack process_cpu_seconds_total or process_resident_memory_bytes")
	}
	return s, nil
}

func fetchMetrics(ctx context.Context, c *http.Client, url string) (Sample, bool, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Sample{}, false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Sample{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, false, fmt.Errorf("bench: %s: %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseMetrics reads, from Prometheus text format, the process's CPU and
// resident set (haveProc says whether both were there) and the cell
// stores' commit counters, summed over their labels.
func parseMetrics(r io.Reader) (s Sample, haveProc bool, err error) {
	var haveCPU, haveRSS bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces.
		var name, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest = line[:i], line[j+1:]
		} else {
			var ok bool
			if name, rest, ok = strings.Cut(line, " "); !ok {
				continue
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			s.CPUSeconds, haveCPU = v, true
		case "process_resident_memory_bytes":
			s.RSS, haveRSS = int64(v), true
		case "domicile_store_commits_total":
			s.Store.Groups += uint64(v)
			s.HaveStore = true
		case "domicile_store_committed_batches_total":
			s.Store.Batches += uint64(v)
		case "domicile_store_writer_busy_seconds_total":
			s.Store.Busy += time.Duration(v * 1e9)
		case "domicile_store_commit_seconds_total":
			s.Store.Commit += time.Duration(v * 1e9)
		}
	}
	return s, haveCPU && haveRSS, sc.Err()
}
