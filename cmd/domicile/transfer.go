package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile"
	"domicile/httpapi"
	"domicile/sqlite"
	"domicile/transfer"
)

// holidayFile, if present in <data>/control, extends the embedded CN
// working-day calendar (canonical calendar text: "YYYY-MM-DD off|work NAME"
// lines), for years the State Council publishes after this build.
const holidayFile = "cn-holidays.txt"

// mechanismCommand is `domicile mechanism`.
var mechanismCommand = command{name: "mechanism", summary: "register and list transfer mechanisms (admin)", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "mechanism", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"add": mechanismAdd, "list": mechanismList, "show": mechanismShow})
}}

// consentCommand is `domicile consent`.
var consentCommand = command{name: "consent", summary: "record subjects' consents to transfer and to sensitive processing", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "consent", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"grant": consentSet(true), "withdraw": consentSet(false), "list": consentList})
}}

// transferCommand is `domicile transfer`.
var transferCommand = command{name: "transfer", summary: "request transfers abroad, import earlier ones, show the ledger and evidence", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "transfer", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"request": transferRequest, "import": transferImport, "ledger": transferLedger, "evidence": transferEvidence})
}}

// sharedRefresh is how long a cell process trusts what it caches of the
// stores it shares with the other processes of a deployment (the
// mechanism registry).
const sharedRefresh = 2 * time.Second

// openGateway opens the transfer store of a runtime and its gateway; the
// store closes with the runtime.
func openGateway(ctx context.Context, rt *runtime) (*transfer.Gateway, error) {
	dir := filepath.Join(rt.controlDir, "control")
	cal := transfer.CN()
	b, err := os.ReadFile(filepath.Join(dir, holidayFile))
	switch {
	case err == nil:
		extra, err := transfer.ParseCalendar(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", holidayFile, err)
		}
		cal = cal.Merge(extra)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	st, err := sqlite.OpenLedger(ctx, dir)
	if err != nil {
		return nil, err
	}
	cfg := transfer.Config{Store: st, Engine: rt.law, Router: rt.router, Calendar: cal, Now: rt.now, Logger: rt.log}
	if rt.shared {
		// Other cell processes register mechanisms in the same ledger.
		cfg.Refresh = sharedRefresh
	}
	g, err := transfer.New(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	rt.closers = append(rt.closers, st.Close)
	return g, nil
}

// readJSONFile decodes a JSON file (or standard input for "-") strictly.
func readJSONFile(env *cmdEnv, name string, v any) error {
	var r io.Reader = env.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func mechanismAdd(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "mechanism add")
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", "the mechanism as JSON (- for standard input); see doc/transfers.md")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := need("file", *file); err != nil {
		return err
	}
	var m transfer.Mechanism
	if err := readJSONFile(env, *file, &m); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	v, err := c.PutMechanism(ctx, m)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, v)
}

func mechanismList(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "mechanism list")
	var cf clientFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	ms, err := c.Mechanisms(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		state := "valid"
		if !m.Status.Valid {
			state = "NOT VALID: " + strings.Join(m.Status.Problems, "; ")
		}
		fmt.Fprintf(env.Stdout, "%-20s %-22s %-20s %s\n", m.ID, m.Kind, m.Reference, state)
	}
	return nil
}

var mechanismShow = jsonCommand("mechanism show", true, func(fs *flag.FlagSet) clientCall[*transfer.MechanismView] {
	id := fs.String("id", "", "mechanism id")
	return clientCall[*transfer.MechanismView]{
		check: func() error { return need("id", *id) },
		call: func(ctx context.Context, c *httpapi.Client) (*transfer.MechanismView, error) {
			return c.Mechanism(ctx, *id)
		}}
})

// consentSet is `domicile consent grant` (granted) or `withdraw`.
func consentSet(granted bool) func(context.Context, *cmdEnv, []string) error {
	return jsonCommand("consent", false, func(fs *flag.FlagSet) clientCall[*domicile.Consent] {
		id := fs.String("subject", "", "the subject's id")
		kind := fs.String("kind", "cross-border", "cross-border (PIPL Art. 39) or sensitive (Art. 29)")
		version := fs.String("text-version", "", "version of the consent text the app showed")
		return clientCall[*domicile.Consent]{
			check: func() error { return errors.Join(need("subject", *id), need("text-version", *version)) },
			call: func(ctx context.Context, c *httpapi.Client) (*domicile.Consent, error) {
				return c.SetConsent(ctx, *id, *kind, *version, granted)
			}}
	})
}

var consentList = jsonCommand("consent list", false, func(fs *flag.FlagSet) clientCall[[]domicile.Consent] {
	id := fs.String("subject", "", "the subject's id")
	return clientCall[[]domicile.Consent]{
		check: func() error { return need("subject", *id) },
		call: func(ctx context.Context, c *httpapi.Client) ([]domicile.Consent, error) {
			return c.Consents(ctx, *id)
		}}
})

func transferRequest(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "transfer request")
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", "the request as JSON (- for standard input); see doc/transfers.md")
	out := fs.String("out", "", "write the bundle to `FILE`")
	dry := fs.Bool("dry-run", false, "only decide; count and send nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := need("file", *file); err != nil {
		return err
	}
	if !*dry {
		if err := need("out", *out); err != nil {
			return err
		}
	}
	var req transfer.Request
	if err := readJSONFile(env, *file, &req); err != nil {
		return err
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	if *dry {
		d, err := c.DecideTransfer(ctx, req)
		if err != nil {
			return err
		}
		return printJSON(env.Stdout, d)
	}
	d, body, err := c.Transfer(ctx, req)
	var re *httpapi.TransferRefusedError
	if errors.As(err, &re) {
		printJSON(env.Stdout, re.Decision)
		return fmt.Errorf("refused under %s", strings.Join(re.Decision.Rules, ", "))
	}
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return printJSON(env.Stdout, d)
}

func transferImport(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "transfer import")
	var cf clientFlags
	cf.register(fs)
	source := fs.String("source", "CN", "the jurisdiction the data left")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "usage: domicile transfer import [flags] FILE.csv|-   (CSV: "+transfer.ImportHeader+")")
		return errUsage
	}
	var r io.Reader = env.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	res, err := c.ImportTransfers(ctx, *source, r)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, res)
}

var transferLedger = jsonCommand("transfer ledger", true, func(fs *flag.FlagSet) clientCall[*transfer.LedgerView] {
	year := fs.Int("year", 0, "calendar year (default: this year)")
	return clientCall[*transfer.LedgerView]{call: func(ctx context.Context, c *httpapi.Client) (*transfer.LedgerView, error) {
		return c.Ledger(ctx, *year)
	}}
})

func transferEvidence(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "transfer evidence")
	var cf clientFlags
	cf.register(fs)
	from := fs.String("from", "", "first day (YYYY-MM-DD)")
	until := fs.String("until", "", "day after the last (YYYY-MM-DD)")
	format := fs.String("format", "csv", "csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	body, err := c.Evidence(ctx, *from, *until, *format)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(env.Stdout, body)
	return err
}
