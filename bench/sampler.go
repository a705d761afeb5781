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
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ProcSampler reads a local process's CPU time and memory from /proc.
type ProcSampler struct{ PID int }

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
	var s Sample
	c := m.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return s, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("bench: %s: %s", m.URL, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseMetrics reads the two process metrics from Prometheus text format.
func parseMetrics(r io.Reader) (Sample, error) {
	var s Sample
	var haveCPU, haveRSS bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			v, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
			if err == nil {
				s.CPUSeconds, haveCPU = v, true
			}
		case "process_resident_memory_bytes":
			v, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
			if err == nil {
				s.RSS, haveRSS = int64(v), true
			}
		}
	}
	if !haveCPU || !haveRSS {
		return s, fmt.Errorf("bench: metrics lack process_cpu_seconds_total or process_resident_memory_bytes")
	}
	return s, sc.Err()
}
