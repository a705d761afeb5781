package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"domicile"
	"domicile/client"
	"domicile/httpapi"
)

// tokenCommand is `domicile token`.
var tokenCommand = command{name: "token", summary: "create, list, revoke and rotate tokens; read the control log (admin)", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "token", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"create": tokenCreate, "list": tokenList, "revoke": tokenRevoke, "rotate": tokenRotate, "log": tokenLog})
}}

var tokenCreate = jsonCommand("token create", true, func(fs *flag.FlagSet) clientCall[*client.TokenResponse] {
	role := fs.String("role", "", "app, subject, operator, authority, auditor or admin")
	jur := fs.String("jurisdiction", "", "where the holder acts from (ISO 3166-1 alpha-2 or EU)")
	subject := fs.String("subject", "", "the subject a subject token reaches")
	ttl := fs.String("ttl", "", "lifetime, a Go duration such as 24h or 2160h (default: 24h for subject tokens, 90 days for the others)")
	note := fs.String("note", "", "what the token is for (no personal data; at most 256 bytes)")
	return clientCall[*client.TokenResponse]{
		check: func() error { return errors.Join(need("role", *role), need("jurisdiction", *jur)) },
		call: func(ctx context.Context, c *httpapi.Client) (*client.TokenResponse, error) {
			return c.CreateToken(ctx, client.TokenRequest{Role: *role, Jurisdiction: *jur, Subject: *subject, TTL: *ttl, Note: *note})
		}}
})

var tokenList = jsonCommand("token list", true, func(fs *flag.FlagSet) clientCall[*client.TokenPage] {
	var o client.TokenListOptions
	fs.StringVar(&o.Role, "role", "", "only tokens of this role")
	fs.BoolVar(&o.Active, "active", false, "only tokens neither revoked nor expired")
	fs.IntVar(&o.Limit, "limit", 0, "page size (1-1000)")
	fs.StringVar(&o.Cursor, "cursor", "", "cursor from a previous page's next")
	return clientCall[*client.TokenPage]{call: func(ctx context.Context, c *httpapi.Client) (*client.TokenPage, error) {
		return c.ListTokens(ctx, o)
	}}
})

var tokenRevoke = jsonCommand("token revoke", true, func(fs *flag.FlagSet) clientCall[*domicile.Token] {
	id := fs.String("id", "", "the token's id (tok_...), not its secret")
	return clientCall[*domicile.Token]{
		check: func() error { return need("id", *id) },
		call: func(ctx context.Context, c *httpapi.Client) (*domicile.Token, error) {
			return c.RevokeToken(ctx, *id)
		}}
})

var tokenRotate = jsonCommand("token rotate", true, func(fs *flag.FlagSet) clientCall[*client.TokenResponse] {
	id := fs.String("id", "", "the token's id (tok_...), not its secret")
	ttl := fs.String("ttl", "", "lifetime of the new token (default: the old token's)")
	return clientCall[*client.TokenResponse]{
		check: func() error { return need("id", *id) },
		call: func(ctx context.Context, c *httpapi.Client) (*client.TokenResponse, error) {
			return c.RotateToken(ctx, *id, *ttl)
		}}
})

// tokenLog is `domicile token log`: a page of the control log, or with
// --verify the whole log, its hash chain checked.
func tokenLog(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "token log")
	var cf clientFlags
	cf.register(fs)
	after := fs.Int64("after", 0, "show the events after this sequence number")
	limit := fs.Int("limit", 0, "page size (1-1000)")
	verify := fs.Bool("verify", false, "read the whole log from its start and check its hash chain")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	if !*verify {
		p, err := c.ControlLog(ctx, *after, *limit)
		if err != nil {
			return err
		}
		return printJSON(env.Stdout, p)
	}
	seq, prev := int64(0), domicile.ZeroControlHash
	n := 0
	for {
		p, err := c.ControlLog(ctx, seq, domicile.MaxListLimit)
		if err != nil {
			return err
		}
		if seq, prev, err = domicile.VerifyControlLog(p.Events, seq, prev); err != nil {
			return fmt.Errorf("CONTROL LOG CHAIN BROKEN (keep this evidence): %w", err)
		}
		n += len(p.Events)
		if p.Next == 0 {
			break
		}
	}
	fmt.Fprintf(env.Stdout, "control log: %d events, hash chain verified; last %d %s\n", n, seq, prev)
	return nil
}
