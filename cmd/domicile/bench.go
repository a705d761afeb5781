package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"domicile/client"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"domicile"
	"domicile/bench"
	"domicile/bench/baseline"
	"domicile/cell"
	"domicile/deploy"
	"domicile/envelope"
	"domicile/httpapi"
	"domicile/keyring"
	"domicile/kms"
	"domicile/merkle"
	"domicile/sqlite"
)

// benchCommand is `domicile bench`.
var benchCommand = command{name: "bench", summary: "load-test a deployment against a raw baseline", run: runBench}

// benchFlags are the options of domicile bench.
type benchFlags struct {
	workers      int
	rate         float64
	warmup       time.Duration
	duration     time.Duration
	size         int
	mix          string
	subjects     int
	server       string
	token        string
	jurisdiction string
	local        bool
	baseline     bool
	jsonPath     string
	binary       string
	keep         bool
	growth       bool
	growthSubj   string
	growthLog    string
	growthDir    string
	plots        string
	store        string
	client       string
}

// runBench is domicile bench. With "baseline-server" as its first
// argument it is instead the raw baseline server that bench starts as a
// child process (a hidden mode: it is not a tool for users).
func runBench(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) > 0 && args[0] == "baseline-server" {
		return runBaselineServer(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "bench")
	var f benchFlags
	fs.IntVar(&f.workers, "workers", 16, "concurrent workers (fixed-worker mode), or the bound on requests in flight with --rate")
	rate := fs.String("rate", "", "fixed arrival rate, e.g. 5000/s: latencies corrected for coordinated omission")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up before measuring")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured duration")
	fs.IntVar(&f.size, "size", 1024, "record payload bytes")
	fs.StringVar(&f.mix, "mix", "80/20", "workload: "+strings.Join(bench.MixNames(), ", "))
	fs.IntVar(&f.subjects, "subjects", 1000, "subjects to spread the load over")
	fs.StringVar(&f.server, "server", "", "drive this remote deployment (with --token) instead of a local one")
	fs.StringVar(&f.token, "token", "", "app token (purpose service) for --server; default $DOMICILE_TOKEN")
	fs.StringVar(&f.jurisdiction, "jurisdiction", "CN", "home jurisdiction of the subjects created (CN: all in cell cn-gz1)")
	fs.BoolVar(&f.local, "local", true, "start domicile serve on 127.0.0.1:0 with a temporary data directory (unless --server)")
	fs.BoolVar(&f.baseline, "baseline", false, "also run the mix against the raw baseline server, and report domicile as a ratio of it")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&f.binary, "binary", "", "domicile binary for local servers (default: this executable)")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary data directories")
	fs.BoolVar(&f.growth, "growth", false, "measure growth: preload subjects and log entries offline, measure at each point, write SVG plots")
	fs.StringVar(&f.growthSubj, "growth-subjects", "10000,30000,100000,300000,1000000", "subject counts for --growth")
	fs.StringVar(&f.growthLog, "growth-log", "1000000,2500000,5000000,10000000", "log sizes for --growth (0 to skip)")
	fs.StringVar(&f.growthDir, "growth-dir", "", "data directory for --growth (default: a temporary one)")
	fs.StringVar(&f.plots, "plots", "doc", "directory for --growth's SVG plots")
	fs.StringVar(&f.store, "store", "", "store kind of the local deployment's cells: sqlite or pebble (default: the embedded default, which is pebble on a new data directory and follows what --growth-dir holds)")
	fs.StringVar(&f.client, "client", bench.ClientLean, "the generator's HTTP client for the record mixes: lean (its own HTTP/1.1 client, light on CPU) or net/http; "+
		"object mixes and https:// servers always use net/http")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.client != bench.ClientLean && f.client != bench.ClientNetHTTP {
		fmt.Fprintf(env.Stderr, "domicile bench: --client %q: want lean or net/http\n", f.client)
		return errUsage
	}
	if *rate != "" {
		r, err := strconv.ParseFloat(strings.TrimSuffix(*rate, "/s"), 64)
		if err != nil || r <= 0 {
			fmt.Fprintf(env.Stderr, "domicile bench: --rate %q: want a positive rate like 5000/s\n", *rate)
			return errUsage
		}
		f.rate = r
	}
	if f.store != "" && f.store != kindSQLite && f.store != kindPebble {
		fmt.Fprintf(env.Stderr, "domicile bench: --store %q: want sqlite or pebble\n", f.store)
		return errUsage
	}
	if f.store != "" && f.server != "" {
		fmt.Fprintln(env.Stderr, "domicile bench: --store chooses the store of a local deployment; --server's is its own")
		return errUsage
	}
	if _, ok := bench.Mixes[f.mix]; !ok && !f.growth {
		fmt.Fprintf(env.Stderr, "domicile bench: unknown mix %q; one of %s\n", f.mix, strings.Join(bench.MixNames(), ", "))
		return errUsage
	}
	if f.workers < 1 || f.subjects < 1 || f.size < 40 || f.duration <= 0 || f.warmup < 0 {
		fmt.Fprintln(env.Stderr, "domicile bench: --workers and --subjects must be positive, --size at least 40, --duration positive")
		return errUsage
	}
	if f.token == "" && env.Getenv != nil {
		f.token = env.Getenv("DOMICILE_TOKEN")
	}
	if f.binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this executable: %w", err)
		}
		f.binary = exe
	}
	rep := &bench.Report{Started: env.Now().UTC(), Host: bench.ThisHost(), Command: "domicile bench " + strings.Join(args, " ")}
	var err error
	if f.growth {
		err = runGrowth(ctx, env, &f, rep)
		rep.Notes = append(rep.Notes, "growth points measured with the "+f.client+" client (--client)")

	} else {
		err = runLoad(ctx, env, &f, rep)
	}
	if err != nil {
		return err
	}
	if err := rep.WriteTable(env.Stdout); err != nil {
		return err
	}
	if f.jsonPath != "" {
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonPath, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// target is a server under load: its client, its sampler and how to stop it.
type target struct {
	name    string
	client  *httpapi.Client
	sampler bench.Sampler
	stop    func()
	// store is the kind of store a local domicile's cells are on, as
	// resolveCellStore chose it ("" for a remote server).
	store string
}

// storeChoice says how the store of a local bench's cells was chosen.
func storeChoice(f *benchFlags) string {
	if f.store != "" {
		return "--store"
	}
	return "the embedded default, which follows what the data directory holds; --store chooses"
}

// cellStores is the store kinds the cells of dep use under dir, as
// resolveCellStore chooses them: one kind, or each cell's.
func cellStores(dep *domicile.Deployment, dir string) (string, error) {
	var kinds, each []string
	for _, cc := range dep.Cells {
		cs, err := resolveCellStore(dir, cc)
		if err != nil {
			return "", err
		}
		if !slices.Contains(kinds, cs.Kind) {
			kinds = append(kinds, cs.Kind)
		}
		each = append(each, cc.ID+": "+cs.Kind)
	}
	if len(kinds) == 1 {
		return kinds[0], nil
	}
	return strings.Join(each, ", "), nil
}

func runLoad(ctx context.Context, env *cmdEnv, f *benchFlags, rep *bench.Report) error {
	mix := bench.Mixes[f.mix]
	var runs []func() (*target, error)
	if f.baseline {
		runs = append(runs, func() (*target, error) { return startBaselineTarget(ctx, env, f) })
		if f.server != "" {
			rep.Notes = append(rep.Notes, "the baseline ran on this machine while domicile ran at "+f.server+": the ratio compares different machines")
		}
	}
	runs = append(runs, func() (*target, error) {
		t, err := startDomicileTarget(ctx, env, f)
		if err == nil && t.store != "" {
			rep.Notes = append(rep.Notes, "domicile's cells on the "+t.store+" store ("+storeChoice(f)+"); the baseline on SQLite, as always")
		}
		return t, err
	})
	if f.client == bench.ClientLean && strings.HasPrefix(f.server, "https://") {
		rep.Notes = append(rep.Notes, "the lean client speaks plain HTTP only: "+f.server+" was driven with net/http")
	}
	runID := randomHex(4)
	for _, start := range runs {
		t, err := start()
		if err != nil {
			return err
		}
		res, err := loadTarget(ctx, env, f, mix, t, runID)
		t.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		rep.Runs = append(rep.Runs, res)
	}
	if len(rep.Runs) == 2 {
		rep.Ratios = append(rep.Ratios, bench.Compare(rep.Runs[1], rep.Runs[0]))
	}
	if runtimeNote := clientNote(rep); runtimeNote != "" {
		rep.Notes = append(rep.Notes, runtimeNote)
	}
	return nil
}

func clientNote(rep *bench.Report) string {
	if f := rep.Host.CPUs; f <= 4 && len(rep.Runs) > 0 && rep.Runs[0].Server != nil && !strings.HasPrefix(rep.Runs[0].Server.Source, "http") {
		return fmt.Sprintf("the load generator and the server share this machine's %d CPUs; the client CPU column is what the generator took from the server", f)
	}
	return ""
}

// loadTarget creates the subjects and runs the mix against t.
func loadTarget(ctx context.Context, env *cmdEnv, f *benchFlags, mix *bench.Mix, t *target, runID string) (*bench.Result, error) {
	plan := &bench.Plan{Record: bench.RecordBody(f.size), Concurrency: max(f.workers, 8)}
	if n := mix.ObjectSize(); n > 0 {
		plan.Object = bench.RandomBytes(n)
	}
	for i := range f.subjects {
		plan.Subjects = append(plan.Subjects, fmt.Sprintf("bench-%s-%d", runID, i))
	}
	fmt.Fprintf(env.Stderr, "bench %s: creating %d subjects\n", t.name, f.subjects)
	if err := createSubjects(ctx, t.client, plan.Subjects, f.jurisdiction, plan.Concurrency); err != nil {
		return nil, err
	}
	lean, err := leanClient(f, t.client)
	if err != nil {
		return nil, err
	}
	return bench.Run(ctx, bench.Config{
		Target: t.name, Client: t.client, Lean: lean, Mix: mix, Workers: f.workers, Rate: f.rate,
		Warmup: f.warmup, Duration: f.duration, Plan: plan, Sampler: t.sampler, Progress: env.Stderr,
		Seed: uint64(env.Now().UnixNano()),
	})
}

// leanClient returns the lean client for c's server if --client lean
// and the server speaks plain HTTP; nil for net/http (the report says
// which client ran).
func leanClient(f *benchFlags, c *httpapi.Client) (*bench.LeanClient, error) {
	if f.client != bench.ClientLean {
		return nil, nil
	}
	l, err := bench.NewLeanClient(c)
	if errors.Is(err, bench.ErrLeanScheme) {
		return nil, nil
	}
	return l, err
}

func createSubjects(ctx context.Context, c *httpapi.Client, ids []string, jurisdiction string, conc int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	ch := make(chan string)
	for range max(conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				if _, err := c.CreateSubject(ctx, id, jurisdiction, ""); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("create subject: %w", err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startDomicileTarget connects to --server, or starts domicile serve.
func startDomicileTarget(ctx context.Context, env *cmdEnv, f *benchFlags) (*target, error) {
	hc := bench.NewHTTPClient(f.workers)
	if f.server != "" {
		if f.token == "" {
			fmt.Fprintln(env.Stderr, "domicile bench: --server needs --token (an app token) or DOMICILE_TOKEN")
			return nil, errUsage
		}
		base := strings.TrimSuffix(f.server, "/")
		return &target{
			name:    "domicile",
			client:  &httpapi.Client{Client: client.Client{BaseURL: base, Token: f.token, Purpose: "service", HTTP: hc}},
			sampler: bench.MetricsSampler{URL: base + "/metrics", HTTP: hc},
			stop:    func() {},
		}, nil
	}
	dir, err := os.MkdirTemp("", "domicile-bench-")
	if err != nil {
		return nil, err
	}
	t, err := serveDomicile(ctx, env, f, dir, hc, startWait)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := t.stop
	t.stop = func() {
		stop()
		if !f.keep {
			os.RemoveAll(dir)
		}
	}
	return t, nil
}

// serveDomicile starts domicile serve on data directory dir and makes an
// app token from its admin token.
func serveDomicile(ctx context.Context, env *cmdEnv, f *benchFlags, dir string, hc *http.Client, wait time.Duration) (*target, error) {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", dir}
	if f.store != "" {
		path := filepath.Join(dir, "bench-deployment.yaml")
		if err := os.WriteFile(path, benchDeploymentYAML(f.store), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--deployment", path)
	}
	p, err := startChild(ctx, wait, f.binary, "domicile: listening on ", args...)
	if err != nil {
		return nil, fmt.Errorf("start domicile serve: %w", err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		p.stop()
		return nil, err
	}
	ac := &httpapi.Client{Client: client.Client{BaseURL: p.url, Token: strings.TrimSpace(string(admin)), HTTP: hc}}
	tok, err := ac.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: f.jurisdiction})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("create app token: %w", err)
	}
	dep, err := benchDeployment(f)
	if err != nil {
		p.stop()
		return nil, err
	}
	kinds, err := cellStores(dep, dir)
	if err != nil {
		p.stop()
		return nil, err
	}
	fmt.Fprintf(env.Stderr, "bench: domicile serve (pid %d) at %s, data %s, cells on %s\n", p.cmd.Process.Pid, p.url, dir, kinds)
	return &target{
		name:    "domicile",
		client:  &httpapi.Client{Client: client.Client{BaseURL: p.url, Token: tok.Token, Purpose: "service", HTTP: hc}},
		sampler: bench.ProcSampler{PID: p.cmd.Process.Pid, Metrics: p.url + "/metrics", HTTP: hc},
		stop:    p.stop,
		store:   kinds,
	}, nil
}

// benchDeploymentYAML is the embedded demo deployment with every cell's
// store of the given kind.
func benchDeploymentYAML(kind string) []byte {
	var out []byte
	cells := false
	for line := range strings.Lines(string(deploy.DefaultYAML())) {
		out = append(out, line...)
		switch {
		case strings.HasPrefix(line, "cells:"):
			cells = true
		case cells && strings.HasPrefix(line, "  - id: "):
			out = append(out, "    store: {kind: "+kind+"}\n"...)
		case len(line) > 0 && line[0] != ' ' && line[0] != '#' && line[0] != '\n':
			cells = false
		}
	}
	return out
}

// benchDeployment is the deployment a local bench serves.
func benchDeployment(f *benchFlags) (*domicile.Deployment, error) {
	if f.store == "" {
		return deploy.Default(), nil
	}
	return deploy.Parse(benchDeploymentYAML(f.store))
}

// startBaselineTarget starts the raw baseline server as a child process.
func startBaselineTarget(ctx context.Context, env *cmdEnv, f *benchFlags) (*target, error) {
	dir, err := os.MkdirTemp("", "domicile-bench-baseline-")
	if err != nil {
		return nil, err
	}
	p, err := startChild(ctx, startWait, f.binary, "domicile bench baseline: listening on ", "bench", "baseline-server", "--addr", "127.0.0.1:0", "--data", dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start baseline server: %w", err)
	}
	fmt.Fprintf(env.Stderr, "bench: baseline server (pid %d) at %s, data %s\n", p.cmd.Process.Pid, p.url, dir)
	hc := bench.NewHTTPClient(f.workers)
	return &target{
		name:    "baseline",
		client:  &httpapi.Client{Client: client.Client{BaseURL: p.url, HTTP: hc}},
		sampler: bench.ProcSampler{PID: p.cmd.Process.Pid, Metrics: p.url + "/metrics", HTTP: hc},
		stop: func() {
			p.stop()
			if !f.keep {
				os.RemoveAll(dir)
			}
		},
	}, nil
}

// child is a server process started by bench.
type child struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild runs binary with args and waits for the stdout line that
// starts with prefix and gives the URL.
func startChild(ctx context.Context, wait time.Duration, binary, prefix string, args ...string) (*child, error) {
	cmd := exec.Command(binary, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errBuf := &lockedBuffer{}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stderr: errBuf, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				urlc <- u
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { cmd.Wait(); close(c.done) }()
	select {
	case c.url = <-urlc:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited: %s", binary, strings.TrimSpace(errBuf.String()))
	case <-time.After(wait):
		c.kill()
		return nil, fmt.Errorf("%s did not start in %s: %s", binary, wait, strings.TrimSpace(errBuf.String()))
	case <-ctx.Done():
		c.kill()
		return nil, ctx.Err()
	}
}

// stop ends the child with SIGTERM, then SIGKILL after 15 s.
func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.kill()
	}
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// runBaselineServer serves the raw baseline (package bench/baseline) on
// its own store until ctx ends.
func runBaselineServer(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "bench baseline-server")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	data := fs.String("data", "", "data directory (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		fmt.Fprintln(env.Stderr, "domicile bench baseline-server: --data is required")
		return errUsage
	}
	st, err := sqlite.Open(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "domicile bench baseline: listening on http://%s\n", ln.Addr())
	hs := &http.Server{Handler: baseline.New(st, env.Now), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}

// startWait bounds the wait for a local server to listen, and
// growthStartWait the wait for domicile serve on a grown cell: serve
// checks every event of a cell's log before it listens (doc/log.md), which
// takes minutes at 10,000,000 entries.
const (
	startWait       = time.Minute
	growthStartWait = 30 * time.Minute
)

// growthCell is the cell growth runs fill: the home of CN subjects in the
// embedded demo deployment.
const growthCell = "cn-gz1"

// preloadBatch is how many subjects one Commit carries when preloading
// (at most domicile.MaxHomesPerBatch and MaxKeysPerBatch), and
// preloadLogBatch how many log entries: large batches spread each
// commit's fixed cost.
const (
	preloadBatch    = 2000
	preloadLogBatch = 20_000
)

// runGrowth preloads the cell offline (the server stopped) to each point,
// then starts domicile serve on it and measures record writes and reads,
// the disk used and the inclusion proof time; and writes SVG plots.
func runGrowth(ctx context.Context, env *cmdEnv, f *benchFlags, rep *bench.Report) error {
	subjPts, err := parseCounts(f.growthSubj)
	if err != nil {
		return err
	}
	logPts, err := parseCounts(f.growthLog)
	if err != nil {
		return err
	}
	dir := f.growthDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "domicile-growth-"); err != nil {
			return err
		}
		if !f.keep {
			defer os.RemoveAll(dir)
		}
	}
	quiet := &cmdEnv{Stdout: io.Discard, Stderr: env.Stderr, Getenv: env.Getenv, Now: env.Now}
	var subjects, records int64
	measure := func(axis string) error {
		pt, err := measureGrowthPoint(ctx, env, f, dir, subjects, records)
		if err != nil {
			return err
		}
		pt.Axis = axis
		records = pt.Records
		rep.Growth = append(rep.Growth, *pt)
		fmt.Fprintf(env.Stderr, "bench growth: %s point: %d subjects, %d log entries: %.0f writes/s, read p99 %.2fms, %.0f B/record, serve started in %.1fs\n",
			axis, pt.Subjects, pt.LogEntries, pt.WritesPerSecond, pt.ReadP99, pt.DiskPerRecord, pt.ServeStart)
		return nil
	}
	for _, n := range subjPts {
		if n <= subjects {
			continue
		}
		t0 := time.Now()
		if err := preloadSubjects(ctx, quiet, f, dir, subjects, n); err != nil {
			return fmt.Errorf("preload subjects: %w", err)
		}
		fmt.Fprintf(env.Stderr, "bench growth: preloaded subjects %d → %d in %s\n", subjects, n, time.Since(t0).Round(time.Second))
		records += 2 * (n - subjects)
		subjects = n
		if err := measure("subjects"); err != nil {
			return err
		}
	}
	if subjects == 0 {
		return errors.New("growth: --growth-subjects must name at least one positive count")
	}
	for _, n := range logPts {
		t0 := time.Now()
		size, err := preloadLog(ctx, quiet, f, dir, n)
		if err != nil {
			return fmt.Errorf("preload log: %w", err)
		}
		if size > n {
			continue
		}
		fmt.Fprintf(env.Stderr, "bench growth: log grown to %d entries in %s\n", n, time.Since(t0).Round(time.Second))
		if err := measure("log"); err != nil {
			return err
		}
	}
	dep, err := benchDeployment(f)
	if err != nil {
		return err
	}
	kinds, err := cellStores(dep, dir)
	if err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, "domicile's cells on the "+kinds+" store ("+storeChoice(f)+")")
	return writeGrowthPlots(f.plots, rep.Growth)
}

func parseCounts(s string) ([]int64, error) {
	var out []int64
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("growth: bad count %q", p)
		}
		if n > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

func growthID(i int64) string { return "g-" + strconv.FormatInt(i, 10) }

// openGrowthRuntime opens the deployment in dir as domicile serve does.
func openGrowthRuntime(ctx context.Context, env *cmdEnv, f *benchFlags, dir string) (*runtime, *cell.Cell, error) {
	dep, err := benchDeployment(f)
	if err != nil {
		return nil, nil, err
	}
	rt, err := openRuntime(ctx, dir, dep, time.Now, nil, slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, err
	}
	if err := ensureAdminToken(ctx, env, rt); err != nil {
		rt.Close()
		return nil, nil, err
	}
	c := rt.router.CellByID(growthCell)
	if c == nil {
		rt.Close()
		return nil, nil, fmt.Errorf("growth: no cell %s", growthCell)
	}
	return rt, c, nil
}

// preloadSubjects registers subjects [from, to) offline, preloadBatch at
// a time, writing what registering each and writing its two records
// through domicile serve would have written: their directory entries
// (each registration with a fresh random reference, as Register draws
// it) in one PutHomes, their wrapped data keys in one CreateBatch, then
// one Commit holding their subject rows, two sealed 1 KiB records each
// (r0, r1: what the read mix reads) and the three log events those
// writes log. The three steps run as a pipeline: while a batch is
// committed, the next is sealed and the one after registered.
func preloadSubjects(ctx context.Context, env *cmdEnv, f *benchFlags, dir string, from, to int64) error {
	rt, c, err := openGrowthRuntime(ctx, env, f, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	st, kr, err := growthStore(ctx, rt, c)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	registered := make(chan []domicile.SubjectRef, 1)
	sealed := make(chan *domicile.Batch, 1)
	g.Go(func() error {
		defer close(registered)
		for lo := from; lo < to; lo += preloadBatch {
			refs, err := preloadRegister(gctx, rt, kr, lo, min(lo+preloadBatch, to))
			if err != nil {
				return err
			}
			if err := send(gctx, registered, refs); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(sealed)
		for refs := range registered {
			b, err := preloadSeal(gctx, kr, refs)
			if err != nil {
				return err
			}
			if err := send(gctx, sealed, b); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for b := range sealed {
			if err := st.Commit(gctx, b); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// send sends v on ch unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inParts runs fn over [0, n) split into parts run at once, each part in
// order, and returns the first error.
func inParts(ctx context.Context, parts, n int, fn func(ctx context.Context, part, i int) error) error {
	per := (n + parts - 1) / parts
	g, gctx := errgroup.WithContext(ctx)
	for p := range parts {
		g.Go(func() error {
			for i := p * per; i < min((p+1)*per, n); i++ {
				if err := fn(gctx, p, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// preloadRegister registers subjects [lo, hi): their directory entries
// and data keys, each in one durable write, the two at once (they are
// apart: the control store and the cell's custody). It returns the
// registrations' references.
func preloadRegister(ctx context.Context, rt *runtime, kr *keyring.Keyring, lo, hi int64) ([]domicile.SubjectRef, error) {
	n := int(hi - lo)
	entries := make([]domicile.HomeEntry, n)
	refs := make([]domicile.SubjectRef, n)
	for i := range n {
		if _, err := rand.Read(refs[i][:]); err != nil {
			return nil, err
		}
		entries[i] = domicile.HomeEntry{Key: rt.router.PersonKey(growthID(lo + int64(i))), Home: domicile.Home{Cell: growthCell, Ref: refs[i]}}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := rt.control.PutHomes(gctx, entries); err != nil {
			return fmt.Errorf("directory entries of subjects %d-%d: %w", lo, hi-1, err)
		}
		return nil
	})
	g.Go(func() error {
		if err := kr.CreateBatch(gctx, refs, 0); err != nil {
			return fmt.Errorf("data keys of subjects %d-%d: %w", lo, hi-1, err)
		}
		return nil
	})
	return refs, g.Wait()
}

// preloadSeal returns the cell's Batch for the registered refs: their
// rows, sealed records and events. Sealing and hashing are CPU work, done
// on every CPU; the batch keeps the subjects' order.
func preloadSeal(ctx context.Context, kr *keyring.Keyring, refs []domicile.SubjectRef) (*domicile.Batch, error) {
	parts := make([]domicile.Batch, goruntime.GOMAXPROCS(0))
	if err := inParts(ctx, len(parts), len(refs), func(ctx context.Context, p, i int) error {
		return preloadSubject(ctx, kr, refs[i], &parts[p])
	}); err != nil {
		return nil, err
	}
	b := &domicile.Batch{Ops: make([]domicile.Op, 0, 3*len(refs)), Events: make([]*domicile.LogEntry, 0, 3*len(refs))}
	for _, p := range parts {
		b.Ops = append(b.Ops, p.Ops...)
		b.Events = append(b.Events, p.Events...)
	}
	return b, nil
}

// preloadSubject appends to b what the cell writes when an app registers
// ref and writes its records r0 and r1: the subject's row, the two sealed
// records and the three events.
func preloadSubject(ctx context.Context, kr *keyring.Keyring, ref domicile.SubjectRef, b *domicile.Batch) error {
	actor := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service", TokenID: "tok_growth"}
	access := kms.Access{Cell: growthCell, Role: kms.RoleApp, Jurisdiction: "CN", Reason: actor.Basis(), Subject: ref.String()}
	dk, err := kr.DataKey(ctx, access, ref, 0)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	b.Ops = append(b.Ops, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN", Created: now}})
	for _, res := range []string{"subject", "record/message/r0", "record/message/r1"} {
		le, err := cell.Entry(rand.Reader, domicile.Event{Time: now, Cell: growthCell, Subject: ref.String(), Role: actor.Role,
			Jurisdiction: actor.Jurisdiction, TokenID: actor.TokenID, Action: domicile.ActWrite, Resource: res, Basis: actor.Basis(), Outcome: domicile.Allowed})
		if err != nil {
			return err
		}
		le.Ref = ref
		b.Events = append(b.Events, le)
		if res == "subject" {
			continue
		}
		id := strings.TrimPrefix(res, "record/message/")
		sealed, err := envelope.SealRecord(rand.Reader, dk, 0, envelope.Binding{Cell: growthCell, Subject: ref.String(), Kind: bench.RecordKind, ID: id, Version: 1}, growthBody)
		if err != nil {
			return err
		}
		b.Ops = append(b.Ops, &domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: bench.RecordKind, ID: id, Version: 1,
			Body: sealed, Fields: []string{"body", "from", "to"}, Updated: now}, Expect: 0})
	}
	return nil
}

// growthBody is the 1 KiB body of every preloaded record.
var growthBody = bench.RecordBody(1024)

// growthWriter is what the growth fixture writes and reads of a cell's
// store: commits, and the log's size and hashes.
type growthWriter interface {
	domicile.Committer
	domicile.LogReader
}

// growthStore returns the growth cell's store and a keyring over its
// custody. The growth fixture is written offline, around the cell's access
// path (as a restore from backup would be): nothing serves the deployment
// while it runs, and it writes only synthetic subjects.
func growthStore(ctx context.Context, rt *runtime, c *cell.Cell) (growthWriter, *keyring.Keyring, error) {
	// rt.stores and rt.keys run beside rt.cells, which holds only the
	// cells that opened (a refused one is left out), not every cell of
	// the deployment.
	for i, rc := range rt.cells {
		cc := rt.dep.Cell(c.ID())
		if rc.ID() != c.ID() || cc == nil {
			continue
		}
		kek, err := openKEK(ctx, rt.dir, *cc)
		if err != nil {
			return nil, nil, err
		}
		// The cache holds the new keys of the batches in preloadSubjects'
		// pipeline until their records are sealed.
		return rt.stores[i], keyring.New(keyring.Config{Cell: cc.ID, KEK: kek, Store: rt.keys[i], CacheSize: 4 * preloadBatch}), nil
	}
	return nil, nil, fmt.Errorf("growth: no cell %s", c.ID())
}

// preloadLog appends log entries offline (events of preloaded subjects,
// as reads would log them) until the log holds n, and returns its size
// before.
func preloadLog(ctx context.Context, env *cmdEnv, f *benchFlags, dir string, n int64) (int64, error) {
	rt, c, err := openGrowthRuntime(ctx, env, f, dir)
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	st, _, err := growthStore(ctx, rt, c)
	if err != nil {
		return 0, err
	}
	size, err := st.LogSize(ctx)
	if err != nil {
		return 0, err
	}
	// The events are of the first (up to) 1024 preloaded subjects, by
	// their registrations' references.
	var refs []domicile.SubjectRef
	for i := range int64(1024) {
		h, err := rt.control.Home(ctx, rt.router.PersonKey(growthID(i)))
		if errors.Is(err, domicile.ErrNotFound) {
			break
		}
		if err != nil {
			return 0, err
		}
		refs = append(refs, h.Ref)
	}
	if len(refs) == 0 {
		return 0, errors.New("growth: no preloaded subject to log events of")
	}
	// Making the entries (salts, hashes) is CPU work, done on every CPU
	// while the batch before is committed.
	now := time.Now().UTC()
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan *domicile.Batch, 1)
	g.Go(func() error {
		defer close(batches)
		for k := size; k < n; k += preloadLogBatch {
			evs := make([]*domicile.LogEntry, min(preloadLogBatch, n-k))
			if err := inParts(gctx, goruntime.GOMAXPROCS(0), len(evs), func(_ context.Context, _, i int) error {
				ref := refs[(k+int64(i))%int64(len(refs))]
				le, err := cell.Entry(rand.Reader, domicile.Event{Time: now, Cell: growthCell, Subject: ref.String(), Role: domicile.RoleApp,
					Jurisdiction: "CN", TokenID: "tok_growth", Action: domicile.ActRead, Resource: "record/message/r0", Basis: "service:service", Outcome: domicile.Allowed})
				if err != nil {
					return err
				}
				le.Ref = ref
				evs[i] = le
				return nil
			}); err != nil {
				return err
			}
			if err := send(gctx, batches, &domicile.Batch{Events: evs}); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for b := range batches {
			if err := st.Commit(gctx, b); err != nil {
				return err
			}
		}
		return nil
	})
	return size, g.Wait()
}

// measureGrowthPoint measures the cell in dir: offline, the inclusion
// proof time from the store; then with domicile serve on it, the write
// and read mixes over subjects sampled from all that were preloaded.
func measureGrowthPoint(ctx context.Context, env *cmdEnv, f *benchFlags, dir string, subjects, records int64) (*bench.GrowthPt, error) {
	pt := &bench.GrowthPt{Subjects: subjects}
	{
		quiet := &cmdEnv{Stdout: io.Discard, Stderr: env.Stderr, Getenv: env.Getenv, Now: env.Now}
		rt, c, err := openGrowthRuntime(ctx, quiet, f, dir)
		if err != nil {
			return nil, err
		}
		st := c.PublicLog()
		pt.LogEntries, err = st.LogSize(ctx)
		if err == nil {
			pt.ProofMicros, err = proofTime(ctx, st, pt.LogEntries)
		}
		rt.Close()
		if err != nil {
			return nil, err
		}
	}
	hc := bench.NewHTTPClient(f.workers)
	t0 := time.Now()
	t, err := serveDomicile(ctx, env, f, dir, hc, growthStartWait)
	if err != nil {
		return nil, err
	}
	pt.ServeStart = time.Since(t0).Seconds()
	defer t.stop()
	plan := &bench.Plan{Record: bench.RecordBody(1024), Concurrency: f.workers}
	r := newRandSource()
	for range min(int64(f.subjects), subjects) {
		plan.Subjects = append(plan.Subjects, growthID(r.Int64N(subjects)))
	}
	lean, err := leanClient(f, t.client)
	if err != nil {
		return nil, err
	}
	var peak int64
	for _, mixName := range []string{"write", "read"} {
		mix := *bench.Mixes[mixName]
		mix.Prepare = nil // the records read were preloaded
		res, err := bench.Run(ctx, bench.Config{Target: "domicile", Client: t.client, Lean: lean, Mix: &mix, Workers: f.workers, Rate: f.rate,
			Warmup: f.warmup, Duration: f.duration, Plan: plan, Sampler: t.sampler, Progress: env.Stderr, Seed: uint64(r.Int64())})
		if err != nil {
			return nil, err
		}
		if len(res.Errors) > 0 {
			return nil, fmt.Errorf("growth %s: errors %v", mixName, res.Errors)
		}
		if res.Server != nil {
			peak = max(peak, res.Server.PeakRSS)
		}
		if mixName == "write" {
			pt.WritesPerSecond = res.Throughput
			records += res.Ops // an upper bound: some writes replace a record
		} else {
			pt.ReadsPerSecond, pt.ReadP50, pt.ReadP99 = res.Throughput, res.Latency.P50, res.Latency.P99
		}
	}
	pt.Records, pt.ServerRSS = records, peak
	t.stop()
	pt.DiskBytes = dirSize(dir)
	pt.DiskPerRecord = float64(pt.DiskBytes) / float64(max(pt.Records, 1))
	pt.DiskPerEntry = float64(pt.DiskBytes) / float64(max(pt.LogEntries, 1))
	return pt, nil
}

// proofTime returns the mean time, in microseconds, to build an
// inclusion proof at size from the store's hashes, over 1000 random leaves.
func proofTime(ctx context.Context, st cell.PublicLog, size int64) (float64, error) {
	if size < 2 {
		return 0, nil
	}
	hr := merkle.HashReaderFunc(func(ix []int64) ([]merkle.Hash, error) {
		hs, err := st.ReadHashes(ctx, ix)
		if err != nil {
			return nil, err
		}
		out := make([]merkle.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	})
	r := newRandSource()
	const n = 1000
	t0 := time.Now()
	for range n {
		if _, err := merkle.ProveInclusion(r.Int64N(size), size, hr); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(t0).Microseconds()) / n, nil
}

func newRandSource() *mrand.Rand { return mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7)) }

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// writeGrowthPlots writes the growth curves as SVG into dir.
func writeGrowthPlots(dir string, pts []bench.GrowthPt) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	axes := []struct {
		axis, xlabel string
		x            func(p bench.GrowthPt) float64
	}{
		{"subjects", "subjects in the cell", func(p bench.GrowthPt) float64 { return float64(p.Subjects) }},
		{"log", "log entries in the cell", func(p bench.GrowthPt) float64 { return float64(p.LogEntries) }},
	}
	for _, a := range axes {
		var tput, wr, p50, p99, disk, proof bench.Series
		tput.Name, wr.Name, p50.Name, p99.Name = "reads/s", "writes/s", "read p50 (ms)", "read p99 (ms)"
		disk.Name, proof.Name = "disk bytes per record", "inclusion proof (µs)"
		for _, p := range pts {
			if p.Axis != a.axis {
				continue
			}
			x := a.x(p)
			tput.Points = append(tput.Points, [2]float64{x, p.ReadsPerSecond})
			wr.Points = append(wr.Points, [2]float64{x, p.WritesPerSecond})
			p50.Points = append(p50.Points, [2]float64{x, p.ReadP50})
			p99.Points = append(p99.Points, [2]float64{x, p.ReadP99})
			if a.axis == "subjects" {
				disk.Points = append(disk.Points, [2]float64{x, p.DiskPerRecord})
			} else {
				disk.Name = "disk bytes per log entry"
				disk.Points = append(disk.Points, [2]float64{x, p.DiskPerEntry})
			}
			proof.Points = append(proof.Points, [2]float64{x, p.ProofMicros})
		}
		if len(wr.Points) == 0 {
			continue
		}
		plots := map[string]*bench.Plot{
			"throughput": {Title: "Record throughput as the cell grows", XLabel: a.xlabel, YLabel: "requests per second", LogX: true, Series: []bench.Series{wr, tput}},
			"latency":    {Title: "Record read latency as the cell grows", XLabel: a.xlabel, YLabel: "milliseconds", LogX: true, Series: []bench.Series{p50, p99}},
			"disk":       {Title: "Disk use as the cell grows", XLabel: a.xlabel, YLabel: "bytes", LogX: true, Series: []bench.Series{disk}},
			"proof":      {Title: "Inclusion proof from the store", XLabel: a.xlabel, YLabel: "microseconds", LogX: true, Series: []bench.Series{proof}},
		}
		for name, p := range plots {
			var b bytes.Buffer
			if err := p.WriteSVG(&b); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "growth-"+a.axis+"-"+name+".svg"), b.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
