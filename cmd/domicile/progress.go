package main

import (
	"fmt"
	"io"
	"strings"
)

// progress draws a one-line progress bar on a terminal (or a line per
// update on a pipe, which is what tests read).
type progress struct {
	w     io.Writer
	label string
	drew  bool
}

func (p *progress) show(done, total int64) {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %3.0f%%", p.label, strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total, frac*100)
	p.drew = true
}

func (p *progress) done() {
	if p.drew {
		fmt.Fprintln(p.w)
	}
}
