package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"domicile/httpapi"
	"domicile/keyring"
	"domicile/sqlite"
)

// keysCommand is `domicile keys`.
var keysCommand = command{name: "keys", summary: "key custody: status, rotate the KEK, re-wrap data keys, retire old versions", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "keys", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"status": keysAPI("status", http.MethodGet, ""), "rotate": keysAPI("rotate", http.MethodPost, "/rotate"),
		"retire": keysAPI("retire", http.MethodPost, "/retire"), "rewrap": keysRewrap,
	})
}}

// keysAPI asks the running server (admin token) about a cell's keys.
func keysAPI(verb, method, suffix string) func(context.Context, *cmdEnv, []string) error {
	return func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlagSet(env, "keys "+verb)
		var cf clientFlags
		cf.register(fs)
		cellID := fs.String("cell", "", "cell id")
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
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+"/v1/cells/"+*cellID+"/keys"+suffix, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.Token)
		var st httpapi.KeyStatus
		if _, err := c.Do(req, &st); err != nil {
			return err
		}
		return printJSON(env.Stdout, st)
	}
}

// keysRewrap re-wraps every data key of a cell under an old KEK version to
// the current one, working on the cell's custody directly: it never
// decrypts a record, and a run killed midway is finished by the next.
// It is safe while the service runs (SQLite serialises the two writers).
func keysRewrap(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "keys rewrap")
	data := fs.String("data", "./data", "data directory")
	depFile := fs.String("deployment", "", "deployment file (YAML); the embedded demo when empty")
	cellID := fs.String("cell", "", "cell id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := need("cell", *cellID); err != nil {
		return err
	}
	dep, err := loadDeployment(*depFile)
	if err != nil {
		return err
	}
	cc := dep.Cell(*cellID)
	if cc == nil {
		return fmt.Errorf("--cell: no cell %q in the deployment", *cellID)
	}
	kek, err := openKEK(ctx, *data, *cc)
	if err != nil {
		return err
	}
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(*data, "custody", cc.ID))
	if err != nil {
		return err
	}
	defer ks.Close()
	kr := keyring.New(keyring.Config{Cell: cc.ID, KEK: kek, Store: ks, CacheSize: -1, Now: env.Now})
	cur, _, err := kr.Versions(ctx)
	if err != nil {
		return err
	}
	bar := progress{w: env.Stderr, label: "rewrap " + cc.ID}
	n, err := kr.Rewrap(ctx, func(p keyring.RewrapProgress) { bar.show(p.Done, p.Total) })
	bar.done()
	if err != nil {
		return fmt.Errorf("after %d keys: %w (run again to resume)", n, err)
	}
	counts, err := kr.Counts(ctx)
	if err != nil {
		return err
	}
	var left int64
	for v, c := range counts {
		if v < cur {
			left += c
		}
	}
	if left > 0 {
		return errors.New("keys were added under an old version during the run; run again")
	}
	fmt.Fprintf(env.Stdout, "re-wrapped %d data keys of %s to KEK version %d; no key uses an older version\n", n, cc.ID, cur)
	return nil
}
