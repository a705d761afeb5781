package bench

import (
	"context"
	"domicile/client"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"domicile"
	"domicile/httpapi"
)

// Statements of what a run's latencies mean; every report carries one.
const (
	CONotCorrected = "NOT corrected for coordinated omission: fixed workers measure each request from when it was sent, " +
		"so a stalled server delays the requests that would have been sent and hides the stall from the percentiles; " +
		"use --rate for corrected latencies"
	COCorrected = "corrected for coordinated omission: fixed arrival rate, each request measured from its intended start time"
)

// Names of the load generator's HTTP clients, as reports give them.
const (
	ClientLean    = "lean"
	ClientNetHTTP = "net/http"
)

// Config configures one run against one target.
type Config struct {
	// Target names the system driven ("domicile", "baseline").
	Target string
	// Client sends the requests. Its HTTP client should keep as many
	// idle connections per host as there are workers (see NewHTTPClient).
	Client *httpapi.Client
	// Lean, if set, sends the mix's Lean operations (the record reads
	// and writes) instead of Client, over one connection per worker;
	// Client still runs Prepare and the other operations.
	Lean *LeanClient
	Mix  *Mix
	// Workers is the number of concurrent workers: the load itself in
	// fixed-worker mode, the bound on requests in flight at a fixed rate.
	Workers int
	// Rate, if positive, is the fixed arrival rate in requests per second.
	Rate float64
	// Warmup runs the load without recording it; Duration is measured.
	Warmup, Duration time.Duration
	// Plan is what workers share; Prepare fills it for the mix.
	Plan *Plan
	// Sampler, if set, reads the server's CPU time and memory.
	Sampler Sampler
	// Progress, if set, receives a progress line once per second.
	Progress io.Writer
	// Seed seeds the workers' random choices.
	Seed uint64
}

// OpResult is one operation's share of a run.
type OpResult struct {
	Name           string  `json:"name"`
	Ops            int64   `json:"ops"`
	Throughput     float64 `json:"ops_per_second"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	Latency        Latency `json:"latency_ms"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Summarize returns the latency summary of h.
func Summarize(h *Histogram) Latency {
	return Latency{P50: ms(h.Quantile(.50)), P90: ms(h.Quantile(.90)), P99: ms(h.Quantile(.99)), P999: ms(h.Quantile(.999)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// Result is the outcome of one run.
type Result struct {
	Target string `json:"target"`
	Mix    string `json:"mix"`
	// Mode is "fixed-workers" or "fixed-rate".
	Mode    string  `json:"mode"`
	Workers int     `json:"workers"`
	Rate    float64 `json:"rate,omitempty"`
	// CoordinatedOmission states whether the latencies are corrected.
	CoordinatedOmission string  `json:"coordinated_omission"`
	WarmupSeconds       float64 `json:"warmup_seconds"`
	DurationSeconds     float64 `json:"duration_seconds"`
	RecordBytes         int     `json:"record_bytes"`
	ObjectBytes         int     `json:"object_bytes,omitempty"`
	Subjects            int     `json:"subjects"`
	// Client names the load generator's HTTP client: "lean" when the
	// mix's operations went through a LeanClient, "net/http" when they
	// went through net/http (object operations always do).
	Client string `json:"client"`
	// Ops counts requests that succeeded in the measured window.
	Ops            int64      `json:"ops"`
	Throughput     float64    `json:"ops_per_second"`
	BytesPerSecond float64    `json:"bytes_per_second"`
	Latency        Latency    `json:"latency_ms"`
	PerOp          []OpResult `json:"per_op"`
	// Errors counts failed requests by kind: "status 503 unavailable",
	// "transport: connection reset", ...
	Errors map[string]int64 `json:"errors"`
	// Server is the server's cost over the measured window, if known.
	Server *ServerCost `json:"server,omitempty"`
	// ClientCPUSeconds is the load generator's own CPU time over the
	// measured window: on a small machine it competes with the server.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// Behind is set when a fixed-rate run could not start requests on
	// schedule (too few workers or a saturated server).
	Behind string `json:"behind,omitempty"`
}

// ServerCost is what a server spent over the measured window.
type ServerCost struct {
	// Source says where the figures come from ("/proc/1234", "/metrics").
	Source     string  `json:"source"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerOp is CPU microseconds per successful request.
	CPUPerOp float64 `json:"cpu_us_per_op"`
	// PeakRSS is the largest resident set seen (bytes); for a local
	// process, its VmHWM.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Store is what the server's cell store writers did over the window,
	// from their commit counters in /metrics (summed over cells), if the
	// server exports them.
	Store *StoreCost `json:"store,omitempty"`
}

// StoreCost is what a server's store writers did over the measured
// window.
type StoreCost struct {
	Commits float64 `json:"commits"`
	// BatchesPerCommit is how many writing requests shared a commit.
	BatchesPerCommit float64 `json:"batches_per_commit"`
	// WriterBusy is the share of the window the writers spent in
	// transactions (per cell: 1 means one writer never idle).
	WriterBusy float64 `json:"writer_busy"`
	// BusyPerCommit and CommitPerCommit are milliseconds per transaction,
	// in all and in the commit itself (WAL write and fsync).
	BusyPerCommit   float64 `json:"busy_ms_per_commit"`
	CommitPerCommit float64 `json:"commit_ms_per_commit"`
}

// Sampler reads a server's cumulative CPU time and resident set.
type Sampler interface {
	Sample(ctx context.Context) (Sample, error)
	Source() string
}

// Sample is one reading of a Sampler.
type Sample struct {
	CPUSeconds float64
	RSS        int64
	// PeakRSS is the process's own high-water mark, if the source has it.
	PeakRSS int64
	// Store holds the cell stores' commit counters (summed), if HaveStore.
	Store     domicile.CommitStats
	HaveStore bool
}

// NewHTTPClient returns an HTTP client for n concurrent workers: it keeps
// n idle connections per host, so that a run does not measure
// connection setup.
func NewHTTPClient(n int) *http.Client {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        n + 16,
		MaxIdleConnsPerHost: n + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: t}
}

type opStats struct {
	hist  Histogram
	bytes atomic.Int64
}

type recorder struct {
	ops    []opStats
	all    Histogram
	mu     sync.Mutex
	errors map[string]int64
	nerr   atomic.Int64
	done   atomic.Int64 // every finished request, warm-up included
}

func (r *recorder) fail(kind string) {
	r.nerr.Add(1)
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// ErrorKind classifies a request error: "status 503 unavailable" for a
// problem answer, "transport: ..." otherwise.
func ErrorKind(err error) string {
	var pe *client.ProblemError
	if errors.As(err, &pe) {
		return fmt.Sprintf("status %d %s", pe.Status, pe.Code)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport: connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "transport: connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport: unexpected EOF"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "transport: no local port"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return "other: " + s
}

// Run prepares cfg.Plan on the target, runs the warm-up and the measured
// window, and returns the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("bench: workers must be at least 1")
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: duration must be positive")
	}
	mix := cfg.Mix
	total := 0
	for _, op := range mix.Ops {
		total += op.Weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("bench: mix %s has no weighted operations", mix.Name)
	}
	if mix.Prepare != nil {
		fmt.Fprintf(logw(cfg.Progress), "bench %s: preparing %s\n", cfg.Target, mix.Name)
		if err := mix.Prepare(ctx, cfg.Client, cfg.Plan); err != nil {
			return nil, err
		}
	}
	rec := &recorder{ops: make([]opStats, len(mix.Ops)), errors: map[string]int64{}}

	start := time.Now()
	mStart := start.Add(cfg.Warmup)
	mEnd := mStart.Add(cfg.Duration)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
		if interval <= 0 {
			interval = 1
		}
	}
	var seq atomic.Int64
	var lateMax atomic.Int64 // largest delay between intended and actual start
	// runCtx ends requests still in flight well after the window.
	runCtx, cancel := context.WithDeadline(ctx, mEnd.Add(30*time.Second))
	defer cancel()

	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &Worker{Plan: cfg.Plan, Rand: mrand.New(mrand.NewPCG(cfg.Seed, uint64(w)))}
			if cfg.Lean != nil {
				wk.Lean = cfg.Lean.Conn()
				defer wk.Lean.Close()
			}
			for runCtx.Err() == nil {
				var intended time.Time
				if interval > 0 {
					i := seq.Add(1) - 1
					intended = start.Add(time.Duration(i) * interval)
					if !intended.Before(mEnd) {
						return
					}
					if d := time.Until(intended); d > 0 {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
							return
						}
					}
				}
				now := time.Now()
				if interval == 0 {
					if !now.Before(mEnd) {
						return
					}
					intended = now
				} else if late := now.Sub(intended); late > time.Duration(lateMax.Load()) {
					lateMax.Store(int64(late))
				}
				k := pick(mix.Ops, total, wk.Rand)
				n, err := mix.Ops[k].Do(runCtx, cfg.Client, wk)
				lat := time.Since(intended)
				rec.done.Add(1)
				if intended.Before(mStart) {
					continue
				}
				if err != nil {
					if runCtx.Err() == nil {
						rec.fail(ErrorKind(err))
					}
					continue
				}
				rec.ops[k].hist.Record(lat)
				rec.ops[k].bytes.Add(n)
				rec.all.Record(lat)
			}
		}()
	}

	var (
		cpu0, cpu1 float64
		ok0, ok1   bool
		st0, st1   Sample
		peak       int64
		src        string
	)
	// sample is called by the progress goroutine and this one; peakMu
	// guards peak.
	var peakMu sync.Mutex
	sample := func() (Sample, bool) {
		if cfg.Sampler == nil {
			return Sample{}, false
		}
		s, err := cfg.Sampler.Sample(ctx)
		if err != nil {
			return s, false
		}
		peakMu.Lock()
		peak = max(peak, s.RSS, s.PeakRSS)
		peakMu.Unlock()
		return s, true
	}
	var client0 time.Duration
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		measuring := false
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				if !measuring && now.After(mStart.Add(time.Second/2)) {
					measuring = true
				}
				s, ok := sample()
				d := rec.done.Load()
				phase := "warm-up"
				if measuring {
					phase = "measure"
				}
				line := fmt.Sprintf("bench %s %s %s %4.0fs  %7d req/s  ok %d  errors %d  p99 %s",
					cfg.Target, mix.Name, phase, now.Sub(start).Seconds(), d-last, rec.all.Count(), rec.nerr.Load(), fmtDur(rec.all.Quantile(.99)))
				if ok {
					line += fmt.Sprintf("  server rss %s", fmtBytes(s.RSS))
				}
				last = d
				if cfg.Progress != nil {
					fmt.Fprintln(cfg.Progress, line)
				}
			}
		}
	}()

	// Take the server's and our own CPU at the window's edges.
	sleepUntil(ctx, mStart)
	if s, ok := sample(); ok {
		cpu0, ok0, st0 = s.CPUSeconds, true, s
		src = cfg.Sampler.Source()
	}
	client0 = selfCPU()
	sleepUntil(ctx, mEnd)
	if s, ok := sample(); ok {
		cpu1, ok1, st1 = s.CPUSeconds, true, s
	}
	clientCPU := selfCPU() - client0
	wg.Wait()
	close(stop)
	<-progressDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sample() // after the progress goroutine ended: peak is ours alone

	res := &Result{
		Target: cfg.Target, Mix: mix.Name, Mode: "fixed-workers", Workers: cfg.Workers,
		CoordinatedOmission: CONotCorrected,
		WarmupSeconds:       cfg.Warmup.Seconds(), DurationSeconds: cfg.Duration.Seconds(),
		RecordBytes: len(cfg.Plan.Record), ObjectBytes: mix.ObjectSize(), Subjects: len(cfg.Plan.Subjects), Client: ClientNetHTTP,
		Ops: rec.all.Count(), Latency: Summarize(&rec.all), Errors: rec.errors,
		ClientCPUSeconds: clientCPU.Seconds(),
	}
	if mix.ObjectSize() == 0 {
		res.ObjectBytes = 0
	}
	if cfg.Lean != nil {
		res.Client = mix.clientName()
	}
	if cfg.Rate > 0 {
		res.Mode, res.Rate, res.CoordinatedOmission = "fixed-rate", cfg.Rate, COCorrected
		if late := time.Duration(lateMax.Load()); late > 100*time.Millisecond {
			res.Behind = fmt.Sprintf("requests started up to %s after their intended time (all %d workers busy): "+
				"the latencies include that wait; the server did not sustain %.0f/s", fmtDur(late), cfg.Workers, cfg.Rate)
		}
	}
	secs := cfg.Duration.Seconds()
	res.Throughput = float64(res.Ops) / secs
	var bytes int64
	for i, op := range mix.Ops {
		st := &rec.ops[i]
		b := st.bytes.Load()
		bytes += b
		res.PerOp = append(res.PerOp, OpResult{Name: op.Name, Ops: st.hist.Count(), Throughput: float64(st.hist.Count()) / secs,
			BytesPerSecond: float64(b) / secs, Latency: Summarize(&st.hist)})
	}
	res.BytesPerSecond = float64(bytes) / secs
	if ok0 && ok1 {
		res.Server = &ServerCost{Source: src, CPUSeconds: cpu1 - cpu0, PeakRSS: peak}
		if res.Ops > 0 {
			res.Server.CPUPerOp = (cpu1 - cpu0) / float64(res.Ops) * 1e6
		}
		if st0.HaveStore && st1.HaveStore {
			res.Server.Store = storeCost(st0.Store, st1.Store, secs)
		}
	}
	return res, nil
}

// storeCost is what the store writers did between two readings of their
// counters, secs apart.
func storeCost(a, b domicile.CommitStats, secs float64) *StoreCost {
	c := &StoreCost{Commits: float64(b.Groups - a.Groups)}
	busy, commit := (b.Busy - a.Busy).Seconds(), (b.Commit - a.Commit).Seconds()
	if secs > 0 {
		c.WriterBusy = busy / secs
	}
	if c.Commits > 0 {
		c.BatchesPerCommit = float64(b.Batches-a.Batches) / c.Commits
		c.BusyPerCommit = busy / c.Commits * 1e3
		c.CommitPerCommit = commit / c.Commits * 1e3
	}
	return c
}

func pick(ops []Op, total int, r *mrand.Rand) int {
	if len(ops) == 1 {
		return 0
	}
	n := r.IntN(total)
	for i, op := range ops {
		if n < op.Weight {
			return i
		}
		n -= op.Weight
	}
	return len(ops) - 1
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func logw(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// selfCPU returns this process's CPU time (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostname is used in reports.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
