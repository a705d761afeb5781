package report

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
)

// bar is one bar of a chart.
type bar struct {
	Label string
	Value int
}

// barChart draws a horizontal bar chart as inline SVG. Labels are escaped;
// an empty chart says so in words rather than drawing nothing.
func barChart(p *i18n.Printer, title string, bars []bar) template.HTML {
	const width, labelW, rowH, pad = 640, 260, 26, 8
	if len(bars) == 0 {
		return template.HTML(`<p class="empty">` + template.HTMLEscapeString(p.T("chart.none")) + `</p>`)
	}
	max := 1
	for _, b := range bars {
		if b.Value > max {
			max = b.Value
		}
	}
	h := len(bars)*rowH + 2*pad
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		width, h, width, h, template.HTMLEscapeString(title))
	for i, b := range bars {
		y := pad + i*rowH
		w := 0
		if b.Value > 0 {
			w = max1((width-labelW-60)*b.Value/max, 2)
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="end" class="label">%s</text>`, labelW-8, y+17, template.HTMLEscapeString(b.Label))
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" class="bar"/>`, labelW, y+4, w, rowH-8)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="value">%d</text>`, labelW+w+6, y+17, b.Value)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func max1(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func authorityChart(p *i18n.Printer, t *Transparency) template.HTML {
	var bars []bar
	for _, o := range []string{"received", "disclosed", "partly-disclosed", "refused", "referred", "under-review", "recorded"} {
		if n, ok := t.AuthorityTotals[o]; ok {
			bars = append(bars, bar{Label: p.T("outcome." + o), Value: n})
		}
	}
	return barChart(p, p.T("transparency.authority"), bars)
}

func basisChart(p *i18n.Printer, title string, bs []figures.BasisCount) template.HTML {
	var bars []bar
	for _, b := range bs {
		bars = append(bars, bar{Label: basisText(p, b.Basis), Value: b.Allowed + b.Denied})
	}
	return barChart(p, title, bars)
}

func transferChart(p *i18n.Printer, l *figures.Ledger) template.HTML {
	var bars []bar
	if l != nil {
		for _, t := range l.Transfers {
			bars = append(bars, bar{Label: routeText(t), Value: int(max(t.People, t.SensitivePeople))})
		}
	}
	return barChart(p, p.T("transparency.transfers"), bars)
}

// routeText names a ledger row: year, mechanism and destination.
func routeText(t figures.TransferRow) string {
	return strconv.Itoa(t.Year) + " " + string(t.Source) + " · " + t.Mechanism + " → " + string(t.Destination)
}

// basisText is a justification in words; "" (none stated) says so.
func basisText(p *i18n.Printer, b string) string {
	if b == "" {
		return p.T("basis.none")
	}
	return b
}

func affectedChart(p *i18n.Printer, gs []AffectedGroup) template.HTML {
	var bars []bar
	for _, g := range gs {
		bars = append(bars, bar{Label: string(g.Jurisdiction) + " · " + g.Cell, Value: g.Subjects})
		for _, c := range g.Categories {
			bars = append(bars, bar{Label: "  " + catText(p, []domicile.Category{c.Category}), Value: c.Subjects})
		}
	}
	return barChart(p, p.T("impact.affected"), bars)
}
