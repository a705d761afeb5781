package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile"
	"domicile/httpapi"
)

// The control log's actor names for what the binary does on its own.
const (
	actorServe       = "domicile-serve"
	actorAdminRotate = "domicile-admin-rotate"
)

// adminCommand is `domicile admin`.
var adminCommand = command{name: "admin", summary: "replace the admin token file (admin rotate)", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "admin", args, map[string]func(context.Context, *cmdEnv, []string) error{"rotate": adminRotate})
}}

// maxAdminTokenFile bounds what is read of an admin token file.
const maxAdminTokenFile = 1 << 10

// readAdminToken reads an admin token file: one token secret, optionally
// followed by a line break, and nothing else. A missing file is an error
// that wraps fs.ErrNotExist.
func readAdminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, maxAdminTokenFile+1)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	secret := strings.TrimSuffix(strings.TrimSuffix(string(b[:n]), "\n"), "\r")
	if n > maxAdminTokenFile || !httpapi.ValidTokenSecret(secret) {
		return "", fmt.Errorf("%s does not hold an admin token (want one line, dmc_ and 43 characters)", path)
	}
	return secret, nil
}

// rotateHint is the sentence every refusal to start over the admin token
// ends with.
func rotateHint(dir string) string {
	return fmt.Sprintf("run `domicile admin rotate --data %s` to write a new admin token file and revoke the old token", dir)
}

// ensureAdminToken checks <data>/admin.token before serving. On first
// start (no file, and no valid admin token in the control store) it mints
// the admin token and writes it there (mode 0600, the bare token and a
// newline). Otherwise the file must hold a valid admin token: a missing,
// unreadable or malformed file, or one whose token is unknown, revoked,
// expired or not an admin's, makes the server refuse to start, naming
// `domicile admin rotate`: it never mints a second admin silently.
func ensureAdminToken(ctx context.Context, env *cmdEnv, rt *runtime) error {
	path := filepath.Join(rt.dir, "admin.token")
	now := env.Now().UTC()
	secret, err := readAdminToken(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		admins, err := rt.control.ListTokens(ctx, domicile.TokenQuery{Role: domicile.RoleAdmin, ActiveAt: now, Limit: 1})
		if err != nil {
			return err
		}
		if len(admins) > 0 {
			return fmt.Errorf("%s is missing, but the control store has a valid admin token (%s): refusing to start rather than make a second admin; %s",
				path, admins[0].ID, rotateHint(rt.dir))
		}
		secret, tok, err := httpapi.IssueToken(ctx, rt.control, domicile.Token{Role: domicile.RoleAdmin, Jurisdiction: rt.dep.Cells[0].Jurisdiction,
			Note: domicile.AdminFileNote, Created: now}, actorServe)
		if err != nil {
			return err
		}
		if err := writeFileSync(path, []byte(secret+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "domicile: first start: admin token %s written to %s\n", tok.ID, path)
		return nil
	case err != nil:
		return fmt.Errorf("%v; refusing to start: %s", err, rotateHint(rt.dir))
	}
	t, err := rt.control.TokenByHash(ctx, httpapi.HashTokenSecret(secret))
	switch {
	case errors.Is(err, domicile.ErrNotFound):
		return fmt.Errorf("%s holds a token this deployment does not know; refusing to start: %s", path, rotateHint(rt.dir))
	case err != nil:
		return err
	case t.Role != domicile.RoleAdmin:
		return fmt.Errorf("%s holds a %s token, not an admin token; refusing to start: %s", path, t.Role, rotateHint(rt.dir))
	case !t.Revoked.IsZero():
		return fmt.Errorf("%s holds admin token %s, revoked at %s; refusing to start: %s", path, t.ID, t.Revoked.Format(time.RFC3339), rotateHint(rt.dir))
	case !t.Active(now):
		return fmt.Errorf("%s holds admin token %s, expired at %s; refusing to start: %s", path, t.ID, t.Expires.Format(time.RFC3339), rotateHint(rt.dir))
	}
	return nil
}

// adminRotate is `domicile admin rotate`: it makes a new admin token,
// revokes the one in the admin token file (or, if the file is missing or
// unreadable, every valid admin token made for that file), and writes
// the new one to the file. It works on the control store directly, with
// the server running or not; a running server stops honouring the old
// token within its revocation check interval (serve --token-recheck).
func adminRotate(ctx context.Context, env *cmdEnv, args []string) error {
	flags := newFlagSet(env, "admin rotate")
	data := flags.String("data", "./data", "data directory (holds admin.token and the control store)")
	depFile := flags.String("deployment", "", "deployment file; the new admin token acts from its first cell's jurisdiction when the old one is unknown")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	dep, err := loadDeployment(*depFile)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*data, "directory.key")); err != nil {
		return fmt.Errorf("--data: %s holds no deployment (%v)", *data, err)
	}
	ctl, err := openControl(ctx, dep, *data)
	if err != nil {
		return err
	}
	defer ctl.Close()
	now := env.Now().UTC()
	path := filepath.Join(*data, "admin.token")

	var old *domicile.Token
	if secret, err := readAdminToken(path); err == nil {
		if t, err := ctl.TokenByHash(ctx, httpapi.HashTokenSecret(secret)); err == nil && t.Role == domicile.RoleAdmin {
			old = t
		} else if err != nil && !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.Stderr, "domicile admin rotate: %v; replacing it\n", err)
	}
	var (
		secret  string
		tok     *domicile.Token
		revoked []string
	)
	if old != nil && old.Revoked.IsZero() {
		secret, tok, err = httpapi.RotateToken(ctx, ctl, old, now, time.Time{}, actorAdminRotate)
		if err != nil {
			return err
		}
		revoked = append(revoked, old.ID)
	} else {
		j := dep.Cells[0].Jurisdiction
		if old != nil {
			j = old.Jurisdiction
		}
		secret, tok, err = httpapi.IssueToken(ctx, ctl, domicile.Token{Role: domicile.RoleAdmin, Jurisdiction: j, Note: domicile.AdminFileNote, Created: now}, actorAdminRotate)
		if err != nil {
			return err
		}
	}
	// Every other valid admin token made for the file: the file may have
	// been lost, and whoever holds its old content must lose the admin.
	for after := ""; ; {
		page, err := ctl.ListTokens(ctx, domicile.TokenQuery{Role: domicile.RoleAdmin, ActiveAt: now, After: after, Limit: domicile.MaxListLimit})
		if err != nil {
			return err
		}
		for _, t := range page {
			if t.Note != domicile.AdminFileNote || t.ID == tok.ID {
				continue
			}
			ev := domicile.ControlEvent{Time: now, Action: domicile.ControlRevoke, Token: t.ID, Role: t.Role, Jurisdiction: t.Jurisdiction, Actor: actorAdminRotate}
			if _, err := ctl.RevokeToken(ctx, t.ID, ev); err != nil {
				return err
			}
			revoked = append(revoked, t.ID)
		}
		if len(page) < domicile.MaxListLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := replaceFileSync(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w (the old admin token is revoked already: run domicile admin rotate again)", path, err)
	}
	fmt.Fprintf(env.Stdout, "domicile: new admin token %s written to %s\n", tok.ID, path)
	if len(revoked) == 0 {
		fmt.Fprintln(env.Stdout, "domicile: no valid admin token was in the file; none revoked")
	} else {
		fmt.Fprintf(env.Stdout, "domicile: revoked %s; running servers refuse it within their revocation check interval\n", strings.Join(revoked, ", "))
	}
	return nil
}

// replaceFileSync replaces path with data: a synced temporary file
// (mode mode) renamed over it, and the directory synced.
func replaceFileSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeFileSync(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
