package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	ttemplate "text/template"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
)

// Format is an output format of a document.
type Format string

// Formats.
const (
	JSON     Format = "json"
	Markdown Format = "markdown"
	HTML     Format = "html"
)

// ParseFormat returns the format named s ("json", "markdown" or "md",
// "html").
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return JSON, nil
	case "markdown", "md":
		return Markdown, nil
	case "html":
		return HTML, nil
	}
	return "", fmt.Errorf("report: unknown format %q: want json, markdown or html", truncate(s, 16))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

//go:embed templates/*
var templateFS embed.FS

var (
	htmlTmpl = template.Must(template.New("").Funcs(funcs(nil)).ParseFS(templateFS, "templates/*.html.tmpl"))
	mdTmpl   = ttemplate.Must(ttemplate.New("").Funcs(ttemplate.FuncMap(funcs(nil))).ParseFS(templateFS, "templates/*.md.tmpl"))
)

// Render writes doc (a *Statement, *ImpactReport, *SubjectNotice or
// *Transparency) in format f, in the document's language.
func Render(w io.Writer, doc any, f Format) error {
	var name string
	var lang i18n.Lang
	switch d := doc.(type) {
	case *Statement:
		name, lang = "statement", d.Lang
	case *ImpactReport:
		name, lang = "impact", d.Lang
	case *Transparency:
		name, lang = "transparency", d.Lang
	case *SubjectNotice:
		name, lang = "notice", i18n.EN
	default:
		return fmt.Errorf("report: cannot render %T", doc)
	}
	p := i18n.NewPrinter(lang)
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(doc)
	case Markdown:
		t, err := mdTmpl.Clone()
		if err != nil {
			return err
		}
		return t.Funcs(ttemplate.FuncMap(funcs(p))).ExecuteTemplate(w, name+".md.tmpl", doc)
	case HTML:
		t, err := htmlTmpl.Clone()
		if err != nil {
			return err
		}
		return t.Funcs(funcs(p)).ExecuteTemplate(w, name+".html.tmpl", doc)
	}
	return fmt.Errorf("report: unknown format %q", f)
}

func funcs(p *i18n.Printer) template.FuncMap {
	if p == nil {
		p = i18n.NewPrinter(i18n.EN)
	}
	return template.FuncMap{
		"t":    p.T,
		"lang": func() string { return string(p.Lang()) },
		"date": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"datetime": func(t time.Time) string {
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"pdate": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"cats":   func(cs []domicile.Category) string { return catText(p, cs) },
		"action": func(e domicile.Event) string { return actionText(p, e) },
		"role":   func(r domicile.Role) string { return roleText(p, r) },
		"short":  shortRef,
		"join":   strings.Join,
		"md":     mdEscape,
		"bytes":  byteSize,
		"paras":  func(s string) []string { return strings.Split(s, "\n\n") },
		"outcome": func(o string) string {
			if i18n.Has("outcome." + o) {
				return p.T("outcome." + o)
			}
			return o
		},
		"kind": func(k string) string {
			if i18n.Has("akind." + k) {
				return p.T("akind." + k)
			}
			return k
		},
		"who": func(w string) string { return p.T("who." + w) },
		"obligations": func(obs []string) string {
			var out []string
			for _, o := range obs {
				if i18n.Has("obl." + o) {
					out = append(out, p.T("obl."+o))
				} else {
					out = append(out, o)
				}
			}
			return strings.Join(out, p.T("list.sep"))
		},
		"authChart":     func(t *Transparency) template.HTML { return authorityChart(p, t) },
		"basisChart":    func(title string, bs []figures.BasisCount) template.HTML { return basisChart(p, title, bs) },
		"transferChart": func(l *figures.Ledger) template.HTML { return transferChart(p, l) },
		"basis":         func(b string) string { return basisText(p, b) },
		"route":         routeText,
		"affectedChart": func(gs []AffectedGroup) template.HTML { return affectedChart(p, gs) },
		"noticeText": func(n *SubjectNotice, l string) NoticeText {
			return n.Texts[l]
		},
		"string":  func(v any) string { return fmt.Sprint(v) },
		"catlist": func(c domicile.Category) []domicile.Category { return []domicile.Category{c} },
		"inc":     func(i int) int { return i + 1 },
		"field": func(f string) string {
			if i18n.Has("field." + f) {
				return p.T("field." + f)
			}
			return f
		},
		"langs": func() []string { return []string{string(i18n.EN), string(i18n.ZH)} },
		"yesno": func(b bool) string {
			if b {
				return p.T("yes")
			}
			return p.T("no")
		},
	}
}

func mdEscape(s string) string {
	r := strings.NewReplacer("|", "\\|", "\n", " ", "*", "\\*", "_", "\\_", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
