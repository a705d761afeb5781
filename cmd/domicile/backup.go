package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"domicile/httpapi"
)

// backupCommand is `domicile backup`.
var backupCommand = command{name: "backup", summary: "take an online backup of a cell's store (the running service writes it under its --backup-dir)", run: runBackup}

// runBackup asks the running service (admin token) for a backup of one
// cell's store and prints where it was written and what it holds.
func runBackup(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "backup")
	var cf clientFlags
	cf.register(fs)
	cellID := fs.String("cell", "", "cell id")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := need("cell", *cellID); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	var b httpapi.Backup
	if _, err := c.Call(ctx, http.MethodPost, "/v1/cells/"+url.PathEscape(*cellID)+"/backup", nil, &b); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, b)
	}
	fmt.Fprintf(env.Stdout, "backup of cell %s written to %s (on the cell's machine)\n", b.Cell, b.Dir)
	fmt.Fprintf(env.Stdout, "  %d files, %d bytes; covers the cell's log up to size %d; took %d ms\n", b.Files, b.Bytes, b.LogSize, b.TookMS)
	fmt.Fprintln(env.Stdout, "  copy it off the machine, within the cell's jurisdiction; to restore, stop the cell's process and put it in place of the cell's store (doc/deploy.md, Backups)")
	return nil
}
