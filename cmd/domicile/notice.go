package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"domicile/deploy"
	"domicile/notice"
	"domicile/pebblestore"
	"domicile/report"
	"domicile/sqlite/commstore"
)

// noticeCommand is `domicile notice`.
var noticeCommand = command{name: "notice", summary: "plan a deployment change and deliver its notices (plan, send)", run: runNotice}

func runNotice(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "notice", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"plan": noticePlan,
		"send": noticeSend,
	})
}

// noticePlan compares two deployment files and prints the stakeholder
// impact report. With --data it counts the subjects in that data
// directory and reads its transfer ledger, read only: a SQLite cell even
// while the service runs, a Pebble cell only with its process stopped
// (Pebble admits one process to a store); --out writes every
// document and the notices. It stores nothing: `notice send --to` makes
// the plan the service delivers, against the deployment in force.
func noticePlan(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "notice plan")
	from := fs.String("from", "", "the deployment file in force (required)")
	to := fs.String("to", "", "the next deployment file (required)")
	data := fs.String("data", "", "data directory whose subjects to count and transfer ledger to read (read only; a Pebble cell's process must be stopped, a SQLite cell may serve meanwhile)")
	format := fs.String("format", "markdown", "impact report format: markdown, json or html")
	lang := fs.String("lang", "en", "language: en or zh-CN")
	out := fs.String("out", "", "also write the impact reports (both languages, all formats) and notices.json to this directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(env.Stderr, "usage: domicile notice plan --from current.yaml --to next.yaml [--data DIR] [--format F] [--lang L] [--out DIR]")
		return errUsage
	}
	f, err := report.ParseFormat(*format)
	if err != nil {
		return err
	}
	fromData, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	toData, err := os.ReadFile(*to)
	if err != nil {
		return err
	}
	a, err := deploy.Parse(fromData)
	if err != nil {
		return fmt.Errorf("%s: %w", *from, err)
	}
	b, err := deploy.Parse(toData)
	if err != nil {
		return fmt.Errorf("%s: %w", *to, err)
	}
	e, err := embeddedLaw()
	if err != nil {
		return err
	}
	in := notice.PlanInput{From: a, To: b, FromRef: notice.Ref(filepath.Base(*from), fromData), ToRef: notice.Ref(filepath.Base(*to), toData), Law: e, Now: env.Now()}
	if *data != "" {
		in.Subjects = notice.SubjectsFunc(func(ctx context.Context, cell string) ([]notice.SubjectInfo, error) {
			cc := a.Cell(cell)
			if cc == nil {
				return nil, nil // a cell the deployment in force lacks holds no one yet
			}
			cs, err := resolveCellStore(*data, *cc)
			if err != nil {
				return nil, err
			}
			dir := filepath.Join(*data, cell)
			switch {
			case !cs.Exists:
				// A cell without data has no subjects. (A PostgreSQL
				// cell's are not read offline: plan through the API.)
				return nil, nil
			case cs.Kind == kindPebble:
				// Pebble admits one process to a store: a serving cell
				// holds it, and this tool may not read it beside that one.
				st, err := pebblestore.OpenConfig(ctx, dir, pebbleConfig(*cc))
				if err != nil {
					return nil, fmt.Errorf("cell %s: its Pebble store %s cannot be opened (%v): if the cell's process is running, stop it to plan offline, "+
						"or make the plan through the service (POST /v1/notices/plans, or notice send --to), which counts the subjects as the cells serve", cell, cs.Path, err)
				}
				defer st.Close()
				return st.CellSubjects(ctx)
			}
			return commstore.CellSubjects(ctx, dir)
		})
		// The transfer ledger, if the deployment keeps one: the plan
		// suggests what the law requires on this year's counts. With a
		// PostgreSQL control store it is in that database.
		control := filepath.Join(*data, "control")
		if _, err := os.Stat(filepath.Join(control, "transfers.db")); err == nil || a.Control.Kind == "postgres" {
			led, err := openLedger(ctx, a, *data)
			if err != nil {
				return err
			}
			defer led.Close()
			in.Ledger = storedLedger(led, e, a, env.Now())
		}
	}
	p, err := notice.MakePlan(ctx, in)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writePlanFiles(*out, p); err != nil {
			return err
		}
	}
	rep, ok := p.Reports[*lang]
	if !ok {
		return fmt.Errorf("--lang: must be en or zh-CN")
	}
	return report.Render(env.Stdout, rep, f)
}

func writePlanFiles(dir string, p *notice.Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for lang, rep := range p.Reports {
		for f, ext := range map[report.Format]string{report.JSON: "json", report.Markdown: "md", report.HTML: "html"} {
			file, err := os.Create(filepath.Join(dir, "impact."+lang+"."+ext))
			if err != nil {
				return err
			}
			err = report.Render(file, rep, f)
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	file, err := os.Create(filepath.Join(dir, "notices.json"))
	if err != nil {
		return err
	}
	defer file.Close()
	return printJSON(file, p.Notices)
}

// noticeSend asks the service to deliver a plan's notices to the
// business's webhook, planning first with --to, and with --wait follows
// the delivery until every notice is delivered or given up.
func noticeSend(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "notice send")
	var cf clientFlags
	cf.register(fs)
	plan := fs.String("plan", "", "the plan to deliver")
	to := fs.String("to", "", "plan first: the next deployment file, compared with the one in force")
	webhook := fs.String("webhook", "", "the business's webhook URL (required)")
	wait := fs.Duration("wait", 0, "wait up to this long for every notice to be delivered")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *webhook == "" || (*plan == "") == (*to == "") {
		fmt.Fprintln(env.Stderr, "usage: domicile notice send (--plan ID | --to next.yaml) --webhook URL [--wait 1m]")
		return errUsage
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	if *to != "" {
		b, err := os.ReadFile(*to)
		if err != nil {
			return err
		}
		pv, err := c.MakePlan(ctx, filepath.Base(*to), b)
		if err != nil {
			return err
		}
		*plan = pv.ID
		fmt.Fprintf(env.Stderr, "domicile notice send: plan %s, %d notices\n", pv.ID, len(pv.Notices))
	}
	if err := c.SendPlan(ctx, *plan, *webhook); err != nil {
		return err
	}
	deadline := time.Now().Add(*wait)
	for {
		pv, err := c.Plan(ctx, *plan)
		if err != nil {
			return err
		}
		done := 0
		for _, s := range pv.States {
			if s.Delivered != nil {
				done++
			}
		}
		if done == len(pv.States) || time.Now().After(deadline) {
			printJSON(env.Stdout, pv.States)
			if done < len(pv.States) && *wait > 0 {
				return fmt.Errorf("%d of %d notices delivered", done, len(pv.States))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
