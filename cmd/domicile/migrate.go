package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"domicile/client"
	"domicile/httpapi"
	"domicile/leaf"
	"domicile/logclient"
	"domicile/migrate"
)

// migrateCommand is `domicile migrate`.
var migrateCommand = command{name: "migrate", summary: "move subjects' data to a new cell or operator (plan, run, status, report, verify)", run: runMigrate}

func runMigrate(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "migrate", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"plan":   migratePlan,
		"run":    migrateRun,
		"status": migrateStatus,
		"report": migrateReport,
		"verify": migrateVerify,
	})
}

// flagsAndArg parses flags that may come before or after one positional
// argument, which it returns ("" if none).
func flagsAndArg(env *cmdEnv, fs interface {
	Parse([]string) error
	NArg() int
	Arg(int) string
	Args() []string
}, args []string, usage func()) (string, error) {
	var arg string
	for {
		if err := fs.Parse(args); err != nil {
			return "", errUsage
		}
		if fs.NArg() == 0 {
			return arg, nil
		}
		if arg != "" {
			fmt.Fprintf(env.Stderr, "unexpected argument %q\n", truncateArg(fs.Arg(0)))
			usage()
			return "", errUsage
		}
		arg, args = fs.Arg(0), fs.Args()[1:]
	}
}

func migratePlan(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "migrate plan")
	var cf clientFlags
	cf.register(fs)
	to := fs.String("to", "", "the next deployment file (required)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "usage: domicile migrate plan --to NEXT.yaml [--server URL --token T] [--json]")
		return errUsage
	}
	b, err := os.ReadFile(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	var p migrate.Plan
	if _, err := c.Call(ctx, http.MethodPost, "/v1/migrations", httpapi.PlanRequest{Name: filepath.Base(*to), Deployment: string(b)}, &p); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, &p)
	}
	fmt.Fprint(env.Stdout, p.Summary())
	fmt.Fprintf(env.Stdout, "nothing moved yet; send the notices (domicile notice send --plan %s --webhook URL), then: domicile migrate run %s\n", p.NoticePlan, p.ID)
	return nil
}

// parseRate reads --rate: "N/s" or "N" subjects per second.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("--rate: %q is not N/s, subjects per second", truncateArg(s))
	}
	return v, nil
}

func migrateRun(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "migrate run")
	var cf clientFlags
	cf.register(fs)
	retention := fs.Duration("retention", 0, "how long the source cell keeps its copy after a subject's switch before it is crypto-shredded")
	rate := fs.String("rate", "", "at most this many subjects per second, as N/s (default: no bound)")
	wait := fs.Bool("wait", false, "follow the run until it ends, with a progress bar")
	usage := func() {
		fmt.Fprintln(env.Stderr, "usage: domicile migrate run PLAN_ID [--retention DURATION] [--rate N/s] [--wait]")
	}
	id, err := flagsAndArg(env, fs, args, usage)
	if err != nil {
		return err
	}
	if id == "" {
		usage()
		return errUsage
	}
	r, err := parseRate(*rate)
	if err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	var st migrate.Status
	if _, err := c.Call(ctx, http.MethodPost, "/v1/migrations/"+id+"/run", httpapi.MigrationRunRequest{Retention: retention.String(), Rate: r}, &st); err != nil {
		return err
	}
	if !*wait {
		fmt.Fprintf(env.Stdout, "migration %s started: %d subjects to move\n", id, st.Subjects)
		return nil
	}
	for {
		if _, err := c.Call(ctx, http.MethodGet, "/v1/migrations/"+id, nil, &st); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "\r%s", progressLine(&st, env.Now()))
		switch st.State {
		case migrate.StateDone:
			fmt.Fprintln(env.Stderr)
			fmt.Fprintf(env.Stdout, "migration %s done: %d subjects moved, source copies shredded; report: domicile migrate report %s\n", id, st.Moved, id)
			return nil
		case migrate.StateStopped:
			fmt.Fprintln(env.Stderr)
			return fmt.Errorf("migration %s stopped: %s", id, st.Options.Reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// progressLine draws a status as a bar with counts, rate and ETA.
func progressLine(st *migrate.Status, now time.Time) string {
	const width = 30
	frac := 1.0
	if st.Subjects > 0 {
		frac = float64(st.Moved) / float64(st.Subjects)
	}
	n := int(frac * width)
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	eta := "-"
	switch {
	case st.State == migrate.StateDone:
		eta = "done"
	case !st.ETA.IsZero():
		eta = st.ETA.Sub(now).Round(time.Second).String()
	case st.Moved == st.Subjects && st.State == migrate.StateRunning:
		eta = "retention"
	}
	return fmt.Sprintf("[%s] %d/%d subjects (%3.0f%%) %s, %.1f subjects/s, ETA %s, shredded %d  ", bar, st.Moved, st.Subjects, frac*100,
		migrate.Bytes(st.Bytes), st.Rate, eta, st.States["shredded"])
}

func migrateStatus(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "migrate status")
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	usage := func() { fmt.Fprintln(env.Stderr, "usage: domicile migrate status PLAN_ID [--json]") }
	id, err := flagsAndArg(env, fs, args, usage)
	if err != nil {
		return err
	}
	if id == "" {
		usage()
		return errUsage
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	var st migrate.Status
	if _, err := c.Call(ctx, http.MethodGet, "/v1/migrations/"+id, nil, &st); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, &st)
	}
	fmt.Fprintf(env.Stdout, "migration %s: %s\n%s\n", id, st.State, progressLine(&st, env.Now()))
	var states []string
	for s, n := range st.States {
		states = append(states, fmt.Sprintf("%s %d", s, n))
	}
	slices.Sort(states)
	fmt.Fprintf(env.Stdout, "subjects: %s\n", strings.Join(states, ", "))
	if st.Options.Reason != "" {
		fmt.Fprintf(env.Stdout, "stopped: %s\n", st.Options.Reason)
	}
	return nil
}

func migrateReport(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "migrate report")
	var cf clientFlags
	cf.register(fs)
	usage := func() { fmt.Fprintln(env.Stderr, "usage: domicile migrate report PLAN_ID > report.txt") }
	id, err := flagsAndArg(env, fs, args, usage)
	if err != nil {
		return err
	}
	if id == "" {
		usage()
		return errUsage
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	b, err := c.Document(ctx, "/v1/migrations/"+id+"/report")
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}

// migrateVerify is `domicile migrate verify REPORT --server URL`: it
// checks the report's signature, and against each cell's public log that
// every migrate-out and migrate-in event it lists is in the log under a
// checkpoint signed by the cell's log key and contained in the log
// served now, that the counts match, and that every source's digest
// equals its target's. It reads no subject data and needs no token.
func migrateVerify(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "migrate verify")
	server := fs.String("server", "", "the deployment's URL (env DOMICILE_SERVER; default http://127.0.0.1:8700)")
	key := fs.String("key", "", "the reports' verifier key, pinned (default: as the server publishes it at /v1/migrations/key)")
	var pins repeatedFlag
	fs.Var(&pins, "log-key", "CELL=VERIFIERKEY: check that cell's log against this key rather than the one the server publishes (repeatable)")
	usage := func() {
		fmt.Fprintln(env.Stderr, "usage: domicile migrate verify REPORT [--server URL] [--key VKEY] [--log-key CELL=KEY]...")
	}
	file, err := flagsAndArg(env, fs, args, usage)
	if err != nil {
		return err
	}
	if file == "" {
		usage()
		return errUsage
	}
	if *server == "" {
		*server = env.Getenv("DOMICILE_SERVER")
	}
	if *server == "" {
		*server = "http://127.0.0.1:8700"
	}
	base := strings.TrimSuffix(*server, "/")
	var r io.Reader = env.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	signed, err := io.ReadAll(io.LimitReader(r, migrate.MaxReportBytes+1))
	if err != nil {
		return err
	}
	hc := &httpapi.Client{Client: client.Client{BaseURL: base}}
	if *key == "" {
		var kv httpapi.MigrationKeyView
		if _, err := hc.Call(ctx, http.MethodGet, "/v1/migrations/key", nil, &kv); err != nil {
			return fmt.Errorf("read the reports' key: %w", err)
		}
		*key = kv.VerifierKey
	}
	rep, err := migrate.OpenReport(signed, *key)
	if err != nil {
		return fmt.Errorf("%s: not a migration report signed by %s: %v", file, *key, err)
	}
	fmt.Fprintf(env.Stdout, "migration report of plan %s (%s), %s to %s: signature OK\n", rep.Plan, rep.Deployment,
		rep.Started.UTC().Format(time.RFC3339), rep.Finished.UTC().Format(time.RFC3339))
	published, err := publishedLogKeys(ctx, base)
	if err != nil {
		return err
	}
	for _, p := range pins {
		c, k, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("--log-key: %q must be CELL=VERIFIERKEY", truncateArg(p))
		}
		published[c] = k
	}
	v := &reportCheck{w: env.Stdout}
	var srcSubjects, dstSubjects, srcRecords, dstRecords, srcObjects, dstObjects int
	var srcDigests, dstDigests []string
	for _, c := range rep.Cells {
		verifyMigrationCell(ctx, v, base, published[c.Cell], c)
		if c.Role == "source" {
			srcSubjects, srcRecords, srcObjects = srcSubjects+c.Subjects, srcRecords+c.Records, srcObjects+c.Objects
			srcDigests = append(srcDigests, c.Digest)
		} else {
			dstSubjects, dstRecords, dstObjects = dstSubjects+c.Subjects, dstRecords+c.Records, dstObjects+c.Objects
			dstDigests = append(dstDigests, c.Digest)
		}
	}
	if srcSubjects != dstSubjects || srcRecords != dstRecords || srcObjects != dstObjects {
		v.fail("counts: the sources list %d subjects, %d records, %d objects; the targets %d, %d, %d", srcSubjects, srcRecords, srcObjects, dstSubjects, dstRecords, dstObjects)
	} else {
		fmt.Fprintf(env.Stdout, "counts: %d subjects, %d records, %d objects left the sources and arrived in the targets\n", srcSubjects, srcRecords, srcObjects)
	}
	slices.Sort(srcDigests)
	slices.Sort(dstDigests)
	if len(srcDigests) == 1 && len(dstDigests) == 1 || len(srcDigests) == len(dstDigests) {
		if !slices.Equal(srcDigests, dstDigests) {
			v.fail("digests: the sources computed %v, the targets %v", srcDigests, dstDigests)
		} else {
			fmt.Fprintln(env.Stdout, "digests: every source's digest equals its target's")
		}
	}
	if v.failures > 0 {
		return fmt.Errorf("%d checks of the report failed", v.failures)
	}
	fmt.Fprintln(env.Stdout, "OK: the report matches both cells' public logs")
	return nil
}

// verifyMigrationCell checks one cell's part of a migration report
// against its public log.
func verifyMigrationCell(ctx context.Context, v *reportCheck, base, key string, c migrate.CellReport) {
	name := c.Role + " " + c.Cell
	if key == "" {
		v.fail("%s: the server publishes no log key for cell %s (pin one with --log-key)", name, c.Cell)
		return
	}
	if key != c.Log.VerifierKey {
		v.fail("%s: the report names log key %s, not the cell's %s", name, c.Log.VerifierKey, key)
		return
	}
	lc, err := logclient.New(logclient.Config{URL: base + c.Log.URL, LogKey: key})
	if err != nil {
		v.fail("%s: %v", name, err)
		return
	}
	cp, err := lc.OpenCheckpoint([]byte(c.Log.Checkpoint))
	if err != nil || cp.Size != c.Log.Size {
		v.fail("%s: the report's checkpoint does not verify with the log's key (or is not of %d leaves): %v", name, c.Log.Size, err)
		return
	}
	latest, err := lc.FetchCheckpoint(ctx)
	if err != nil {
		v.fail("%s: %v", name, err)
		return
	}
	if err := lc.CheckConsistency(ctx, cp, latest); err != nil {
		v.fail("%s: the log does not contain the report's checkpoint: %v", name, err)
		return
	}
	want := "migrate-in"
	if c.Role == "source" {
		want = "migrate-out"
	}
	bad := 0
	for _, i := range c.Events {
		e, err := lc.Entry(ctx, cp, i)
		if err == nil {
			_, err = lc.ProveInclusion(ctx, cp, i, e)
		}
		var l leaf.Leaf
		if err == nil {
			l, err = leaf.Parse(e)
		}
		if err == nil && (l.Action != want || l.Outcome != "allowed" || l.Role != "system") {
			err = fmt.Errorf("leaf is %s by %s (%s), not an allowed %s", l.Action, l.Role, l.Outcome, want)
		}
		if err != nil {
			bad++
			if bad <= 5 {
				v.fail("%s: event %d: %v", name, i, err)
			}
		}
	}
	if bad == 0 {
		fmt.Fprintf(v.w, "%s: %d %s events in the log (checkpoint of %d leaves, root %s, contained in the log of %d now): OK\n",
			name, len(c.Events), want, cp.Size, base64.StdEncoding.EncodeToString(cp.Hash[:]), latest.Size)
	}
}
