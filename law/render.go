package law

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Format is an output format of a report or explanation.
type Format string

// Output formats.
const (
	FormatText     Format = "text"     // for a terminal
	FormatJSON     Format = "json"     // the contract
	FormatMarkdown Format = "markdown" // for a ticket or a repository
	FormatHTML     Format = "html"     // a self-contained page to print or hand on
)

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatMarkdown, FormatHTML:
		return f, nil
	}
	return "", inputErr("format", "unknown format %q (text, json, markdown, html)", s)
}

// Render writes the report in format f.
func (r *Report) Render(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, r)
	case FormatText:
		return r.writeText(w)
	case FormatMarkdown:
		return r.writeMarkdown(w)
	case FormatHTML:
		return reportHTML.Execute(w, r)
	}
	return inputErr("format", "unknown format %q", f)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// MechanismName is the report's mechanism, or "none" when it is null.
func (r *Report) MechanismName() string {
	if r.Mechanism == nil {
		return "none"
	}
	return *r.Mechanism
}

func mech(m *string) string {
	if m == nil {
		return "none"
	}
	return *m
}

// wrap breaks s into lines of at most width runes, each prefixed by indent.
func wrap(s, indent string, width int) string { return hang(s, indent, indent, width) }

// hang is wrap with a different prefix on the first line.
func hang(s, first, indent string, width int) string {
	var b strings.Builder
	lineNo := 0
	line := 0
	for i, word := range strings.Fields(s) {
		n := len([]rune(word))
		if i > 0 && line+1+n > width {
			b.WriteString("\n")
			line = 0
		}
		if line == 0 {
			if lineNo == 0 {
				b.WriteString(first)
			} else {
				b.WriteString(indent)
			}
			lineNo++
		} else {
			b.WriteString(" ")
			line++
		}
		b.WriteString(word)
		line += n
	}
	return b.String()
}

func dates(from, until string) string {
	if until == "" {
		return "in force from " + from
	}
	return "in force " + from + " to " + until
}

// regimeText summarises which dated predicates applied.
func (r *Report) regimeLines() (inForce []string, notInForce []string) {
	for _, n := range r.Regime {
		if n.InForce {
			if n.Version != "definition" {
				inForce = append(inForce, fmt.Sprintf("%s: %s (%s)", n.Predicate, n.Version, dates(n.EffectiveFrom, n.EffectiveUntil)))
			}
			continue
		}
		notInForce = append(notInForce, fmt.Sprintf("%s (%s)", n.Predicate, dates(n.EffectiveFrom, n.EffectiveUntil)))
	}
	return
}

func (r *Report) writeText(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "domicile assessment as of %s (%s)\n", r.AsOf, r.Input)
	fmt.Fprintf(w, "Mechanism: %s", r.MechanismName())
	if r.MechanismRule != "" {
		fmt.Fprintf(w, " (decided by %s)", r.MechanismRule)
	}
	fmt.Fprintf(w, "\nRules: %s", r.RuleSet)
	fmt.Fprintf(w, "\n\nObligations (%d):\n", len(r.Obligations))
	if len(r.ObligationSources) == 0 {
		for _, o := range r.Obligations {
			fmt.Fprintf(w, "  - %s\n", o)
		}
	}
	for _, o := range r.ObligationSources {
		fmt.Fprintf(w, "%s\n", hang(o.Obligation+" "+o.text(), "  - ", "      ", 90))
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (%d):\n", len(r.Warnings))
		for _, x := range r.Warnings {
			fmt.Fprintf(w, "%s\n", hang(x.Message, "  ! ["+x.Code+"] ", "      ", 90))
		}
	}
	if r.Aggregation != nil {
		fmt.Fprintf(w, "\nAggregation:\n")
		several := r.Aggregation.laws() > 1
		for _, c := range r.Aggregation.Counters {
			if several {
				fmt.Fprintf(w, "  [%s] ", c.Jurisdiction)
			} else {
				w.WriteString("  ")
			}
			fmt.Fprintf(w, "%s = %s (%s)\n", c.Fact, group(c.Value), c.Basis)
		}
		for _, n := range r.Aggregation.Notes {
			fmt.Fprintf(w, "%s\n", hang(n, "  * ", "    ", 90))
		}
	}
	if len(r.Flows) > 0 {
		fmt.Fprintf(w, "\nFlows (%d):\n", len(r.Flows))
		for _, f := range r.Flows {
			rcpt := ""
			if f.Recipient != "" {
				rcpt = " (" + f.Recipient + ")"
			}
			by := ""
			if f.MechanismRule != "" {
				by = " by " + f.MechanismRule
			}
			if f.simple() {
				fmt.Fprintf(w, "  %s -> %s%s: %s%s\n", f.Name, f.Destination, rcpt, mech(f.Mechanism), by)
				continue
			}
			fmt.Fprintf(w, "%s\n", hang(fmt.Sprintf("%s%s: %s: %s%s", f.Name, rcpt, f.route(), mech(f.Mechanism), by), "  ", "      ", 90))
			for _, l := range f.Legs {
				fmt.Fprintf(w, "%s\n", hang(l.Leg.String()+": "+l.outcome(), "    ", "        ", 90))
			}
		}
	}
	fmt.Fprintf(w, "\nFindings (%d):\n", len(r.Findings))
	for _, f := range r.Findings {
		flag := ""
		if f.Review {
			flag = "  REVIEW"
		}
		if f.MissingFact != "" {
			fmt.Fprintf(w, "\n  MISSING %s (needed by %s)\n", f.MissingFact, f.Rule)
			fmt.Fprintf(w, "%s\n", wrap(f.Consequence, "    ", 90))
			continue
		}
		fmt.Fprintf(w, "\n  %s  (%s)  [%s]%s  %s\n", f.Rule, f.Jurisdiction, f.Confidence, flag, dates(f.EffectiveFrom, f.EffectiveUntil))
		fmt.Fprintf(w, "%s\n", wrap(f.Citation, "    ", 90))
		fmt.Fprintf(w, "%s\n", wrap(f.Consequence, "    ", 90))
		var eff []string
		if f.Mechanism != "" {
			eff = append(eff, "mechanism "+f.Mechanism)
		}
		if len(f.Obligations) > 0 {
			eff = append(eff, "obligations "+strings.Join(f.Obligations, ", "))
		}
		if len(eff) > 0 {
			fmt.Fprintf(w, "%s\n", hang(strings.Join(eff, "; "), "    => ", "       ", 90))
		}
		if f.Deadline != "" {
			fmt.Fprintf(w, "%s\n", wrap("deadline"+dueNote(f.Due)+": "+f.Deadline, "    ", 90))
		}
		if f.Penalty != "" {
			fmt.Fprintf(w, "%s\n", wrap("penalty: "+f.Penalty, "    ", 90))
		}
		if len(f.Flows) > 0 {
			fmt.Fprintf(w, "    flows: %s\n", strings.Join(f.Flows, ", "))
		}
		if l := legsText(f.Legs); l != "" {
			fmt.Fprintf(w, "%s\n", hang(l, "    legs: ", "      ", 90))
		}
	}
	if len(r.Review) > 0 {
		fmt.Fprintf(w, "\nFor legal review (%d):\n", len(r.Review))
		for _, x := range r.Review {
			fmt.Fprintf(w, "%s\n", hang(fmt.Sprintf("%s (%s): %s", x.Rule, x.Confidence, x.Reason), "  - ", "    ", 90))
		}
	}
	in, out2 := r.regimeLines()
	fmt.Fprintf(w, "\nLaw applied on %s:\n", r.AsOf)
	for _, l := range in {
		fmt.Fprintf(w, "%s\n", wrap(l, "  ", 90))
	}
	if len(out2) > 0 {
		fmt.Fprintf(w, "%s\n", wrap("Not in force on this date: "+strings.Join(out2, "; "), "  ", 90))
	}
	if len(r.NotInForce) > 0 {
		fmt.Fprintf(w, "\nRules whose condition held but which were not in force on %s:\n", r.AsOf)
		for _, d := range r.NotInForce {
			fmt.Fprintf(w, "  %s: %s (%s)\n", d.Rule, d.Status, dates(d.EffectiveFrom, d.EffectiveUntil))
		}
	}
	fmt.Fprintf(w, "\n%s\n", wrap(r.Disclaimer, "", 90))
	return w.Flush()
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func (r *Report) writeMarkdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# Obligations report as of %s\n\n", r.AsOf)
	fmt.Fprintf(w, "- **Input:** %s\n- **Mechanism:** `%s`", r.Input, r.MechanismName())
	if r.MechanismRule != "" {
		fmt.Fprintf(w, " (decided by `%s`)", r.MechanismRule)
	}
	fmt.Fprintf(w, "\n- **Rules:** %s", mdEscape(r.RuleSet.String()))
	fmt.Fprintf(w, "\n- **Obligations:** ")
	for i, o := range r.Obligations {
		if i > 0 {
			w.WriteString(", ")
		}
		fmt.Fprintf(w, "`%s`", o)
	}
	w.WriteString("\n")
	if len(r.ObligationSources) > 0 {
		w.WriteString("\n## Obligations\n\n| obligation | jurisdictions | due | rules |\n|---|---|---|---|\n")
		for _, o := range r.ObligationSources {
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", o.Obligation, strings.Join(o.Jurisdictions, ", "), o.Due, mdEscape(strings.Join(o.Rules, ", ")))
		}
	}
	if len(r.Warnings) > 0 {
		w.WriteString("\n## Warnings\n\n")
		for _, x := range r.Warnings {
			fmt.Fprintf(w, "- **%s**: %s\n", x.Code, mdEscape(x.Message))
		}
	}
	if r.Aggregation != nil {
		w.WriteString("\n## Aggregation\n\n| rules of | counter | value | basis | sum over flows |\n|---|---|---:|---|---:|\n")
		for _, c := range r.Aggregation.Counters {
			fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s |\n", c.Jurisdiction, c.Fact, group(c.Value), c.Basis, group(c.Sum))
		}
		w.WriteString("\n")
		for _, n := range r.Aggregation.Notes {
			fmt.Fprintf(w, "- %s\n", mdEscape(n))
		}
	}
	if len(r.Flows) > 0 {
		w.WriteString("\n## Flows\n\n| flow | from | stored in | read from | recipient | mechanism | decided by |\n|---|---|---|---|---|---|---|\n")
		for _, f := range r.Flows {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | `%s` | %s |\n", mdEscape(f.Name), f.Source, f.Storage, strings.Join(f.Access, ", "), mdEscape(f.Recipient), mech(f.Mechanism), f.MechanismRule)
		}
		if r.multiLeg() {
			w.WriteString("\n### Legs\n\nEach crossing, under the rules of the jurisdiction the data leaves.\n\n| flow | leg | rules of | mechanism | decided by | rules |\n|---|---|---|---|---|---|\n")
			for _, f := range r.Flows {
				for _, l := range f.Legs {
					fmt.Fprintf(w, "| %s | %s | %s | `%s` | %s | %s |\n", mdEscape(f.Name), l.Leg, l.lawName(), l.mechName(), l.MechanismRule, l.firedText())
				}
			}
		}
	}
	w.WriteString("\n## Findings\n")
	for _, f := range r.Findings {
		review := ""
		if f.Review {
			review = " — **legal review**"
		}
		if f.MissingFact != "" {
			fmt.Fprintf(w, "\n### Missing: `%s`\n\n%s\n", f.MissingFact, mdEscape(f.Consequence))
			continue
		}
		fmt.Fprintf(w, "\n### %s (%s)\n\n*%s* — %s, %s%s\n\n%s\n\n", f.Rule, f.Jurisdiction, mdEscape(f.Citation), f.Confidence, dates(f.EffectiveFrom, f.EffectiveUntil), review, mdEscape(f.Consequence))
		if f.Mechanism != "" {
			fmt.Fprintf(w, "- Mechanism: `%s`\n", f.Mechanism)
		}
		if len(f.Obligations) > 0 {
			fmt.Fprintf(w, "- Obligations: `%s`\n", strings.Join(f.Obligations, "`, `"))
		}
		if f.Deadline != "" {
			fmt.Fprintf(w, "- Deadline%s: %s\n", dueNote(f.Due), mdEscape(f.Deadline))
		}
		if f.Penalty != "" {
			fmt.Fprintf(w, "- Penalty: %s\n", mdEscape(f.Penalty))
		}
		if len(f.Flows) > 0 {
			fmt.Fprintf(w, "- Flows: %s\n", mdEscape(strings.Join(f.Flows, ", ")))
		}
		if l := legsText(f.Legs); l != "" {
			fmt.Fprintf(w, "- Legs: %s\n", mdEscape(l))
		}
		fmt.Fprintf(w, "- Sources: %s\n", strings.Join(f.Sources, ", "))
	}
	if len(r.Review) > 0 {
		w.WriteString("\n## For legal review\n\n")
		for _, x := range r.Review {
			fmt.Fprintf(w, "- `%s` (%s): %s\n", x.Rule, x.Confidence, mdEscape(x.Reason))
		}
	}
	in, out2 := r.regimeLines()
	fmt.Fprintf(w, "\n## Law applied on %s\n\n", r.AsOf)
	for _, l := range in {
		fmt.Fprintf(w, "- %s\n", mdEscape(l))
	}
	if len(out2) > 0 {
		fmt.Fprintf(w, "- Not in force on this date: %s\n", mdEscape(strings.Join(out2, "; ")))
	}
	if len(r.NotInForce) > 0 {
		w.WriteString("\nRules whose condition held but which were not in force:\n\n")
		for _, d := range r.NotInForce {
			fmt.Fprintf(w, "- `%s`: %s (%s)\n", d.Rule, d.Status, dates(d.EffectiveFrom, d.EffectiveUntil))
		}
	}
	fmt.Fprintf(w, "\n---\n\n*%s*\n", mdEscape(r.Disclaimer))
	return w.Flush()
}

// simple reports whether a flow is one leg to its declared destination,
// which one line says.
func (f *FlowReport) simple() bool {
	return len(f.Legs) == 1 && f.Legs[0].Via == ViaDestination
}

// route is "from CN, stored in US, read from CN, SG".
func (f *FlowReport) route() string {
	s := "from " + f.Source + ", stored in " + f.Storage
	if len(f.Access) > 0 {
		s += ", read from " + strings.Join(f.Access, ", ")
	}
	return s
}

// multiLeg reports whether some flow of the report is more than one leg
// to its destination.
func (r *Report) multiLeg() bool {
	for i := range r.Flows {
		if !r.Flows[i].simple() {
			return true
		}
	}
	return false
}

func (l LegReport) lawName() string {
	if l.Law == "" {
		return "none modelled"
	}
	return l.Law
}

func (l LegReport) mechName() string {
	if !l.Assessed {
		return "not assessed"
	}
	return mech(l.Mechanism)
}

// outcome is "rules of CN: sc_or_certification by CN.CBDF.8; 18 rules
// fired" or "rules of EU: none; fired EU.GDPR.46".
func (l LegReport) outcome() string {
	if !l.Assessed {
		return "not assessed: no rules are modelled for " + l.From
	}
	s := "rules of " + l.Law + ": " + mech(l.Mechanism)
	if l.MechanismRule != "" {
		s += " by " + l.MechanismRule
	}
	return s + "; " + l.firedText()
}

// firedText is "fired EU.GDPR.46", "18 rules fired" or "no rule fired".
func (l LegReport) firedText() string {
	switch n := len(l.Fired); {
	case !l.Assessed:
		return "not assessed"
	case n == 0:
		return "no rule fired"
	case n <= 3:
		return "fired " + strings.Join(l.Fired, ", ")
	default:
		return fmt.Sprintf("%d rules fired", n)
	}
}

// laws counts the jurisdictions whose rules the counters are for.
func (a *Aggregation) laws() int {
	seen := map[string]bool{}
	for _, c := range a.Counters {
		seen[c.Jurisdiction] = true
	}
	return len(seen)
}

// legsText lists the legs a finding fired for, or "" when each is a flow
// to its destination (the flows line says it all).
func legsText(legs []LegRef) string {
	plain := true
	for _, l := range legs {
		plain = plain && l.Via == ViaDestination
	}
	if plain {
		return ""
	}
	parts := make([]string, len(legs))
	for i, l := range legs {
		parts[i] = l.Flow + " " + l.Leg.String()
	}
	return strings.Join(parts, "; ")
}

// text is the jurisdictions, due and rules of an obligation, for text output.
func (o ObligationSource) text() string {
	s := "[" + strings.Join(o.Jurisdictions, ", ") + "]"
	if o.Due != "" {
		s += " due " + o.Due
	}
	return s + " (" + strings.Join(o.Rules, ", ") + ")"
}

// dueNote is " (due D)", or "" without a due value.
func dueNote(due string) string {
	if due == "" {
		return ""
	}
	return " (due " + due + ")"
}

//go:embed report.html.tmpl
var reportTemplate string

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"mech":     mech,
	"group":    group,
	"dates":    dates,
	"join":     strings.Join,
	"due":      dueNote,
	"legs":     legsText,
	"multileg": func(r *Report) bool { return r.multiLeg() },
	"lawname":  LegReport.lawName,
	"mechname": LegReport.mechName,
	"fired":    LegReport.firedText,
	"regime": func(r *Report) map[string][]string {
		in, out := r.regimeLines()
		return map[string][]string{"in": in, "out": out}
	},
}).Parse(reportTemplate))

// Render writes the explanation in format f.
func (x *Explanation) Render(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, x)
	case FormatText:
		bw := bufio.NewWriter(w)
		x.writeText(bw, "")
		return bw.Flush()
	case FormatMarkdown:
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, "# Why %s\n\n```\n", x.Rule)
		x.writeText(bw, "")
		bw.WriteString("```\n")
		return bw.Flush()
	case FormatHTML:
		return explainHTML.Execute(w, x)
	}
	return inputErr("format", "unknown format %q", f)
}

func (x *Explanation) writeText(w *bufio.Writer, indent string) {
	if x.Flow != "" {
		fmt.Fprintf(w, "%sflow %s:\n", indent, x.Flow)
	} else {
		fmt.Fprintf(w, "%s%s — %s\n", indent, x.Rule, x.Citation)
	}
	fmt.Fprintf(w, "%s%s\n", indent, x.Summary)
	fmt.Fprintf(w, "%sin force: %v (%s)\n", indent, x.InForce, dates(x.EffectiveFrom, x.EffectiveUntil))
	if x.Condition != nil {
		fmt.Fprintf(w, "%scondition:\n", indent)
		x.Condition.write(w, indent+"  ")
	}
	for _, sub := range x.Explanations {
		w.WriteString("\n")
		sub.writeText(w, indent+"  ")
	}
}

func (t *Term) write(w *bufio.Writer, indent string) {
	val := fmt.Sprint(t.Value)
	if s, ok := t.Value.(string); ok {
		val = fmt.Sprintf("%q", s)
	}
	switch t.Kind {
	case "fact":
		fmt.Fprintf(w, "%s%s = %s (%s)\n", indent, t.Expr, val, t.Source)
	case "derived":
		fmt.Fprintf(w, "%s%s = %s [%s]\n", indent, t.Expr, val, t.Version)
	case "all":
		fmt.Fprintf(w, "%sall of: = %s\n", indent, val)
	case "any":
		fmt.Fprintf(w, "%sany of: = %s\n", indent, val)
	case "not":
		fmt.Fprintf(w, "%snot: = %s\n", indent, val)
	default:
		fmt.Fprintf(w, "%s%s = %s\n", indent, t.Expr, val)
	}
	for _, c := range t.Children {
		c.write(w, indent+"  ")
	}
}

var explainHTML = template.Must(template.New("explain").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Why {{.Rule}}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}ul{list-style:none;padding-left:1.2rem;border-left:1px solid #ccc}.true{color:#064}.false{color:#a00}code{font-size:90%}</style>
</head><body><h1>Why {{.Rule}}</h1><p>{{.Citation}}</p>{{template "x" .}}</body></html>
{{define "x"}}{{if .Flow}}<h2>Flow {{.Flow}}</h2>{{end}}<p><strong>{{.Summary}}</strong></p>{{with .Condition}}<ul>{{template "t" .}}</ul>{{end}}{{range .Explanations}}{{template "x" .}}{{end}}{{end}}
{{define "t"}}<li><code>{{.Expr}}</code> = <span class="{{.Value}}">{{.Value}}</span>{{if .Source}} ({{.Source}}){{end}}{{if .Version}} [{{.Version}}]{{end}}{{if .Children}}<ul>{{range .Children}}{{template "t" .}}{{end}}</ul>{{end}}</li>{{end}}`))
