package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile/checkpoint"
	"domicile/logclient"
	"domicile/witness"
)

// verifyCommand is `domicile verify`.
var verifyCommand = command{name: "verify", summary: "verify a cell's log: checkpoint, consistency, inclusion", run: runVerify}

// repeatedFlag collects the values of a flag given several times.
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, ",") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }

// runVerify verifies a cell's log with nothing but its URL and public keys:
// the checkpoint's signature and required cosignatures, its consistency
// with the checkpoint trusted before (kept in --state), and, given a
// subject's event export, each event's commitment and inclusion.
func runVerify(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "verify")
	var witnesses repeatedFlag
	logURL := fs.String("log", "", "the log's URL prefix, e.g. https://host/log/cn-gz1/ (required)")
	key := fs.String("key", "", "the log's verifier key, name+hash+base64 (required)")
	fs.Var(&witnesses, "witness", "a witness's cosignature verifier key whose cosignature is required (repeatable)")
	fs.Var(&witnesses, "witness-key", "the same as --witness: a witness's verifier key (repeatable); with --witnesses N, one of the keys N are taken from")
	quorum := fs.Int("witnesses", 0, "require valid cosignatures by at least `N` of the --witness-key keys, not by each (0: by each)")
	statePath := fs.String("state", "", "`FILE` keeping the last verified checkpoint of each log (default: the per-user "+
		"$XDG_STATE_HOME/domicile/verify.state, or ~/.local/state/domicile/verify.state); \"none\" keeps no state and checks no consistency")
	events := fs.String("events", "", "a subject's event export (JSON {\"events\": [...]}) to check for inclusion")
	entries := fs.Bool("entries", false, "also check every entry of the log against the signed tree (reads the whole log)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: domicile verify --log URL --key VERIFIERKEY [--witness-key KEY]... [--witnesses N] [--state FILE|none] [--events FILE] [--entries]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "domicile verify: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	for _, f := range []struct{ name, v string }{{"log", *logURL}, {"key", *key}} {
		if f.v == "" {
			fmt.Fprintf(env.Stderr, "domicile verify: --%s is required\n", f.name)
			fs.Usage()
			return errUsage
		}
	}
	if *quorum < 0 || *quorum > len(witnesses) {
		fmt.Fprintf(env.Stderr, "domicile verify: --witnesses %d: give at least that many --witness-key keys (have %d)\n", *quorum, len(witnesses))
		fs.Usage()
		return errUsage
	}
	for i, k := range witnesses {
		if _, err := checkpoint.NewCosignatureVerifier(k); err != nil {
			return fmt.Errorf("--witness-key (the %s): not a witness's cosignature verifier key (<name>+<key ID>+<base64>)", ordinal(i+1))
		}
		for _, o := range witnesses[:i] {
			if o == k {
				return fmt.Errorf("--witness-key (the %s): the key is given twice; a witness counts once", ordinal(i+1))
			}
		}
	}
	c, err := logclient.New(logclient.Config{URL: *logURL, LogKey: *key, WitnessKeys: witnesses, WitnessQuorum: *quorum})
	if err != nil {
		return err
	}
	opts := logclient.Options{Entries: *entries}
	switch *statePath {
	case "none":
	case "":
		p, err := defaultVerifyState(env)
		if err != nil {
			return fmt.Errorf("--state: %w (give --state FILE, or --state none)", err)
		}
		*statePath = p
		fallthrough
	default:
		if err := os.MkdirAll(filepath.Dir(*statePath), 0o700); err != nil {
			return fmt.Errorf("--state: %w", err)
		}
		opts.State = witness.NewFileState(*statePath)
	}
	if *events != "" {
		b, err := os.ReadFile(*events)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		exp, err := logclient.ParseExport(b)
		if err != nil {
			return err
		}
		opts.Events = exp.Events
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := c.Verify(ctx, opts)
	if err != nil {
		return verifyFailure(err)
	}

	cp := res.Checkpoint
	fmt.Fprintf(env.Stdout, "log %s: checkpoint of %d leaves, root %s: signature OK\n", cp.Origin, cp.Size, cp.Hash)
	for _, co := range cp.Cosignatures {
		fmt.Fprintf(env.Stdout, "  cosigned by %s+%08x at %s\n", co.Name, co.KeyHash, co.Time.Format(time.RFC3339))
	}
	if *quorum > 0 {
		fmt.Fprintf(env.Stdout, "  %d of the %d listed witnesses cosigned; %d required\n", len(cp.Cosignatures), len(witnesses), *quorum)
	}
	switch {
	case opts.State == nil:
	case res.Previous == nil:
		fmt.Fprintf(env.Stdout, "  first checkpoint seen from this log: trusted on first use, saved in %s\n", *statePath)
	default:
		fmt.Fprintf(env.Stdout, "  consistent with the checkpoint of %d leaves verified before\n", res.Previous.Size)
	}
	if *events != "" {
		fmt.Fprintf(env.Stdout, "  %d events: each commits to its event and is included in the log\n", res.Events)
	}
	if *entries {
		fmt.Fprintf(env.Stdout, "  all %d entries match the signed tree\n", cp.Size)
	}
	fmt.Fprintln(env.Stdout, "OK")
	return nil
}

// defaultVerifyState is where verify keeps what it trusted, per user:
// $XDG_STATE_HOME/domicile/verify.state, or, without it,
// ~/.local/state/domicile/verify.state (the XDG default), never the
// working directory.
func defaultVerifyState(env *cmdEnv) (string, error) {
	if d := env.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "domicile", "verify.state"), nil
	}
	home := env.Getenv("HOME")
	if home == "" || !filepath.IsAbs(home) {
		return "", errors.New("no per-user state directory: neither XDG_STATE_HOME nor HOME is set")
	}
	return filepath.Join(home, ".local", "state", "domicile", "verify.state"), nil
}

// verifyFailure prefixes a failure with what it means; the wrapped error's
// text carries the evidence (checkpoints, proofs, tiles).
func verifyFailure(err error) error {
	var (
		ce *logclient.ConsistencyError
		te *logclient.TreeError
		qe *checkpoint.QuorumError
		me *checkpoint.MissingCosignatureError
	)
	switch {
	case errors.As(err, &qe), errors.As(err, &me):
		return fmt.Errorf("CHECKPOINT LACKS REQUIRED WITNESS COSIGNATURES\n%w", err)
	case errors.As(err, &ce):
		return fmt.Errorf("LOG INCONSISTENT (evidence follows; keep it)\n%w", err)
	case errors.As(err, &te):
		return fmt.Errorf("SERVED TREE DOES NOT MATCH SIGNED CHECKPOINT (evidence follows; keep it)\n%w", err)
	}
	return fmt.Errorf("verification failed\n%w", err)
}

var _ flag.Value = (*repeatedFlag)(nil)

// ordinal is n as "1st", "2nd", "3rd", "4th"...
func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}
