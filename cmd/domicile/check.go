package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// checkCommand is `domicile check`.
var checkCommand = command{name: "check", summary: "check every cell's stored log against its signed checkpoint, offline (server stopped)", run: runCheck}

// errRefused is returned when a cell fails its check; the report has been
// printed.
var errRefused = errors.New("a cell failed its integrity check")

// runCheck does offline what serve does on open: for each cell of the
// deployment, SQLite's quick_check, the last checkpoint's signature, every
// event against its leaf, the events against the signed root, and every
// stored tile against the events, rebuilding tiles that disagree. It
// prints one block per cell and exits 1 if any cell would refuse to serve.
func runCheck(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "check")
	data := fs.String("data", "./data", "data directory")
	depFile := fs.String("deployment", "", "deployment file (YAML); the embedded demo when empty")
	only := fs.String("cell", "", "check only cell `ID`: the data directory of one cell process (serve --cell)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: domicile check [--data DIR] [--deployment FILE] [--cell ID]")
		fmt.Fprintln(fs.Output(), "\nChecks each cell's stored log as serve does on open, with the server stopped:")
		fmt.Fprintln(fs.Output(), "ok, tiles rebuilt from the events, or refused with the evidence. Exit status 1")
		fmt.Fprintln(fs.Output(), "if a cell is refused.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.Stderr, "domicile check: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	dep, err := loadDeployment(*depFile)
	if err != nil {
		return err
	}
	if st, err := os.Stat(*data); err != nil || !st.IsDir() {
		return fmt.Errorf("--data %s: not a data directory", *data)
	}
	if *only != "" && dep.Cell(*only) == nil {
		return fmt.Errorf("--cell: %q is not a cell of the deployment (cells: %s)", truncateFlag(*only), cellIDs(dep))
	}
	refused := 0
	for _, cc := range dep.Cells {
		if *only != "" && cc.ID != *only {
			continue
		}
		if cs, err := resolveCellStore(*data, cc); err == nil && !cs.Exists {
			if v, verr := logVerifier(*data, cc.ID); verr == nil && v == nil {
				fmt.Fprintf(env.Stdout, "%s: no store yet (never started)\n", cc.ID)
				continue
			}
			// openCheckedStore refuses a missing database whose log key
			// exists, and a store it cannot choose; it never creates one
			// here.
		}
		var checks []cellCheck
		st, _, err := openCheckedStore(ctx, *data, cc, &checks)
		if err != nil {
			refused++
			fmt.Fprintf(env.Stdout, "%s: refused: %v\n", cc.ID, err)
			continue
		}
		if st != nil {
			if err := st.Close(); err != nil {
				return fmt.Errorf("cell %s: close: %w", cc.ID, err)
			}
		}
		ck := checks[0]
		switch {
		case ck.Err != nil:
			refused++
			fmt.Fprintf(env.Stdout, "%s: refused: %s\n", cc.ID, indent(evidence(ck.Err)))
		case ck.Result.Rebuilt:
			fmt.Fprintf(env.Stdout, "%s: rebuilt tiles: %d stored hashes disagreed with the events, first at %s; rebuilt and checked (%d events, checkpoint %d)\n",
				cc.ID, ck.Result.BadHashes, ck.Result.FirstBad, ck.Result.Size, ck.Result.Checkpoint)
		default:
			cp := "no checkpoint yet"
			if ck.Result.Checkpoint >= 0 {
				cp = fmt.Sprintf("checkpoint %d, root %s", ck.Result.Checkpoint, ck.Result.Root)
			}
			fmt.Fprintf(env.Stdout, "%s: ok: %d events, %s\n", cc.ID, ck.Result.Size, cp)
		}
	}
	if refused > 0 {
		return fmt.Errorf("%w: %d of %d cells refused", errRefused, refused, len(dep.Cells))
	}
	return nil
}

// indent indents every line of s after the first, so that a multi-line
// report stays under its cell.
func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
