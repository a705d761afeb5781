package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"domicile/figures"
	"domicile/law"
)

// liveAssessment is what GET /v1/transfers/assessment answers.
type liveAssessment struct {
	Entity         string          `json:"entity"`
	Year           int             `json:"year"`
	Source         string          `json:"source"`
	PIYTD          int64           `json:"pi_individuals_ytd"`
	SensitivePIYTD int64           `json:"sensitive_pi_individuals_ytd"`
	Facts          map[string]any  `json:"facts"`
	Report         json.RawMessage `json:"report"`
	// Crossings are figures.Crossings of the counts: each threshold in
	// force and the day it is reached at this year's rate.
	Crossings []figures.Crossing `json:"crossings"`
}

// writeCrossings says, for each threshold in force, whether the year's
// count has reached it and, if not, when it does at this year's rate.
func writeCrossings(w io.Writer, cs []figures.Crossing) {
	for _, c := range cs {
		switch {
		case c.Reached:
			fmt.Fprintf(w, "%s %d has reached %d (%s: %s).\n", c.Fact, c.Value, c.Threshold, c.Rule, c.What)
		case c.Date != "":
			fmt.Fprintf(w, "%s %d reaches %d (%s) on %s at this year's rate (%.1f a day).\n", c.Fact, c.Value, c.Threshold, c.Rule, c.Date, c.PerDay)
		default:
			fmt.Fprintf(w, "%s %d does not reach %d (%s) this year at this year's rate (%.1f a day).\n", c.Fact, c.Value, c.Threshold, c.Rule, c.PerDay)
		}
	}
	if len(cs) > 0 {
		fmt.Fprintln(w)
	}
}

// addLiveFlags adds --live (and the client flags it needs) to the assess
// command. The function it returns runs the live assessment when --live
// was given and reports whether it did.
func addLiveFlags(fs *flag.FlagSet) func(ctx context.Context, env *cmdEnv, format, out string, changes *law.DateRange) (bool, error) {
	live := fs.Bool("live", false, "assess the running deployment from its own transfer ledger and declarations (with --server, --token or the DOMICILE_ variables) instead of FILE")
	source := fs.String("source", "CN", "with --live: the jurisdiction whose outbound transfers to assess")
	var cf clientFlags
	cf.register(fs)
	return func(ctx context.Context, env *cmdEnv, format, out string, changes *law.DateRange) (bool, error) {
		if !*live {
			return false, nil
		}
		if changes != nil {
			return true, changesLive(ctx, env, &cf, *source, format, out, *changes)
		}
		return true, assessLive(ctx, env, &cf, *source, format, out)
	}
}

// assessLive asks the running deployment for its live assessment and
// prints it: in JSON, the law engine's report with a "ledger" member
// holding the counts; otherwise the counts, then the report.
func assessLive(ctx context.Context, env *cmdEnv, cf *clientFlags, source, format, out string) error {
	f, err := law.ParseFormat(format)
	if err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	raw, err := c.Assessment(ctx, source)
	if err != nil {
		return err
	}
	var la liveAssessment
	if err := json.Unmarshal(raw, &la); err != nil {
		return fmt.Errorf("live assessment: %v", err)
	}
	var buf bytes.Buffer
	if format == "json" {
		var rep map[string]any
		if err := json.Unmarshal(la.Report, &rep); err != nil {
			return fmt.Errorf("live assessment: %v", err)
		}
		rep["ledger"] = map[string]any{"entity": la.Entity, "year": la.Year, "source": la.Source,
			"pi_individuals_ytd": la.PIYTD, "sensitive_pi_individuals_ytd": la.SensitivePIYTD, "crossings": la.Crossings}
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		var rep law.Report
		dec := json.NewDecoder(bytes.NewReader(la.Report))
		dec.UseNumber()
		if err := dec.Decode(&rep); err != nil {
			return fmt.Errorf("live assessment: %v", err)
		}
		for k, v := range rep.Facts {
			if n, ok := v.(json.Number); ok {
				i, _ := n.Int64()
				rep.Facts[k] = i
			}
		}
		fmt.Fprintf(&buf, "Live assessment of %s, %d, transfers from %s: %d people's personal information and %d people's sensitive personal information sent abroad this year.\n\n",
			la.Entity, la.Year, la.Source, la.PIYTD, la.SensitivePIYTD)
		writeCrossings(&buf, la.Crossings)
		if err := rep.Render(&buf, f); err != nil {
			return err
		}
	}
	if out == "" {
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	return writeFileAtomic(out, buf.Bytes())
}

// changesLive takes the running deployment's facts (its ledger's counts and
// its declarations) and asks the same deployment, with the rules it
// serves, what changes for them between two days.
func changesLive(ctx context.Context, env *cmdEnv, cf *clientFlags, source, format, out string, r law.DateRange) error {
	f, err := law.ParseFormat(format)
	if err != nil {
		return err
	}
	c, err := cf.client(env, true)
	if err != nil {
		return err
	}
	raw, err := c.Assessment(ctx, source)
	if err != nil {
		return err
	}
	var la liveAssessment
	if err := json.Unmarshal(raw, &la); err != nil {
		return fmt.Errorf("live assessment: %v", err)
	}
	if la.Facts == nil {
		return fmt.Errorf("live assessment: the server sent no facts")
	}
	doc := map[string]any{"changes": r}
	for k, v := range la.Facts {
		doc[k] = v
	}
	raw, err = c.Assess(ctx, doc)
	if err != nil {
		return err
	}
	var cr law.ChangeReport
	if err := json.Unmarshal(raw, &cr); err != nil {
		return fmt.Errorf("change report: %v", err)
	}
	var buf bytes.Buffer
	if f == law.FormatText {
		fmt.Fprintf(&buf, "Live facts of %s, %d, transfers from %s: %d people's personal information and %d people's sensitive personal information sent abroad this year.\n\n",
			la.Entity, la.Year, la.Source, la.PIYTD, la.SensitivePIYTD)
	}
	if err := cr.Render(&buf, f); err != nil {
		return err
	}
	if out == "" {
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	return writeFileAtomic(out, buf.Bytes())
}
