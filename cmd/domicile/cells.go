package main

import (
	"context"
	"domicile/client"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"domicile/httpapi"
)

// cellsCommand is `domicile cells`.
var cellsCommand = command{name: "cells", summary: "list the cells: jurisdiction, operator, custody, log origin and keys", run: runCells}

// runCells prints GET /v1/cells: public, so it needs no token.
func runCells(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "cells")
	server := fs.String("server", "", "server URL (env DOMICILE_SERVER; default http://127.0.0.1:8700)")
	logKey := fs.String("log-key", "", "print only this cell's log verifier key")
	witnessKey := fs.String("witness-key", "", "print only this cell's witness key")
	asJSON := fs.Bool("json", false, "print the JSON document")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	base := *server
	if base == "" {
		base = env.Getenv("DOMICILE_SERVER")
	}
	if base == "" {
		base = "http://127.0.0.1:8700"
	}
	raw, err := (&httpapi.Client{Client: client.Client{BaseURL: base}}).Cells(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := env.Stdout.Write(append(raw, '\n'))
		return err
	}
	var doc struct {
		Cells []struct {
			ID           string           `json:"id"`
			Jurisdiction string           `json:"jurisdiction"`
			Operator     string           `json:"operator"`
			Custody      string           `json:"key_custody"`
			Log          *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	for _, c := range doc.Cells {
		switch {
		case *logKey == c.ID && c.Log != nil:
			fmt.Fprintln(env.Stdout, c.Log.VerifierKey)
			return nil
		case *witnessKey == c.ID && c.Log != nil:
			fmt.Fprintln(env.Stdout, c.Log.WitnessKey)
			return nil
		}
	}
	if *logKey != "" || *witnessKey != "" {
		return fmt.Errorf("no such cell with a log: %s%s", *logKey, *witnessKey)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CELL\tJURISDICTION\tOPERATOR\tCUSTODY\tLOG KEY")
	for _, c := range doc.Cells {
		key := ""
		if c.Log != nil {
			key = c.Log.VerifierKey
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Jurisdiction, c.Operator, c.Custody, key)
	}
	return tw.Flush()
}
