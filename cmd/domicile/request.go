package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"domicile"
	"domicile/httpapi"
	"domicile/rights"
)

// requestCommand is `domicile request`: individuals' rights requests.
var requestCommand = command{name: "request", summary: "file, list and show individuals' rights requests; move them on; download a copy", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "request", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"create": requestCreate, "list": requestList, "show": requestShow, "update": requestUpdate, "bundle": requestBundle})
}}

func requestCreate(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "request create")
	var cf clientFlags
	cf.register(fs)
	subject := fs.String("subject", "", "the subject's id")
	kind := fs.String("kind", "", "access, copy, portability, correction, deletion or explanation")
	recipient := fs.String("recipient", "", "age public key (age1…) to encrypt the copy to (copy, portability)")
	toName := fs.String("to", "", "portability: the handler to move the data to")
	toJur := fs.String("to-jurisdiction", "", "portability: the handler's jurisdiction")
	recKind := fs.String("record-kind", "", "correction: the record's kind")
	recID := fs.String("record-id", "", "correction: the record's id")
	changes := fs.String("changes", "", `correction: the corrected fields as a JSON object, e.g. {"name":"李伟"}`)
	note := fs.String("note", "", "the subject's own words")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(need("subject", *subject), need("kind", *kind)); err != nil {
		return err
	}
	in := rights.Input{Kind: rights.Kind(*kind), Recipient: *recipient, Note: *note}
	if *toName != "" || *toJur != "" {
		in.To = &rights.Handler{Name: *toName, Jurisdiction: domicile.Jurisdiction(*toJur)}
	}
	if *recKind != "" || *recID != "" {
		in.Record = &rights.RecordRef{Kind: *recKind, ID: *recID}
	}
	if *changes != "" {
		if err := json.Unmarshal([]byte(*changes), &in.Changes); err != nil {
			return fmt.Errorf("--changes: want a JSON object of fields: %v", err)
		}
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	r, err := c.CreateRequest(ctx, *subject, in)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, r)
}

var requestList = jsonCommand("request list", false, func(fs *flag.FlagSet) clientCall[[]rights.Request] {
	subject := fs.String("subject", "", "the subject's id")
	return clientCall[[]rights.Request]{
		check: func() error { return need("subject", *subject) },
		call: func(ctx context.Context, c *httpapi.Client) ([]rights.Request, error) {
			rs, err := c.Requests(ctx, *subject)
			if rs == nil && err == nil {
				rs = []rights.Request{}
			}
			return rs, err
		}}
})

var requestShow = jsonCommand("request show", false, func(fs *flag.FlagSet) clientCall[*rights.Request] {
	subject := fs.String("subject", "", "the subject's id")
	id := fs.String("id", "", "the request's id (rq_…)")
	return clientCall[*rights.Request]{
		check: func() error { return errors.Join(need("subject", *subject), need("id", *id)) },
		call: func(ctx context.Context, c *httpapi.Client) (*rights.Request, error) {
			return c.Request(ctx, *subject, *id)
		}}
})

var requestUpdate = jsonCommand("request update", false, func(fs *flag.FlagSet) clientCall[*rights.Request] {
	subject := fs.String("subject", "", "the subject's id")
	id := fs.String("id", "", "the request's id (rq_…)")
	state := fs.String("state", "", "in-progress, completed or refused")
	reason := fs.String("reason", "", "why the request is refused (required with --state refused)")
	note := fs.String("note", "", "what was done, for the subject")
	return clientCall[*rights.Request]{
		check: func() error { return errors.Join(need("subject", *subject), need("id", *id), need("state", *state)) },
		call: func(ctx context.Context, c *httpapi.Client) (*rights.Request, error) {
			return c.UpdateRequest(ctx, *subject, *id, rights.Update{State: rights.State(*state), Reason: *reason, Note: *note})
		}}
})

func requestBundle(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "request bundle")
	var cf clientFlags
	cf.register(fs)
	subject := fs.String("subject", "", "the subject's id")
	id := fs.String("id", "", "the request's id (rq_…)")
	out := fs.String("out", "", "the file to write (default: the name the server gives, in the current directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(need("subject", *subject), need("id", *id)); err != nil {
		return err
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	dir := "."
	if *out != "" {
		dir = filepath.Dir(*out)
	}
	tmp, err := os.CreateTemp(dir, ".bundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	name, err := c.RequestBundle(ctx, *subject, *id, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dst := *out
	if dst == "" {
		dst = filepath.Base(name)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s\n", dst)
	return nil
}
