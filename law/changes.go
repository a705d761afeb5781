package law

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"
)

// DateRange is an inclusive range of days, YYYY-MM-DD.
type DateRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ParseDateRange reads FROM..TO (both YYYY-MM-DD, FROM not after TO).
// field names the input in errors.
func ParseDateRange(field, s string) (DateRange, error) {
	from, to, ok := strings.Cut(s, "..")
	if !ok {
		return DateRange{}, inputErr(field, "must be FROM..TO, two dates written YYYY-MM-DD")
	}
	r := DateRange{From: from, To: to}
	return r, r.check(field)
}

func (r DateRange) check(field string) error {
	if !validDate(r.From) {
		return inputErr(field+".from", "must be a date written YYYY-MM-DD")
	}
	if !validDate(r.To) {
		return inputErr(field+".to", "must be a date written YYYY-MM-DD")
	}
	if r.To < r.From {
		return inputErr(field, "%s is before %s", r.To, r.From)
	}
	return nil
}

// ChangeReport says what changes for the same facts between two days: on
// each day in the range where a rule or a derived predicate starts or
// stops applying, the rules that start or stop firing and the obligations
// they bring or take away. Its JSON form is the contract of
// `domicile assess --changes` and POST /v1/assess with "changes".
type ChangeReport struct {
	From            string     `json:"from"`
	To              string     `json:"to"`
	Input           string     `json:"input"`
	MechanismBefore *string    `json:"mechanism_before"` // on From
	MechanismAfter  *string    `json:"mechanism_after"`  // on To
	Changes         []Change   `json:"changes"`
	Missing         []string   `json:"missing,omitempty"` // counts missing on some day of the range
	RuleSet         RuleSetRef `json:"rule_set"`
	Disclaimer      string     `json:"disclaimer"`
}

// Change is one rule that starts or stops firing on Date.
type Change struct {
	Date         string     `json:"date"`
	Rule         string     `json:"rule"`
	Citation     string     `json:"citation"`
	Jurisdiction string     `json:"jurisdiction"`
	Change       string     `json:"change"` // "starts" or "stops"
	Confidence   Confidence `json:"confidence"`
	// Obligations are the rule's own obligations (with flag_unconfirmed for
	// a rule that is not confirmed); ObligationsGained and ObligationsLost
	// are those the business did not have the day before, or no longer
	// has, because of this change.
	Obligations       []string `json:"obligations"`
	ObligationsGained []string `json:"obligations_gained"`
	ObligationsLost   []string `json:"obligations_lost"`
	// The report's mechanism on the day before Date and on Date.
	MechanismBefore *string `json:"mechanism_before"`
	MechanismAfter  *string `json:"mechanism_after"`
}

// changeDays returns the days in (from, to] on which some rule, derived
// predicate version or watched threshold starts or stops applying.
func (e *Engine) changeDays(from, to string) []string {
	set := map[string]bool{}
	add := func(start, until string) {
		if start > from && start <= to {
			set[start] = true
		}
		if until != "" {
			if next := nextDay(until); next > from && next <= to {
				set[next] = true
			}
		}
	}
	for _, r := range e.rules {
		add(r.EffectiveFrom, r.EffectiveUntil)
	}
	for _, d := range e.derived {
		for _, v := range d.versions {
			add(v.EffectiveFrom, v.EffectiveUntil)
		}
	}
	days := make([]string, 0, len(set))
	for d := range set {
		days = append(days, d)
	}
	sort.Strings(days)
	return days
}

func nextDay(d string) string {
	t, err := parseDate(d)
	if err != nil {
		return d
	}
	return dateOf(t.AddDate(0, 0, 1))
}

func prevDay(d string) string {
	t, err := parseDate(d)
	if err != nil {
		return d
	}
	return dateOf(t.AddDate(0, 0, -1))
}

// Changes evaluates the same input on From, To and every day between them
// where the law changes, and reports what starts and stops. The input's
// own as_of is ignored. Bad input gives an *InputError.
func (e *Engine) Changes(in *Input, r DateRange) (*ChangeReport, error) {
	if err := r.check("changes"); err != nil {
		return nil, err
	}
	at := func(d string) (*Report, error) {
		c := *in
		c.AsOf = d
		return e.Assess(&c, time.Time{})
	}
	first, err := at(r.From)
	if err != nil {
		return nil, err
	}
	last := first
	cr := &ChangeReport{From: r.From, To: r.To, Input: first.Input, MechanismBefore: first.Mechanism,
		Changes: []Change{}, RuleSet: e.RuleSet(), Disclaimer: Disclaimer}
	missing := map[string]bool{}
	note := func(rep *Report) {
		for _, m := range rep.Missing {
			if !missing[m.Fact] {
				missing[m.Fact] = true
				cr.Missing = append(cr.Missing, m.Fact)
			}
		}
	}
	note(first)
	for _, d := range e.changeDays(r.From, r.To) {
		before := last
		if pd := prevDay(d); pd != before.AsOf {
			if before, err = at(pd); err != nil {
				return nil, err
			}
		}
		after, err := at(d)
		if err != nil {
			return nil, err
		}
		note(after)
		last = after
		gained := minus(after.Obligations, before.Obligations)
		lost := minus(before.Obligations, after.Obligations)
		for _, id := range minus(after.Fired, before.Fired) {
			cr.Changes = append(cr.Changes, e.change(d, id, "starts", gained, before, after))
		}
		for _, id := range minus(before.Fired, after.Fired) {
			cr.Changes = append(cr.Changes, e.change(d, id, "stops", lost, before, after))
		}
	}
	if last.AsOf != r.To {
		if last, err = at(r.To); err != nil {
			return nil, err
		}
		note(last)
	}
	cr.MechanismAfter = last.Mechanism
	return cr, nil
}

func (e *Engine) change(date, id, kind string, delta []string, before, after *Report) Change {
	r := e.byID[id]
	own := map[string]bool{}
	for _, o := range r.Effects.Obligations {
		own[o] = true
	}
	if r.Confidence != Confirmed {
		own["flag_unconfirmed"] = true
	}
	obls := append([]string{}, r.Effects.Obligations...)
	if r.Confidence != Confirmed && !contains(obls, "flag_unconfirmed") {
		obls = append(obls, "flag_unconfirmed")
	}
	var mine []string
	for _, o := range delta {
		if own[o] {
			mine = append(mine, o)
		}
	}
	c := Change{Date: date, Rule: id, Citation: r.Citation(), Jurisdiction: r.Jurisdiction, Change: kind,
		Confidence: r.Confidence, Obligations: obls, ObligationsGained: []string{}, ObligationsLost: []string{}, MechanismBefore: before.Mechanism, MechanismAfter: after.Mechanism}
	if mine != nil {
		if kind == "starts" {
			c.ObligationsGained = mine
		} else {
			c.ObligationsLost = mine
		}
	}
	return c
}

// minus returns the members of a not in b, in a's order.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	out := []string{}
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// Render writes the change report in format f.
func (c *ChangeReport) Render(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, c)
	case FormatText:
		return c.writeText(w)
	case FormatMarkdown:
		return c.writeMarkdown(w)
	case FormatHTML:
		return changesHTML.Execute(w, c)
	}
	return inputErr("format", "unknown format %q", f)
}

func (c *ChangeReport) writeText(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "domicile: what changes from %s to %s (%s)\n", c.From, c.To, c.Input)
	fmt.Fprintf(w, "Mechanism: %s on %s, %s on %s\n", mech(c.MechanismBefore), c.From, mech(c.MechanismAfter), c.To)
	fmt.Fprintf(w, "Rules: %s\n", c.RuleSet)
	if len(c.Missing) > 0 {
		fmt.Fprintf(w, "%s\n", wrap("Missing counts (the mechanism is undetermined while they are): "+strings.Join(c.Missing, ", "), "", 90))
	}
	if len(c.Changes) == 0 {
		fmt.Fprintf(w, "\nNo rule starts or stops applying to these facts in the range.\n")
	}
	date := ""
	for _, x := range c.Changes {
		if x.Date != date {
			date = x.Date
			fmt.Fprintf(w, "\n%s (mechanism %s -> %s):\n", date, mech(x.MechanismBefore), mech(x.MechanismAfter))
		}
		fmt.Fprintf(w, "  %s %s\n", x.Rule, x.Change)
		fmt.Fprintf(w, "%s\n", wrap(x.Citation, "    ", 90))
		if len(x.Obligations) > 0 {
			fmt.Fprintf(w, "%s\n", hang(strings.Join(x.Obligations, ", "), "    obligations: ", "      ", 90))
		}
		if len(x.ObligationsGained) > 0 {
			fmt.Fprintf(w, "%s\n", hang(strings.Join(x.ObligationsGained, ", "), "    + ", "      ", 90))
		}
		if len(x.ObligationsLost) > 0 {
			fmt.Fprintf(w, "%s\n", hang(strings.Join(x.ObligationsLost, ", "), "    - ", "      ", 90))
		}
	}
	fmt.Fprintf(w, "\n%s\n", wrap(c.Disclaimer, "", 90))
	return w.Flush()
}

func (c *ChangeReport) writeMarkdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# What changes from %s to %s\n\n", c.From, c.To)
	fmt.Fprintf(w, "- **Input:** %s\n- **Mechanism on %s:** `%s`\n- **Mechanism on %s:** `%s`\n- **Rules:** %s\n",
		c.Input, c.From, mech(c.MechanismBefore), c.To, mech(c.MechanismAfter), mdEscape(c.RuleSet.String()))
	if len(c.Missing) > 0 {
		fmt.Fprintf(w, "- **Missing counts:** `%s`\n", strings.Join(c.Missing, "`, `"))
	}
	if len(c.Changes) == 0 {
		w.WriteString("\nNo rule starts or stops applying to these facts in the range.\n")
	} else {
		w.WriteString("\n| date | rule | change | citation | obligations | gained | lost | mechanism |\n|---|---|---|---|---|---|---|---|\n")
		for _, x := range c.Changes {
			fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s | %s | %s | `%s` → `%s` |\n", x.Date, x.Rule, x.Change, mdEscape(x.Citation), mdEscape(strings.Join(x.Obligations, ", ")),
				mdEscape(strings.Join(x.ObligationsGained, ", ")), mdEscape(strings.Join(x.ObligationsLost, ", ")), mech(x.MechanismBefore), mech(x.MechanismAfter))
		}
	}
	fmt.Fprintf(w, "\n---\n\n*%s*\n", mdEscape(c.Disclaimer))
	return w.Flush()
}

var changesHTML = template.Must(template.New("changes").Funcs(template.FuncMap{"mech": mech, "join": strings.Join}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>What changes from {{.From}} to {{.To}}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}code{font-size:.9em;background:#eef1f5;padding:0 .25em}.foot{margin-top:2rem;color:#555;font-size:.9rem}</style>
</head><body><h1>What changes from {{.From}} to {{.To}}</h1>
<p>Mechanism on {{.From}}: <code>{{mech .MechanismBefore}}</code>; on {{.To}}: <code>{{mech .MechanismAfter}}</code>. Rules: {{.RuleSet}}.</p>
{{if .Missing}}<p>Missing counts: {{range $i, $m := .Missing}}{{if $i}}, {{end}}<code>{{$m}}</code>{{end}}</p>{{end}}
{{if .Changes}}<table><tr><th>Date</th><th>Rule</th><th>Change</th><th>Citation</th><th>Obligations</th><th>Gained</th><th>Obligations lost</th><th>Mechanism</th></tr>
{{range .Changes}}<tr><td>{{.Date}}</td><td><code>{{.Rule}}</code></td><td>{{.Change}}</td><td>{{.Citation}}</td><td>{{join .Obligations ", "}}</td><td>{{join .ObligationsGained ", "}}</td><td>{{join .ObligationsLost ", "}}</td><td><code>{{mech .MechanismBefore}}</code> → <code>{{mech .MechanismAfter}}</code></td></tr>{{end}}</table>
{{else}}<p>No rule starts or stops applying to these facts in the range.</p>{{end}}
<p class="foot">{{.Disclaimer}}</p></body></html>
`))
