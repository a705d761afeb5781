package main

import (
	"bufio"
	"context"
	"domicile/client"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/httpapi"
	"domicile/leaf"
	"domicile/logclient"
	"domicile/report"
)

// MaxReportBytes bounds a transparency report read by transparency verify.
const MaxReportBytes = 64 << 20

// transparencyVerify is `domicile transparency verify REPORT.json --server
// URL`: it recounts every log figure of a transparency report from the
// cells' public tiles alone, at the checkpoint each cell names, and says
// which figure differs. The checkpoint must verify under the log key the
// deployment publishes (or one pinned with --key) and be contained in the
// log the server serves now. Ledger figures are listed as such, with the
// ledger's digest; with an admin or auditor --token they are recounted
// from the ledger's evidence and counts too. Any difference, or a
// checkpoint the log does not contain, is a failure (exit status 1).
func transparencyVerify(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "transparency verify")
	server := fs.String("server", "", "the deployment's URL: each cell's log is read at <server>/log/<cell>/ (env DOMICILE_SERVER; required)")
	var pins repeatedFlag
	fs.Var(&pins, "key", "CELL=VERIFIERKEY: check that cell's checkpoint against this log key rather than the one the server publishes (repeatable)")
	token := fs.String("token", "", "an admin or auditor token (env DOMICILE_TOKEN): also recount the ledger's figures from its evidence and counts")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: domicile transparency verify REPORT.json --server URL [--key CELL=KEY]... [--token T]")
		fs.PrintDefaults()
	}
	// The report's file may come before or after the flags.
	var file string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			fmt.Fprintf(env.Stderr, "domicile transparency verify: unexpected argument %q\n", fs.Arg(0))
			fs.Usage()
			return errUsage
		}
		file, args = fs.Arg(0), fs.Args()[1:]
	}
	if *server == "" {
		*server = env.Getenv("DOMICILE_SERVER")
	}
	if *token == "" {
		*token = env.Getenv("DOMICILE_TOKEN")
	}
	if file == "" || *server == "" {
		if file == "" {
			fmt.Fprintln(env.Stderr, "domicile transparency verify: the report's file is required (- for standard input)")
		} else {
			fmt.Fprintln(env.Stderr, "domicile transparency verify: --server is required")
		}
		fs.Usage()
		return errUsage
	}
	pinned := map[string]string{}
	for _, p := range pins {
		c, k, ok := strings.Cut(p, "=")
		if !ok || c == "" || k == "" {
			return fmt.Errorf("--key: %q must be CELL=VERIFIERKEY", truncateArg(p))
		}
		pinned[c] = k
	}
	tr, err := readReport(env, file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	base := strings.TrimSuffix(*server, "/")
	published, err := publishedLogKeys(ctx, base)
	if err != nil {
		return err
	}
	v := &reportCheck{w: env.Stdout}
	fmt.Fprintf(env.Stdout, "transparency report of %s, period %s to %s, generated %s\n", tr.Deployment,
		tr.Period.From.UTC().Format(time.RFC3339), tr.Period.To.UTC().Format(time.RFC3339), tr.Generated.UTC().Format(time.RFC3339))
	var counted []figures.Cell
	for _, c := range tr.Cells {
		key := pinned[c.Cell]
		if key == "" {
			key = published[c.Cell]
		}
		f, ok := v.cell(ctx, base, key, tr.Period, c)
		if ok {
			counted = append(counted, f)
		}
	}
	if len(counted) == len(tr.Cells) {
		v.compare("totals", figures.Compare(tr.Totals, figures.Sum(counted...)))
	} else {
		v.fail("totals: not recounted, since a cell's log could not be")
	}
	v.ledger(ctx, base, *token, tr)
	listAuthorityFigures(env.Stdout, tr)
	if v.failures > 0 {
		return fmt.Errorf("%d of the report's figures or checkpoints do not match the log", v.failures)
	}
	fmt.Fprintln(env.Stdout, "OK: every log figure matches a recount from the public tiles")
	return nil
}

func truncateArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// readReport reads a transparency report in JSON from file (- for
// standard input).
func readReport(env *cmdEnv, file string) (*report.Transparency, error) {
	var r io.Reader = env.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, MaxReportBytes)
	}
	var tr report.Transparency
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("%s: not a transparency report in JSON: %v", file, err)
	}
	if len(tr.Cells) == 0 {
		return nil, fmt.Errorf("%s: the report names no cell", file)
	}
	return &tr, nil
}

// publishedLogKeys returns each cell's log verifier key as the deployment
// publishes it (GET /v1/cells, which needs no token).
func publishedLogKeys(ctx context.Context, base string) (map[string]string, error) {
	raw, err := (&httpapi.Client{Client: client.Client{BaseURL: base}}).Cells(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the cells' log keys: %w", err)
	}
	var doc struct {
		Cells []struct {
			ID  string `json:"id"`
			Log *struct {
				VerifierKey string `json:"verifier_key"`
			} `json:"log"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("read the cells' log keys: %v", err)
	}
	out := map[string]string{}
	for _, c := range doc.Cells {
		if c.Log != nil {
			out[c.ID] = c.Log.VerifierKey
		}
	}
	return out, nil
}

// reportCheck prints what it checks and counts the failures.
type reportCheck struct {
	w        io.Writer
	failures int
}

func (v *reportCheck) fail(format string, args ...any) {
	v.failures++
	fmt.Fprintf(v.w, "FAIL "+format+"\n", args...)
}

func (v *reportCheck) compare(what string, ds []figures.Difference) {
	if len(ds) == 0 {
		fmt.Fprintf(v.w, "%s: every figure matches\n", what)
		return
	}
	for _, d := range ds {
		v.fail("%s: %s", what, d)
	}
}

// cell checks one cell's checkpoint and recounts its figures from the
// log's tiles; ok is false when they could not be recounted.
func (v *reportCheck) cell(ctx context.Context, base, key string, period report.Period, c report.CellFigures) (figures.Cell, bool) {
	name := "cells[" + c.Cell + "]"
	switch {
	case key == "":
		v.fail("%s: the server publishes no log key for cell %s (pin one with --key)", name, c.Cell)
		return figures.Cell{}, false
	case key != c.Log.VerifierKey:
		v.fail("%s: the report names log key %s, not the cell's %s (pinned with --key, or as the deployment publishes it)", name, c.Log.VerifierKey, key)
		return figures.Cell{}, false
	case !strings.HasPrefix(c.Log.URL, "/log/"):
		v.fail("%s: the report's log URL %q is not under /log/", name, c.Log.URL)
		return figures.Cell{}, false
	}
	lc, err := logclient.New(logclient.Config{URL: base + c.Log.URL, LogKey: key})
	if err != nil {
		v.fail("%s: %v", name, err)
		return figures.Cell{}, false
	}
	cp, err := lc.OpenCheckpoint([]byte(c.Log.Checkpoint))
	if err != nil {
		v.fail("%s: the report's checkpoint does not verify with the log's key: %v", name, err)
		return figures.Cell{}, false
	}
	if root := base64.StdEncoding.EncodeToString(cp.Hash[:]); cp.Size != c.Log.Size || root != c.Log.RootHash {
		v.fail("%s: the report says it counted %d leaves with root %s, its signed checkpoint is of %d leaves with root %s", name, c.Log.Size, c.Log.RootHash, cp.Size, root)
		return figures.Cell{}, false
	}
	latest, err := lc.FetchCheckpoint(ctx)
	if err != nil {
		v.fail("%s: %v", name, err)
		return figures.Cell{}, false
	}
	if err := lc.CheckConsistency(ctx, cp, latest); err != nil {
		v.fail("%s: the log does not contain the checkpoint the report was counted at (%d leaves, root %s): %v", name, cp.Size, c.Log.RootHash, err)
		return figures.Cell{}, false
	}
	fmt.Fprintf(v.w, "%s: checkpoint of %d leaves, root %s: signature OK, contained in the log (now %d leaves)\n", name, cp.Size, c.Log.RootHash, latest.Size)
	k := figures.NewCounter(period.From, period.To)
	if err := lc.EachLeaf(ctx, cp, func(_ int64, l leaf.Leaf) error { k.Add(l); return nil }); err != nil {
		v.fail("%s: the log's entries cannot be recounted: %v", name, err)
		return figures.Cell{}, false
	}
	counted := k.Figures()
	v.compare(name+" (recounted from "+fmt.Sprint(cp.Size)+" leaves)", figures.Compare(c.Figures, counted))
	return counted, true
}

// ledger lists the ledger's figures as such and, given a token, recounts
// them from the ledger's evidence and counts.
func (v *reportCheck) ledger(ctx context.Context, base, token string, tr *report.Transparency) {
	if tr.Ledger == nil {
		if tr.TransfersReported {
			v.fail("ledger: the report says transfers are reported but carries no ledger figures")
		} else {
			fmt.Fprintln(v.w, "ledger: no transfer gateway reported to this report")
		}
		return
	}
	l := tr.Ledger
	fmt.Fprintf(v.w, "ledger figures (from the transfer ledger, not the log; %d records, digest %s):\n", l.Records, l.Digest)
	for _, p := range l.People {
		fmt.Fprintf(v.w, "  %d %s: %d people, %d with sensitive personal information\n", p.Year, p.Source, p.People, p.SensitivePeople)
	}
	for _, t := range l.Transfers {
		fmt.Fprintf(v.w, "  %d %s %s > %s: %d transfers (%d counted), %d people, %d with sensitive personal information\n",
			t.Year, t.Source, t.Mechanism, t.Destination, t.Transfers, t.Counted, t.People, t.SensitivePeople)
	}
	if token == "" {
		fmt.Fprintln(v.w, "  not recounted: give an admin or auditor --token to recount them from the ledger")
		return
	}
	counted, err := recountLedger(ctx, &httpapi.Client{Client: client.Client{BaseURL: base, Token: token}}, l.Entity, l.Years)
	if err != nil {
		v.fail("ledger: %v", err)
		return
	}
	v.compare("ledger (recounted from the ledger's evidence and counts)", figures.CompareLedger(*l, *counted))
}

// recountLedger rebuilds the ledger figures of an entity's years from the
// ledger's JSON evidence and its counts of each year.
func recountLedger(ctx context.Context, c *httpapi.Client, entity string, years []int) (*figures.Ledger, error) {
	in := map[int]bool{}
	for _, y := range years {
		in[y] = true
	}
	body, err := c.Evidence(ctx, "", "", "json")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var recs []domicile.TransferRecord
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var r domicile.TransferRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("evidence: %v", err)
		}
		if r.Entity == entity && in[r.Year] {
			recs = append(recs, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evidence: %v", err)
	}
	ys := append([]int{}, years...)
	sort.Ints(ys)
	var counts []domicile.Count
	for _, y := range ys {
		lv, err := c.Ledger(ctx, y)
		if err != nil {
			return nil, err
		}
		if lv.Entity != entity {
			return nil, errors.New("the ledger is of entity " + lv.Entity + ", the report of " + entity)
		}
		counts = append(counts, lv.Counts...)
	}
	out := figures.LedgerOf(entity, ys, recs, counts)
	return &out, nil
}

// listAuthorityFigures lists the authority request figures as such.
func listAuthorityFigures(w io.Writer, tr *report.Transparency) {
	fmt.Fprintln(w, "authority request figures (from the authority request register, not the log):")
	keys := make([]string, 0, len(tr.AuthorityTotals))
	for k := range tr.AuthorityTotals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %d\n", k, tr.AuthorityTotals[k])
	}
}
