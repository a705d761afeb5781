package main

import (
	"context"
	"domicile/client"
	"fmt"
)

// statementCommand is `domicile statement`.
var statementCommand = command{name: "statement", summary: "a subject's data statement (JSON, Markdown or HTML; en or zh-CN)", run: runStatement}

// transparencyCommand is `domicile transparency`.
var transparencyCommand = command{name: "transparency", summary: "the transparency report of a period; verify: recount one from the public log", run: runTransparency}

func docFlags(fs interface {
	StringVar(*string, string, string, string)
}, o *client.DocOptions) {
	fs.StringVar(&o.Lang, "lang", "en", "language: en or zh-CN")
	fs.StringVar(&o.Format, "format", "markdown", "format: json, markdown or html")
	fs.StringVar(&o.From, "from", "", "start of the period (YYYY-MM-DD)")
	fs.StringVar(&o.To, "to", "", "end of the period, exclusive (YYYY-MM-DD)")
}

// runStatement prints a subject's data statement, fetched with the
// subject's own token or an app token.
func runStatement(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "statement")
	var cf clientFlags
	cf.register(fs)
	var o client.DocOptions
	docFlags(fs, &o)
	subject := fs.String("subject", "", "the subject's id (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *subject == "" {
		fmt.Fprintln(env.Stderr, "usage: domicile statement --subject ID [--lang en|zh-CN] [--format json|markdown|html] [--from D] [--to D]")
		return errUsage
	}
	c, err := cf.client(env, false)
	if err != nil {
		return err
	}
	b, err := c.StatementDocument(ctx, *subject, o)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}

// runTransparency prints the transparency report (admin or auditor
// token); `transparency verify` recounts one from the public log.
func runTransparency(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return transparencyVerify(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "transparency")
	var cf clientFlags
	cf.register(fs)
	var o client.DocOptions
	docFlags(fs, &o)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	b, err := c.TransparencyDocument(ctx, o)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}
