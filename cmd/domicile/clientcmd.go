package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"domicile/client"
	"domicile/httpapi"
)

// clientFlags are the flags every client subcommand takes; each falls back
// to an environment variable.
type clientFlags struct {
	server, token, purpose, justification, data string
	// TLS: the CA to trust for an https server, and a client certificate
	// for one that requires mutual TLS.
	caCert, cert, key string
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server URL (env DOMICILE_SERVER; default http://127.0.0.1:8700)")
	fs.StringVar(&f.token, "token", "", "bearer token (env DOMICILE_TOKEN; default: <data>/admin.token for admin commands)")
	fs.StringVar(&f.purpose, "purpose", "", "purpose of an app request (env DOMICILE_PURPOSE)")
	fs.StringVar(&f.justification, "justification", "", `reason and reference of an operator or authority request, e.g. "support TICKET-1" (env DOMICILE_JUSTIFICATION)`)
	fs.StringVar(&f.data, "data", "./data", "data directory, to find admin.token")
	fs.StringVar(&f.caCert, "cacert", "", "trust the CA certificates in this PEM `FILE` for an https server (env DOMICILE_CACERT; default: the system's)")
	fs.StringVar(&f.cert, "cert", "", "client certificate PEM `FILE`, for a server that requires mutual TLS (env DOMICILE_CLIENT_CERT)")
	fs.StringVar(&f.key, "key", "", "the client certificate's private key PEM `FILE` (env DOMICILE_CLIENT_KEY)")
}

// httpClient returns the HTTP client for the TLS flags, or nil for the
// default one.
func (f *clientFlags) httpClient(pick func(v, envName, def string) string) (*http.Client, error) {
	ca, cert, key := pick(f.caCert, "DOMICILE_CACERT", ""), pick(f.cert, "DOMICILE_CLIENT_CERT", ""), pick(f.key, "DOMICILE_CLIENT_KEY", "")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert, --key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

func (f *clientFlags) client(env *cmdEnv, admin bool) (*httpapi.Client, error) {
	pick := func(v, envName, def string) string {
		if v != "" {
			return v
		}
		if e := env.Getenv(envName); e != "" {
			return e
		}
		return def
	}
	c := &httpapi.Client{Client: client.Client{
		BaseURL:       pick(f.server, "DOMICILE_SERVER", "http://127.0.0.1:8700"),
		Token:         pick(f.token, "DOMICILE_TOKEN", ""),
		Purpose:       pick(f.purpose, "DOMICILE_PURPOSE", ""),
		Justification: pick(f.justification, "DOMICILE_JUSTIFICATION", ""),
	}}
	hc, err := f.httpClient(pick)
	if err != nil {
		return nil, err
	}
	c.HTTP = hc
	if c.Token == "" && admin {
		b, err := os.ReadFile(filepath.Join(f.data, "admin.token"))
		if err != nil {
			return nil, fmt.Errorf("--token: none given and %v", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if c.Token == "" {
		return nil, errors.New("--token: a bearer token is required (or DOMICILE_TOKEN)")
	}
	return c, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// sub dispatches "<cmd> <verb> ..." to one of verbs.
func sub(ctx context.Context, env *cmdEnv, name string, args []string, verbs map[string]func(context.Context, *cmdEnv, []string) error) error {
	if len(args) == 0 || verbs[args[0]] == nil {
		var names []string
		for v := range verbs {
			names = append(names, v)
		}
		slices.Sort(names)
		fmt.Fprintf(env.Stderr, "usage: domicile %s {%s} [flags]\n", name, strings.Join(names, "|"))
		return errUsage
	}
	return verbs[args[0]](ctx, env, args[1:])
}

// need checks that a required flag is set, naming it.
func need(name, v string) error {
	if v == "" {
		return fmt.Errorf("--%s is required", name)
	}
	return nil
}

// subjectCommand is `domicile subject`.
var subjectCommand = command{name: "subject", summary: "register, show and erase subjects", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "subject", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"create": subjectCreate, "get": subjectGet, "erase": subjectErase})
}}

// recordCommand is `domicile record`.
var recordCommand = command{name: "record", summary: "put, get, list and delete records", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "record", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"put": recordPut, "get": recordGet, "list": recordList, "delete": recordDelete})
}}

// objectCommand is `domicile object`.
var objectCommand = command{name: "object", summary: "upload, download and delete objects", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "object", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"put": objectPut, "get": objectGet, "delete": objectDelete})
}}

func subjectCreate(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "subject create")
	var cf clientFlags
	cf.register(fs)
	id := fs.String("id", "", "the subject's id, as the app knows it")
	jur := fs.String("jurisdiction", "", "the subject's home jurisdiction")
	cellID := fs.String("cell", "", "home cell (default: the policy's choice)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(need("id", *id), need("jurisdiction", *jur)); err != nil {
		return err
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	s, err := c.CreateSubject(ctx, *id, *jur, *cellID)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, s)
}

func subjectGet(ctx context.Context, env *cmdEnv, args []string) error {
	return subjectByID(ctx, env, "subject get", args, func(c *httpapi.Client, id string) (any, error) { return c.GetSubject(ctx, id) })
}

func subjectErase(ctx context.Context, env *cmdEnv, args []string) error {
	return subjectByID(ctx, env, "subject erase", args, func(c *httpapi.Client, id string) (any, error) { return c.EraseSubject(ctx, id) })
}

// subjectByID runs a client call that takes only a subject id (--id) and
// prints its answer.
func subjectByID(ctx context.Context, env *cmdEnv, name string, args []string, call func(*httpapi.Client, string) (any, error)) error {
	fs := newFlagSet(env, name)
	var cf clientFlags
	cf.register(fs)
	id := fs.String("id", "", "subject id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := need("id", *id); err != nil {
		return err
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	out, err := call(c, *id)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, out)
}

type recordFlags struct {
	clientFlags
	id, kind, rid, ifMatch string
}

func (rf *recordFlags) parse(env *cmdEnv, name string, args []string, extra func(*flag.FlagSet)) error {
	fs := newFlagSet(env, name)
	rf.register(fs)
	fs.StringVar(&rf.id, "subject", "", "subject id")
	fs.StringVar(&rf.kind, "kind", "", "record kind")
	fs.StringVar(&rf.rid, "id", "", "record id")
	fs.StringVar(&rf.ifMatch, "if-match", "", "ETag the current version must have")
	if extra != nil {
		extra(fs)
	}
	return parseFlags(fs, args)
}

func recordPut(ctx context.Context, env *cmdEnv, args []string) error {
	var rf recordFlags
	var data string
	if err := rf.parse(env, "record put", args, func(fs *flag.FlagSet) {
		fs.StringVar(&data, "json", "", "the record as a JSON object, or @FILE, or - for stdin")
	}); err != nil {
		return err
	}
	if err := errors.Join(need("subject", rf.id), need("kind", rf.kind), need("id", rf.rid), need("json", data)); err != nil {
		return err
	}
	var raw []byte
	var err error
	switch {
	case data == "-":
		raw, err = io.ReadAll(io.LimitReader(env.Stdin, 1<<20+1))
	case strings.HasPrefix(data, "@"):
		raw, err = os.ReadFile(data[1:])
	default:
		raw = []byte(data)
	}
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if !json.Valid(raw) {
		return errors.New("--json: not valid JSON")
	}
	c, err := rf.client(env, false)
	if err != nil {
		return err
	}
	r, err := c.PutRecord(ctx, rf.id, rf.kind, rf.rid, json.RawMessage(raw), rf.ifMatch)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, r)
}

func recordGet(ctx context.Context, env *cmdEnv, args []string) error {
	var rf recordFlags
	if err := rf.parse(env, "record get", args, nil); err != nil {
		return err
	}
	if err := errors.Join(need("subject", rf.id), need("kind", rf.kind), need("id", rf.rid)); err != nil {
		return err
	}
	c, err := rf.client(env, false)
	if err != nil {
		return err
	}
	r, err := c.GetRecord(ctx, rf.id, rf.kind, rf.rid)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, r)
}

func recordList(ctx context.Context, env *cmdEnv, args []string) error {
	var rf recordFlags
	var limit int
	var cursor string
	if err := rf.parse(env, "record list", args, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, "page size (1-1000)")
		fs.StringVar(&cursor, "cursor", "", "cursor from a previous page's next")
	}); err != nil {
		return err
	}
	if err := need("subject", rf.id); err != nil {
		return err
	}
	c, err := rf.client(env, false)
	if err != nil {
		return err
	}
	p, err := c.ListRecords(ctx, rf.id, rf.kind, limit, cursor)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, p)
}

func recordDelete(ctx context.Context, env *cmdEnv, args []string) error {
	var rf recordFlags
	if err := rf.parse(env, "record delete", args, nil); err != nil {
		return err
	}
	if err := errors.Join(need("subject", rf.id), need("kind", rf.kind), need("id", rf.rid)); err != nil {
		return err
	}
	c, err := rf.client(env, false)
	if err != nil {
		return err
	}
	return c.DeleteRecord(ctx, rf.id, rf.kind, rf.rid, rf.ifMatch)
}

type objectFlags struct {
	clientFlags
	id, name string
}

func (of *objectFlags) parse(env *cmdEnv, name string, args []string, extra func(*flag.FlagSet)) error {
	fs := newFlagSet(env, name)
	of.register(fs)
	fs.StringVar(&of.id, "subject", "", "subject id")
	fs.StringVar(&of.name, "name", "", "object name")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.Join(need("subject", of.id), need("name", of.name))
}

func objectPut(ctx context.Context, env *cmdEnv, args []string) error {
	var of objectFlags
	var file, ctype string
	if err := of.parse(env, "object put", args, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "file", "", "file to upload, or - for stdin")
		fs.StringVar(&ctype, "type", "application/octet-stream", "Content-Type")
	}); err != nil {
		return err
	}
	if err := need("file", file); err != nil {
		return err
	}
	c, err := of.client(env, false)
	if err != nil {
		return err
	}
	var body io.Reader = env.Stdin
	size := int64(-1)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		body = f
	}
	o, err := c.PutObject(ctx, of.id, of.name, ctype, body, size)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, o)
}

func objectGet(ctx context.Context, env *cmdEnv, args []string) error {
	var of objectFlags
	var out, rng string
	if err := of.parse(env, "object get", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "-", "where to write the object (- for stdout)")
		fs.StringVar(&rng, "range", "", `byte range, e.g. "bytes=0-99"`)
	}); err != nil {
		return err
	}
	c, err := of.client(env, false)
	if err != nil {
		return err
	}
	resp, err := c.GetObject(ctx, of.id, of.name, rng)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := env.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func objectDelete(ctx context.Context, env *cmdEnv, args []string) error {
	var of objectFlags
	var ifMatch string
	if err := of.parse(env, "object delete", args, func(fs *flag.FlagSet) {
		fs.StringVar(&ifMatch, "if-match", "", "ETag the current version must have")
	}); err != nil {
		return err
	}
	c, err := of.client(env, false)
	if err != nil {
		return err
	}
	return c.DeleteObject(ctx, of.id, of.name, ifMatch)
}

// A clientCall is what a client subcommand does once its flags are
// parsed: check the flags it requires, then make one call of the service.
type clientCall[T any] struct {
	// check reports a missing or malformed flag by name; nil checks
	// nothing.
	check func() error
	call  func(context.Context, *httpapi.Client) (T, error)
}

// jsonCommand is the usual client subcommand: it declares the client
// flags and, with flags, its own; once they are parsed it checks them
// (before it looks for a token, so a missing flag is named first), makes
// its one call and prints the answer as JSON. admin defaults the token to
// the data directory's admin.token.
func jsonCommand[T any](name string, admin bool, flags func(*flag.FlagSet) clientCall[T]) func(context.Context, *cmdEnv, []string) error {
	return func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlagSet(env, name)
		var cf clientFlags
		cf.register(fs)
		cc := flags(fs)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if cc.check != nil {
			if err := cc.check(); err != nil {
				return err
			}
		}
		c, err := cf.client(env, admin)
		if err != nil {
			return err
		}
		v, err := cc.call(ctx, c)
		if err != nil {
			return err
		}
		return printJSON(env.Stdout, v)
	}
}
