package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"domicile/law"
)

// assessCommand is `domicile assess`.
var assessCommand = command{name: "assess", summary: "assess obligations from a fact file or inventory", run: runAssess}

// runAssess implements `domicile assess [flags] FILE|-`.
func runAssess(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "assess")
	format := fs.String("format", "text", "output `format`: text, json, markdown or html")
	asOf := fs.String("as-of", "", "assess the law in force on this `date` (YYYY-MM-DD); default: the file's as_of, else today")
	explain := fs.String("explain", "", "explain why `RULE` fired or did not, fact by fact, instead of the report")
	out := fs.String("out", "", "write the output to `FILE` instead of standard output")
	changes := fs.String("changes", "", "report what changes for the same facts between two days, `FROM..TO` (YYYY-MM-DD..YYYY-MM-DD), instead of the report on one day")
	rules := addRulesFlags(fs)
	live := addLiveFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: domicile assess [flags] FILE|-")
		fmt.Fprintln(fs.Output(), "\nReads a fact file or a business inventory (YAML or JSON; - for standard input)")
		fmt.Fprintln(fs.Output(), "and reports the transfer mechanism, obligations and findings with citations.")
		fmt.Fprintln(fs.Output(), "Not legal advice.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var rng *law.DateRange
	if *changes != "" {
		r, err := law.ParseDateRange("--changes", *changes)
		if err != nil {
			return err
		}
		rng = &r
	}
	if done, err := live(ctx, env, *format, *out, rng); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	f, err := law.ParseFormat(*format)
	if err != nil {
		return err
	}
	now := env.Now()
	var override string
	if *asOf != "" {
		d, err := time.Parse(time.DateOnly, *asOf)
		if err != nil || d.Format(time.DateOnly) != *asOf {
			return &law.InputError{Field: "--as-of", Message: "must be a date written YYYY-MM-DD"}
		}
		override = *asOf
	}
	data, err := readInput(env, fs.Arg(0))
	if err != nil {
		return err
	}
	e, err := rules.engine()
	if err != nil {
		return err
	}
	in, err := e.Parse(data)
	if err != nil {
		return err
	}
	if override != "" {
		in.AsOf = override // the flag wins over the file's as_of
	}
	if rng != nil {
		in.Changes = rng // the flag wins over the file's changes
	}
	var buf bytes.Buffer
	if in.Changes != nil {
		if *explain != "" {
			return &law.InputError{Field: "--explain", Message: "cannot be combined with --changes"}
		}
		c, err := e.Changes(in, *in.Changes)
		if err != nil {
			return err
		}
		if err := c.Render(&buf, f); err != nil {
			return err
		}
	} else if *explain != "" {
		x, err := e.Explain(in, now, *explain)
		if err != nil {
			return err
		}
		if err := x.Render(&buf, f); err != nil {
			return err
		}
	} else {
		rep, err := e.Assess(in, now)
		if err != nil {
			return err
		}
		if err := rep.Render(&buf, f); err != nil {
			return err
		}
	}
	if *out == "" {
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	return writeFileAtomic(*out, buf.Bytes())
}

// readInput reads FILE, or standard input for "-", up to law.MaxInputBytes.
func readInput(env *cmdEnv, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = env.Stdin
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, law.MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > law.MaxInputBytes {
		return nil, &law.InputError{Field: name, Message: fmt.Sprintf("larger than %d bytes", law.MaxInputBytes)}
	}
	return data, nil
}

// writeFileAtomic writes data to a temporary file beside name and renames it
// into place, so a reader never sees half a report.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
