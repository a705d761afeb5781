package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// GrowthPt is one point of a growth run: the size of the cell, and what
// the load measured against it.
type GrowthPt struct {
	// Axis is what grew for this point: "subjects" or "log".
	Axis       string `json:"axis"`
	Subjects   int64  `json:"subjects"`
	Records    int64  `json:"records"`
	LogEntries int64  `json:"log_entries"`
	// WritesPerSecond is record-write throughput, ReadP50/ReadP99 read
	// latency in milliseconds.
	WritesPerSecond float64 `json:"writes_per_second"`
	ReadsPerSecond  float64 `json:"reads_per_second"`
	ReadP50         float64 `json:"read_p50_ms"`
	ReadP99         float64 `json:"read_p99_ms"`
	// DiskBytes is the size of the cell's data directory (database, WAL,
	// custody and directory); DiskPerRecord divides it by records plus
	// log entries.
	DiskBytes     int64   `json:"disk_bytes"`
	DiskPerRecord float64 `json:"disk_bytes_per_record"`
	DiskPerEntry  float64 `json:"disk_bytes_per_log_entry"`
	// ProofMicros is the mean time of an inclusion proof read from the
	// store at this log size, in microseconds.
	ProofMicros float64 `json:"inclusion_proof_us,omitempty"`
	// ServerRSS is the serving process's peak resident set.
	ServerRSS int64 `json:"server_peak_rss_bytes"`
	// ServeStart is how long domicile serve took to start listening on
	// the grown cell, in seconds: most of it the check of every event of
	// the cell's log.
	ServeStart float64 `json:"serve_start_seconds,omitempty"`
}

func writeGrowthTable(w io.Writer, pts []GrowthPt) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "axis\tsubjects\trecords\tlog entries\twrites/s\treads/s\tread p50\tread p99\tdisk\tB/record\tB/entry\tproof\tpeak RSS\tserve start\t")
	for _, p := range pts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%.0f\t%.0f\t%.1fµs\t%s\t%.1fs\t\n", p.Axis, p.Subjects, p.Records, p.LogEntries,
			p.WritesPerSecond, p.ReadsPerSecond, fmtMs(p.ReadP50), fmtMs(p.ReadP99), fmtBytes(p.DiskBytes), p.DiskPerRecord, p.DiskPerEntry, p.ProofMicros, fmtBytes(p.ServerRSS), p.ServeStart)
	}
	tw.Flush()
}

// Series is one line of a Plot.
type Series struct {
	Name   string
	Points [][2]float64
}

// Plot is a line chart rendered as standalone SVG, with a logarithmic or
// linear x axis and a linear y axis from zero.
type Plot struct {
	Title, XLabel, YLabel string
	LogX                  bool
	Series                []Series
}

var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

// WriteSVG renders the plot.
func (p *Plot) WriteSVG(w io.Writer) error {
	const W, H, left, right, top, bottom = 640.0, 360.0, 70.0, 20.0, 40.0, 60.0
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range p.Series {
		for _, pt := range s.Points {
			xmin, xmax, ymax = math.Min(xmin, pt[0]), math.Max(xmax, pt[0]), math.Max(ymax, pt[1])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ymax = niceCeil(ymax)
	fx := func(x float64) float64 {
		if p.LogX && xmin > 0 {
			return left + (math.Log10(x)-math.Log10(xmin))/(math.Log10(xmax)-math.Log10(xmin))*(W-left-right)
		}
		return left + (x-xmin)/(xmax-xmin)*(W-left-right)
	}
	fy := func(y float64) float64 { return H - bottom - y/ymax*(H-top-bottom) }
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", W/2, e(p.Title))
	// Axes.
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, H-bottom, W-right, H-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, H-bottom)
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, fy(y), W-right, fy(y))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, fy(y)+4, fmtNum(y))
	}
	xt := map[float64]bool{}
	for _, s := range p.Series {
		for _, pt := range s.Points {
			xt[pt[0]] = true
		}
	}
	xs := make([]float64, 0, len(xt))
	for x := range xt {
		xs = append(xs, x)
	}
	sort.Float64s(xs)
	for _, x := range xs {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="black"/>`+"\n", fx(x), H-bottom, fx(x), H-bottom+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", fx(x), H-bottom+18, fmtNum(x))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", (left+W-right)/2, H-18, e(p.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+H-bottom)/2, e(p.YLabel))
	for i, s := range p.Series {
		c := plotColors[i%len(plotColors)]
		var pts []string
		for _, pt := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", fx(pt[0]), fy(pt[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		for _, pt := range s.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s at %s</title></circle>`+"\n", fx(pt[0]), fy(pt[1]), c, e(s.Name), fmtNum(pt[1]), fmtNum(pt[0]))
		}
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="3" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", left+12, top+6+float64(i)*16, c, left+30, top+11+float64(i)*16, e(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6 && math.Mod(v, 1e5) == 0:
		return fmt.Sprintf("%gM", v/1e6)
	case a >= 1e3 && math.Mod(v, 100) == 0:
		return fmt.Sprintf("%gk", v/1e3)
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
